//! Errors of the accounts service and their one mapping to problem+json.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fintech_http::{FieldError, Problem};
use fintech_ledger::error::LedgerError;

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("not found")]
    NotFound,
    #[error("customer not found")]
    CustomerNotFound,
    #[error("KYC not verified")]
    KycNotVerified,
    #[error("account exists for this customer and currency")]
    AccountExists(String),
    #[error("invalid status change")]
    StatusChange(&'static str),
    #[error("customer exists")]
    CustomerExists,
    #[error(transparent)]
    Auth(#[from] fintech_auth::AuthError),
    #[error("ledger error")]
    Ledger(#[from] LedgerError),
    #[error("database error")]
    Db(#[from] sqlx::Error),
}

impl IntoResponse for AccountsError {
    fn into_response(self) -> Response {
        let problem = match self {
            AccountsError::Validation(errors) => Problem::validation(errors),
            AccountsError::NotFound => Problem::not_found("No such customer or account."),
            AccountsError::CustomerNotFound => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "customer_not_found", "Account refused")
                    .with_detail("No customer with that id.")
            }
            AccountsError::KycNotVerified => Problem::conflict(
                "kyc_not_verified",
                "The customer's identity is not verified yet; accounts open after KYC passes.",
            ),
            AccountsError::AccountExists(id) => Problem::conflict(
                "account_exists",
                format!("The customer already has an account in that currency: {id}."),
            ),
            AccountsError::StatusChange(why) => Problem::conflict("invalid_status_change", why),
            AccountsError::CustomerExists => {
                Problem::conflict("customer_exists", "This sign-in has registered its customer already.")
            }
            AccountsError::Auth(e) => e.problem(),
            AccountsError::Ledger(LedgerError::AccountNotEmpty) => {
                Problem::conflict("account_not_empty", "Only an account with zero balance and no holds can be closed.")
            }
            AccountsError::Ledger(LedgerError::AccountClosedForGood) => {
                Problem::conflict("invalid_status_change", "A closed account cannot change status.")
            }
            AccountsError::Ledger(LedgerError::Unavailable) => {
                Problem::service_unavailable("ledger_unavailable", "The ledger did not answer; retry.")
            }
            e @ (AccountsError::Ledger(_) | AccountsError::Db(_)) => {
                tracing::error!(error = &e as &dyn std::error::Error, "accounts request failed");
                Problem::internal()
            }
        };
        problem.into_response()
    }
}
