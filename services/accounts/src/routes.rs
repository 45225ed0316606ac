//! HTTP routes of accounts, relative to `/api/accounts`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fintech_auth::{Caller, Kind, Role};
use fintech_events::EventEnvelope;
use fintech_http::{ApiJson, FieldError};
use fintech_kit::ServiceContext;
use fintech_ledger::client::SharedLedger;
use fintech_ledger::domain::{AccountStatus, NewAccount};
use serde::{Deserialize, Serialize};

use crate::domain::{
    AccountView, Customer, CustomerKind, KycRequest, KycStatus, NewAccountRequest, NewCustomerRequest,
};
use crate::error::AccountsError;
use crate::{SERVICE, TOPIC, store};

#[derive(Debug, Clone)]
pub struct AppState {
    pub ctx: ServiceContext,
    pub ledger: SharedLedger,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/customers", post(create_customer))
        .route("/v1/customers/{id}", get(get_customer))
        .route("/v1/customers/{id}/kyc", post(set_kyc))
        .route("/v1/accounts", post(open_account))
        .route("/v1/accounts/{id}", get(get_account))
        .route("/v1/accounts/{id}/status", post(set_status))
        .route("/v1/system-accounts", get(list_system_accounts))
        .with_state(state)
}

/// Whether `caller` may see the customer `customer_id`'s data: the customer themselves, support
/// staff, or payments (which checks who owns an account before moving money from it).
fn may_read(caller: &Caller, customer_id: Option<&str>) -> bool {
    caller.has_role(Role::Support)
        || caller.is_service("payments")
        || (customer_id.is_some() && caller.customer_id() == customer_id)
}

fn event(kind: &str, key: &str, data: serde_json::Value) -> EventEnvelope {
    EventEnvelope::new(kind, SERVICE, key, data)
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok_and(|u| u.hyphenated().to_string() == s)
}

