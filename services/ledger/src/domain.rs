//! Ledger vocabulary: ids, transfers, accounts, and validation of what callers send.

use fintech_http::FieldError;
use fintech_money::Currency;
use serde::{Deserialize, Serialize};

pub const MAX_ID_CHARS: usize = 64;
pub const MAX_CODE_CHARS: usize = 32;
pub const MAX_REFERENCE_CHARS: usize = 128;
/// Longest hold: 30 days.
pub const MAX_PENDING_TIMEOUT_MS: i64 = 30 * 24 * 3600 * 1000;
/// Hold duration when the caller names none: 7 days.
pub const DEFAULT_PENDING_TIMEOUT_MS: i64 = 7 * 24 * 3600 * 1000;
/// Most transfers in one batch request.
pub const MAX_BATCH_ITEMS: usize = 1000;

/// Account and transfer ids: chosen by the caller, 1-64 characters of `[A-Za-z0-9_.:-]`.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_CHARS
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

fn require_id(errors: &mut Vec<FieldError>, field: &str, value: Option<&str>) -> Option<String> {
    match value {
        None => {
            errors.push(FieldError::new(field, "required", format!("`{field}` is required")));
            None
        }
        Some(v) if !valid_id(v) => {
            errors.push(FieldError::new(
                field,
                "invalid_id",
                format!("`{field}` must be 1-64 characters of A-Z a-z 0-9 _ . : -"),
            ));
            None
        }
        Some(v) => Some(v.to_owned()),
    }
}

fn require_currency(errors: &mut Vec<FieldError>, value: Option<&str>) -> Option<Currency> {
    match value.map(str::parse::<Currency>) {
        None => {
            errors.push(FieldError::new("currency", "required", "`currency` is required"));
            None
        }
        Some(Err(e)) => {
            errors.push(FieldError::new("currency", "unknown_currency", e.to_string()));
            None
        }
        Some(Ok(c)) => Some(c),
    }
}

fn positive_amount(errors: &mut Vec<FieldError>, value: Option<i64>, required: bool) -> Option<i64> {
    match value {
        None if required => {
            errors.push(FieldError::new("amount_minor", "required", "`amount_minor` is required"));
            None
        }
        None => None,
        Some(a) if a <= 0 => {
            errors.push(FieldError::new(
                "amount_minor",
                "invalid_amount",
                "`amount_minor` must be a positive integer (minor units)",
            ));
            None
        }
        Some(a) => Some(a),
    }
}

/// Account status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Open,
    Frozen,
    Closed,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Open => "open",
            AccountStatus::Frozen => "frozen",
            AccountStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(AccountStatus::Open),
            "frozen" => Some(AccountStatus::Frozen),
            "closed" => Some(AccountStatus::Closed),
            _ => None,
        }
    }
}

/// A ledger account and its balances. Balances are derived, never sent by callers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Account {
    pub id: String,
    pub currency: String,
    /// System accounts (settlement, funding, fees) may go below zero; customer accounts may not.
    pub allow_overdraft: bool,
    pub status: AccountStatus,
    pub debits_posted: i64,
    pub credits_posted: i64,
    pub debits_pending: i64,
    pub credits_pending: i64,
    /// `credits_posted - debits_posted`.
    pub balance_minor: i64,
    /// `balance_minor - debits_pending`: what can still be debited.
    pub available_minor: i64,
    pub created_at: String,
}

/// `POST /v1/accounts`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccountRequest {
    pub id: Option<String>,
    pub currency: Option<String>,
    #[serde(default)]
    pub allow_overdraft: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub id: String,
    pub currency: Currency,
    pub allow_overdraft: bool,
}

impl NewAccountRequest {
    pub fn validate(&self) -> Result<NewAccount, Vec<FieldError>> {
        let mut errors = Vec::new();
        let id = require_id(&mut errors, "id", self.id.as_deref());
        let currency = require_currency(&mut errors, self.currency.as_deref());
        match (id, currency) {
            (Some(id), Some(currency)) if errors.is_empty() => {
                Ok(NewAccount { id, currency, allow_overdraft: self.allow_overdraft })
            }
            _ => Err(errors),
        }
    }
}

/// Kinds of journal entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransferKind {
    /// Single-phase: posted at once.
    Posted,
    /// A hold: reserves funds until posted, voided or expired.
    Pending,
    /// Resolves a pending transfer by posting all or part of it.
    Post,
    /// Resolves a pending transfer by releasing it.
    Void,
    /// Resolves a pending transfer whose timeout passed.
    Expire,
}

