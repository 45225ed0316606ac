//! Money as integer minor units with an ISO 4217 currency.
//!
//! Invariant: no floating point anywhere. Amounts are `i64` minor units (cents for USD, yen for
//! JPY, fils for BHD); every arithmetic operation is checked and refuses to mix currencies.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a money value or operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency code {0:?}: expected an ISO 4217 alphabetic code such as \"USD\"")]
    UnknownCurrency(String),
    #[error("currency mismatch: {left} and {right}")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("amount overflow")]
    Overflow,
    #[error("amount must be positive")]
    NotPositive,
    #[error("invalid decimal amount {0:?} for {1}")]
    InvalidDecimal(String, Currency),
}

/// An ISO 4217 currency with its number of minor-unit digits.
///
/// Only currencies listed in [`CURRENCIES`] are accepted; extending the list is a one-line change.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

/// Supported currencies: (alphabetic code, minor-unit exponent) from ISO 4217.
pub const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("AUD", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CNY", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("MXN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PLN", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TRY", 2),
    ("USD", 2),
    ("ZAR", 2),
];

impl Currency {
    /// The three-letter code, e.g. `"USD"`.
    pub fn code(&self) -> &str {
        // The code bytes always come from the ASCII table above.
        std::str::from_utf8(&self.code).unwrap_or("???")
    }

    /// Number of digits after the decimal point in the major unit (2 for USD, 0 for JPY).
    pub fn exponent(&self) -> u8 {
        self.exponent
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CURRENCIES
            .iter()
            .find(|(code, _)| *code == s)
            .map(|(code, exponent)| {
                let b = code.as_bytes();
                Currency { code: [b[0], b[1], b[2]], exponent: *exponent }
            })
            .ok_or_else(|| MoneyError::UnknownCurrency(s.chars().take(16).collect()))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An amount of money: integer minor units and a currency.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

impl Money {
    pub const fn new(amount_minor: i64, currency: Currency) -> Self {
        Money { amount_minor, currency }
    }

    /// A strictly positive amount, as every transfer and payment requires.
    pub fn positive(amount_minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if amount_minor <= 0 {
            return Err(MoneyError::NotPositive);
        }
        Ok(Money::new(amount_minor, currency))
    }

    pub fn zero(currency: Currency) -> Self {
        Money::new(0, currency)
    }

    pub fn amount_minor(&self) -> i64 {
        self.amount_minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch { left: self.currency, right: other.currency });
        }
        Ok(())
    }

    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let sum = self.amount_minor.checked_add(other.amount_minor).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(sum, self.currency))
    }

    pub fn checked_sub(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let diff = self.amount_minor.checked_sub(other.amount_minor).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(diff, self.currency))
    }

    pub fn checked_neg(&self) -> Result<Money, MoneyError> {
        let neg = self.amount_minor.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Money::new(neg, self.currency))
    }

    /// Sum of many amounts of one currency; `None` items are impossible by construction.
    pub fn checked_sum<'a>(
        currency: Currency,
        items: impl IntoIterator<Item = &'a Money>,
    ) -> Result<Money, MoneyError> {
        items.into_iter().try_fold(Money::zero(currency), |acc, m| acc.checked_add(m))
    }

    /// Parses a decimal string in major units ("12.34" USD → 1234 minor) exactly, without floats.
    /// More fraction digits than the currency has is an error, never a rounding.
    pub fn from_decimal_str(s: &str, currency: Currency) -> Result<Money, MoneyError> {
        let invalid = || MoneyError::InvalidDecimal(s.chars().take(32).collect(), currency);
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int_part, frac_part) = match digits.split_once('.') {
            Some((i, f)) => (i, f),
            None => (digits, ""),
        };
        let exp = usize::from(currency.exponent);
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int_part.is_empty()
            || !all_digits(int_part)
            || !all_digits(frac_part)
            || frac_part.len() > exp
            || (digits.contains('.') && frac_part.is_empty())
        {
            return Err(invalid());
        }
        let mut minor: i64 = 0;
        for b in int_part.bytes().chain(frac_part.bytes()) {
            minor =
                minor.checked_mul(10).and_then(|m| m.checked_add(i64::from(b - b'0'))).ok_or(MoneyError::Overflow)?;
        }
        for _ in frac_part.len()..exp {
            minor = minor.checked_mul(10).ok_or(MoneyError::Overflow)?;
        }
        if negative {
            minor = minor.checked_neg().ok_or(MoneyError::Overflow)?;
        }
        Ok(Money::new(minor, currency))
    }
}

