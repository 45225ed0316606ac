//! Errors of risk and their one mapping to problem+json.

use fintech_auth::AuthError;
use fintech_http::{FieldError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum RiskError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("not found")]
    NotFound,
    #[error("assessment id reused for another attempt")]
    IdReused,
    #[error("the rules changed concurrently")]
    RulesChanged,
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A stored row that does not parse: ours, never the caller's.
    #[error("stored {0} unreadable")]
    Corrupt(&'static str),
    #[error("database error")]
    Db(#[from] sqlx::Error),
}

impl RiskError {
    pub fn problem(&self) -> Problem {
        match self {
            RiskError::Validation(errors) => Problem::validation(errors.clone()),
            RiskError::NotFound => Problem::not_found("No such assessment."),
            RiskError::IdReused => {
                Problem::conflict("assessment_id_reused", "This assessment id was used for another attempt.")
            }
            RiskError::RulesChanged => Problem::conflict(
                "rules_changed",
                "Another change to the rules was saved at the same time; read them again and resubmit.",
            ),
            RiskError::Auth(e) => e.problem(),
            e @ (RiskError::Corrupt(_) | RiskError::Db(_)) => {
                tracing::error!(error = e as &dyn std::error::Error, "risk request failed");
                Problem::internal()
            }
        }
    }
}

impl axum::response::IntoResponse for RiskError {
    fn into_response(self) -> axum::response::Response {
        self.problem().into_response()
    }
}
