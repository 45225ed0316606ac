//! HTTP routes of webhooks, relative to `/api/webhooks`. Merchants (signed in, or an API key with
//! `webhooks:manage`) manage their own endpoints; support staff read any. Another merchant's
//! endpoint or delivery answers 404, as a missing one.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fintech_auth::{Caller, Kind, Role, scopes};
use fintech_db::Db;
use fintech_http::{ApiJson, ApiQuery, FieldError};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::EVENT_TYPES;
use crate::error::WebhooksError;
use crate::guard::Guard;
use crate::store::{self, Delivery, Endpoint};

#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub guard: Arc<Guard>,
    pub wake: Arc<Notify>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/endpoints", post(create_endpoint).get(list_endpoints))
        .route("/v1/endpoints/{id}", get(get_endpoint))
        .route("/v1/endpoints/{id}/enable", post(enable_endpoint))
        .route("/v1/endpoints/{id}/disable", post(disable_endpoint))
        .route("/v1/endpoints/{id}/deliveries", get(list_deliveries))
        .route("/v1/deliveries/{id}/replay", post(replay_delivery))
        .with_state(state)
}

/// The merchant managing its endpoints.
fn merchant(caller: &Caller) -> Result<&str, WebhooksError> {
    caller.require(caller.kind() == Kind::Merchant && caller.has_scope(scopes::WEBHOOKS_MANAGE), "manage webhooks")?;
    Ok(caller.subject())
}

/// The endpoint `id`, if the caller may see it: its merchant, or support staff.
async fn visible_endpoint(state: &AppState, caller: &Caller, id: &str) -> Result<Endpoint, WebhooksError> {
    let staff = caller.has_role(Role::Support);
    if !staff {
        merchant(caller)?;
    }
    match store::endpoint_by_id(&state.db, id).await? {
        Some(e) if staff || e.merchant_id == caller.subject() => Ok(e),
        _ => Err(WebhooksError::NotFound),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// `https://…`; it must resolve to public addresses only.
    pub url: String,
    /// Event types to receive (see the README for the list).
    pub events: Vec<String>,
}

/// A new endpoint, with its secret: shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// `whsec_…`: the key of the deliveries' `Fintech-Signature`. Keep it; it is not shown again.
    pub secret: String,
}

