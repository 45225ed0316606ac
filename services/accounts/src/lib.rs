//! accounts: customers (KYC status) and their accounts per currency; merchant accounts for
//! businesses; the platform's system accounts (settlement, fees, funding). Money itself lives in
//! the ledger: every account here has a ledger account with the same id. Emits
//! `customer.created`, `customer.kyc_changed`, `account.opened`, `account.status_changed` on
//! `accounts.events`.

pub mod client;
pub mod config;
pub mod domain;
pub mod error;
pub mod routes;
pub mod store;

use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;

use fintech_kit::{Service, ServiceContext, Started, config_key};
use fintech_ledger::client::SharedLedger;
use fintech_ledger::domain::NewAccount;
use sqlx::migrate::Migrator;
use utoipa::OpenApi;

use crate::domain::{AccountView, SYSTEM_PURPOSES, system_account_id};

pub const SERVICE: &str = "accounts";
pub const TOPIC: &str = "accounts.events";

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL: Migrator = sqlx::migrate!("./migrations/mysql");

/// Access tokens from identity.
const TOKEN_SCHEME: fintech_kit::BearerScheme = fintech_kit::BearerScheme("bearer");

#[derive(OpenApi)]
#[openapi(
    info(title = "accounts", description = "Customers, KYC and accounts."),
    paths(
        routes::create_customer, routes::get_customer, routes::set_kyc, routes::open_account, routes::get_account,
        routes::set_status, routes::list_system_accounts,
    ),
    components(schemas(fintech_http::Problem, fintech_http::FieldError)),
    modifiers(&TOKEN_SCHEME),
)]
struct ApiDoc;

/// The accounts service. Starts after the ledger when both run in one process.
#[derive(Debug, Default, Clone, Copy)]
pub struct AccountsService;

/// Creates the system accounts of `currencies` in the ledger and here (idempotent).
async fn ensure_system_accounts(
    ctx: &ServiceContext,
    ledger: &SharedLedger,
    currencies: &[String],
) -> anyhow::Result<()> {
    for code in currencies {
        let currency: fintech_money::Currency = code.parse()?;
        for purpose in SYSTEM_PURPOSES {
            let id = system_account_id(purpose, currency);
            ledger
                .open_account(&NewAccount { id: id.clone(), currency, allow_overdraft: true })
                .await
                .with_context(|| format!("opening the ledger account {id}"))?;
            let account = AccountView {
                id,
                customer_id: None,
                kind: "system".into(),
                currency: currency.code().to_owned(),
                status: "open".into(),
                created_at: fintech_telemetry::now_rfc3339(),
                balance_minor: None,
                available_minor: None,
            };
            let mut conn = ctx.db.pool().acquire().await?;
            match store::insert_account(&mut conn, &account).await {
                Err(e) if fintech_db::is_unique_violation(&e) => {}
                other => other?,
            }
        }
    }
    Ok(())
}

#[async_trait]
impl Service for AccountsService {
    fintech_kit::service_basics!(SERVICE, SQLITE, MYSQL, ApiDoc);

    async fn start(&self, ctx: ServiceContext) -> anyhow::Result<Started> {
        let config: config::AccountsConfig = ctx.config.section(&config_key(SERVICE))?;
        let ledger = fintech_ledger::client::for_service(&ctx, SERVICE, config.ledger_url.as_ref())?;
        ensure_system_accounts(&ctx, &ledger, &config.system_currencies).await?;
        // Payments in this process asks who owns an account without a network hop.
        ctx.registry.provide::<client::SharedAccounts>(Arc::new(client::InProcess::new(ctx.db.clone())));
        let state = routes::AppState { ctx, ledger };
        Ok(Started { router: routes::router(state), checks: Vec::new() })
    }
}
