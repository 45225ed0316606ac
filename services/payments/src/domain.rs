//! Payments vocabulary and request validation.

use fintech_http::FieldError;
use fintech_money::Currency;
use fintech_types::card::redact_card_numbers;
use serde::{Deserialize, Serialize};

pub const MAX_DESCRIPTION_CHARS: usize = 200;

/// A payment, transfer or top-up as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Payment {
    pub id: String,
    /// `payment`, `transfer` or `topup`.
    pub kind: String,
    pub payer_account_id: String,
    pub payee_account_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub fee_minor: i64,
    /// `authorized`, `captured`, `canceled`, `partially_refunded`, `refunded`, `succeeded`.
    pub status: String,
    pub captured_minor: i64,
    pub refunded_minor: i64,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
    /// The payer's customer (`null` for a system account).
    pub payer_customer_id: Option<String>,
    /// The payee's customer (`null` for a system account).
    pub payee_customer_id: Option<String>,
    /// A card payment's card: its vault token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_last4: Option<String>,
    /// Why the card was declined (`status` `declined`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<String>,
}

fn account(errors: &mut Vec<FieldError>, field: &str, v: Option<&str>) -> Option<String> {
    match v {
        // System accounts (settlement, fees, funding) move money only through their own flows.
        Some(id) if id.starts_with("system:") => {
            errors.push(FieldError::new(field, "system_account", format!("`{field}` cannot be a system account")));
            None
        }
        Some(id) if fintech_ledger::domain::valid_id(id) => Some(id.to_owned()),
        Some(_) => {
            errors.push(FieldError::new(field, "invalid_id", format!("`{field}` is not an account id")));
            None
        }
        None => {
            errors.push(FieldError::new(field, "required", format!("`{field}` is required")));
            None
        }
    }
}

fn amount(errors: &mut Vec<FieldError>, field: &str, v: Option<i64>, required: bool) -> Option<i64> {
    match v {
        Some(a) if a > 0 => Some(a),
        Some(_) => {
            errors.push(FieldError::new(
                field,
                "invalid_amount",
                format!("`{field}` must be a positive integer (minor units)"),
            ));
            None
        }
        None if required => {
            errors.push(FieldError::new(field, "required", format!("`{field}` is required")));
            None
        }
        None => None,
    }
}

fn currency(errors: &mut Vec<FieldError>, v: Option<&str>) -> Option<Currency> {
    match v.map(str::parse::<Currency>) {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            errors.push(FieldError::new("currency", "unknown_currency", e.to_string()));
            None
        }
        None => {
            errors.push(FieldError::new("currency", "required", "`currency` is required"));
            None
        }
    }
}

fn description(errors: &mut Vec<FieldError>, v: &str) {
    if v.chars().count() > MAX_DESCRIPTION_CHARS || v.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "description",
            "invalid_description",
            "`description` must be at most 200 printable characters",
        ));
    }
}

/// `POST /v1/payments`: a customer pays a merchant.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPaymentRequest {
    pub payer_account_id: Option<String>,
    pub payee_account_id: Option<String>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    /// Charged to the merchant on capture; at most the amount.
    #[serde(default)]
    pub fee_minor: i64,
    /// Capture at once (default) or only authorize (hold the funds).
    #[serde(default = "yes")]
    pub capture: bool,
    #[serde(default)]
    pub description: String,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone)]
pub struct NewPayment {
    pub payer: String,
    pub payee: String,
    pub amount_minor: i64,
    pub currency: Currency,
    pub fee_minor: i64,
    pub capture: bool,
    pub description: String,
}

impl NewPaymentRequest {
    pub fn validate(&self) -> Result<NewPayment, Vec<FieldError>> {
        let mut errors = Vec::new();
        let payer = account(&mut errors, "payer_account_id", self.payer_account_id.as_deref());
        let payee = account(&mut errors, "payee_account_id", self.payee_account_id.as_deref());
        let amount_minor = amount(&mut errors, "amount_minor", self.amount_minor, true);
        let currency = currency(&mut errors, self.currency.as_deref());
        description(&mut errors, &self.description);
        if self.fee_minor < 0 || amount_minor.is_some_and(|a| self.fee_minor > a) {
            errors.push(FieldError::new("fee_minor", "invalid_fee", "`fee_minor` must be 0 to `amount_minor`"));
        }
        if payer.is_some() && payer == payee {
            errors.push(FieldError::new("payee_account_id", "same_account", "payer and payee must differ"));
        }
        match (payer, payee, amount_minor, currency) {
            (Some(payer), Some(payee), Some(amount_minor), Some(currency)) if errors.is_empty() => Ok(NewPayment {
                payer,
                payee,
                amount_minor,
                currency,
                fee_minor: self.fee_minor,
                capture: self.capture,
                description: redact_card_numbers(&self.description),
            }),
            _ => Err(errors),
        }
    }
}

