//! The service's errors, mapped to problem+json once, here.

use axum::response::{IntoResponse, Response};
use fintech_auth::AuthError;
use fintech_http::Problem;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A request refused before anything was read (a query out of range).
    #[error("invalid request")]
    Invalid(Problem),
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// An event the log cannot hold (an empty id, a field longer than its column).
    #[error("event refused: {0}")]
    InvalidEvent(String),
    /// The database has no audit tables: it is not the audit service's, or was never migrated.
    #[error("the audit tables (audit_records, audit_head) are not in this database")]
    NotInstalled,
    /// The head row is gone: nothing can be appended until it is restored.
    #[error("the audit chain's head row is missing")]
    HeadMissing,
    /// Stored state that appending cannot build on.
    #[error("the audit chain is inconsistent: {0}")]
    Corrupt(String),
    #[error("event data could not be serialized")]
    Json(#[from] serde_json::Error),
    #[error("database error")]
    Db(#[from] fintech_db::sqlx::Error),
}

impl AuditError {
    pub fn problem(&self) -> Problem {
        match self {
            AuditError::Invalid(p) => p.clone(),
            AuditError::Auth(e) => e.problem(),
            e @ (AuditError::InvalidEvent(_)
            | AuditError::NotInstalled
            | AuditError::HeadMissing
            | AuditError::Corrupt(_)
            | AuditError::Json(_)
            | AuditError::Db(_)) => {
                tracing::error!(error = e as &dyn std::error::Error, "audit request failed");
                Problem::internal()
            }
        }
    }
}

impl IntoResponse for AuditError {
    fn into_response(self) -> Response {
        self.problem().into_response()
    }
}

/// `e` and its causes on one line, for handler errors that end in the dead letters.
pub fn cause_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