impl Money {
    /// The amount alone, in major units: "12.34", "-0.05", "100" (exact, from integer
    /// arithmetic; no currency code).
    pub fn decimal(&self) -> String {
        let exp = u32::from(self.currency.exponent);
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        if exp == 0 {
            return format!("{sign}{abs}");
        }
        let scale = 10u64.pow(exp);
        format!("{sign}{}.{:0width$}", abs / scale, abs % scale, width = exp as usize)
    }
}

impl fmt::Display for Money {
    /// "12.34 USD", "-0.05 EUR", "100 JPY": [`Money::decimal`] and the currency code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.decimal(), self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        "USD".parse().expect("USD is listed")
    }

    #[test]
    fn currency_parsing_is_strict() {
        assert_eq!(usd().code(), "USD");
        assert_eq!("JPY".parse::<Currency>().map(|c| c.exponent()), Ok(0));
        assert!(matches!("usd".parse::<Currency>(), Err(MoneyError::UnknownCurrency(_))));
        assert!("XXX".parse::<Currency>().is_err());
        assert!("".parse::<Currency>().is_err());
    }

    #[test]
    fn arithmetic_is_checked_and_single_currency() {
        let a = Money::new(150, usd());
        let b = Money::new(50, usd());
        assert_eq!(a.checked_add(&b), Ok(Money::new(200, usd())));
        assert_eq!(a.checked_sub(&b), Ok(Money::new(100, usd())));
        let eur: Currency = "EUR".parse().expect("EUR is listed");
        assert!(matches!(a.checked_add(&Money::new(1, eur)), Err(MoneyError::CurrencyMismatch { .. })));
        assert_eq!(Money::new(i64::MAX, usd()).checked_add(&Money::new(1, usd())), Err(MoneyError::Overflow));
        assert_eq!(Money::new(i64::MIN, usd()).checked_neg(), Err(MoneyError::Overflow));
        assert_eq!(Money::positive(0, usd()), Err(MoneyError::NotPositive));
        assert_eq!(Money::positive(-5, usd()), Err(MoneyError::NotPositive));
    }

    #[test]
    fn decimal_parsing_is_exact() {
        assert_eq!(Money::from_decimal_str("12.34", usd()), Ok(Money::new(1234, usd())));
        assert_eq!(Money::from_decimal_str("12.3", usd()), Ok(Money::new(1230, usd())));
        assert_eq!(Money::from_decimal_str("-0.05", usd()), Ok(Money::new(-5, usd())));
        assert_eq!(Money::from_decimal_str("7", usd()), Ok(Money::new(700, usd())));
        let bhd: Currency = "BHD".parse().expect("BHD is listed");
        assert_eq!(Money::from_decimal_str("1.005", bhd), Ok(Money::new(1005, bhd)));
        for bad in ["12.345", "1e3", "", ".5", "5.", "1,00", "NaN", "--1", " 1"] {
            assert!(Money::from_decimal_str(bad, usd()).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(Money::from_decimal_str("92233720368547758.08", usd()), Err(MoneyError::Overflow));
    }

    #[test]
    fn display_is_exact() {
        assert_eq!(Money::new(1234, usd()).to_string(), "12.34 USD");
        assert_eq!(Money::new(-5, usd()).to_string(), "-0.05 USD");
        assert_eq!(Money::new(i64::MIN, usd()).to_string(), "-92233720368547758.08 USD");
        let jpy: Currency = "JPY".parse().expect("JPY is listed");
        assert_eq!(Money::new(100, jpy).to_string(), "100 JPY");
        assert_eq!((Money::new(-5, usd()).decimal(), Money::new(100, jpy).decimal()), ("-0.05".into(), "100".into()));
    }

    #[test]
    fn serde_round_trip_uses_codes_and_integers() {
        let m = Money::new(1234, usd());
        let json = serde_json::to_string(&m).expect("serializes");
        assert_eq!(json, r#"{"amount_minor":1234,"currency":"USD"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).expect("parses"), m);
        assert!(serde_json::from_str::<Money>(r#"{"amount_minor":1.5,"currency":"USD"}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"amount_minor":1,"currency":"ABC"}"#).is_err());
        let sum = Money::checked_sum(usd(), &[m, m]).expect("sums");
        assert_eq!(sum.amount_minor(), 2468);
    }
}
