//! Errors of identity and their one mapping to problem+json.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fintech_auth::AuthError;
use fintech_http::{FieldError, Problem};
use fintech_kit::ratelimit::RetryAfter;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("email already registered")]
    EmailTaken,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("too many attempts")]
    TooManyAttempts(RetryAfter),
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    #[error("invalid API key")]
    InvalidApiKey,
    #[error("invalid MFA challenge")]
    InvalidMfaToken,
    #[error("invalid MFA code")]
    InvalidMfaCode,
    #[error("MFA already enabled")]
    MfaAlreadyEnabled,
    #[error("MFA enrolment not started")]
    MfaNotStarted,
    #[error("SMS is not a second factor of this user")]
    SmsNotEnabled,
    #[error("the SMS gateways did not take the code")]
    SmsUnavailable,
    #[error("the one-time code store (Redis) did not answer")]
    CodesUnavailable,
    #[error("invalid service credentials")]
    InvalidServiceCredentials,
    #[error("audience not allowed")]
    AudienceNotAllowed,
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl IntoResponse for IdentityError {
    fn into_response(self) -> Response {
        let problem = match self {
            IdentityError::Validation(errors) => Problem::validation(errors),
            IdentityError::EmailTaken => {
                Problem::conflict("email_taken", "An account with this e-mail address exists; sign in instead.")
            }
            IdentityError::InvalidCredentials => {
                Problem::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "Sign-in failed")
                    .with_detail("The e-mail address or the password is wrong.")
            }
            IdentityError::TooManyAttempts(wait) => {
                Problem::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", "Too many attempts")
                    .with_detail("Too many attempts from here; wait before trying again (see Retry-After).")
                    .with_header(header::RETRY_AFTER, HeaderValue::from(wait.secs()))
            }
            IdentityError::InvalidRefreshToken => {
                Problem::new(StatusCode::UNAUTHORIZED, "invalid_refresh_token", "Refresh refused")
                    .with_detail("The refresh token is unknown, expired, used or revoked; sign in again.")
            }
            IdentityError::InvalidMfaToken => {
                Problem::new(StatusCode::UNAUTHORIZED, "invalid_mfa_token", "Sign-in refused")
                    .with_detail("The second-factor challenge is unknown, expired or used; sign in again.")
            }
            IdentityError::InvalidMfaCode => {
                Problem::new(StatusCode::UNAUTHORIZED, "invalid_mfa_code", "Sign-in refused")
                    .with_detail("The one-time code is wrong, expired or used already.")
            }
            IdentityError::MfaAlreadyEnabled => {
                Problem::conflict("mfa_already_enabled", "A second factor is already enabled for this user.")
            }
            IdentityError::MfaNotStarted => Problem::conflict(
                "mfa_not_started",
                "Start the enrolment first: POST /api/identity/v1/mfa/totp or /api/identity/v1/mfa/sms.",
            ),
            IdentityError::SmsNotEnabled => Problem::conflict(
                "sms_not_enabled",
                "SMS is not a second factor of this user: answer the challenge with the authenticator app's code.",
            ),
            IdentityError::SmsUnavailable => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "sms_unavailable", "The code was not sent")
                    .with_detail("The one-time code could not be sent by SMS; try again later.")
            }
            IdentityError::CodesUnavailable => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "codes_unavailable", "One-time codes are unavailable")
                    .with_detail("One-time codes can be neither sent nor checked right now; try again in a minute.")
                    .with_header(header::RETRY_AFTER, HeaderValue::from(30u32))
            }
            IdentityError::InvalidApiKey => {
                Problem::new(StatusCode::UNAUTHORIZED, "invalid_api_key", "API key refused")
                    .with_detail("The API key is unknown or revoked.")
            }
            IdentityError::InvalidServiceCredentials => {
                Problem::new(StatusCode::UNAUTHORIZED, "invalid_service_credentials", "Service credentials refused")
                    .with_detail("Unknown service or wrong secret.")
            }
            IdentityError::AudienceNotAllowed => Problem::forbidden("This service may not call that audience."),
            IdentityError::NotFound => Problem::not_found("No such object."),
            IdentityError::Auth(e) => e.problem(),
            e @ (IdentityError::Db(_) | IdentityError::Internal(_)) => {
                tracing::error!(error = &e as &dyn std::error::Error, "identity request failed");
                Problem::internal()
            }
        };
        problem.into_response()
    }
}
