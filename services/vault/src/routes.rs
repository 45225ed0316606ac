//! HTTP routes of vault, relative to `/api/vault`.
//!
//! Customers store their cards and read them masked; support staff read them masked; only
//! payments (a service token bound to vault) may have a card charged. No route ever answers a
//! card number.

use std::fmt;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fintech_auth::{Caller, Kind, Role};
use fintech_http::{ApiJson, FieldError};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::cards::{CardView, ChargeRequest, ChargeResult, Rotation, Vault};
use crate::domain::{Expiry, Pan};
use crate::error::VaultError;

/// The services that may have a card charged.
pub const CHARGE_CALLERS: &[&str] = &["payments"];

#[derive(Debug, Clone)]
pub struct AppState {
    pub vault: Vault,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/cards", post(tokenize).get(list_cards))
        .route("/v1/cards/{token}", get(get_card))
        .route("/v1/charges", post(charge))
        .route("/v1/keys/rotate", post(rotate_kek))
        .with_state(state)
}

/// A card to store. The number is wiped from memory when the request is dropped; its `Debug`
/// shows nothing. A `cvv` is refused here: it is never stored.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenizeRequest {
    /// 12 to 19 digits, Luhn-valid; spaces and dashes are ignored.
    pub number: String,
    pub exp_month: Option<i64>,
    pub exp_year: Option<i64>,
}

impl fmt::Debug for TokenizeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenizeRequest").finish_non_exhaustive()
    }
}

impl Drop for TokenizeRequest {
    fn drop(&mut self) {
        self.number.zeroize();
    }
}

/// Store a card; answers its token and masked view. The same card again answers the same token.
#[utoipa::path(post, path = "/api/vault/v1/cards", tag = "vault", request_body = TokenizeRequest, security(("bearer" = [])),
    responses((status = 201, body = CardView), (status = 200, body = CardView),
        (status = 422, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn tokenize(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TokenizeRequest>,
) -> Result<Response, VaultError> {
    caller.require(matches!(caller.kind(), Kind::Customer), "store a card")?;
    let customer_id = caller.subject().to_owned();
    let mut errors = Vec::new();
    let pan = Pan::parse(&req.number).map_err(|e| errors.push(e)).ok();
    let expiry = Expiry::parse(req.exp_month, req.exp_year).map_err(|e| errors.push(e)).ok();
    let (Some(pan), Some(expiry)) = (pan, expiry) else {
        return Err(VaultError::Validation(errors));
    };
    let (view, created) = state.vault.tokenize(&customer_id, &pan, expiry).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(view)).into_response())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Cards {
    pub items: Vec<CardView>,
}

/// The caller's cards, masked.
#[utoipa::path(get, path = "/api/vault/v1/cards", tag = "vault", security(("bearer" = [])), responses((status = 200, body = Cards)))]
pub async fn list_cards(caller: Caller, State(state): State<AppState>) -> Result<axum::Json<Cards>, VaultError> {
    caller.require(caller.kind() == Kind::Customer, "list cards")?;
    Ok(axum::Json(Cards { items: state.vault.cards_of(caller.subject()).await? }))
}

/// A card, masked: its owner, support staff, or a service that charges cards (payments, to have
/// the attempt judged by risk); anyone else hears 404.
#[utoipa::path(get, path = "/api/vault/v1/cards/{token}", tag = "vault", params(("token" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = CardView), (status = 404, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn get_card(
    caller: Caller,
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<axum::Json<CardView>, VaultError> {
    let card = state.vault.card(&token).await?.ok_or(VaultError::NotFound)?;
    let charger = CHARGE_CALLERS.iter().any(|s| caller.is_service(s));
    if !(charger || caller.has_role(Role::Support) || caller.customer_id() == Some(card.customer_id.as_str())) {
        return Err(VaultError::NotFound);
    }
    Ok(axum::Json(card))
}

/// A charge to authorize. The CVV is wiped from memory when the request is dropped.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChargeBody {
    pub charge_id: String,
    pub token: String,
    /// The customer the card must belong to (the payer).
    pub customer_id: String,
    pub amount_minor: i64,
    pub currency: String,
    #[serde(default)]
    pub cvv: Option<String>,
}

impl fmt::Debug for ChargeBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChargeBody")
            .field("charge_id", &self.charge_id)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl Drop for ChargeBody {
    fn drop(&mut self) {
        if let Some(c) = self.cvv.as_mut() {
            c.zeroize();
        }
    }
}

fn id_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_:-".contains(&b))
}

/// Authorize a charge on a card (payments only). Answers the acquirer's outcome; 504 or 503
/// when it is unknown: retry with the same `charge_id`, the card is never charged twice.
#[utoipa::path(post, path = "/api/vault/v1/charges", tag = "vault", request_body = ChargeBody, security(("bearer" = [])),
    responses((status = 200, body = ChargeResult), (status = 404, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 503, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 504, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn charge(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ChargeBody>,
) -> Result<axum::Json<ChargeResult>, VaultError> {
    caller.require_service(CHARGE_CALLERS, "charge a card")?;
    let mut errors = Vec::new();
    if !id_ok(&body.charge_id) {
        errors.push(FieldError::new("charge_id", "invalid_id", "1 to 64 letters, digits, _ : -"));
    }
    if body.amount_minor <= 0 {
        errors.push(FieldError::new("amount_minor", "invalid_amount", "must be a positive integer of minor units"));
    }
    if body.currency.parse::<fintech_money::Currency>().is_err() {
        errors.push(FieldError::new("currency", "unknown_currency", "must be an ISO 4217 code such as USD"));
    }
    if !errors.is_empty() {
        return Err(VaultError::Validation(errors));
    }
    let req = ChargeRequest {
        charge_id: body.charge_id.clone(),
        token: body.token.clone(),
        customer_id: body.customer_id.clone(),
        amount_minor: body.amount_minor,
        currency: body.currency.clone(),
    };
    Ok(axum::Json(state.vault.charge(caller.subject(), &req, body.cvv.as_deref()).await?))
}

/// Rotate the key-encryption key (admins): a new primary KEK, every card's data key re-wrapped
/// with it, the old KEKs retired. Card numbers are not decrypted.
#[utoipa::path(post, path = "/api/vault/v1/keys/rotate", tag = "vault", security(("bearer" = [])),
    responses((status = 200, body = Rotation), (status = 403, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn rotate_kek(caller: Caller, State(state): State<AppState>) -> Result<axum::Json<Rotation>, VaultError> {
    caller.require_role(Role::Admin, "rotate the vault's keys")?;
    let rotation = state
        .vault
        .rotate_kek(caller.subject(), |done, total| tracing::info!(done, total, "re-wrapping card keys"))
        .await?;
    Ok(axum::Json(rotation))
}
