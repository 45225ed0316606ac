//! HTTP routes of the ledger, relative to `/api/ledger`. Internal: callers are other services
//! (accounts, payments) with service tokens bound to the ledger; support staff may read.

use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fintech_auth::{AuthError, Caller, Role};
use fintech_http::{ApiJson, ApiQuery, FieldError, Problem};
use serde::{Deserialize, Serialize};

use crate::domain::{
    Account, AccountStatus, MAX_BATCH_ITEMS, NewAccountRequest, NewTransferRequest, ResolveRequest, Transfer,
    TransferKind, valid_id,
};
use crate::engine::{Applied, Ledger, Posting};
use crate::error::LedgerError;

/// Batch bodies: up to 1000 transfers of at most ~400 bytes each.
pub const MAX_BATCH_BODY_BYTES: usize = 512 * 1024;
pub const MAX_PAGE_SIZE: u32 = 200;
const DEFAULT_PAGE_SIZE: u32 = 50;

/// The services that may write to the ledger.
pub const CALLERS: &[&str] = &["accounts", "payments"];
/// The services that may read accounts and postings: the writers, and statements.
pub const READERS: &[&str] = &["accounts", "payments", "statements"];

#[derive(Debug, Clone)]
pub struct AppState {
    pub ledger: Ledger,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/accounts", post(create_account))
        .route("/v1/accounts/{id}", get(get_account))
        .route("/v1/accounts/{id}/status", post(set_status))
        .route("/v1/accounts/{id}/postings", get(list_postings))
        .route("/v1/transfers", post(create_transfer))
        .route(
            "/v1/transfers/batch",
            post(create_batch).layer(axum::extract::DefaultBodyLimit::max(MAX_BATCH_BODY_BYTES)),
        )
        .route("/v1/transfers/{id}", get(get_transfer))
        .route("/v1/transfers/{id}/post", post(post_pending))
        .route("/v1/transfers/{id}/void", post(void_pending))
        .with_state(state)
}

/// A service allowed to write to the ledger ([`CALLERS`]), with a token bound to the ledger.
#[derive(Debug)]
pub struct InternalCaller(pub Caller);

impl FromRequestParts<AppState> for InternalCaller {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_service(CALLERS, "write to the ledger")?;
        Ok(InternalCaller(caller))
    }
}

/// A reader: one of [`CALLERS`], or support staff.
#[derive(Debug)]
pub struct Reader(pub Caller);

impl FromRequestParts<AppState> for Reader {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let allowed = READERS.iter().any(|s| caller.is_service(s)) || caller.has_role(Role::Support);
        caller.require(allowed, "read the ledger")?;
        Ok(Reader(caller))
    }
}

