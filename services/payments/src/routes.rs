//! HTTP routes of payments, relative to `/api/payments`. Every POST carries an
//! `Idempotency-Key`; the ids of everything a request creates (the payment, its ledger
//! transfers) are derived from that key and the caller, so a retry can never move money twice.
//!
//! Who may do what: customers and merchants pay and transfer from their own accounts (merchant
//! API keys need `payments:write`); the payee (a merchant with `payments:manage`) captures,
//! cancels and refunds; both parties and support staff read; operators top accounts up and may
//! capture, cancel and refund. Another customer's payment answers 404.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use fintech_accounts::client::{DirectoryError, SharedAccounts};
use fintech_auth::{Caller, Kind, Role, scopes};
use fintech_events::EventEnvelope;
use fintech_http::ApiJson;
use fintech_kit::ServiceContext;
use fintech_kit::idempotency::IdempotencyKey;
use fintech_ledger::client::SharedLedger;
use fintech_ledger::domain::{DEFAULT_PENDING_TIMEOUT_MS, NewTransfer, Resolve, TransferKind};
use fintech_ledger::error::{LedgerError, Side};
use fintech_risk::client::{AssessError, SharedRisk};
use fintech_risk::domain::AssessmentRequest;
use fintech_risk::rules::Decision;
use fintech_vault::acquirer::Outcome;
use fintech_vault::cards::ChargeRequest;
use fintech_vault::client::{ChargeError, SharedVault};

use crate::domain::{
    AmountRequest, NewCardPaymentRequest, NewPayment, NewPaymentRequest, NewTransferRequest, Payment, TopupRequest,
};
use crate::error::PaymentsError;
use crate::{SERVICE, TOPIC, store};

#[derive(Debug, Clone)]
pub struct AppState {
    pub ctx: ServiceContext,
    pub ledger: SharedLedger,
    pub accounts: SharedAccounts,
    pub vault: SharedVault,
    pub risk: SharedRisk,
    pub trust_forwarded_for: bool,
}

/// The client's address, for risk's velocity rules.
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

impl axum::extract::FromRequestParts<AppState> for ClientIp {
    type Rejection = PaymentsError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(fintech_http::extract::client_ip(parts, state.trust_forwarded_for)))
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/payments", post(create_payment))
        .route("/v1/payments/{id}", get(get_payment))
        .route("/v1/payments/{id}/capture", post(capture))
        .route("/v1/payments/{id}/cancel", post(cancel))
        .route("/v1/payments/{id}/refunds", post(refund))
        .route("/v1/card-payments", post(create_card_payment))
        .route("/v1/transfers", post(create_transfer))
        .route("/v1/topups", post(create_topup))
        .with_state(state)
}

/// The customers owning the two accounts of a new payment.
struct Parties {
    payer: Option<String>,
    payee: Option<String>,
}

fn unknown_account(side: Side) -> PaymentsError {
    PaymentsError::Ledger(LedgerError::AccountNotFound(side))
}

async fn owner(state: &AppState, account_id: &str, side: Side) -> Result<Option<String>, PaymentsError> {
    match state.accounts.owner(account_id).await {
        Ok(owner) => Ok(owner.customer_id),
        Err(DirectoryError::NotFound) => Err(unknown_account(side)),
        Err(DirectoryError::Unavailable) => Err(PaymentsError::AccountsUnavailable),
    }
}

/// Checks that `caller` may move money out of `payer` (their own account; an account of
/// someone else answers as a missing one) and finds both parties.
async fn paying_parties(state: &AppState, caller: &Caller, payer: &str, payee: &str) -> Result<Parties, PaymentsError> {
    caller.require(
        matches!(caller.kind(), Kind::Customer | Kind::Merchant) && caller.has_scope(scopes::PAYMENTS_WRITE),
        "make a payment",
    )?;
    let payer_owner = owner(state, payer, Side::Debit).await?;
    if payer_owner.is_none() || payer_owner.as_deref() != caller.customer_id() {
        tracing::warn!(target: "security", event = "foreign_account_refused", subject = %caller.subject(),
            "refused a payment from an account the caller does not own");
        return Err(unknown_account(Side::Debit));
    }
    let payee_owner = owner(state, payee, Side::Credit).await?;
    Ok(Parties { payer: payer_owner, payee: payee_owner })
}

