//! Customers and accounts: what callers send, validated.

use fintech_http::FieldError;
use fintech_money::Currency;
use fintech_types::{Email, Phone};
use serde::{Deserialize, Serialize};

pub const MAX_NAME_CHARS: usize = 200;

/// Individuals hold customer accounts; businesses hold merchant accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CustomerKind {
    Individual,
    Business,
}

impl CustomerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CustomerKind::Individual => "individual",
            CustomerKind::Business => "business",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "individual" => Some(CustomerKind::Individual),
            "business" => Some(CustomerKind::Business),
            _ => None,
        }
    }
    /// The kind of account this customer holds.
    pub fn account_kind(self) -> &'static str {
        match self {
            CustomerKind::Individual => "customer",
            CustomerKind::Business => "merchant",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KycStatus {
    Pending,
    Verified,
    Rejected,
}

impl KycStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KycStatus::Pending => "pending",
            KycStatus::Verified => "verified",
            KycStatus::Rejected => "rejected",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(KycStatus::Pending),
            "verified" => Some(KycStatus::Verified),
            "rejected" => Some(KycStatus::Rejected),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Customer {
    pub id: String,
    pub kind: CustomerKind,
    pub name: String,
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    pub kyc_status: KycStatus,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomerRequest {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug)]
pub struct NewCustomer {
    pub kind: CustomerKind,
    pub name: String,
    pub email: Email,
    pub phone: Option<Phone>,
}

impl NewCustomerRequest {
    pub fn validate(&self) -> Result<NewCustomer, Vec<FieldError>> {
        let mut errors = Vec::new();
        let kind = match self.kind.as_deref().map(CustomerKind::parse) {
            None => Some(CustomerKind::Individual),
            Some(Some(k)) => Some(k),
            Some(None) => {
                errors.push(FieldError::new("kind", "invalid_kind", "`kind` must be individual or business"));
                None
            }
        };
        let name = match self.name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() && n.chars().count() <= MAX_NAME_CHARS && !n.chars().any(char::is_control) => {
                Some(n.to_owned())
            }
            Some(_) => {
                errors.push(FieldError::new("name", "invalid_name", "`name` must be 1-200 printable characters"));
                None
            }
            None => {
                errors.push(FieldError::new("name", "required", "`name` is required"));
                None
            }
        };
        let email = match self.email.as_deref().map(Email::parse) {
            Some(Ok(e)) => Some(e),
            Some(Err(why)) => {
                errors.push(FieldError::new("email", "invalid_email", format!("`email` {why}")));
                None
            }
            None => {
                errors.push(FieldError::new("email", "required", "`email` is required"));
                None
            }
        };
        let phone = match self.phone.as_deref().map(Phone::parse) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(why)) => {
                errors.push(FieldError::new("phone", "invalid_phone", format!("`phone` {why}")));
                None
            }
        };
        match (kind, name, email) {
            // Only vault may keep a card number, even one typed into a name.
            (Some(kind), Some(name), Some(email)) if errors.is_empty() => {
                Ok(NewCustomer { kind, name: fintech_types::card::redact_card_numbers(&name), email, phone })
            }
            _ => Err(errors),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KycRequest {
    pub status: Option<String>,
}

/// An account as the accounts service knows it, with its balances from the ledger.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccountView {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// `customer`, `merchant` or `system`.
    pub kind: String,
    pub currency: String,
    pub status: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance_minor: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_minor: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccountRequest {
    pub customer_id: Option<String>,
    pub currency: Option<String>,
}

impl NewAccountRequest {
    pub fn validate(&self) -> Result<(String, Currency), Vec<FieldError>> {
        let mut errors = Vec::new();
        let customer = match &self.customer_id {
            Some(c) if uuid::Uuid::try_parse(c).is_ok() => Some(c.clone()),
            Some(_) => {
                errors.push(FieldError::new("customer_id", "invalid_id", "`customer_id` is not a customer id"));
                None
            }
            None => {
                errors.push(FieldError::new("customer_id", "required", "`customer_id` is required"));
                None
            }
        };
        let currency = match self.currency.as_deref().map(str::parse::<Currency>) {
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => {
                errors.push(FieldError::new("currency", "unknown_currency", e.to_string()));
                None
            }
            None => {
                errors.push(FieldError::new("currency", "required", "`currency` is required"));
                None
            }
        };
        match (customer, currency) {
            (Some(c), Some(cur)) if errors.is_empty() => Ok((c, cur)),
            _ => Err(errors),
        }
    }
}

/// The id of a system account: `system:<purpose>:<currency>`.
pub fn system_account_id(purpose: &str, currency: Currency) -> String {
    format!("system:{purpose}:{currency}")
}

/// System account purposes: money arriving from card networks and banks, fees earned, and the
/// source of funds for top-ups in the embedded mode.
pub const SYSTEM_PURPOSES: [&str; 3] = ["settlement", "fees", "funding"];
