//! statements: each account's monthly statement, as CSV and PDF in the bucket, downloadable by its
//! owner through a short-lived link.
//!
//! The service learns accounts and their owners from accounts' `account.opened` events. A
//! statement covers one calendar month (UTC) that has ended; it is built from the ledger
//! (`statement.rs`), written to the bucket as `statements/<id>.csv` and `statements/<id>.pdf`, and
//! recorded once per account and month. The monthly job makes the statements of the month just
//! ended for every known account; an owner (or an operator) may ask for any ended month.

pub mod config;
pub mod error;
pub mod pdf;
pub mod routes;
pub mod statement;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use fintech_db::Db;
use fintech_db::sqlx::migrate::Migrator;
use fintech_events::lease::Lease;
use fintech_events::{EventEnvelope, EventHandler, HandlerError};
use fintech_kit::{Service, ServiceContext, Started, config_key};
use fintech_ledger::client::SharedLedger;
use fintech_storage::{ObjectKey, ObjectStore};
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

use crate::error::StatementsError;
use crate::statement::Month;
use crate::store::{KnownAccount, Statement};

pub const SERVICE: &str = "statements";
pub const TOPICS: &[&str] = &["accounts.events"];

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL: Migrator = sqlx::migrate!("./migrations/mysql");

const TOKEN_SCHEME: fintech_kit::BearerScheme = fintech_kit::BearerScheme("bearer");

#[derive(OpenApi)]
#[openapi(
    info(title = "statements", description = "Monthly account statements (CSV and PDF), downloadable by signed link."),
    paths(routes::create_statement, routes::list_statements, routes::get_statement, routes::download),
    components(schemas(store::Statement, routes::StatementView, routes::Links, routes::NewStatement, routes::StatementList,
                       fintech_http::Problem, fintech_http::FieldError)),
    modifiers(&TOKEN_SCHEME),
)]
struct ApiDoc;

/// Makes and keeps statements.
#[derive(Debug, Clone)]
pub struct Statements {
    pub db: Db,
    pub ledger: SharedLedger,
    pub store: Arc<dyn ObjectStore>,
}

/// The monthly job's lease (in the service's `outbox_lease` table): one replica runs a pass.
pub const MONTHLY_LEASE: &str = "statements-monthly";
/// How long the job's lease lasts unless renewed; the pass renews it before each batch of 50.
pub const MONTHLY_LEASE_LENGTH: Duration = Duration::from_secs(300);

/// The bucket keys of a statement's files.
pub fn object_key(id: &str, format: &str) -> Result<ObjectKey, fintech_storage::StorageError> {
    ObjectKey::parse(&format!("statements/{id}.{format}"))
}

impl Statements {
    /// The statement of `account` for `month`, made now if it does not exist yet.
    pub async fn make(&self, account: &KnownAccount, month: Month) -> Result<(Statement, bool), StatementsError> {
        let current = Month::of(&fintech_telemetry::now_rfc3339()).ok_or(StatementsError::MonthNotOver)?;
        if month >= current {
            return Err(StatementsError::MonthNotOver);
        }
        if let Some(existing) = store::by_account_month(&self.db, &account.account_id, &month.to_string()).await? {
            return Ok((existing, false));
        }
        let built = statement::build(self.ledger.as_ref(), &account.account_id, month).await?;
        let s = Statement {
            id: uuid::Uuid::now_v7().to_string(),
            account_id: built.account_id.clone(),
            customer_id: account.customer_id.clone(),
            month: month.to_string(),
            currency: built.currency.clone(),
            opening_minor: built.opening_minor,
            closing_minor: built.closing_minor,
            credits_minor: built.credits_minor,
            debits_minor: built.debits_minor,
            lines: i64::try_from(built.lines.len()).unwrap_or(i64::MAX),
            created_at: fintech_telemetry::now_rfc3339(),
        };
        // Files first: a row always has its files. A concurrent maker's files under another id
        // are left unreferenced (harmless, and rare: one replica runs the job at a time).
        self.store
            .put(&object_key(&s.id, "csv")?, Bytes::from(statement::csv(&built)), "text/csv; charset=utf-8")
            .await?;
        self.store.put(&object_key(&s.id, "pdf")?, Bytes::from(statement::pdf(&built)), "application/pdf").await?;
        if store::insert(&self.db, &s).await? {
            tracing::info!(statement = %s.id, account = %s.account_id, month = %s.month, lines = s.lines, "statement made");
            return Ok((s, true));
        }
        let existing = store::by_account_month(&self.db, &account.account_id, &month.to_string()).await?;
        Ok((existing.ok_or(StatementsError::NotFound)?, false))
    }

