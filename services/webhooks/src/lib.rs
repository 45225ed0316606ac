//! webhooks: merchants' HTTPS endpoints receive the events about them, signed.
//!
//! A merchant registers an endpoint (a URL and the event types it wants) and gets its secret once.
//! The service reads `payments.events` and `accounts.events`; each event about a merchant (its
//! customer record, its accounts, payments it receives or makes) becomes one delivery per enabled
//! endpoint of that merchant that wants the event's type, recorded with the event's inbox claim.
//! The dispatcher (`dispatch.rs`) posts due deliveries, signed (`signing.rs`), retries failures
//! with exponential backoff for hours, disables an endpoint after a run of failures, and never
//! reaches an internal address (`guard.rs`). Merchants read their deliveries and replay any.

pub mod config;
pub mod dispatch;
pub mod error;
pub mod guard;
pub mod routes;
pub mod signing;
pub mod store;

use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use fintech_db::Db;
use fintech_db::sqlx::migrate::Migrator;
use fintech_events::{EventEnvelope, EventHandler, HandlerError};
use fintech_kit::{Service, ServiceContext, Started, config_key};
use tokio::sync::Notify;
use utoipa::OpenApi;

pub const SERVICE: &str = "webhooks";

/// The streams it reads, one subscription each (`webhooks.<topic>`).
pub const TOPICS: &[&str] = &["payments.events", "accounts.events"];

/// The event types an endpoint may receive.
pub const EVENT_TYPES: &[&str] = &[
    "payment.authorized",
    "payment.captured",
    "payment.declined",
    "payment.canceled",
    "payment.refunded",
    "transfer.completed",
    "customer.created",
    "customer.kyc_changed",
    "account.opened",
];

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL: Migrator = sqlx::migrate!("./migrations/mysql");

const TOKEN_SCHEME: fintech_kit::BearerScheme = fintech_kit::BearerScheme("bearer");

#[derive(OpenApi)]
#[openapi(
    info(title = "webhooks", description = "Merchants' endpoints for signed event deliveries."),
    paths(routes::create_endpoint, routes::list_endpoints, routes::get_endpoint, routes::enable_endpoint,
          routes::disable_endpoint, routes::list_deliveries, routes::replay_delivery),
    components(schemas(store::Endpoint, store::Delivery, routes::NewEndpoint, routes::CreatedEndpoint,
                       routes::Endpoints, routes::Deliveries, fintech_http::Problem, fintech_http::FieldError)),
    modifiers(&TOKEN_SCHEME),
)]
struct ApiDoc;

/// The merchants an event is about: the customers it names (a merchant's customer id is its user id).
fn owners(event: &EventEnvelope) -> Vec<String> {
    let mut out: Vec<String> = ["customer_id", "payee_customer_id", "payer_customer_id"]
        .iter()
        .filter_map(|k| event.data[*k].as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    out.dedup();
    out
}

/// Turns events into deliveries.
#[derive(Debug)]
struct Fanout {
    db: Db,
    wake: Arc<Notify>,
}

#[async_trait]
impl EventHandler for Fanout {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        if !EVENT_TYPES.contains(&event.event_type.as_str()) {
            return Ok(());
        }
        let owners = owners(event);
        if owners.is_empty() {
            return Ok(());
        }
        let payload = serde_json::to_string(&serde_json::json!({
            "id": event.id,
            "type": event.event_type,
            "created": event.time,
            "data": event.data,
        }))
        .map_err(HandlerError::new)?;
        let (event, engine) = (event.clone(), self.db.engine());
        let queued = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    if !fintech_events::inbox::claim(conn, engine, SERVICE, &event.id).await? {
                        return Ok(0);
                    }
                    let now = fintech_telemetry::now_rfc3339();
                    let mut queued = 0;
                    for owner in owners {
                        for endpoint in store::subscribers(conn, &owner, &event.event_type).await? {
                            let d = store::Delivery {
                                id: uuid::Uuid::now_v7().to_string(),
                                endpoint_id: endpoint.id,
                                event_id: event.id.clone(),
                                event_type: event.event_type.clone(),
                                status: "pending".into(),
                                attempts: 0,
                                next_attempt_at: fintech_telemetry::now_unix_ms(),
                                last_status_code: None,
                                last_error: None,
                                created_at: now.clone(),
                                updated_at: now.clone(),
                                payload: payload.clone(),
                            };
                            store::insert_delivery(conn, &d).await?;
                            queued += 1;
                        }
                    }
                    Ok(queued)
                })
            })
            .await
            .map_err(HandlerError::new)?;
        if queued > 0 {
            self.wake.notify_one();
        }
        Ok(())
    }
}

/// The webhooks service.
#[derive(Debug, Default, Clone, Copy)]
pub struct WebhooksService;

#[async_trait]
impl Service for WebhooksService {
    fintech_kit::service_basics!(SERVICE, SQLITE, MYSQL, ApiDoc);

    async fn start(&self, ctx: ServiceContext) -> anyhow::Result<Started> {
        let config: config::WebhooksConfig = ctx.config.section(&config_key(SERVICE))?;
        let guard = Arc::new(guard::Guard::new(config.networks().map_err(anyhow::Error::msg)?));
        let wake = Arc::new(Notify::new());
        let dispatcher = dispatch::Dispatcher::new(ctx.db.clone(), Arc::clone(&guard), config)
            .context("building the webhook client")?;
        tokio::spawn(dispatcher.run(Arc::clone(&wake), ctx.shutdown.clone()));
        ctx.subscribe_each(SERVICE, TOPICS, |_| Arc::new(Fanout { db: ctx.db.clone(), wake: Arc::clone(&wake) }))
            .await?;
        let state = routes::AppState { db: ctx.db.clone(), guard, wake };
        Ok(Started { router: routes::router(state), checks: Vec::new() })
    }
}
