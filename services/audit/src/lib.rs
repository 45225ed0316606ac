//! audit: an append-only, hash-chained log of the platform's events. The service subscribes to
//! every topic of [`TOPICS`] and appends each event it is delivered as the next record of one
//! chain (`chain.rs`): record `n` carries the hash of record `n - 1`, so altering, removing or
//! re-linking a record breaks the chain, and [`verify()`] (`fintech audit verify`) names the
//! first break. Staff holding `operator` read the records and the head over HTTP.
//!
//! The security records of identity and vault (sign-ins, failures, card-number uses, role and
//! key changes) arrive as `security.*` events on their topics (`fintech_kit::security`).
//!
//! NOT YET: the Pub/Sub adapter (run alone with `fintech serve audit`, it records nothing: no
//! in-process bus reaches the others), anchoring the head outside the database automatically.

pub mod chain;
pub mod error;
pub mod routes;
pub mod store;
pub mod verify;

use std::sync::Arc;

use async_trait::async_trait;
use fintech_db::Db;
use fintech_db::sqlx::migrate::Migrator;
use fintech_events::{EventEnvelope, EventHandler, HandlerError};
use fintech_kit::{Service, ServiceContext, Started};
use utoipa::OpenApi;

pub use chain::{Appended, append};
pub use error::AuditError;
pub use verify::{Report, verify};

pub const SERVICE: &str = "audit";

/// Every topic the log records, one subscription each (`audit.<topic>`).
pub const TOPICS: &[&str] = &[
    "identity.events",
    "accounts.events",
    "ledger.events",
    "payments.events",
    "vault.events",
    "risk.events",
    "contact-us.events",
];

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL: Migrator = sqlx::migrate!("./migrations/mysql");

/// Access tokens from identity (operators).
const TOKEN_SCHEME: fintech_kit::BearerScheme = fintech_kit::BearerScheme("bearer");

#[derive(OpenApi)]
#[openapi(
    info(title = "audit", description = "The platform's events in an append-only, hash-chained log."),
    paths(routes::list_records, routes::head),
    components(schemas(fintech_http::Problem, fintech_http::FieldError)),
    modifiers(&TOKEN_SCHEME),
)]
struct ApiDoc;

/// Appends what one subscription delivers. A failure is retried by the bus, then dead-lettered.
#[derive(Debug)]
struct Recorder {
    db: Db,
    topic: &'static str,
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        match chain::append(&self.db, self.topic, event).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let cause = error::cause_chain(&e);
                tracing::warn!(topic = self.topic, event_id = %event.id, error = %cause, "could not record an event");
                Err(HandlerError(cause))
            }
        }
    }
}

/// The audit service.
#[derive(Debug, Default, Clone, Copy)]
pub struct AuditService;

#[async_trait]
impl Service for AuditService {
    fintech_kit::service_basics!(SERVICE, SQLITE, MYSQL, ApiDoc);

    async fn start(&self, ctx: ServiceContext) -> anyhow::Result<Started> {
        let db = ctx.db.clone();
        ctx.subscribe_each(SERVICE, TOPICS, |topic| Arc::new(Recorder { db: db.clone(), topic })).await?;
        Ok(Started { router: routes::router(routes::AppState { db: ctx.db.clone() }), checks: Vec::new() })
    }
}
