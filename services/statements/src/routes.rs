//! HTTP routes of statements, relative to `/api/statements`. An account's owner (the customer or
//! merchant whose account it is) and staff read; the owner and operators ask for a month. Another
//! customer's account or statement answers 404, as a missing one.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fintech_auth::{Caller, Role};
use fintech_http::{ApiJson, ApiQuery, FieldError};
use serde::{Deserialize, Serialize};

use crate::error::StatementsError;
use crate::statement::Month;
use crate::store::{self, KnownAccount, Statement};
use crate::{Statements, object_key};

#[derive(Debug, Clone)]
pub struct AppState {
    pub statements: Statements,
    pub link_ttl: Duration,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/statements", post(create_statement).get(list_statements))
        .route("/v1/statements/{id}", get(get_statement))
        .route("/v1/statements/{id}/files/{format}", get(download))
        .with_state(state)
}

/// Whether `caller` may read what belongs to `customer_id`.
fn may_read(caller: &Caller, customer_id: &str) -> bool {
    caller.customer_id() == Some(customer_id) || caller.has_role(Role::Support)
}

/// The account, if the caller may read it (others' answer as missing).
async fn readable_account(state: &AppState, caller: &Caller, id: &str) -> Result<KnownAccount, StatementsError> {
    match store::account(&state.statements.db, id).await? {
        Some(a) if may_read(caller, &a.customer_id) => Ok(a),
        _ => Err(StatementsError::NotFound),
    }
}

async fn readable_statement(state: &AppState, caller: &Caller, id: &str) -> Result<Statement, StatementsError> {
    match store::by_id(&state.statements.db, id).await? {
        Some(s) if may_read(caller, &s.customer_id) => Ok(s),
        _ => Err(StatementsError::NotFound),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStatement {
    pub account_id: String,
    /// `YYYY-MM`, a month that has ended (UTC).
    pub month: String,
}

/// Where to download a statement's files: signed bucket URLs valid `expires_in_s`, or this
/// service's own routes (which need the access token) when the bucket cannot sign.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Links {
    pub csv: String,
    pub pdf: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_s: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatementView {
    #[serde(flatten)]
    pub statement: Statement,
    pub links: Links,
}

async fn view(state: &AppState, s: Statement) -> Result<StatementView, StatementsError> {
    let store = &state.statements.store;
    let csv = store.download_link(&object_key(&s.id, "csv")?, state.link_ttl).await?;
    let pdf = store.download_link(&object_key(&s.id, "pdf")?, state.link_ttl).await?;
    let links = match (csv, pdf) {
        (Some(csv), Some(pdf)) => Links { csv, pdf, expires_in_s: Some(state.link_ttl.as_secs()) },
        _ => {
            let base = format!("/api/statements/v1/statements/{}/files", s.id);
            Links { csv: format!("{base}/csv"), pdf: format!("{base}/pdf"), expires_in_s: None }
        }
    };
    Ok(StatementView { statement: s, links })
}

/// Make (or find) an account's statement of an ended month: its owner, or an operator.
#[utoipa::path(post, path = "/api/statements/v1/statements", tag = "statements", request_body = NewStatement, security(("bearer" = [])),
    responses((status = 201, body = StatementView), (status = 200, body = StatementView, description = "Made before"),
        (status = 409, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 422, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn create_statement(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<NewStatement>,
) -> Result<Response, StatementsError> {
    let Some(month) = Month::parse(req.month.trim()) else {
        return Err(StatementsError::Validation(vec![FieldError::new("month", "invalid_month", "must be YYYY-MM")]));
    };
    let account = match store::account(&state.statements.db, req.account_id.trim()).await? {
        Some(a) if caller.customer_id() == Some(a.customer_id.as_str()) || caller.has_role(Role::Operator) => a,
        _ => return Err(StatementsError::NotFound),
    };
    let (statement, made) = state.statements.make(&account, month).await?;
    let status = if made { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(view(&state, statement).await?)).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub account_id: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatementList {
    pub items: Vec<Statement>,
}

/// An account's statements, newest month first (its owner, or staff).
#[utoipa::path(get, path = "/api/statements/v1/statements", tag = "statements", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = StatementList), (status = 404, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn list_statements(
    caller: Caller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::Json<StatementList>, StatementsError> {
    let account = readable_account(&state, &caller, &q.account_id).await?;
    Ok(axum::Json(StatementList { items: store::of_account(&state.statements.db, &account.account_id).await? }))
}

/// One statement with its download links.
#[utoipa::path(get, path = "/api/statements/v1/statements/{id}", tag = "statements", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = StatementView), (status = 404, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn get_statement(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<StatementView>, StatementsError> {
    let s = readable_statement(&state, &caller, &id).await?;
    Ok(axum::Json(view(&state, s).await?))
}

/// A statement's file, `csv` or `pdf` (when the bucket cannot sign links).
#[utoipa::path(get, path = "/api/statements/v1/statements/{id}/files/{format}", tag = "statements",
    params(("id" = String, Path), ("format" = String, Path, description = "csv or pdf")), security(("bearer" = [])),
    responses((status = 200, description = "The file"), (status = 404, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn download(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, format)): Path<(String, String)>,
) -> Result<Response, StatementsError> {
    if format != "csv" && format != "pdf" {
        return Err(StatementsError::NotFound);
    }
    let s = readable_statement(&state, &caller, &id).await?;
    let object = state.statements.store.get(&object_key(&s.id, &format)?).await?;
    let name = format!("statement-{}-{}.{format}", s.account_id.replace([':', '"'], "-"), s.month);
    Ok(fintech_http::attachment(object.bytes, &object.content_type, &name))
}
