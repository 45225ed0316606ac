//! Errors of statements and their one mapping to problem+json.

use fintech_auth::AuthError;
use fintech_http::{FieldError, Problem};
use fintech_ledger::error::LedgerError;

#[derive(Debug, thiserror::Error)]
pub enum StatementsError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("not found")]
    NotFound,
    #[error("month not over")]
    MonthNotOver,
    #[error("ledger unavailable")]
    LedgerUnavailable,
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error("bucket error: {0}")]
    Storage(#[from] fintech_storage::StorageError),
    #[error("ledger: {0}")]
    Ledger(LedgerError),
}

impl From<LedgerError> for StatementsError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::NotFound => StatementsError::NotFound,
            LedgerError::Unavailable => StatementsError::LedgerUnavailable,
            other => StatementsError::Ledger(other),
        }
    }
}

impl StatementsError {
    pub fn problem(&self) -> Problem {
        match self {
            StatementsError::Validation(errors) => Problem::validation(errors.clone()),
            StatementsError::NotFound => Problem::not_found("No such account or statement."),
            StatementsError::MonthNotOver => Problem::conflict(
                "month_not_over",
                "A statement covers a whole calendar month (UTC); this one has not ended yet.",
            ),
            StatementsError::LedgerUnavailable => {
                Problem::service_unavailable("ledger_unavailable", "The ledger did not answer; try again shortly.")
            }
            StatementsError::Auth(e) => e.problem(),
            e @ (StatementsError::Db(_) | StatementsError::Storage(_) | StatementsError::Ledger(_)) => {
                tracing::error!(error = e as &dyn std::error::Error, "statements request failed");
                Problem::internal()
            }
        }
    }
}

impl axum::response::IntoResponse for StatementsError {
    fn into_response(self) -> axum::response::Response {
        self.problem().into_response()
    }
}