/// Whether `caller` is a party to `p` (or support staff): otherwise the payment is answered as
/// missing.
fn may_see(caller: &Caller, p: &Payment) -> bool {
    if caller.has_role(Role::Support) {
        return true;
    }
    let party = caller
        .customer_id()
        .is_some_and(|c| p.payer_customer_id.as_deref() == Some(c) || p.payee_customer_id.as_deref() == Some(c));
    let scoped =
        [scopes::PAYMENTS_READ, scopes::PAYMENTS_WRITE, scopes::PAYMENTS_MANAGE].iter().any(|s| caller.has_scope(s));
    party && scoped
}

/// Whether `caller` may capture, cancel or refund `p`: its payee (with `payments:manage`) or an
/// operator.
fn may_manage(caller: &Caller, p: &Payment) -> Result<(), PaymentsError> {
    if !may_see(caller, p) {
        return Err(PaymentsError::NotFound);
    }
    let payee = caller.customer_id().is_some() && p.payee_customer_id.as_deref() == caller.customer_id();
    caller.require(
        (payee && caller.has_scope(scopes::PAYMENTS_MANAGE)) || caller.has_role(Role::Operator),
        "manage a payment",
    )?;
    Ok(())
}

/// A ledger refusal after an earlier leg of the same request moved money: internal (logged,
/// 5xx, not stored under the key), never a client error that would freeze a half-done payment.
fn after_money_moved(e: fintech_ledger::error::LedgerError) -> PaymentsError {
    tracing::error!(error = &e as &dyn std::error::Error, "a later leg of a payment was refused");
    PaymentsError::Ledger(fintech_ledger::error::LedgerError::Invariant("a later leg of a payment was refused"))
}

fn fees_account(currency: &str) -> String {
    format!("system:fees:{currency}")
}

/// Records the payment and its event; a payment already stored under this id (a retry after an
/// answer was lost) is returned as it is.
///
/// A small write: it goes through the database's group commit, sharing its transaction and
/// fsync with the other requests' writes of the moment.
async fn record(state: &AppState, payment: Payment, event: &'static str) -> Result<Response, PaymentsError> {
    let stored = state
        .ctx
        .db
        .write(move |conn| {
            Box::pin(async move {
                if let Some(existing) = store::get(conn, &payment.id).await? {
                    return Ok((existing, false));
                }
                store::insert(conn, &payment).await?;
                stage(conn, event, &payment).await?;
                Ok((payment, true))
            })
        })
        .await?;
    let (payment, new) = stored;
    if new {
        state.ctx.events_committed();
    }
    Ok((StatusCode::CREATED, axum::Json(payment)).into_response())
}

async fn stage(conn: &mut sqlx::AnyConnection, event: &str, p: &Payment) -> Result<(), sqlx::Error> {
    let data = serde_json::to_value(p).unwrap_or_default();
    fintech_events::outbox::stage(conn, TOPIC, &EventEnvelope::new(event, SERVICE, p.id.clone(), data)).await
}

fn new_payment(id: String, kind: &str, n: &NewPayment, parties: Parties, status: &str, captured: i64) -> Payment {
    let now = fintech_telemetry::now_rfc3339();
    Payment {
        id,
        kind: kind.to_owned(),
        payer_account_id: n.payer.clone(),
        payee_account_id: n.payee.clone(),
        amount_minor: n.amount_minor,
        currency: n.currency.code().to_owned(),
        fee_minor: n.fee_minor,
        status: status.to_owned(),
        captured_minor: captured,
        refunded_minor: 0,
        description: n.description.clone(),
        created_at: now.clone(),
        updated_at: now,
        payer_customer_id: parties.payer,
        payee_customer_id: parties.payee,
        card_token: None,
        card_last4: None,
        decline_code: None,
    }
}

