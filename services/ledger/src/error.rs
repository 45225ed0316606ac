//! Ledger errors and their one mapping to problem+json.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fintech_http::{FieldError, Problem};

/// Which side of a transfer an account error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Debit,
    Credit,
}

impl Side {
    fn field(self) -> &'static str {
        match self {
            Side::Debit => "debit_account_id",
            Side::Credit => "credit_account_id",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("invalid request")]
    Invalid(Problem),
    #[error("account not found")]
    AccountNotFound(Side),
    #[error("currency mismatch")]
    CurrencyMismatch(Side),
    #[error("account frozen")]
    AccountFrozen(Side),
    #[error("account closed")]
    AccountClosed(Side),
    #[error("insufficient funds")]
    InsufficientFunds,
    #[error("balance would overflow")]
    Overflow(Side),
    #[error("transfer id reused with different content")]
    TransferIdReused,
    #[error("account id reused with different content")]
    AccountIdReused,
    #[error("pending transfer not found")]
    PendingNotFound,
    #[error("transfer is not pending")]
    NotPending,
    #[error("pending transfer already resolved")]
    PendingAlreadyResolved(String),
    #[error("pending transfer expired")]
    PendingExpired,
    #[error("post amount exceeds the hold")]
    AmountExceedsPending,
    #[error("account has balances or holds")]
    AccountNotEmpty,
    #[error("closed accounts cannot be reopened")]
    AccountClosedForGood,
    #[error("not found")]
    NotFound,
    #[error("the ledger is not accepting work")]
    Unavailable,
    #[error("ledger invariant violated: {0}")]
    Invariant(&'static str),
    #[error("database error")]
    Db(#[from] sqlx::Error),
}

impl From<Problem> for LedgerError {
    fn from(p: Problem) -> Self {
        LedgerError::Invalid(p)
    }
}

fn account_problem(status: StatusCode, code: &str, side: Side, detail: &str) -> Problem {
    Problem::new(status, code, "Transfer refused").with_detail(detail).with_errors(vec![FieldError::new(
        side.field(),
        code,
        detail,
    )])
}

impl LedgerError {
    /// The problem a caller sees. Internal errors are logged here, once.
    pub fn to_problem(&self) -> Problem {
        let conflict = |code: &str, detail: &str| Problem::conflict(code, detail);
        let unprocessable = |code: &str, detail: &str| {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, "Transfer refused").with_detail(detail)
        };
        match self {
            LedgerError::Validation(errors) => Problem::validation(errors.clone()),
            LedgerError::Invalid(p) => p.clone(),
            LedgerError::AccountNotFound(side) => account_problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "account_not_found",
                *side,
                "No ledger account with that id.",
            ),
            LedgerError::CurrencyMismatch(side) => account_problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "currency_mismatch",
                *side,
                "The account holds another currency than the transfer's.",
            ),
            LedgerError::AccountFrozen(side) => {
                account_problem(StatusCode::CONFLICT, "account_frozen", *side, "The account is frozen.")
            }
            LedgerError::AccountClosed(side) => {
                account_problem(StatusCode::CONFLICT, "account_closed", *side, "The account is closed.")
            }
            LedgerError::InsufficientFunds => {
                conflict("insufficient_funds", "The debit account's available balance is too low.")
            }
            LedgerError::Overflow(side) => account_problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "amount_overflow",
                *side,
                "The amount would overflow the account's totals.",
            ),
            LedgerError::TransferIdReused => conflict(
                "transfer_id_reused",
                "A transfer with this id exists with different content. Use a new id for a new transfer.",
            ),
            LedgerError::AccountIdReused => {
                conflict("account_id_reused", "An account with this id exists with different settings.")
            }
            LedgerError::PendingNotFound => Problem::new(StatusCode::NOT_FOUND, "pending_not_found", "Not found")
                .with_detail("No transfer with that id."),
            LedgerError::NotPending => conflict("not_pending", "That transfer is not a pending transfer."),
            LedgerError::PendingAlreadyResolved(how) => {
                conflict("pending_already_resolved", &format!("The pending transfer was already resolved ({how})."))
            }
            LedgerError::PendingExpired => conflict("pending_expired", "The hold's timeout has passed."),
            LedgerError::AmountExceedsPending => {
                unprocessable("amount_exceeds_pending", "A post can be at most the held amount.")
            }
            LedgerError::AccountNotEmpty => {
                conflict("account_not_empty", "Only an account with zero balance and no holds can be closed.")
            }
            LedgerError::AccountClosedForGood => conflict("account_closed", "A closed account cannot change status."),
            LedgerError::NotFound => Problem::not_found("No such ledger object."),
            LedgerError::Unavailable => {
                Problem::service_unavailable("ledger_unavailable", "The ledger is shutting down or overloaded; retry.")
            }
            e @ (LedgerError::Db(_) | LedgerError::Invariant(_)) => {
                tracing::error!(error = e as &dyn std::error::Error, "ledger request failed");
                Problem::internal()
            }
        }
    }
}

impl IntoResponse for LedgerError {
    fn into_response(self) -> Response {
        self.to_problem().into_response()
    }
}
