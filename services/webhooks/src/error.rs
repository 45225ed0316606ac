//! Errors of webhooks and their one mapping to problem+json.

use fintech_auth::AuthError;
use fintech_http::{FieldError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum WebhooksError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error("internal: {0}")]
    Internal(String),
}

impl WebhooksError {
    pub fn problem(&self) -> Problem {
        match self {
            WebhooksError::Validation(errors) => Problem::validation(errors.clone()),
            WebhooksError::NotFound => Problem::not_found("No such endpoint or delivery."),
            WebhooksError::Auth(e) => e.problem(),
            e @ (WebhooksError::Db(_) | WebhooksError::Internal(_)) => {
                tracing::error!(error = e as &dyn std::error::Error, "webhooks request failed");
                Problem::internal()
            }
        }
    }
}

impl axum::response::IntoResponse for WebhooksError {
    fn into_response(self) -> axum::response::Response {
        self.problem().into_response()
    }
}