/// Pay a merchant: capture at once, or authorize (hold) to capture later.
#[utoipa::path(post, path = "/api/payments/v1/payments", tag = "payments", request_body = NewPaymentRequest,
    params(("Idempotency-Key" = String, Header)), security(("bearer" = [])),
    responses((status = 201, body = Payment), (status = 409, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 422, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn create_payment(
    caller: Caller,
    State(state): State<AppState>,
    Extension(key): Extension<IdempotencyKey>,
    ApiJson(req): ApiJson<NewPaymentRequest>,
) -> Result<Response, PaymentsError> {
    let n = req.validate().map_err(PaymentsError::Validation)?;
    let parties = paying_parties(&state, &caller, &n.payer, &n.payee).await?;
    let id = key.derive_id("pay");
    let fees = fees_account(n.currency.code());
    // Before any money moves: a fee needs the currency's fees account.
    check_fees_account(&state, &n).await?;
    let (status, captured, event) = if n.capture {
        let leg = NewTransfer::new(format!("{id}:charge"), &n.payer, &n.payee, n.amount_minor, n.currency, "payment");
        state.ledger.transfer(leg.with_reference(&id)).await?;
        if n.fee_minor > 0 {
            let fee = NewTransfer::new(format!("{id}:fee"), &n.payee, &fees, n.fee_minor, n.currency, "fee");
            // The charge went through: a refused fee is our failure, answered 5xx so that the
            // answer is not stored and a retry (same ids) completes the payment.
            state.ledger.transfer(fee.with_reference(&id)).await.map_err(after_money_moved)?;
        }
        ("captured", n.amount_minor, "payment.captured")
    } else {
        let leg = NewTransfer::new(format!("{id}:hold"), &n.payer, &n.payee, n.amount_minor, n.currency, "payment");
        state.ledger.transfer(leg.with_reference(&id).as_hold(DEFAULT_PENDING_TIMEOUT_MS)).await?;
        ("authorized", 0, "payment.authorized")
    };
    record(&state, new_payment(id, "payment", &n, parties, status, captured), event).await
}

/// Checks that the currency's fees account exists before any money moves (a fee needs it).
async fn check_fees_account(state: &AppState, n: &NewPayment) -> Result<(), PaymentsError> {
    if n.fee_minor == 0 {
        return Ok(());
    }
    // Only a missing account refuses the payment; a failure to ask is ours (5xx, not stored
    // under the key, so the retry asks again).
    state.ledger.account(&fees_account(n.currency.code())).await.map(|_| ()).map_err(|e| match e {
        LedgerError::NotFound => PaymentsError::FeesUnavailable,
        other => PaymentsError::Ledger(other),
    })
}

/// Pay a merchant with a stored card: vault has the card authorized at the acquirer; an
/// approved charge moves the money from the acquirer's settlement account to the payee (less
/// the fee), a declined one is recorded as `declined` and answered 402 `card_declined`. No
/// answer from the acquirer is a 503 or 504 without a stored answer: retry with the same key,
/// the card is never charged twice (the charge id comes from the key).
#[utoipa::path(post, path = "/api/payments/v1/card-payments", tag = "payments", request_body = NewCardPaymentRequest,
    params(("Idempotency-Key" = String, Header)), security(("bearer" = [])),
    responses((status = 201, body = Payment), (status = 402, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 422, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 503, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn create_card_payment(
    caller: Caller,
    ip: ClientIp,
    State(state): State<AppState>,
    Extension(key): Extension<IdempotencyKey>,
    ApiJson(req): ApiJson<NewCardPaymentRequest>,
) -> Result<Response, PaymentsError> {
    caller.require(caller.kind() == Kind::Customer, "pay by card")?;
    let card = req.validate().map_err(PaymentsError::Validation)?;
    let n = &card.payment;
    let parties =
        Parties { payer: Some(caller.subject().to_owned()), payee: owner(&state, &n.payee, Side::Credit).await? };
    check_fees_account(&state, n).await?;
    // Before the card is charged, the payee must be able to receive this money: a charge must
    // never be left without its payment. (A payee frozen between this check and the transfer
    // still is: NOT YET voided at the acquirer; the transfer's 5xx leaves it for a retry.)
    let payee = state.ledger.account(&n.payee).await.map_err(|e| match e {
        LedgerError::NotFound => unknown_account(Side::Credit),
        other => PaymentsError::Ledger(other),
    })?;
    if payee.currency != n.currency.code() {
        return Err(PaymentsError::Ledger(LedgerError::CurrencyMismatch(Side::Credit)));
    }
    match payee.status {
        fintech_ledger::domain::AccountStatus::Open => {}
        fintech_ledger::domain::AccountStatus::Frozen => {
            return Err(PaymentsError::Ledger(LedgerError::AccountFrozen(Side::Credit)));
        }
        fintech_ledger::domain::AccountStatus::Closed => {
            return Err(PaymentsError::Ledger(LedgerError::AccountClosed(Side::Credit)));
        }
    }
    let id = key.derive_id("cp");
    // Risk judges the attempt before vault charges anything; no verdict, no charge.
    let facts = state.vault.card(&card.card_token, caller.subject()).await.map_err(|e| match e {
        ChargeError::NotFound => PaymentsError::CardNotFound,
        _ => PaymentsError::AcquirerUnavailable,
    })?;
    let attempt = AssessmentRequest {
        id: id.clone(),
        customer_id: caller.subject().to_owned(),
        card_fingerprint: Some(facts.fingerprint.clone()),
        bin: Some(facts.bin.clone()),
        ip: Some(ip.0).filter(|a| a != "unknown"),
        amount_minor: n.amount_minor,
        currency: n.currency.code().to_owned(),
    };
    let verdict = state.risk.assess(&attempt).await.map_err(|e| match e {
        AssessError::Unavailable => PaymentsError::RiskUnavailable,
        // The key's payment id was judged for another attempt (its stored answer was purged):
        // the key is spent, as it is for vault.
        AssessError::Refused(code) if code == "assessment_id_reused" => PaymentsError::ChargeIdReused,
        // Anything else is a bug of ours, not something a retry fixes.
        AssessError::Refused(code) => PaymentsError::RiskRefused(code),
    })?;
    if verdict.decision == Decision::Decline {
        let mut payment = new_payment(id.clone(), "card", n, parties, "declined", 0);
        payment.card_token = Some(card.card_token.clone());
        payment.card_last4 = Some(facts.last4.clone());
        payment.decline_code = Some(crate::RISK_DECLINED.into());
        record(&state, payment, "payment.declined").await?;
        return Err(PaymentsError::CardDeclined { payment_id: id, decline_code: crate::RISK_DECLINED.into() });
    }
    let charge = ChargeRequest {
        charge_id: id.clone(),
        token: card.card_token.clone(),
        customer_id: caller.subject().to_owned(),
        amount_minor: n.amount_minor,
        currency: n.currency.code().to_owned(),
    };
    let result = state.vault.charge(&charge, req.cvv.as_deref()).await.map_err(|e| match e {
        ChargeError::NotFound => PaymentsError::CardNotFound,
        ChargeError::InvalidCvv => PaymentsError::Validation(vec![fintech_http::FieldError::new(
            "cvv",
            "invalid_cvv",
            "`cvv` must be 3 digits (4 for American Express)",
        )]),
        ChargeError::ChargeIdReused => PaymentsError::ChargeIdReused,
        ChargeError::Unknown => PaymentsError::AcquirerUnavailable,
    })?;
    let mut payment = new_payment(id.clone(), "card", n, parties, "captured", n.amount_minor);
    payment.card_token = Some(card.card_token.clone());
    payment.card_last4 = Some(result.last4.clone());
    match result.outcome {
        Outcome::Approved { .. } => {
            let leg =
                NewTransfer::new(format!("{id}:card"), &n.payer, &n.payee, n.amount_minor, n.currency, "card_payment");
            state.ledger.transfer(leg.with_reference(&id)).await.map_err(after_money_moved)?;
            if n.fee_minor > 0 {
                let fee = NewTransfer::new(
                    format!("{id}:fee"),
                    &n.payee,
                    &fees_account(n.currency.code()),
                    n.fee_minor,
                    n.currency,
                    "fee",
                );
                state.ledger.transfer(fee.with_reference(&id)).await.map_err(after_money_moved)?;
            }
            record(&state, payment, "payment.captured").await
        }
        Outcome::Declined { decline_code } => {
            payment.status = "declined".into();
            payment.captured_minor = 0;
            payment.decline_code = Some(decline_code.clone());
            record(&state, payment, "payment.declined").await?;
            Err(PaymentsError::CardDeclined { payment_id: id, decline_code })
        }
    }
}

/// Move money between two accounts.
#[utoipa::path(post, path = "/api/payments/v1/transfers", tag = "payments", request_body = NewTransferRequest,
    params(("Idempotency-Key" = String, Header)), security(("bearer" = [])),
    responses((status = 201, body = Payment), (status = 409, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 422, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn create_transfer(
    caller: Caller,
    State(state): State<AppState>,
    Extension(key): Extension<IdempotencyKey>,
    ApiJson(req): ApiJson<NewTransferRequest>,
) -> Result<Response, PaymentsError> {
    let n = req.validate().map_err(PaymentsError::Validation)?;
    let parties = paying_parties(&state, &caller, &n.payer, &n.payee).await?;
    let id = key.derive_id("tr");
    let leg = NewTransfer::new(format!("{id}:transfer"), &n.payer, &n.payee, n.amount_minor, n.currency, "transfer");
    state.ledger.transfer(leg.with_reference(&id)).await?;
    record(&state, new_payment(id, "transfer", &n, parties, "succeeded", n.amount_minor), "transfer.completed").await
}

/// Add money to an account from the funding system account.
#[utoipa::path(post, path = "/api/payments/v1/topups", tag = "payments", request_body = TopupRequest,
    params(("Idempotency-Key" = String, Header)), security(("bearer" = [])),
    responses((status = 201, body = Payment), (status = 422, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn create_topup(
    caller: Caller,
    State(state): State<AppState>,
    Extension(key): Extension<IdempotencyKey>,
    ApiJson(req): ApiJson<TopupRequest>,
) -> Result<Response, PaymentsError> {
    caller.require_role(Role::Operator, "top up an account")?;
    let n = req.validate().map_err(PaymentsError::Validation)?;
    let parties = Parties { payer: None, payee: owner(&state, &n.payee, Side::Credit).await? };
    let id = key.derive_id("tu");
    let leg = NewTransfer::new(format!("{id}:topup"), &n.payer, &n.payee, n.amount_minor, n.currency, "funding");
    state.ledger.transfer(leg.with_reference(&id)).await?;
    record(&state, new_payment(id, "topup", &n, parties, "succeeded", n.amount_minor), "topup.completed").await
}

fn payment_id(id: &str) -> Result<&str, PaymentsError> {
    if fintech_ledger::domain::valid_id(id) { Ok(id) } else { Err(PaymentsError::NotFound) }
}

/// A payment.
#[utoipa::path(get, path = "/api/payments/v1/payments/{id}", tag = "payments", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Payment), (status = 404, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn get_payment(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Payment>, PaymentsError> {
    let mut conn = state.ctx.db.pool().acquire().await?;
    let payment = store::get(&mut conn, payment_id(&id)?).await?.ok_or(PaymentsError::NotFound)?;
    if !matches!(payment.kind.as_str(), "payment" | "card") || !may_see(&caller, &payment) {
        return Err(PaymentsError::NotFound);
    }
    Ok(axum::Json(payment))
}

/// Runs `change` on the locked payment inside one transaction and, when it changed something
/// (`Ok(true)`), records the result with `event`. `Ok(false)` means the change was already
/// recorded (a retry): the payment is returned as it is.
async fn change<F>(
    state: &AppState,
    caller: &Caller,
    id: &str,
    event: &str,
    change: F,
) -> Result<axum::Json<Payment>, PaymentsError>
where
    F: AsyncFnOnce(&mut Payment, &mut sqlx::AnyConnection) -> Result<bool, PaymentsError>,
{
    let mut tx = state.ctx.db.begin_write().await?;
    let mut payment =
        store::lock(&mut tx, state.ctx.db.engine(), payment_id(id)?).await?.ok_or(PaymentsError::NotFound)?;
    if !matches!(payment.kind.as_str(), "payment" | "card") {
        return Err(PaymentsError::NotFound);
    }
    may_manage(caller, &payment)?;
    if payment.kind == "card" {
        // NOT YET: captures, cancels and refunds of card payments go through the acquirer.
        return Err(PaymentsError::CardPaymentChange);
    }
    payment.updated_at = fintech_telemetry::now_rfc3339();
    if !change(&mut payment, &mut tx).await? {
        let current = store::get(&mut tx, &payment.id).await?.ok_or(PaymentsError::NotFound)?;
        return Ok(axum::Json(current));
    }
    store::update(&mut tx, &payment).await?;
    stage(&mut tx, event, &payment).await?;
    tx.commit().await?;
    state.ctx.events_committed();
    Ok(axum::Json(payment))
}

/// Capture an authorized payment, all of it or part (the rest of the hold is released).
#[utoipa::path(post, path = "/api/payments/v1/payments/{id}/capture", tag = "payments", request_body = AmountRequest,
    params(("id" = String, Path), ("Idempotency-Key" = String, Header)), security(("bearer" = [])),
    responses((status = 200, body = Payment), (status = 409, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn capture(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AmountRequest>,
) -> Result<axum::Json<Payment>, PaymentsError> {
    let amount = req.validate(false).map_err(PaymentsError::Validation)?;
    let ledger = state.ledger.clone();
    change(&state, &caller, &id, "payment.captured", async |p: &mut Payment, _: &mut sqlx::AnyConnection| {
        let captured = amount.unwrap_or(p.amount_minor);
        // The same capture again (a retry whose first answer was lost): it is done, say so.
        let done = matches!(p.status.as_str(), "captured" | "partially_refunded" | "refunded");
        if done && p.captured_minor == captured {
            return Ok(false);
        }
        if p.status != "authorized" {
            return Err(PaymentsError::InvalidState(p.status.clone()));
        }
        let post = Resolve {
            id: format!("{}:capture", p.id),
            pending_id: format!("{}:hold", p.id),
            kind: TransferKind::Post,
            amount_minor: Some(captured),
        };
        ledger.resolve(post).await?;
        let fee = p.fee_minor.min(captured);
        if fee > 0 {
            let currency = p.currency.parse().map_err(|_| PaymentsError::InvalidState("unreadable".into()))?;
            let fees = fees_account(&p.currency);
            let t = NewTransfer::new(format!("{}:fee", p.id), &p.payee_account_id, &fees, fee, currency, "fee");
            ledger.transfer(t.with_reference(&p.id)).await.map_err(after_money_moved)?;
        }
        p.captured_minor = captured;
        p.status = "captured".into();
        Ok(true)
    })
    .await
}

/// Cancel an authorized payment: its hold is released.
#[utoipa::path(post, path = "/api/payments/v1/payments/{id}/cancel", tag = "payments",
    params(("id" = String, Path), ("Idempotency-Key" = String, Header)), security(("bearer" = [])),
    responses((status = 200, body = Payment), (status = 409, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn cancel(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Payment>, PaymentsError> {
    let ledger = state.ledger.clone();
    change(&state, &caller, &id, "payment.canceled", async |p: &mut Payment, _: &mut sqlx::AnyConnection| {
        // Canceling twice has the effect of canceling once.
        if p.status == "canceled" {
            return Ok(false);
        }
        if p.status != "authorized" {
            return Err(PaymentsError::InvalidState(p.status.clone()));
        }
        let void = Resolve {
            id: format!("{}:void", p.id),
            pending_id: format!("{}:hold", p.id),
            kind: TransferKind::Void,
            amount_minor: None,
        };
        ledger.resolve(void).await?;
        p.status = "canceled".into();
        Ok(true)
    })
    .await
}

/// Refund part or all of what was captured; refunds never add up to more.
#[utoipa::path(post, path = "/api/payments/v1/payments/{id}/refunds", tag = "payments", request_body = AmountRequest,
    params(("id" = String, Path), ("Idempotency-Key" = String, Header)), security(("bearer" = [])),
    responses((status = 200, body = Payment), (status = 409, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 422, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn refund(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(key): Extension<IdempotencyKey>,
    ApiJson(req): ApiJson<AmountRequest>,
) -> Result<axum::Json<Payment>, PaymentsError> {
    let amount = req.validate(true).map_err(PaymentsError::Validation)?.unwrap_or_default();
    let ledger = state.ledger.clone();
    let refund_id = key.derive_id("re");
    change(&state, &caller, &id, "payment.refunded", async |p: &mut Payment, conn: &mut sqlx::AnyConnection| {
        // A retry of a refund whose answer was lost: it is recorded already, count it once.
        if store::refund_exists(conn, &refund_id).await? {
            return Ok(false);
        }
        if !matches!(p.status.as_str(), "captured" | "partially_refunded") {
            return Err(PaymentsError::InvalidState(p.status.clone()));
        }
        let total = p.refunded_minor.checked_add(amount).filter(|t| *t <= p.captured_minor);
        let Some(total) = total else { return Err(PaymentsError::RefundExceedsCaptured) };
        let currency = p.currency.parse().map_err(|_| PaymentsError::InvalidState("unreadable".into()))?;
        let leg = NewTransfer::new(
            format!("{refund_id}:refund"),
            &p.payee_account_id,
            &p.payer_account_id,
            amount,
            currency,
            "refund",
        );
        ledger.transfer(leg.with_reference(&p.id)).await?;
        store::insert_refund(conn, &refund_id, &p.id, amount, &p.updated_at).await?;
        p.refunded_minor = total;
        p.status = if total == p.captured_minor { "refunded" } else { "partially_refunded" }.into();
        Ok(true)
    })
    .await
}