/// `POST /v1/card-payments`: a customer pays a merchant with a card stored in vault. The CVV
/// passes through to vault and the acquirer, is never stored (not even hashed under the
/// Idempotency-Key) and never printed.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCardPaymentRequest {
    /// The card's vault token (`card_...`), one of the caller's cards.
    pub card_token: Option<String>,
    pub payee_account_id: Option<String>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    /// Charged to the merchant; at most the amount.
    #[serde(default)]
    pub fee_minor: i64,
    #[serde(default)]
    pub description: String,
    /// 3 digits (4 for American Express), when the merchant collects it.
    #[serde(default)]
    pub cvv: Option<String>,
}

impl std::fmt::Debug for NewCardPaymentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCardPaymentRequest").field("card_token", &self.card_token).finish_non_exhaustive()
    }
}

impl Drop for NewCardPaymentRequest {
    fn drop(&mut self) {
        if let Some(c) = self.cvv.as_mut() {
            zeroize::Zeroize::zeroize(c);
        }
    }
}

/// A validated card payment.
#[derive(Debug, Clone)]
pub struct NewCardPayment {
    pub card_token: String,
    /// The payee, and the rest; the payer is the acquirer's settlement account.
    pub payment: NewPayment,
}

impl NewCardPaymentRequest {
    pub fn validate(&self) -> Result<NewCardPayment, Vec<FieldError>> {
        let mut errors = Vec::new();
        let token = match self.card_token.as_deref() {
            Some(t) if fintech_vault::cards::valid_token(t) => Some(t.to_owned()),
            Some(_) => {
                errors.push(FieldError::new("card_token", "invalid_card_token", "`card_token` is not a card token"));
                None
            }
            None => {
                errors.push(FieldError::new("card_token", "required", "`card_token` is required"));
                None
            }
        };
        let payee = account(&mut errors, "payee_account_id", self.payee_account_id.as_deref());
        let amount_minor = amount(&mut errors, "amount_minor", self.amount_minor, true);
        let currency = currency(&mut errors, self.currency.as_deref());
        description(&mut errors, &self.description);
        if self.fee_minor < 0 || amount_minor.is_some_and(|a| self.fee_minor > a) {
            errors.push(FieldError::new("fee_minor", "invalid_fee", "`fee_minor` must be 0 to `amount_minor`"));
        }
        match (token, payee, amount_minor, currency) {
            (Some(card_token), Some(payee), Some(amount_minor), Some(currency)) if errors.is_empty() => {
                Ok(NewCardPayment {
                    card_token,
                    payment: NewPayment {
                        payer: format!("system:settlement:{currency}"),
                        payee,
                        amount_minor,
                        currency,
                        fee_minor: self.fee_minor,
                        capture: true,
                        description: redact_card_numbers(&self.description),
                    },
                })
            }
            _ => Err(errors),
        }
    }
}

/// `POST /v1/transfers`: money between two accounts.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransferRequest {
    pub from_account_id: Option<String>,
    pub to_account_id: Option<String>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    #[serde(default)]
    pub description: String,
}

impl NewTransferRequest {
    pub fn validate(&self) -> Result<NewPayment, Vec<FieldError>> {
        let mut errors = Vec::new();
        let from = account(&mut errors, "from_account_id", self.from_account_id.as_deref());
        let to = account(&mut errors, "to_account_id", self.to_account_id.as_deref());
        let amount_minor = amount(&mut errors, "amount_minor", self.amount_minor, true);
        let currency = currency(&mut errors, self.currency.as_deref());
        description(&mut errors, &self.description);
        if from.is_some() && from == to {
            errors.push(FieldError::new("to_account_id", "same_account", "from and to must differ"));
        }
        match (from, to, amount_minor, currency) {
            (Some(payer), Some(payee), Some(amount_minor), Some(currency)) if errors.is_empty() => Ok(NewPayment {
                payer,
                payee,
                amount_minor,
                currency,
                fee_minor: 0,
                capture: true,
                description: redact_card_numbers(&self.description),
            }),
            _ => Err(errors),
        }
    }
}

/// `POST /v1/topups`: money enters an account from the funding system account (the embedded
/// mode's stand-in for a bank transfer in).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopupRequest {
    pub account_id: Option<String>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
}

impl TopupRequest {
    pub fn validate(&self) -> Result<NewPayment, Vec<FieldError>> {
        let mut errors = Vec::new();
        let to = account(&mut errors, "account_id", self.account_id.as_deref());
        let amount_minor = amount(&mut errors, "amount_minor", self.amount_minor, true);
        let currency = currency(&mut errors, self.currency.as_deref());
        match (to, amount_minor, currency) {
            (Some(payee), Some(amount_minor), Some(currency)) if errors.is_empty() => Ok(NewPayment {
                payer: format!("system:funding:{currency}"),
                payee,
                amount_minor,
                currency,
                fee_minor: 0,
                capture: true,
                description: "top-up".into(),
            }),
            _ => Err(errors),
        }
    }
}

/// `POST /v1/payments/{id}/capture` and `/refunds`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmountRequest {
    pub amount_minor: Option<i64>,
}

impl AmountRequest {
    pub fn validate(&self, required: bool) -> Result<Option<i64>, Vec<FieldError>> {
        let mut errors = Vec::new();
        let a = amount(&mut errors, "amount_minor", self.amount_minor, required);
        if errors.is_empty() { Ok(a) } else { Err(errors) }
    }
}