fn created_or_replayed<T: Serialize>(created: bool, body: T) -> Response {
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    let mut response = (status, axum::Json(body)).into_response();
    if !created {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

fn applied(result: Applied) -> Response {
    created_or_replayed(!result.replayed, result.transfer)
}

/// Create a ledger account (idempotent on the same settings).
#[utoipa::path(post, path = "/api/ledger/v1/accounts", tag = "ledger", request_body = NewAccountRequest,
    security(("service_token" = [])),
    responses((status = 201, body = Account), (status = 200, body = Account, description = "Already existed"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_account(
    _caller: InternalCaller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<NewAccountRequest>,
) -> Result<Response, LedgerError> {
    let new = req.validate().map_err(LedgerError::Validation)?;
    let (account, created) = state.ledger.create_account(&new).await?;
    Ok(created_or_replayed(created, account))
}

fn account_id(id: &str) -> Result<&str, LedgerError> {
    if valid_id(id) { Ok(id) } else { Err(LedgerError::NotFound) }
}

/// An account and its balances.
#[utoipa::path(get, path = "/api/ledger/v1/accounts/{id}", tag = "ledger",
    params(("id" = String, Path)), security(("service_token" = [])),
    responses((status = 200, body = Account), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_account(
    _caller: Reader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Account>, LedgerError> {
    Ok(axum::Json(state.ledger.account(account_id(&id)?).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    pub status: Option<String>,
}

/// Freeze, unfreeze or close an account.
#[utoipa::path(post, path = "/api/ledger/v1/accounts/{id}/status", tag = "ledger", request_body = StatusRequest,
    params(("id" = String, Path)), security(("service_token" = [])),
    responses((status = 200, body = Account), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn set_status(
    _caller: InternalCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<StatusRequest>,
) -> Result<axum::Json<Account>, LedgerError> {
    let status = req.status.as_deref().and_then(AccountStatus::parse).ok_or_else(|| {
        LedgerError::Validation(vec![FieldError::new(
            "status",
            "invalid_status",
            "`status` must be open, frozen or closed",
        )])
    })?;
    Ok(axum::Json(state.ledger.set_status(account_id(&id)?, status).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PostingPage {
    pub items: Vec<Posting>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<i64>,
}

/// An account's postings, newest first.
#[utoipa::path(get, path = "/api/ledger/v1/accounts/{id}/postings", tag = "ledger",
    params(("id" = String, Path), PageQuery), security(("service_token" = [])),
    responses((status = 200, body = PostingPage), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn list_postings(
    _caller: Reader,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<axum::Json<PostingPage>, LedgerError> {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if limit == 0 || limit > MAX_PAGE_SIZE {
        return Err(Problem::bad_request("invalid_query", format!("`limit` must be 1 to {MAX_PAGE_SIZE}.")).into());
    }
    // 404 for an unknown account, not an empty page.
    let account = state.ledger.account(account_id(&id)?).await?;
    let mut items = state.ledger.postings(&account.id, q.cursor, limit + 1).await?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|p| p.seq)
    } else {
        None
    };
    Ok(axum::Json(PostingPage { items, next_cursor }))
}

/// Record a transfer (single-phase, or a pending hold). Idempotent on `id`.
#[utoipa::path(post, path = "/api/ledger/v1/transfers", tag = "ledger", request_body = NewTransferRequest,
    security(("service_token" = [])),
    responses((status = 201, body = Transfer), (status = 200, body = Transfer, description = "Replayed: same id and content"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_transfer(
    _caller: InternalCaller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<NewTransferRequest>,
) -> Result<Response, LedgerError> {
    let t = req.validate().map_err(LedgerError::Validation)?;
    Ok(applied(state.ledger.transfer(t).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub transfers: Vec<NewTransferRequest>,
}

/// One item's result: the transfer, or the problem that refused it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchItem {
    pub index: usize,
    /// 201 created, 200 replayed, or the refusal's status.
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<Transfer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchResponse {
    pub results: Vec<BatchItem>,
}

/// Record up to 1000 transfers. Per-item results: items are applied in order, each on its own
/// (a refused item changes nothing and does not stop the others), and all accepted items
/// commit together.
#[utoipa::path(post, path = "/api/ledger/v1/transfers/batch", tag = "ledger", request_body = BatchRequest,
    security(("service_token" = [])),
    responses((status = 200, body = BatchResponse), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_batch(
    _caller: InternalCaller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<BatchRequest>,
) -> Result<axum::Json<BatchResponse>, LedgerError> {
    if req.transfers.is_empty() || req.transfers.len() > MAX_BATCH_ITEMS {
        return Err(LedgerError::Validation(vec![FieldError::new(
            "transfers",
            "invalid_batch_size",
            format!("send 1 to {MAX_BATCH_ITEMS} transfers"),
        )]));
    }
    // Invalid items are answered without reaching the engine; valid ones keep their order.
    let mut results: Vec<Option<BatchItem>> = Vec::with_capacity(req.transfers.len());
    let mut valid = Vec::new();
    let mut positions = Vec::new();
    for (index, item) in req.transfers.iter().enumerate() {
        match item.validate() {
            Ok(t) => {
                valid.push(t);
                positions.push(index);
                results.push(None);
            }
            Err(errors) => {
                let problem = Problem::validation(errors);
                results.push(Some(BatchItem { index, status: problem.status, transfer: None, problem: Some(problem) }));
            }
        }
    }
    let applied = if valid.is_empty() { Vec::new() } else { state.ledger.transfers(valid).await? };
    for (index, result) in positions.into_iter().zip(applied) {
        results[index] = Some(match result {
            Ok(a) => BatchItem {
                index,
                status: if a.replayed { 200 } else { 201 },
                transfer: Some(a.transfer),
                problem: None,
            },
            Err(e) => {
                let problem = e.to_problem();
                BatchItem { index, status: problem.status, transfer: None, problem: Some(problem) }
            }
        });
    }
    Ok(axum::Json(BatchResponse { results: results.into_iter().flatten().collect() }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransferView {
    #[serde(flatten)]
    pub transfer: Transfer,
    /// For a pending transfer: the post, void or expiry that resolved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<Transfer>,
}

/// A transfer by id.
#[utoipa::path(get, path = "/api/ledger/v1/transfers/{id}", tag = "ledger",
    params(("id" = String, Path)), security(("service_token" = [])),
    responses((status = 200, body = TransferView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_transfer(
    _caller: Reader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<TransferView>, LedgerError> {
    let (transfer, resolved_by) = state.ledger.get_transfer(account_id(&id)?).await?;
    Ok(axum::Json(TransferView { transfer, resolved_by }))
}

async fn resolve(
    state: &AppState,
    pending_id: &str,
    req: &ResolveRequest,
    kind: TransferKind,
) -> Result<Response, LedgerError> {
    let r = req.validate(pending_id, kind).map_err(LedgerError::Validation)?;
    Ok(applied(state.ledger.resolve(r).await?))
}

/// Post all or part of a pending transfer.
#[utoipa::path(post, path = "/api/ledger/v1/transfers/{id}/post", tag = "ledger", request_body = ResolveRequest,
    params(("id" = String, Path, description = "The pending transfer")), security(("service_token" = [])),
    responses((status = 201, body = Transfer), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn post_pending(
    _caller: InternalCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> Result<Response, LedgerError> {
    resolve(&state, &id, &req, TransferKind::Post).await
}

/// Release a pending transfer.
#[utoipa::path(post, path = "/api/ledger/v1/transfers/{id}/void", tag = "ledger", request_body = ResolveRequest,
    params(("id" = String, Path, description = "The pending transfer")), security(("service_token" = [])),
    responses((status = 201, body = Transfer), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn void_pending(
    _caller: InternalCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> Result<Response, LedgerError> {
    resolve(&state, &id, &req, TransferKind::Void).await
}