impl TransferKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferKind::Posted => "posted",
            TransferKind::Pending => "pending",
            TransferKind::Post => "post",
            TransferKind::Void => "void",
            TransferKind::Expire => "expire",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "posted" => Some(TransferKind::Posted),
            "pending" => Some(TransferKind::Pending),
            "post" => Some(TransferKind::Post),
            "void" => Some(TransferKind::Void),
            "expire" => Some(TransferKind::Expire),
            _ => None,
        }
    }
}

/// A journal entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transfer {
    pub id: String,
    pub kind: TransferKind,
    pub debit_account_id: String,
    pub credit_account_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub code: String,
    pub reference: String,
    /// For `post`, `void` and `expire`: the pending transfer resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_id: Option<String>,
    /// For `pending`: the requested hold duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<i64>,
    /// For `pending`: when the hold lapses (milliseconds since the Unix epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
    pub created_at: String,
}

/// `POST /v1/transfers` and each item of a batch.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransferRequest {
    /// The caller's id for this transfer: sending it again with the same content returns the
    /// original transfer; with different content it is refused.
    pub id: Option<String>,
    pub debit_account_id: Option<String>,
    pub credit_account_id: Option<String>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    /// Why money moves (`payment`, `refund`, `fee`, `funding`...).
    pub code: Option<String>,
    #[serde(default)]
    pub reference: String,
    /// A hold instead of a posting.
    #[serde(default)]
    pub pending: bool,
    /// Hold duration; only with `pending` (default 7 days, at most 30).
    pub timeout_ms: Option<i64>,
}

/// A validated single-phase or pending transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    pub id: String,
    pub debit_account_id: String,
    pub credit_account_id: String,
    pub amount_minor: i64,
    pub currency: Currency,
    pub code: String,
    pub reference: String,
    pub pending: bool,
    pub timeout_ms: Option<i64>,
}

impl NewTransfer {
    /// A single-phase transfer (callers inside the platform, with values already valid).
    pub fn new(
        id: impl Into<String>,
        debit: &str,
        credit: &str,
        amount_minor: i64,
        currency: Currency,
        code: &str,
    ) -> Self {
        NewTransfer {
            id: id.into(),
            debit_account_id: debit.to_owned(),
            credit_account_id: credit.to_owned(),
            amount_minor,
            currency,
            code: code.to_owned(),
            reference: String::new(),
            pending: false,
            timeout_ms: None,
        }
    }

    pub fn with_reference(mut self, reference: &str) -> Self {
        self.reference = reference.to_owned();
        self
    }

    /// A hold instead of a posting, lapsing after `timeout_ms`.
    pub fn as_hold(mut self, timeout_ms: i64) -> Self {
        self.pending = true;
        self.timeout_ms = Some(timeout_ms);
        self
    }
}

impl NewTransferRequest {
    pub fn validate(&self) -> Result<NewTransfer, Vec<FieldError>> {
        let mut errors = Vec::new();
        let id = require_id(&mut errors, "id", self.id.as_deref());
        let debit = require_id(&mut errors, "debit_account_id", self.debit_account_id.as_deref());
        let credit = require_id(&mut errors, "credit_account_id", self.credit_account_id.as_deref());
        let amount = positive_amount(&mut errors, self.amount_minor, true);
        let currency = require_currency(&mut errors, self.currency.as_deref());
        let code = match self.code.as_deref() {
            Some(c)
                if !c.is_empty()
                    && c.len() <= MAX_CODE_CHARS
                    && c.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')) =>
            {
                Some(c.to_owned())
            }
            Some(_) => {
                errors.push(FieldError::new("code", "invalid_code", "`code` must be 1-32 characters of a-z 0-9 _ . -"));
                None
            }
            None => {
                errors.push(FieldError::new("code", "required", "`code` is required"));
                None
            }
        };
        if self.reference.chars().count() > MAX_REFERENCE_CHARS || self.reference.chars().any(char::is_control) {
            errors.push(FieldError::new(
                "reference",
                "invalid_reference",
                "`reference` must be at most 128 printable characters",
            ));
        }
        if let (Some(d), Some(c)) = (&debit, &credit)
            && d == c
        {
            errors.push(FieldError::new("credit_account_id", "same_account", "debit and credit accounts must differ"));
        }
        let timeout_ms = match (self.pending, self.timeout_ms) {
            (false, Some(_)) => {
                errors.push(FieldError::new(
                    "timeout_ms",
                    "not_pending",
                    "`timeout_ms` applies only to pending transfers",
                ));
                None
            }
            (true, Some(t)) if !(1..=MAX_PENDING_TIMEOUT_MS).contains(&t) => {
                errors.push(FieldError::new(
                    "timeout_ms",
                    "invalid_timeout",
                    "`timeout_ms` must be 1 to 2592000000 (30 days)",
                ));
                None
            }
            (true, t) => Some(t.unwrap_or(DEFAULT_PENDING_TIMEOUT_MS)),
            (false, None) => None,
        };
        match (id, debit, credit, amount, currency, code) {
            (Some(id), Some(debit), Some(credit), Some(amount), Some(currency), Some(code)) if errors.is_empty() => {
                Ok(NewTransfer {
                    id,
                    debit_account_id: debit,
                    credit_account_id: credit,
                    amount_minor: amount,
                    currency,
                    code,
                    reference: self.reference.clone(),
                    pending: self.pending,
                    timeout_ms,
                })
            }
            _ => Err(errors),
        }
    }
}

