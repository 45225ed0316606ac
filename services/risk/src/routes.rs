//! HTTP routes of risk, relative to `/api/risk`.
//!
//! Payments asks for a verdict (a service token bound to risk); staff read the flagged
//! attempts; operators read the rules and admins change them.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fintech_auth::{Caller, Role};
use fintech_http::extract::parse_json;
use fintech_http::{ApiQuery, FieldError};
use serde::{Deserialize, Serialize};

use crate::domain::{Assessment, AssessmentRequest, Risk, RuleSet};
use crate::error::RiskError;
use crate::rules::{Decision, Rules};

/// The services that may ask for a verdict.
pub const ASSESS_CALLERS: &[&str] = &["payments"];

#[derive(Debug, Clone)]
pub struct AppState {
    pub risk: Risk,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/assessments", post(assess).get(list_assessments))
        .route("/v1/assessments/{id}", get(get_assessment))
        .route("/v1/rules", get(get_rules).put(put_rules))
        .with_state(state)
}

/// Judge an attempt (payments only). The same id again answers the recorded verdict.
#[utoipa::path(post, path = "/api/risk/v1/assessments", tag = "risk", request_body = AssessmentRequest, security(("bearer" = [])),
    responses((status = 200, body = Assessment),
        (status = 409, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 422, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn assess(caller: Caller, State(state): State<AppState>, body: Bytes) -> Result<Response, RiskError> {
    // Who asks is checked before the body is read: no one else learns the request's shape.
    caller.require_service(ASSESS_CALLERS, "ask for a risk verdict")?;
    let req: AssessmentRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(problem) => return Ok(problem.into_response()),
    };
    Ok(axum::Json(state.risk.assess(&req).await?).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `review` (the default) or `decline`, or `approve`.
    pub decision: Option<String>,
    /// 1 to 500, default 100.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Assessments {
    pub items: Vec<Assessment>,
}

/// The newest assessments of one decision (support staff and up), newest first.
#[utoipa::path(get, path = "/api/risk/v1/assessments", tag = "risk", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = Assessments), (status = 422, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn list_assessments(
    caller: Caller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::Json<Assessments>, RiskError> {
    caller.require_role(Role::Support, "read risk assessments")?;
    let mut errors = Vec::new();
    let decision = match q.decision.as_deref() {
        None => Some(Decision::Review),
        Some(d) => Decision::parse(d).or_else(|| {
            errors.push(FieldError::new("decision", "invalid_decision", "approve, review or decline"));
            None
        }),
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        errors.push(FieldError::new("limit", "out_of_range", "must be 1 to 500"));
    }
    if !errors.is_empty() {
        return Err(RiskError::Validation(errors));
    }
    Ok(axum::Json(Assessments { items: state.risk.recent(decision, limit).await? }))
}

/// One assessment, by the caller's id for the attempt (a payment id): support staff and up.
#[utoipa::path(get, path = "/api/risk/v1/assessments/{id}", tag = "risk", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Assessment), (status = 404, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn get_assessment(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Assessment>, RiskError> {
    caller.require_role(Role::Support, "read risk assessments")?;
    Ok(axum::Json(state.risk.assessment(&id).await?.ok_or(RiskError::NotFound)?))
}

/// The rules in force and their version (operators and admins).
#[utoipa::path(get, path = "/api/risk/v1/rules", tag = "risk", security(("bearer" = [])), responses((status = 200, body = RuleSet)))]
pub async fn get_rules(caller: Caller, State(state): State<AppState>) -> Result<axum::Json<RuleSet>, RiskError> {
    caller.require_role(Role::Operator, "read the risk rules")?;
    Ok(axum::Json(state.risk.rules().await?))
}

/// Replace the rules (admins): validated whole, stored as the next version, in force on every
/// replica within `risk.rules_reload_ms`.
#[utoipa::path(put, path = "/api/risk/v1/rules", tag = "risk", request_body = Rules, security(("bearer" = [])),
    responses((status = 200, body = RuleSet), (status = 422, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn put_rules(caller: Caller, State(state): State<AppState>, body: Bytes) -> Result<Response, RiskError> {
    caller.require_role(Role::Admin, "change the risk rules")?;
    let rules: Rules = match parse_json(&body) {
        Ok(r) => r,
        Err(problem) => return Ok(problem.into_response()),
    };
    Ok(axum::Json(state.risk.set_rules(rules, caller.subject()).await?).into_response())
}