    /// One pass of the monthly job: every known account opened before this month without a
    /// statement of last month gets one, in account id order, 50 at a time; `lease` (the job's)
    /// is renewed before each batch after the first, and the pass stops if it was lost. Returns
    /// how many were made and how many failed (tried again at the next pass).
    pub async fn monthly_pass(&self, lease: Option<&Lease>) -> Result<(usize, usize), StatementsError> {
        let now = fintech_telemetry::now_rfc3339();
        let current = Month::of(&now).ok_or(StatementsError::MonthNotOver)?;
        let last = current.previous();
        let (mut made, mut failed) = (0, 0);
        let mut after = String::new();
        loop {
            if !after.is_empty()
                && let Some(lease) = lease
                && !lease.acquire().await?
            {
                tracing::warn!(made, "the monthly statements lease was lost; another replica goes on");
                return Ok((made, failed));
            }
            let batch = store::missing(&self.db, &last.to_string(), &current.to_string(), &after, 50).await?;
            let Some(end) = batch.last() else {
                return Ok((made, failed));
            };
            after = end.account_id.clone();
            for account in &batch {
                match self.make(account, last).await {
                    Ok((_, true)) => made += 1,
                    Ok((_, false)) => {}
                    // One account's failure (the ledger unreachable, an account gone) does not
                    // stop the others; it is tried again at the next pass.
                    Err(e) => {
                        failed += 1;
                        tracing::warn!(account = %account.account_id, month = %last, error = %e, "statement not made");
                    }
                }
            }
        }
    }

    /// The monthly job: every `every`, the replica that holds the job's lease (one at a time)
    /// runs a pass.
    async fn run_monthly(self, every: Duration, shutdown: CancellationToken) {
        let lease = Lease::new(self.db.clone(), MONTHLY_LEASE, MONTHLY_LEASE_LENGTH);
        loop {
            let pass = match lease.acquire().await {
                Ok(true) => self.monthly_pass(Some(&lease)).await,
                Ok(false) => Ok((0, 0)),
                Err(e) => Err(e.into()),
            };
            match pass {
                Ok((0, 0)) => {}
                Ok((made, failed)) => tracing::info!(made, failed, "monthly statements pass"),
                Err(e) => tracing::warn!(error = %e, "monthly statements pass failed; trying again later"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}

/// Learns accounts and their owners.
#[derive(Debug)]
struct Accounts {
    db: Db,
}

#[async_trait]
impl EventHandler for Accounts {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        if event.event_type != "account.opened" {
            return Ok(());
        }
        let d = &event.data;
        let (Some(account_id), Some(customer_id), Some(currency)) =
            (d["account_id"].as_str(), d["customer_id"].as_str(), d["currency"].as_str())
        else {
            return Ok(());
        };
        let account = KnownAccount {
            account_id: account_id.to_owned(),
            customer_id: customer_id.to_owned(),
            currency: currency.to_owned(),
            opened_at: event.time.clone(),
        };
        let (event_id, engine) = (event.id.clone(), self.db.engine());
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    if fintech_events::inbox::claim(conn, engine, SERVICE, &event_id).await? {
                        store::remember_account(conn, &account).await?;
                    }
                    Ok(())
                })
            })
            .await
            .map_err(HandlerError::new)
    }
}

/// The statements service.
#[derive(Debug, Default, Clone, Copy)]
pub struct StatementsService;

#[async_trait]
impl Service for StatementsService {
    fintech_kit::service_basics!(SERVICE, SQLITE, MYSQL, ApiDoc);

    async fn start(&self, ctx: ServiceContext) -> anyhow::Result<Started> {
        let config: config::StatementsConfig = ctx.config.section(&config_key(SERVICE))?;
        let ledger = fintech_ledger::client::for_service(&ctx, SERVICE, config.ledger_url.as_ref())?;
        let statements = Statements { db: ctx.db.clone(), ledger, store: Arc::clone(&ctx.store) };
        ctx.subscribe_each(SERVICE, TOPICS, |_| Arc::new(Accounts { db: ctx.db.clone() })).await?;
        if config.monthly {
            tokio::spawn(
                statements.clone().run_monthly(Duration::from_millis(config.monthly_check_ms), ctx.shutdown.clone()),
            );
        }
        let state = routes::AppState { statements, link_ttl: Duration::from_secs(config.link_ttl_s) };
        Ok(Started { router: routes::router(state), checks: Vec::new() })
    }
}