/// `POST /v1/transfers/{pending_id}/post` and `/void`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// The caller's id for the resolving transfer (idempotent like any transfer id).
    pub id: Option<String>,
    /// Post only: how much of the hold to post (default: all of it).
    pub amount_minor: Option<i64>,
}

/// A validated resolution of a pending transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolve {
    pub id: String,
    pub pending_id: String,
    pub kind: TransferKind,
    pub amount_minor: Option<i64>,
}

impl ResolveRequest {
    pub fn validate(&self, pending_id: &str, kind: TransferKind) -> Result<Resolve, Vec<FieldError>> {
        let mut errors = Vec::new();
        let id = require_id(&mut errors, "id", self.id.as_deref());
        if !valid_id(pending_id) {
            errors.push(FieldError::new(
                "pending_id",
                "invalid_id",
                "the pending transfer id in the path is not valid",
            ));
        }
        let amount = positive_amount(&mut errors, self.amount_minor, false);
        if kind == TransferKind::Void && self.amount_minor.is_some() {
            errors.push(FieldError::new(
                "amount_minor",
                "not_allowed",
                "a void releases the whole hold; omit `amount_minor`",
            ));
        }
        match id {
            Some(id) if errors.is_empty() => {
                Ok(Resolve { id, pending_id: pending_id.to_owned(), kind, amount_minor: amount })
            }
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> NewTransferRequest {
        NewTransferRequest {
            id: Some("t-1".into()),
            debit_account_id: Some("a".into()),
            credit_account_id: Some("b".into()),
            amount_minor: Some(100),
            currency: Some("USD".into()),
            code: Some("payment".into()),
            reference: String::new(),
            pending: false,
            timeout_ms: None,
        }
    }

    #[test]
    fn transfers_are_validated_field_by_field() {
        assert!(valid().validate().is_ok());
        let cases: Vec<(NewTransferRequest, &str)> = vec![
            (NewTransferRequest { amount_minor: Some(0), ..valid() }, "invalid_amount"),
            (NewTransferRequest { amount_minor: Some(-5), ..valid() }, "invalid_amount"),
            (NewTransferRequest { currency: Some("XYZ".into()), ..valid() }, "unknown_currency"),
            (NewTransferRequest { credit_account_id: Some("a".into()), ..valid() }, "same_account"),
            (NewTransferRequest { id: Some("x".repeat(65)), ..valid() }, "invalid_id"),
            (NewTransferRequest { id: Some("a b".into()), ..valid() }, "invalid_id"),
            (NewTransferRequest { code: Some("Payment!".into()), ..valid() }, "invalid_code"),
            (NewTransferRequest { timeout_ms: Some(5), ..valid() }, "not_pending"),
            (NewTransferRequest { pending: true, timeout_ms: Some(0), ..valid() }, "invalid_timeout"),
            (NewTransferRequest { reference: "\u{0}".into(), ..valid() }, "invalid_reference"),
        ];
        for (req, code) in cases {
            let errors = req.validate().expect_err(code);
            assert!(errors.iter().any(|e| e.code == code), "{code}: {errors:?}");
        }
        let pending = NewTransferRequest { pending: true, ..valid() }.validate().expect("valid");
        assert_eq!(pending.timeout_ms, Some(DEFAULT_PENDING_TIMEOUT_MS));
    }

    #[test]
    fn resolutions_are_validated() {
        let ok = ResolveRequest { id: Some("p1".into()), amount_minor: Some(5) };
        assert!(ok.validate("t-1", TransferKind::Post).is_ok());
        assert!(ok.validate("t-1", TransferKind::Void).is_err(), "a void takes no amount");
        assert!(ok.validate("bad id", TransferKind::Post).is_err());
        let zero = ResolveRequest { id: Some("p1".into()), amount_minor: Some(0) };
        assert!(zero.validate("t-1", TransferKind::Post).is_err());
    }
}