fn new_secret() -> Result<String, WebhooksError> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 24];
    ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| WebhooksError::Internal("no randomness".into()))?;
    Ok(format!("whsec_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

/// Register an endpoint (merchants).
#[utoipa::path(post, path = "/api/webhooks/v1/endpoints", tag = "webhooks", request_body = NewEndpoint, security(("bearer" = [])),
    responses((status = 201, body = CreatedEndpoint), (status = 422, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn create_endpoint(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<NewEndpoint>,
) -> Result<Response, WebhooksError> {
    let merchant_id = merchant(&caller)?.to_owned();
    let mut errors = Vec::new();
    let url = if req.url.len() > 2048 {
        errors.push(FieldError::new("url", "invalid_url", "must be at most 2048 characters"));
        None
    } else {
        match state.guard.check_url(&req.url).await {
            Ok(url) => Some(url),
            Err(why) => {
                errors.push(FieldError::new("url", "url_not_allowed", format!("`url` {why}")));
                None
            }
        }
    };
    let mut events: Vec<String> = req.events.iter().map(|e| e.trim().to_owned()).collect();
    events.sort();
    events.dedup();
    if events.is_empty() || events.iter().any(|e| !EVENT_TYPES.contains(&e.as_str())) {
        errors.push(FieldError::new(
            "events",
            "invalid_events",
            format!("must list one or more of {}", EVENT_TYPES.join(", ")),
        ));
    }
    let Some(url) = url.filter(|_| errors.is_empty()) else {
        return Err(WebhooksError::Validation(errors));
    };
    let now = fintech_telemetry::now_rfc3339();
    let secret = new_secret()?;
    let endpoint = Endpoint {
        id: uuid::Uuid::now_v7().to_string(),
        merchant_id,
        url: url.to_string(),
        events,
        status: "enabled".into(),
        consecutive_failures: 0,
        disabled_reason: None,
        created_at: now.clone(),
        updated_at: now,
        secret: secret.clone(),
    };
    store::insert_endpoint(&state.db, &endpoint).await?;
    tracing::info!(endpoint = %endpoint.id, merchant = %endpoint.merchant_id, "webhook endpoint registered");
    Ok((StatusCode::CREATED, axum::Json(CreatedEndpoint { endpoint, secret })).into_response())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Endpoints {
    pub items: Vec<Endpoint>,
}

/// The merchant's endpoints.
#[utoipa::path(get, path = "/api/webhooks/v1/endpoints", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = Endpoints)))]
pub async fn list_endpoints(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<axum::Json<Endpoints>, WebhooksError> {
    let merchant_id = merchant(&caller)?;
    Ok(axum::Json(Endpoints { items: store::endpoints_of(&state.db, merchant_id).await? }))
}

/// One endpoint (its merchant, or support staff).
#[utoipa::path(get, path = "/api/webhooks/v1/endpoints/{id}", tag = "webhooks", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Endpoint), (status = 404, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn get_endpoint(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Endpoint>, WebhooksError> {
    Ok(axum::Json(visible_endpoint(&state, &caller, &id).await?))
}

async fn own_endpoint(state: &AppState, caller: &Caller, id: &str) -> Result<Endpoint, WebhooksError> {
    let merchant_id = merchant(caller)?;
    match store::endpoint_by_id(&state.db, id).await? {
        Some(e) if e.merchant_id == merchant_id => Ok(e),
        _ => Err(WebhooksError::NotFound),
    }
}

/// Enable an endpoint again (after fixing it): its failure count restarts, its waiting
/// deliveries go out.
#[utoipa::path(post, path = "/api/webhooks/v1/endpoints/{id}/enable", tag = "webhooks", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Endpoint), (status = 404, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn enable_endpoint(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Endpoint>, WebhooksError> {
    own_endpoint(&state, &caller, &id).await?;
    store::set_status(&state.db, &id, "enabled", None).await?;
    state.wake.notify_one();
    Ok(axum::Json(store::endpoint_by_id(&state.db, &id).await?.ok_or(WebhooksError::NotFound)?))
}

/// Disable an endpoint: its deliveries wait until it is enabled again.
#[utoipa::path(post, path = "/api/webhooks/v1/endpoints/{id}/disable", tag = "webhooks", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Endpoint), (status = 404, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn disable_endpoint(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Endpoint>, WebhooksError> {
    own_endpoint(&state, &caller, &id).await?;
    store::set_status(&state.db, &id, "disabled", Some("disabled by the merchant")).await?;
    Ok(axum::Json(store::endpoint_by_id(&state.db, &id).await?.ok_or(WebhooksError::NotFound)?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// 1 to 500, default 100.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Deliveries {
    pub items: Vec<Delivery>,
}

/// An endpoint's deliveries, newest first (its merchant, or support staff).
#[utoipa::path(get, path = "/api/webhooks/v1/endpoints/{id}/deliveries", tag = "webhooks", params(("id" = String, Path), ListQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Deliveries), (status = 404, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn list_deliveries(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::Json<Deliveries>, WebhooksError> {
    let endpoint = visible_endpoint(&state, &caller, &id).await?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(WebhooksError::Validation(vec![FieldError::new("limit", "out_of_range", "must be 1 to 500")]));
    }
    Ok(axum::Json(Deliveries { items: store::deliveries_of(&state.db, &endpoint.id, limit).await? }))
}

/// Send a delivery again, now, with a fresh allowance of attempts (merchants). The payload and
/// `Fintech-Event-Id` are the same: receivers deduplicate by the event id.
#[utoipa::path(post, path = "/api/webhooks/v1/deliveries/{id}/replay", tag = "webhooks", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 202, body = Delivery), (status = 404, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn replay_delivery(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, WebhooksError> {
    let merchant_id = merchant(&caller)?.to_owned();
    let Some(delivery) = store::delivery_by_id(&state.db, &id).await? else { return Err(WebhooksError::NotFound) };
    let endpoint = store::endpoint_by_id(&state.db, &delivery.endpoint_id).await?;
    if endpoint.is_none_or(|e| e.merchant_id != merchant_id) {
        return Err(WebhooksError::NotFound);
    }
    store::replay(&state.db, &id, fintech_telemetry::now_unix_ms()).await?;
    state.wake.notify_one();
    let delivery = store::delivery_by_id(&state.db, &id).await?.ok_or(WebhooksError::NotFound)?;
    Ok((StatusCode::ACCEPTED, axum::Json(delivery)).into_response())
}
