//! ledger: the double-entry journal. Every transfer moves one amount of one currency from a
//! debit account to a credit account, so the postings of every transfer sum to zero and the
//! balances of all accounts of a currency always sum to zero. Transfers and postings are never
//! changed; only the derived balances are. Emits `ledger.transfer.<kind>` on `ledger.events`.

pub mod client;
pub mod config;
pub mod domain;
pub mod engine;
pub mod error;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use fintech_kit::{Service, ServiceContext, Started, config_key};
use sqlx::migrate::Migrator;
use utoipa::OpenApi;

pub use engine::Ledger;

pub const SERVICE: &str = "ledger";
pub const TOPIC: &str = "ledger.events";

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL: Migrator = sqlx::migrate!("./migrations/mysql");

/// Service tokens from identity, bound to the ledger.
const TOKEN_SCHEME: fintech_kit::BearerScheme = fintech_kit::BearerScheme("service_token");

#[derive(OpenApi)]
#[openapi(
    info(title = "ledger", description = "Double-entry ledger (internal)."),
    paths(
        routes::create_account, routes::get_account, routes::set_status, routes::list_postings,
        routes::create_transfer, routes::create_batch, routes::get_transfer, routes::post_pending, routes::void_pending,
    ),
    components(schemas(fintech_http::Problem, fintech_http::FieldError)),
    modifiers(&TOKEN_SCHEME),
)]
struct ApiDoc;

/// The ledger service.
#[derive(Debug, Default, Clone, Copy)]
pub struct LedgerService;

#[async_trait]
impl Service for LedgerService {
    fintech_kit::service_basics!(SERVICE, SQLITE, MYSQL, ApiDoc);

    fn event_sources(&self) -> Vec<std::sync::Arc<dyn fintech_events::outbox::EventSource>> {
        vec![std::sync::Arc::new(engine::JournalEvents)]
    }

    async fn start(&self, ctx: ServiceContext) -> anyhow::Result<Started> {
        let config: config::LedgerConfig = ctx.config.section(&config_key(SERVICE))?;
        let ledger = Ledger::start(
            ctx.db.clone(),
            Arc::clone(&ctx.outbox_waker),
            ctx.shutdown.clone(),
            Duration::from_millis(config.expiry_sweep_ms),
        );
        // Services started after this one in the same process use the engine directly.
        let shared: client::SharedLedger = Arc::new(ledger.clone());
        ctx.registry.provide(shared);
        let state = routes::AppState { ledger };
        Ok(Started { router: routes::router(state), checks: Vec::new() })
    }
}
