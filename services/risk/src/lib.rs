//! risk: fraud rules for card payments. Each attempt (a payment, with the card's vault
//! fingerprint and BIN, the customer and the client address) gets a score, a decision
//! (approve, review, decline) and the reasons. Rules are a versioned JSON document that admins
//! change over the API, no rebuild; every replica follows within `risk.rules_reload_ms`. With
//! `redis.url`, replicas share the rules in force through Redis (`fintech_kit::cache`), and only
//! the first to miss them there reads the database.
//!
//! Velocity counts are read before the attempt is recorded, so two attempts on the same card
//! at the same instant may not see each other: a limit can be passed by at most the number of
//! attempts in flight at once, never triggered early.

pub mod client;
pub mod config;
pub mod domain;
pub mod error;
pub mod routes;
pub mod rules;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use fintech_kit::{Service, ServiceContext, Started, config_key};
use sqlx::migrate::Migrator;
use utoipa::OpenApi;

pub use domain::Risk;

pub const SERVICE: &str = "risk";
pub const TOPIC: &str = "risk.events";

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL: Migrator = sqlx::migrate!("./migrations/mysql");

const TOKEN_SCHEME: fintech_kit::BearerScheme = fintech_kit::BearerScheme("bearer");

#[derive(OpenApi)]
#[openapi(
    info(title = "risk", description = "Fraud rules: a score and a decision with reasons for each card payment."),
    paths(routes::assess, routes::list_assessments, routes::get_assessment, routes::get_rules, routes::put_rules),
    components(schemas(fintech_http::Problem, fintech_http::FieldError)),
    modifiers(&TOKEN_SCHEME),
)]
struct ApiDoc;

/// The risk service.
#[derive(Debug, Default, Clone, Copy)]
pub struct RiskService;

#[async_trait]
impl Service for RiskService {
    fintech_kit::service_basics!(SERVICE, SQLITE, MYSQL, ApiDoc);

    async fn start(&self, ctx: ServiceContext) -> anyhow::Result<Started> {
        let config: config::RiskConfig = ctx.config.section(&config_key(SERVICE))?;
        let shared =
            fintech_kit::cache::SharedCache::new("risk", Duration::from_millis(config.rules_cache_ttl_ms), ctx.redis());
        let risk = Risk::new(
            ctx.db.clone(),
            Arc::clone(&ctx.outbox_waker),
            Duration::from_millis(config.rules_reload_ms),
            Arc::new(shared),
        );
        // Payments in this process asks without a network hop.
        ctx.registry.provide::<client::SharedRisk>(Arc::new(risk.clone()));
        Ok(Started { router: routes::router(routes::AppState { risk }), checks: Vec::new() })
    }
}
