//! Errors of vault and their one mapping to problem+json. None carries card data.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fintech_auth::AuthError;
use fintech_http::{FieldError, Problem};

use crate::keys::KeyError;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("not found")]
    NotFound,
    #[error("charge id reused for another charge")]
    ChargeIdReused,
    #[error("acquirer timeout")]
    AcquirerTimeout,
    #[error("acquirer unavailable")]
    AcquirerUnavailable,
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("keys: {0}")]
    Keys(#[from] KeyError),
    #[error("database error")]
    Db(#[from] sqlx::Error),
}

impl VaultError {
    pub fn problem(&self) -> Problem {
        match self {
            VaultError::Validation(errors) => Problem::validation(errors.clone()),
            VaultError::NotFound => Problem::not_found("No such card."),
            VaultError::ChargeIdReused => {
                Problem::conflict("charge_id_reused", "This charge id was used for another card or amount.")
            }
            VaultError::AcquirerTimeout => Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                "acquirer_timeout",
                "Acquirer timeout",
            )
            .with_detail(
                "The card network did not answer in time; retry with the same charge id: it is never charged twice.",
            ),
            VaultError::AcquirerUnavailable => Problem::service_unavailable(
                "acquirer_unavailable",
                "The card network is unavailable; retry with the same charge id.",
            ),
            VaultError::Auth(e) => e.problem(),
            e @ (VaultError::Keys(_) | VaultError::Db(_)) => {
                tracing::error!(error = e as &dyn std::error::Error, "vault request failed");
                Problem::internal()
            }
        }
    }
}

impl IntoResponse for VaultError {
    fn into_response(self) -> Response {
        self.problem().into_response()
    }
}
