//! The service's errors, mapped to problem+json once, here.

use axum::response::{IntoResponse, Response};
use fintech_http::{FieldError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    #[error("invalid request")]
    Invalid(Problem),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("contact request not found")]
    NotFound,
    #[error("attachment too large")]
    AttachmentTooLarge { max_bytes: usize },
    #[error("attachment type not allowed")]
    AttachmentType,
    #[error("database error")]
    Db(#[from] fintech_db::sqlx::Error),
    #[error("bucket error")]
    Storage(#[from] fintech_storage::StorageError),
}

impl From<Problem> for ContactError {
    fn from(p: Problem) -> Self {
        ContactError::Invalid(p)
    }
}

impl IntoResponse for ContactError {
    fn into_response(self) -> Response {
        let problem = match self {
            ContactError::Invalid(p) => p,
            ContactError::Validation(errors) => Problem::validation(errors),
            ContactError::NotFound => Problem::not_found("No contact request with that id."),
            ContactError::AttachmentTooLarge { max_bytes } => Problem::payload_too_large(
                "attachment_too_large",
                format!("The attachment is larger than {max_bytes} bytes."),
            ),
            ContactError::AttachmentType => Problem::unsupported_media_type(
                "attachment_type_not_allowed",
                format!(
                    "Attachments must be one of: {}, with content matching the declared type.",
                    crate::domain::AttachmentType::ALLOWED
                ),
            ),
            e @ (ContactError::Db(_) | ContactError::Storage(_)) => {
                tracing::error!(error = &e as &dyn std::error::Error, "contact-us request failed");
                Problem::internal()
            }
        };
        problem.into_response()
    }
}
