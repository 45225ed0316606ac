//! HTTP routes of notifications, relative to `/api/notifications`.
//!
//! - Support staff read the deliveries (`GET /v1/deliveries`), a customer their own
//!   (`GET /v1/me/deliveries`); addresses are masked in both.
//! - The SMS providers post delivery statuses, signed: Twilio-style with `X-Twilio-Signature`
//!   over the callback URL and the form (`POST /v1/sms/status/twilio?message_id=…`, the URL
//!   `sms.twilio.status_callback` plus the query it was given), Vonage-style with `sig`, an
//!   HMAC-SHA256 of the form keyed by `sms.vonage.signature_secret`, and a `timestamp` at most
//!   five minutes old (`POST /v1/sms/status/vonage`, our id as `client-ref`). A callback whose
//!   signature does not verify answers 403 `invalid_signature` and changes nothing.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fintech_auth::{Caller, Role};
use fintech_db::Db;
use fintech_http::{ApiQuery, FieldError};
use fintech_kit::settings::SmsSettings;
use fintech_kit::sms;
use serde::{Deserialize, Serialize};

use crate::error::NotificationsError;
use crate::store::{self, Delivery, status};

/// How old a signed Vonage-style receipt may be.
const RECEIPT_MAX_AGE: Duration = Duration::from_secs(300);

/// The secrets the providers sign their callbacks with.
#[derive(Debug, Default)]
pub struct Callbacks {
    /// (auth token, the public callback URL).
    twilio: Option<(String, String)>,
    vonage_signature_secret: Option<String>,
}

impl Callbacks {
    pub fn from_settings(sms: &SmsSettings) -> Callbacks {
        let twilio = match (&sms.twilio.auth_token, &sms.twilio.status_callback) {
            (Some(token), Some(url)) => Some((token.expose().clone(), url.clone())),
            _ => None,
        };
        Callbacks { twilio, vonage_signature_secret: sms.vonage.signature_secret.as_ref().map(|s| s.expose().clone()) }
    }
}

#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub callbacks: Arc<Callbacks>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/deliveries", get(list_deliveries))
        .route("/v1/me/deliveries", get(my_deliveries))
        .route("/v1/sms/status/twilio", post(twilio_status))
        .route("/v1/sms/status/vonage", post(vonage_status))
        .with_state(state)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this customer's.
    pub customer_id: Option<String>,
    /// 1 to 500, default 100.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Deliveries {
    pub items: Vec<Delivery>,
}

fn limit(q: Option<u32>) -> Result<u32, NotificationsError> {
    let limit = q.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(NotificationsError::Validation(vec![FieldError::new("limit", "out_of_range", "must be 1 to 500")]));
    }
    Ok(limit)
}

/// The newest messages (support staff and up), newest first.
#[utoipa::path(get, path = "/api/notifications/v1/deliveries", tag = "notifications", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = Deliveries), (status = 422, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn list_deliveries(
    caller: Caller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::Json<Deliveries>, NotificationsError> {
    caller.require_role(Role::Support, "read notification deliveries")?;
    let limit = limit(q.limit)?;
    Ok(axum::Json(Deliveries { items: store::recent(&state.db, q.customer_id.as_deref(), limit).await? }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MyQuery {
    /// 1 to 500, default 100.
    pub limit: Option<u32>,
}

/// The messages sent to the caller, newest first.
#[utoipa::path(get, path = "/api/notifications/v1/me/deliveries", tag = "notifications", params(MyQuery), security(("bearer" = [])),
    responses((status = 200, body = Deliveries), (status = 422, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn my_deliveries(
    caller: Caller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<MyQuery>,
) -> Result<axum::Json<Deliveries>, NotificationsError> {
    let limit = limit(q.limit)?;
    Ok(axum::Json(Deliveries { items: store::recent(&state.db, Some(caller.subject()), limit).await? }))
}

/// The form's name and value pairs.
fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// What a provider's status means for the delivery: `delivered`, `failed`, or nothing yet.
fn outcome(provider_status: &str) -> Option<&'static str> {
    match provider_status.to_ascii_lowercase().as_str() {
        "delivered" | "read" => Some(status::DELIVERED),
        "failed" | "undelivered" | "rejected" | "expired" | "canceled" => Some(status::FAILED),
        _ => None,
    }
}

/// Records a provider's report on our message `message_id`. Unknown ids (another service's
/// messages, such as identity's codes) are acknowledged and ignored.
async fn record_status(
    db: &Db,
    provider: &str,
    message_id: Option<&str>,
    provider_status: &str,
    error_code: Option<&str>,
) -> Result<Response, NotificationsError> {
    let Some(found) = (match message_id {
        Some(id) if !id.is_empty() && id.len() <= 64 => store::by_message_id(db, id).await?,
        _ => None,
    }) else {
        tracing::debug!(provider, "status for a message notifications did not send");
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    if let Some(to) = outcome(provider_status) {
        let detail = error_code
            .filter(|c| !c.is_empty() && *c != "0")
            .map(|c| format!("{provider} error code {}", c.chars().take(16).collect::<String>()));
        let moved =
            store::transition(db, &found.id, &[status::SENT, status::AMBIGUOUS], to, None, detail.as_deref(), false)
                .await?;
        tracing::info!(delivery = %found.id, provider, status = to, moved, "SMS delivery status");
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A Twilio-style delivery status (signed with `X-Twilio-Signature`).
#[utoipa::path(post, path = "/api/notifications/v1/sms/status/twilio", tag = "notifications",
    params(("message_id" = String, Query, description = "Our message id, as put in the callback URL")),
    responses((status = 204), (status = 403, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn twilio_status(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, NotificationsError> {
    let Some((token, url)) = &state.callbacks.twilio else {
        return Err(NotificationsError::BadSignature("twilio status callbacks are not configured here"));
    };
    let params = form(&body);
    let full_url = match &query {
        Some(q) => format!("{url}{}{q}", if url.contains('?') { '&' } else { '?' }),
        None => url.clone(),
    };
    let signature = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !sms::verify_twilio_signature(token, &full_url, &params, signature) {
        tracing::warn!("twilio status callback refused: bad signature");
        return Err(NotificationsError::BadSignature("the X-Twilio-Signature does not match"));
    }
    let query_params = form(query.as_deref().unwrap_or_default().as_bytes());
    let message_id = param(&query_params, "message_id");
    let provider_status = param(&params, "MessageStatus").unwrap_or_default();
    record_status(&state.db, "twilio", message_id, provider_status, param(&params, "ErrorCode")).await
}

/// A Vonage-style delivery receipt (signed with `sig`).
#[utoipa::path(post, path = "/api/notifications/v1/sms/status/vonage", tag = "notifications",
    responses((status = 204), (status = 403, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn vonage_status(State(state): State<AppState>, body: Bytes) -> Result<Response, NotificationsError> {
    let Some(secret) = &state.callbacks.vonage_signature_secret else {
        return Err(NotificationsError::BadSignature("vonage delivery receipts are not configured here"));
    };
    let params = form(&body);
    if !sms::verify_vonage_signature(secret, &params, fintech_telemetry::now_unix_ms() / 1000, RECEIPT_MAX_AGE) {
        tracing::warn!("vonage delivery receipt refused: bad or old signature");
        return Err(NotificationsError::BadSignature("the sig does not match, or the timestamp is too old"));
    }
    let provider_status = param(&params, "status").unwrap_or_default();
    record_status(&state.db, "vonage", param(&params, "client-ref"), provider_status, param(&params, "err-code")).await
}