/// Register a customer (KYC starts as pending).
#[utoipa::path(post, path = "/api/accounts/v1/customers", tag = "accounts", request_body = NewCustomerRequest,
    security(("bearer" = [])),
    responses((status = 201, body = Customer), (status = 422, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn create_customer(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<NewCustomerRequest>,
) -> Result<Response, AccountsError> {
    // People register themselves (as individuals), merchants their business; the customer's id
    // is their identity user id. Operators may register customers who have no sign-in.
    let id = match caller.kind() {
        Kind::Customer | Kind::Merchant => caller.subject().to_owned(),
        _ => {
            caller.require_role(Role::Operator, "register a customer")?;
            uuid::Uuid::now_v7().to_string()
        }
    };
    let new = req.validate().map_err(AccountsError::Validation)?;
    let expected = match caller.kind() {
        Kind::Customer => Some(CustomerKind::Individual),
        Kind::Merchant => Some(CustomerKind::Business),
        _ => None,
    };
    if expected.is_some_and(|k| k != new.kind) {
        let want = expected.map(|k| k.as_str()).unwrap_or_default();
        return Err(AccountsError::Validation(vec![FieldError::new(
            "kind",
            "invalid_kind",
            format!("this sign-in registers a customer of kind `{want}`"),
        )]));
    }
    let now = fintech_telemetry::now_rfc3339();
    let customer = Customer {
        id,
        kind: new.kind,
        name: new.name,
        email: new.email.as_str().to_owned(),
        phone: new.phone.map(|p| p.as_str().to_owned()),
        kyc_status: KycStatus::Pending,
        created_at: now.clone(),
        updated_at: now,
    };
    let mut tx = state.ctx.db.begin_write().await?;
    match store::insert_customer(&mut tx, &customer).await {
        Err(e) if fintech_db::is_unique_violation(&e) => return Err(AccountsError::CustomerExists),
        other => other?,
    }
    // The name and addresses go with the event: notifications writes to the customer with them.
    let data = serde_json::json!({ "customer_id": customer.id, "kind": customer.kind, "kyc_status": "pending",
                                   "name": customer.name, "email": customer.email, "phone": customer.phone });
    fintech_events::outbox::stage(&mut tx, TOPIC, &event("customer.created", &customer.id, data)).await?;
    tx.commit().await?;
    state.ctx.events_committed();
    Ok((StatusCode::CREATED, axum::Json(customer)).into_response())
}

async fn find_customer(state: &AppState, id: &str) -> Result<Customer, AccountsError> {
    if !is_uuid(id) {
        return Err(AccountsError::NotFound);
    }
    let mut conn = state.ctx.db.pool().acquire().await?;
    store::customer(&mut conn, id).await?.ok_or(AccountsError::NotFound)
}

/// A customer.
#[utoipa::path(get, path = "/api/accounts/v1/customers/{id}", tag = "accounts", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Customer), (status = 404, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn get_customer(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Customer>, AccountsError> {
    // Another customer's id answers 404, as a missing one: ids are not confirmed to strangers.
    if !may_read(&caller, Some(&id)) {
        return Err(AccountsError::NotFound);
    }
    Ok(axum::Json(find_customer(&state, &id).await?))
}

/// Record the KYC decision for a customer.
#[utoipa::path(post, path = "/api/accounts/v1/customers/{id}/kyc", tag = "accounts", request_body = KycRequest,
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Customer), (status = 404, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 422, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn set_kyc(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<KycRequest>,
) -> Result<axum::Json<Customer>, AccountsError> {
    caller.require_role(Role::Operator, "record a KYC decision")?;
    let status = req.status.as_deref().and_then(KycStatus::parse).ok_or_else(|| {
        AccountsError::Validation(vec![FieldError::new(
            "status",
            "invalid_status",
            "`status` must be pending, verified or rejected",
        )])
    })?;
    if !is_uuid(&id) {
        return Err(AccountsError::NotFound);
    }
    let now = fintech_telemetry::now_rfc3339();
    let mut tx = state.ctx.db.begin_write().await?;
    if !store::set_kyc(&mut tx, &id, status, &now).await? {
        return Err(AccountsError::NotFound);
    }
    let data = serde_json::json!({ "customer_id": id, "kyc_status": status });
    fintech_events::outbox::stage(&mut tx, TOPIC, &event("customer.kyc_changed", &id, data)).await?;
    tx.commit().await?;
    state.ctx.events_committed();
    Ok(axum::Json(find_customer(&state, &id).await?))
}

/// Open the customer's account in a currency (after KYC). Individuals get a customer account,
/// businesses a merchant account; neither may go below zero.
#[utoipa::path(post, path = "/api/accounts/v1/accounts", tag = "accounts", request_body = NewAccountRequest,
    security(("bearer" = [])),
    responses((status = 201, body = AccountView), (status = 409, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 422, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn open_account(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<NewAccountRequest>,
) -> Result<Response, AccountsError> {
    let (customer_id, currency) = req.validate().map_err(AccountsError::Validation)?;
    // Customers open their own accounts, operators anyone's; someone else's customer id is
    // answered as an unknown one.
    let own = caller.customer_id() == Some(customer_id.as_str());
    if !own && !caller.has_role(Role::Operator) {
        if caller.customer_id().is_none() {
            caller.require(false, "open an account")?;
        }
        return Err(AccountsError::CustomerNotFound);
    }
    let mut tx = state.ctx.db.begin_write().await?;
    let customer = store::customer(&mut tx, &customer_id).await?.ok_or(AccountsError::CustomerNotFound)?;
    if customer.kyc_status != KycStatus::Verified {
        return Err(AccountsError::KycNotVerified);
    }
    if let Some(existing) = store::account_of(&mut tx, &customer_id, currency.code()).await? {
        return Err(AccountsError::AccountExists(existing.id));
    }
    let account = AccountView {
        id: format!("acc_{}", uuid::Uuid::now_v7().simple()),
        customer_id: Some(customer_id.clone()),
        kind: customer.kind.account_kind().to_owned(),
        currency: currency.code().to_owned(),
        status: "open".into(),
        created_at: fintech_telemetry::now_rfc3339(),
        balance_minor: None,
        available_minor: None,
    };
    // The ledger account first: if this transaction then fails, an unused empty ledger account
    // remains, which is harmless; the reverse would leave an account that cannot hold money.
    let ledger =
        state.ledger.open_account(&NewAccount { id: account.id.clone(), currency, allow_overdraft: false }).await?;
    match store::insert_account(&mut tx, &account).await {
        Err(e) if fintech_db::is_unique_violation(&e) => {
            return Err(AccountsError::AccountExists("opened concurrently".into()));
        }
        other => other?,
    }
    let data = serde_json::json!({ "account_id": account.id, "customer_id": customer_id, "kind": account.kind,
                                   "currency": account.currency });
    fintech_events::outbox::stage(&mut tx, TOPIC, &event("account.opened", &account.id, data)).await?;
    tx.commit().await?;
    state.ctx.events_committed();
    let view = AccountView {
        balance_minor: Some(ledger.balance_minor),
        available_minor: Some(ledger.available_minor),
        ..account
    };
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

async fn account_view(state: &AppState, id: &str) -> Result<AccountView, AccountsError> {
    if id.len() > 64 {
        return Err(AccountsError::NotFound);
    }
    let account = store::account(&state.ctx.db, id).await?.ok_or(AccountsError::NotFound)?;
    let balances = state.ledger.account(id).await?;
    Ok(AccountView {
        balance_minor: Some(balances.balance_minor),
        available_minor: Some(balances.available_minor),
        status: balances.status.as_str().to_owned(),
        ..account
    })
}

/// An account with its balances.
#[utoipa::path(get, path = "/api/accounts/v1/accounts/{id}", tag = "accounts", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = AccountView), (status = 404, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn get_account(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<AccountView>, AccountsError> {
    if id.len() > 64 {
        return Err(AccountsError::NotFound);
    }
    let account = store::account(&state.ctx.db, &id).await?.ok_or(AccountsError::NotFound)?;
    if !may_read(&caller, account.customer_id.as_deref()) {
        return Err(AccountsError::NotFound);
    }
    Ok(axum::Json(account_view(&state, &id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    pub status: Option<String>,
}

/// Freeze, unfreeze or close an account (closing needs zero balance and no holds).
#[utoipa::path(post, path = "/api/accounts/v1/accounts/{id}/status", tag = "accounts", request_body = StatusRequest,
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = AccountView), (status = 404, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 409, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn set_status(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<StatusRequest>,
) -> Result<axum::Json<AccountView>, AccountsError> {
    caller.require_role(Role::Operator, "change an account's status")?;
    let status = req.status.as_deref().and_then(AccountStatus::parse).ok_or_else(|| {
        AccountsError::Validation(vec![FieldError::new(
            "status",
            "invalid_status",
            "`status` must be open, frozen or closed",
        )])
    })?;
    let account = store::account(&state.ctx.db, &id).await?.ok_or(AccountsError::NotFound)?;
    if account.kind == "system" {
        return Err(AccountsError::StatusChange("System accounts cannot change status."));
    }
    // The ledger decides (it knows the balances); this service records the outcome.
    state.ledger.set_status(&id, status).await?;
    let mut tx = state.ctx.db.begin_write().await?;
    store::set_account_status(&mut tx, &id, status.as_str()).await?;
    let data = serde_json::json!({ "account_id": id, "status": status.as_str() });
    fintech_events::outbox::stage(&mut tx, TOPIC, &event("account.status_changed", &id, data)).await?;
    tx.commit().await?;
    state.ctx.events_committed();
    Ok(axum::Json(account_view(&state, &id).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SystemAccounts {
    pub items: Vec<AccountView>,
}

/// The platform's system accounts (settlement, fees, funding per currency).
#[utoipa::path(get, path = "/api/accounts/v1/system-accounts", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = SystemAccounts)))]
pub async fn list_system_accounts(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<axum::Json<SystemAccounts>, AccountsError> {
    caller.require_role(Role::Support, "list system accounts")?;
    Ok(axum::Json(SystemAccounts { items: store::system_accounts(&state.ctx.db).await? }))
}
