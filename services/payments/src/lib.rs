//! payments: payments from customer accounts to merchant accounts (capture at once, or
//! authorize then capture or cancel; refunds up to what was captured; an optional fee charged
//! to the merchant), transfers between accounts, and top-ups from the funding system account.
//! Every POST takes an `Idempotency-Key`. Money moves only in the ledger. Emits `payment.*`,
//! `transfer.completed` and `topup.completed` on `payments.events`.

pub mod config;
pub mod domain;
pub mod error;
pub mod routes;
pub mod store;

use std::time::Duration;

use async_trait::async_trait;

use fintech_kit::idempotency::{self, IdempotencySettings};
use fintech_kit::{Service, ServiceContext, Started, config_key};
use sqlx::migrate::Migrator;
use utoipa::OpenApi;

pub const SERVICE: &str = "payments";
pub const TOPIC: &str = "payments.events";
/// The decline code of a card payment that risk declined (the card was never charged).
pub const RISK_DECLINED: &str = "risk_declined";

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL: Migrator = sqlx::migrate!("./migrations/mysql");

/// Access tokens from identity.
const TOKEN_SCHEME: fintech_kit::BearerScheme = fintech_kit::BearerScheme("bearer");

#[derive(OpenApi)]
#[openapi(
    info(title = "payments", description = "Payments, transfers and top-ups with Idempotency-Key."),
    paths(
        routes::create_payment, routes::get_payment, routes::capture, routes::cancel, routes::refund,
        routes::create_card_payment, routes::create_transfer, routes::create_topup,
    ),
    components(schemas(fintech_http::Problem, fintech_http::FieldError)),
    modifiers(&TOKEN_SCHEME),
)]
struct ApiDoc;

/// The payments service. Starts after the ledger when both run in one process.
#[derive(Debug, Default, Clone, Copy)]
pub struct PaymentsService;

#[async_trait]
impl Service for PaymentsService {
    fintech_kit::service_basics!(SERVICE, SQLITE, MYSQL, ApiDoc);

    async fn start(&self, ctx: ServiceContext) -> anyhow::Result<Started> {
        let config: config::PaymentsConfig = ctx.config.section(&config_key(SERVICE))?;
        let ledger = fintech_ledger::client::for_service(&ctx, SERVICE, config.ledger_url.as_ref())?;
        let accounts = fintech_accounts::client::for_service(&ctx, SERVICE, config.accounts_url.as_ref())?;
        let vault = fintech_vault::client::for_service(&ctx, SERVICE, config.vault_url.as_ref())?;
        let risk = fintech_risk::client::for_service(&ctx, SERVICE, config.risk_url.as_ref())?;
        let mut settings = IdempotencySettings::new(SERVICE);
        // A CVV is never stored, not even hashed under the key.
        settings.unhashed_fields = vec!["cvv"];
        if let Some(hours) = config.idempotency_retention_hours {
            settings.retention = Duration::from_secs(hours * 3600);
        }
        idempotency::spawn_purger(ctx.db.clone(), settings.retention, ctx.shutdown.clone());
        let db = ctx.db.clone();
        let state =
            routes::AppState { ctx, ledger, accounts, vault, risk, trust_forwarded_for: config.trust_forwarded_for };
        Ok(Started { router: idempotency::layer(routes::router(state), db, settings), checks: Vec::new() })
    }
}
