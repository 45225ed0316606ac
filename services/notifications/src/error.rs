//! Errors of notifications and their one mapping to problem+json.

use fintech_auth::AuthError;
use fintech_http::{FieldError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum NotificationsError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// A provider callback whose signature does not verify (or that this deployment does not take).
    #[error("callback signature invalid")]
    BadSignature(&'static str),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("database error")]
    Db(#[from] sqlx::Error),
}

impl NotificationsError {
    pub fn problem(&self) -> Problem {
        match self {
            NotificationsError::Validation(errors) => Problem::validation(errors.clone()),
            NotificationsError::BadSignature(why) => {
                Problem::new(axum::http::StatusCode::FORBIDDEN, "invalid_signature", "Invalid signature")
                    .with_detail(*why)
            }
            NotificationsError::Auth(e) => e.problem(),
            e @ NotificationsError::Db(_) => {
                tracing::error!(error = e as &dyn std::error::Error, "notifications request failed");
                Problem::service_unavailable("notifications_unavailable", "Try again shortly.")
            }
        }
    }
}

impl axum::response::IntoResponse for NotificationsError {
    fn into_response(self) -> axum::response::Response {
        self.problem().into_response()
    }
}
