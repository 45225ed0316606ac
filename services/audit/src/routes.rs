//! HTTP routes of audit, relative to `/api/audit`. Read only: records enter the log from the
//! bus, never over HTTP. Staff holding `operator` (or `admin`) read; everyone else is refused.

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::get;
use fintech_auth::{AuthError, Caller, Role};
use fintech_db::Db;
use fintech_http::{ApiQuery, Problem};
use serde::{Deserialize, Serialize};

use crate::error::AuditError;
use crate::store::{self, StoredRecord};

/// Largest page of records.
pub const MAX_PAGE_SIZE: u32 = 500;
const DEFAULT_PAGE_SIZE: u32 = 100;

#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
}

pub fn router(state: AppState) -> Router {
    Router::new().route("/v1/records", get(list_records)).route("/v1/head", get(head)).with_state(state)
}

/// Staff who may read the audit log: `operator` or above. Checked before the query is read.
#[derive(Debug)]
pub struct Auditor;

impl FromRequestParts<AppState> for Auditor {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_role(Role::Operator, "read the audit log")?;
        Ok(Auditor)
    }
}

/// One record of the log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Record {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    pub event_id: String,
    /// The topic the event was delivered on (`payments.events`).
    pub topic: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The service that published the event.
    pub source: String,
    /// The event's ordering key: the object it is about.
    pub subject: String,
    /// The event's time.
    pub occurred_at: String,
    /// When the log recorded it.
    pub recorded_at: String,
    /// The event's data. The hash covers its stored JSON text; should that text not be JSON (it
    /// was altered), it is answered as a string.
    pub data: serde_json::Value,
    /// The previous record's hash (64 zeros for record 1).
    pub prev_hash: String,
    /// Lowercase hex SHA-256 of the record's canonical encoding (see the README).
    pub hash: String,
}

impl From<StoredRecord> for Record {
    fn from(r: StoredRecord) -> Self {
        let data = match serde_json::from_str::<serde_json::Value>(&r.data) {
            Ok(value) => value,
            Err(_) => {
                tracing::warn!(seq = r.seq, "an audit record's data is not JSON; run `fintech audit verify`");
                serde_json::Value::String(r.data)
            }
        };
        Record {
            seq: r.seq,
            event_id: r.event_id,
            topic: r.topic,
            event_type: r.event_type,
            source: r.source,
            subject: r.subject,
            occurred_at: r.occurred_at,
            recorded_at: r.recorded_at,
            data,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RecordsQuery {
    /// Records after this seq (default 0: from the first).
    pub after_seq: Option<i64>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordPage {
    pub items: Vec<Record>,
    /// Pass as `after_seq` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after_seq: Option<i64>,
}

/// The log's records in chain order, oldest first (operators).
#[utoipa::path(
    get,
    path = "/api/audit/v1/records",
    tag = "audit",
    params(RecordsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = RecordPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_records(
    _auditor: Auditor,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RecordsQuery>,
) -> Result<axum::Json<RecordPage>, AuditError> {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if limit == 0 || limit > MAX_PAGE_SIZE {
        return Err(AuditError::Invalid(Problem::bad_request(
            "invalid_query",
            format!("`limit` must be 1 to {MAX_PAGE_SIZE}."),
        )));
    }
    let mut conn = state.db.pool().acquire().await?;
    let mut records = store::records_after(&mut conn, q.after_seq.unwrap_or(0), limit + 1).await?;
    let next_after_seq = if records.len() > limit as usize {
        records.truncate(limit as usize);
        records.last().map(|r| r.seq)
    } else {
        None
    };
    Ok(axum::Json(RecordPage { items: records.into_iter().map(Record::from).collect(), next_after_seq }))
}

/// The chain's head: what `fintech audit verify --expect-head SEQ:HASH` takes as an anchor.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Head {
    /// The last record's seq (0 while the log is empty).
    pub seq: i64,
    /// The last record's hash (64 zeros while the log is empty).
    pub hash: String,
    /// How many records the log holds (equal to `seq` while the log is sound).
    pub records: i64,
}

/// The chain's head (operators). Note it somewhere else from time to time: it is the anchor that
/// shows a rewrite of the whole chain.
#[utoipa::path(
    get,
    path = "/api/audit/v1/head",
    tag = "audit",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Head),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn head(_auditor: Auditor, State(state): State<AppState>) -> Result<axum::Json<Head>, AuditError> {
    // One snapshot, so the count agrees with the head.
    let mut tx = state.db.pool().begin().await?;
    let (seq, hash) = store::head(&mut tx).await?.ok_or(AuditError::HeadMissing)?;
    let records = store::count_records(&mut tx).await?;
    tx.rollback().await?;
    Ok(axum::Json(Head { seq, hash, records }))
}
