//! Errors of payments and their one mapping to problem+json.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fintech_http::{FieldError, Problem};
use fintech_ledger::error::LedgerError;

#[derive(Debug, thiserror::Error)]
pub enum PaymentsError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("not found")]
    NotFound,
    #[error("payment is not in a state for this")]
    InvalidState(String),
    #[error("refund exceeds the captured amount")]
    RefundExceedsCaptured,
    #[error(transparent)]
    Auth(#[from] fintech_auth::AuthError),
    #[error("accounts unavailable")]
    AccountsUnavailable,
    #[error("card not found")]
    CardNotFound,
    #[error("card declined")]
    CardDeclined { payment_id: String, decline_code: String },
    #[error("acquirer unavailable")]
    AcquirerUnavailable,
    #[error("risk unavailable")]
    RiskUnavailable,
    /// risk refused our request (a bug of ours: the code says which).
    #[error("risk refused the assessment request: {0}")]
    RiskRefused(String),
    #[error("charge id reused")]
    ChargeIdReused,
    #[error("card payments cannot be changed yet")]
    CardPaymentChange,
    #[error("no fees account for the currency")]
    FeesUnavailable,
    #[error("ledger refused")]
    Ledger(#[from] LedgerError),
    #[error("database error")]
    Db(#[from] sqlx::Error),
}

impl IntoResponse for PaymentsError {
    fn into_response(self) -> Response {
        let problem = match self {
            PaymentsError::Validation(errors) => Problem::validation(errors),
            PaymentsError::NotFound => Problem::not_found("No payment with that id."),
            PaymentsError::InvalidState(status) => Problem::conflict(
                "invalid_payment_state",
                format!("The payment is {status}; this action does not apply."),
            ),
            PaymentsError::RefundExceedsCaptured => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "refund_exceeds_captured", "Refund refused")
                    .with_detail("Refunds cannot add up to more than the captured amount.")
            }
            PaymentsError::Auth(e) => e.problem(),
            PaymentsError::CardNotFound => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "card_not_found", "Payment refused")
                    .with_detail("No such card among the caller's cards.")
                    .with_errors(vec![FieldError::new(
                        "card_token",
                        "card_not_found",
                        "No such card among the caller's cards.",
                    )])
            }
            PaymentsError::CardDeclined { payment_id, decline_code } => {
                // Which rule declined a payment is for staff: it would teach a fraudster the limits.
                let why = if decline_code == crate::RISK_DECLINED {
                    "The payment was declined by fraud screening."
                } else {
                    "The card network declined the charge."
                };
                Problem::new(StatusCode::PAYMENT_REQUIRED, "card_declined", "Card declined")
                    .with_detail(format!("The card was declined; payment {payment_id} is recorded as declined."))
                    .with_errors(vec![FieldError::new("card_token", &decline_code, why)])
            }
            PaymentsError::AcquirerUnavailable => Problem::service_unavailable(
                "acquirer_unavailable",
                "The card network did not answer; retry with the same Idempotency-Key: the card is never charged twice.",
            ),
            PaymentsError::RiskUnavailable => Problem::service_unavailable(
                "risk_unavailable",
                "Fraud screening did not answer, so the card was not charged; retry with the same Idempotency-Key.",
            ),
            PaymentsError::ChargeIdReused => Problem::conflict(
                "idempotency_key_reused",
                "This Idempotency-Key was used for another card payment; use a new key for a new request.",
            ),
            PaymentsError::CardPaymentChange => Problem::conflict(
                "card_payment_unchangeable",
                "Card payments are captured at once and cannot be canceled or refunded here yet.",
            ),
            PaymentsError::AccountsUnavailable => {
                Problem::service_unavailable("accounts_unavailable", "Account owners could not be checked; retry.")
            }
            PaymentsError::FeesUnavailable => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "fees_unavailable",
                "Payment refused",
            )
            .with_detail(
                "Fees cannot be charged in this currency; send the payment without a fee or in a supported currency.",
            ),
            // The ledger's refusals are meaningful to the caller as they are (insufficient
            // funds, frozen account, currency mismatch...); its internal failures are not.
            PaymentsError::Ledger(LedgerError::PendingExpired) => {
                Problem::conflict("authorization_expired", "The authorization expired; its hold was released.")
            }
            PaymentsError::Ledger(e @ (LedgerError::Db(_) | LedgerError::Invariant(_))) => {
                tracing::error!(error = &e as &dyn std::error::Error, "ledger failure during a payment");
                Problem::internal()
            }
            PaymentsError::Ledger(e) => e.to_problem(),
            e @ (PaymentsError::Db(_) | PaymentsError::RiskRefused(_)) => {
                tracing::error!(error = &e as &dyn std::error::Error, "payments request failed");
                Problem::internal()
            }
        };
        problem.into_response()
    }
}
