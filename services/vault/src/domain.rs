//! Card data as vault parses it. A [`Pan`] is Luhn-checked, its `Debug` masked and its memory
//! wiped when dropped; a [`Cvv`] likewise, and it is never stored.

use std::fmt;

use fintech_http::FieldError;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

pub use fintech_types::card::luhn_valid;

/// A card number: 12 to 19 digits, Luhn-valid. Spaces and dashes are accepted and dropped.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Pan(String);

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({})", self.masked())
    }
}

/// Card networks, from the number's leading digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Brand {
    Visa,
    Mastercard,
    Amex,
    Discover,
    Unknown,
}

impl Brand {
    pub fn as_str(self) -> &'static str {
        match self {
            Brand::Visa => "visa",
            Brand::Mastercard => "mastercard",
            Brand::Amex => "amex",
            Brand::Discover => "discover",
            Brand::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Brand {
        [Brand::Visa, Brand::Mastercard, Brand::Amex, Brand::Discover]
            .into_iter()
            .find(|b| b.as_str() == s)
            .unwrap_or(Brand::Unknown)
    }
}

impl Pan {
    pub fn parse(raw: &str) -> Result<Pan, FieldError> {
        let mut digits = String::with_capacity(19);
        for c in raw.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' => {}
                _ => {
                    digits.zeroize();
                    return Err(FieldError::new(
                        "number",
                        "invalid_number",
                        "may contain only digits, spaces and dashes",
                    ));
                }
            }
        }
        if !(12..=19).contains(&digits.len()) || !luhn_valid(&digits) {
            digits.zeroize();
            return Err(FieldError::new("number", "invalid_number", "is not a valid card number"));
        }
        Ok(Pan(digits))
    }

    /// The digits. Only vault's own code (encryption, the acquirer) calls this.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The issuer identification number: the first 6 digits.
    pub fn bin(&self) -> &str {
        &self.0[..6]
    }

    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }

    /// BIN and last 4, the rest as `*`: the most any display may show (PCI DSS 3.4.1).
    pub fn masked(&self) -> String {
        format!("{}{}{}", self.bin(), "*".repeat(self.0.len() - 10), self.last4())
    }

    pub fn brand(&self) -> Brand {
        let two: u32 = self.0[..2].parse().unwrap_or(0);
        let four: u32 = self.0[..4].parse().unwrap_or(0);
        match () {
            () if self.0.starts_with('4') => Brand::Visa,
            () if (51..=55).contains(&two) || (2221..=2720).contains(&four) => Brand::Mastercard,
            () if two == 34 || two == 37 => Brand::Amex,
            () if self.0.starts_with("6011") || two == 65 => Brand::Discover,
            () => Brand::Unknown,
        }
    }
}

/// A card verification value: 3 digits (4 for American Express). Used in flight for an
/// authorization and never stored.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Cvv(String);

impl fmt::Debug for Cvv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cvv(***)")
    }
}

impl Cvv {
    pub fn parse(raw: &str, brand: Brand) -> Result<Cvv, FieldError> {
        let len = if brand == Brand::Amex { 4 } else { 3 };
        if raw.len() != len || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new("cvv", "invalid_cvv", format!("must be {len} digits for this card")));
        }
        Ok(Cvv(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A card's expiry: the card works until the end of that month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Expiry {
    pub month: u8,
    pub year: u16,
}

/// The furthest expiry accepted, in years from now.
pub const MAX_EXPIRY_YEARS: u16 = 20;

impl Expiry {
    /// `(year, month)` of now, in UTC.
    pub fn current() -> (u16, u8) {
        let now = time::OffsetDateTime::now_utc();
        (u16::try_from(now.year()).unwrap_or(0), u8::from(now.month()))
    }

    pub fn parse(month: Option<i64>, year: Option<i64>) -> Result<Expiry, FieldError> {
        let invalid = |m: &str| FieldError::new("exp_month", "invalid_expiry", m);
        let month = month.and_then(|m| u8::try_from(m).ok()).filter(|m| (1..=12).contains(m));
        let year = year.and_then(|y| u16::try_from(y).ok());
        let (Some(month), Some(year)) = (month, year) else {
            return Err(invalid("exp_month (1-12) and exp_year (four digits) are required"));
        };
        let expiry = Expiry { month, year };
        let (now_year, now_month) = Self::current();
        if expiry.is_past(now_year, now_month) {
            return Err(FieldError::new("exp_year", "card_expired", "the card has expired"));
        }
        if year > now_year + MAX_EXPIRY_YEARS {
            return Err(FieldError::new("exp_year", "invalid_expiry", "is too far in the future"));
        }
        Ok(expiry)
    }

    /// Whether the card no longer works in `(year, month)`.
    pub fn is_past(self, year: u16, month: u8) -> bool {
        (self.year, self.month) < (year, month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pans() {
        let pan = Pan::parse("4242 4242-4242 4242").expect("visa test card");
        assert_eq!((pan.bin(), pan.last4(), pan.brand()), ("424242", "4242", Brand::Visa));
        assert_eq!(pan.masked(), "424242******4242");
        assert_eq!(format!("{pan:?}"), "Pan(424242******4242)");
        assert_eq!(Pan::parse("5555555555554444").map(|p| p.brand()), Ok(Brand::Mastercard));
        assert_eq!(Pan::parse("378282246310005").map(|p| p.brand()), Ok(Brand::Amex));
        assert_eq!(Pan::parse("6011111111111117").map(|p| p.brand()), Ok(Brand::Discover));
        for bad in ["4242424242424241", "4242", "42424242424242424242", "4242x42424242424", ""] {
            assert!(Pan::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cvv_and_expiry() {
        assert!(Cvv::parse("123", Brand::Visa).is_ok());
        assert!(Cvv::parse("1234", Brand::Visa).is_err());
        assert!(Cvv::parse("1234", Brand::Amex).is_ok());
        assert_eq!(format!("{:?}", Cvv::parse("123", Brand::Visa)), "Ok(Cvv(***))");
        let (y, m) = Expiry::current();
        assert!(Expiry::parse(Some(i64::from(m)), Some(i64::from(y))).is_ok(), "valid to the end of this month");
        assert_eq!(Expiry::parse(Some(12), Some(i64::from(y) - 1)).map_err(|e| e.code), Err("card_expired".into()));
        assert!(Expiry::parse(Some(13), Some(i64::from(y) + 1)).is_err());
        assert!(Expiry::parse(Some(1), Some(i64::from(y) + 21)).is_err());
        assert!(Expiry::parse(None, Some(i64::from(y) + 1)).is_err());
    }
}
