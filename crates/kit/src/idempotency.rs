//! `Idempotency-Key` for POST routes, with Stripe's semantics:
//!
//! - the first request with a key runs; its answer (status and body, errors included) is stored
//!   and replayed for every later request with the same key and the same request
//!   (`Idempotent-Replayed: true`);
//! - the same key with a different request (method, path or body) → 422 `idempotency_key_reused`;
//! - the same key while the first request still runs → the duplicate waits up to
//!   [`IdempotencySettings::wait`] for the answer, then gets 409 `idempotency_key_in_use`;
//! - 401 and 403 answers are not stored (the request never ran);
//! - 5xx answers are not stored (the outcome is unknown), so the key can be retried; handlers must
//!   derive their downstream ids from the key (see [`IdempotencyKey::derive_id`]) so that such a
//!   retry cannot act twice;
//! - a request that died mid-way (process crash) holds the key only until its lease expires;
//! - keys are kept for [`IdempotencySettings::retention`] (24 hours by default), then purged;
//! - keys belong to the caller: the layer authenticates the request first (no key is claimed
//!   for an unauthenticated request) and scopes the key, and the ids derived from it, to the
//!   token's subject, so two callers using the same key never see each other's answers.
//!
//! The table `idempotency_keys` is one of the platform's tables in every service database.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fintech_db::{Db, Engine};
use fintech_http::Problem;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

pub const HEADER: &str = "idempotency-key";
/// Attempts at storing an answer (100 and 200 ms apart) before the key is freed instead; the
/// update is the same each time, so one that took effect without an answer is harmless.
const STORE_ATTEMPTS: u32 = 3;
/// Longest key accepted (Stripe allows 255).
pub const MAX_KEY_CHARS: usize = 255;

/// Settings of one service's idempotency layer.
#[derive(Debug, Clone)]
pub struct IdempotencySettings {
    /// Separates keys of different services or callers sharing a database.
    pub scope: String,
    /// How long stored answers are kept.
    pub retention: Duration,
    /// How long a duplicate waits for the first request's answer before 409.
    pub wait: Duration,
    /// How long a running request holds its key if it never finishes (crash).
    pub lease: Duration,
    /// Largest request body hashed and largest answer stored.
    pub max_body_bytes: usize,
    /// Scope keys to the authenticated caller (the default). Off only for routes without
    /// authentication (tests of the layer itself).
    pub per_caller: bool,
    /// Top-level JSON fields left out of the stored request hash: values that must not be
    /// stored in any form, not even hashed (a CVV: 1000 values, a hash gives it away). Two
    /// requests that differ only there count as the same request.
    pub unhashed_fields: Vec<&'static str>,
}

impl IdempotencySettings {
    pub fn new(scope: &str) -> Self {
        IdempotencySettings {
            scope: scope.to_owned(),
            retention: Duration::from_secs(24 * 3600),
            wait: Duration::from_secs(2),
            lease: Duration::from_secs(60),
            max_body_bytes: 1024 * 1024,
            per_caller: true,
            unhashed_fields: Vec::new(),
        }
    }
}

/// The key of the current request, in request extensions, for handlers.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub scope: String,
    pub key: String,
}

impl IdempotencyKey {
    /// A stable id for what this request creates, so that a retry after an unknown outcome
    /// (5xx) reuses the same downstream ids and cannot act twice.
    pub fn derive_id(&self, prefix: &str) -> String {
        let digest = Sha256::digest(format!("{}\n{}", self.scope, self.key).as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("{prefix}_{hex}")
    }
}

#[derive(Debug, Clone)]
struct Layer {
    db: Db,
    settings: Arc<IdempotencySettings>,
}

/// Wraps `router`'s POST routes with the idempotency layer.
pub fn layer(router: axum::Router, db: Db, settings: IdempotencySettings) -> axum::Router {
    let state = Layer { db, settings: Arc::new(settings) };
    router.layer(axum::middleware::from_fn_with_state(state, idempotency))
}

/// Starts the task that purges expired keys; it stops on `shutdown`.
pub fn spawn_purger(db: Db, retention: Duration, shutdown: CancellationToken) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(600)) => {}
            }
            let cutoff = fintech_telemetry::now_unix_ms().saturating_sub(fintech_telemetry::duration_ms(retention));
            let sql = match db.engine() {
                Engine::Sqlite => "DELETE FROM idempotency_keys WHERE created_at_ms < ?",
                Engine::MySql => "DELETE FROM idempotency_keys WHERE created_at_ms < ? LIMIT 10000",
            };
            let purged = db
                .write(move |conn| {
                    Box::pin(async move { sqlx::query(sql).bind(cutoff).execute(&mut *conn).await.map(|_| ()) })
                })
                .await;
            if let Err(e) = purged {
                tracing::warn!(error = &e as &dyn std::error::Error, "purging idempotency keys failed");
            }
        }
    });
}

fn problem(status: StatusCode, code: &str, title: &str, detail: &str) -> Response {
    Problem::new(status, code, title).with_detail(detail).into_response()
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.chars().count() <= MAX_KEY_CHARS && key.chars().all(|c| c.is_ascii_graphic())
}

/// How a key is stored: SHA-256, hex. Whatever a client puts in a key (a card number, by
/// mistake) is never kept.
pub fn stored_key(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A stored answer, replayed.
fn replay(status: i64, content_type: Option<String>, body: String) -> Response {
    let status = u16::try_from(status).ok().and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::OK);
    // A stored problem is rendered again, so that it carries this request's id like any other.
    let stored_problem = content_type
        .as_deref()
        .filter(|c| *c == fintech_http::problem::PROBLEM_JSON)
        .and_then(|_| serde_json::from_str::<Problem>(&body).ok());
    let mut response = match stored_problem {
        Some(mut problem) => {
            problem.request_id = None;
            problem.into_response()
        }
        None => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                response.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            response
        }
    };
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

enum Claim {
    /// This request runs the handler.
    Run,
    /// Answer with this (a replay or a refusal).
    Answer(Response),
}

async fn claim(layer: &Layer, key: &str, hash: &str) -> Result<Claim, sqlx::Error> {
    let s = &layer.settings;
    let deadline = tokio::time::Instant::now() + s.wait;
    loop {
        let now = fintech_telemetry::now_unix_ms();
        let (scope, k, h) = (s.scope.clone(), key.to_owned(), hash.to_owned());
        let locked_until = now.saturating_add(fintech_telemetry::duration_ms(s.lease));
        let inserted = layer
            .db
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO idempotency_keys \
                         (scope, idem_key, request_hash, state, locked_until_ms, created_at_ms) \
                         VALUES (?, ?, ?, 'in_progress', ?, ?)",
                    )
                    .bind(scope)
                    .bind(k)
                    .bind(h)
                    .bind(locked_until)
                    .bind(now)
                    .execute(&mut *conn)
                    .await
                })
            })
            .await;
        match inserted {
            Ok(_) => return Ok(Claim::Run),
            Err(e) if fintech_db::is_unique_violation(&e) => {}
            Err(e) => return Err(e),
        }
        let row = sqlx::query(
            "SELECT request_hash, state, response_status, response_content_type, response_body, locked_until_ms \
             FROM idempotency_keys WHERE scope = ? AND idem_key = ?",
        )
        .bind(&s.scope)
        .bind(key)
        .fetch_optional(layer.db.pool())
        .await?;
        let Some(row) = row else { continue }; // purged or released meanwhile: try again
        if row.try_get::<String, _>("request_hash")? != hash {
            return Ok(Claim::Answer(problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency key reused",
                "This Idempotency-Key was used with a different request. Use a new key for a new request.",
            )));
        }
        if row.try_get::<String, _>("state")? == "completed" {
            return Ok(Claim::Answer(replay(
                row.try_get("response_status")?,
                row.try_get("response_content_type")?,
                row.try_get::<Option<String>, _>("response_body")?.unwrap_or_default(),
            )));
        }
        let locked_until: i64 = row.try_get("locked_until_ms")?;
        if locked_until < now {
            // The first request died without an answer: take its key over.
            let (until, scope, k) =
                (now.saturating_add(fintech_telemetry::duration_ms(s.lease)), s.scope.clone(), key.to_owned());
            let taken = layer
                .db
                .write(move |conn| {
                    Box::pin(async move {
                        sqlx::query(
                            "UPDATE idempotency_keys SET locked_until_ms = ? \
                             WHERE scope = ? AND idem_key = ? AND state = 'in_progress' AND locked_until_ms = ?",
                        )
                        .bind(until)
                        .bind(scope)
                        .bind(k)
                        .bind(locked_until)
                        .execute(&mut *conn)
                        .await
                    })
                })
                .await?;
            if taken.rows_affected() == 1 {
                return Ok(Claim::Run);
            }
            continue;
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(Claim::Answer(problem(
                StatusCode::CONFLICT,
                "idempotency_key_in_use",
                "Request in progress",
                "A request with this Idempotency-Key is still running; retry shortly to get its result.",
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn idempotency(State(layer): State<Layer>, req: Request, next: Next) -> Response {
    if req.method() != axum::http::Method::POST {
        return next.run(req).await;
    }
    let key = match req.headers().get(HEADER).map(|v| v.to_str().map(str::to_owned)) {
        None => {
            return problem(
                StatusCode::BAD_REQUEST,
                "idempotency_key_required",
                "Idempotency key required",
                "Every POST needs an Idempotency-Key header (for example a UUID) so that retries are safe.",
            );
        }
        Some(Ok(k)) if valid_key(&k) => k,
        Some(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                "Invalid idempotency key",
                "The Idempotency-Key must be 1-255 printable ASCII characters without spaces.",
            );
        }
    };
    let (mut parts, body) = req.into_parts();
    let layer = if layer.settings.per_caller {
        let caller =
            match <fintech_auth::Caller as axum::extract::FromRequestParts<()>>::from_request_parts(&mut parts, &())
                .await
            {
                Ok(caller) => caller,
                Err(refused) => return refused.into_response(),
            };
        let scoped = Layer {
            db: layer.db.clone(),
            settings: Arc::new(IdempotencySettings {
                scope: format!("{}:{}", layer.settings.scope, caller.subject()),
                ..(*layer.settings).clone()
            }),
        };
        // The handler reads the caller from here instead of verifying the token again.
        parts.extensions.insert(caller);
        scoped
    } else {
        layer
    };
    let Ok(bytes) = axum::body::to_bytes(body, layer.settings.max_body_bytes).await else {
        return Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE).into_response();
    };
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str().as_bytes());
    hasher.update(b"\n");
    hasher.update(parts.uri.path().as_bytes());
    hasher.update(b"\n");
    hasher.update(hashed_body(&bytes, &layer.settings.unhashed_fields));
    let hash: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();

    // From here the request runs to its end even if the client goes away: a dropped connection
    // must not leave a key claimed by nobody, nor cut an effect and its stored answer in half
    // (the retry would find the key locked until its lease ends). The retry gets the answer.
    let request = Request::from_parts(parts, Body::from(bytes));
    let task = tokio::spawn(
        claim_and_execute(layer.clone(), key.clone(), hash, request, next).instrument(tracing::Span::current()),
    );
    match task.await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = &e as &dyn std::error::Error, "an idempotent request did not finish");
            release(&layer, &stored_key(&key)).await;
            Problem::internal().into_response()
        }
    }
}

/// The body as hashed: without `unhashed` top-level fields when it is a JSON object (serde_json's
/// maps are sorted, so the re-serialized form is stable).
fn hashed_body(bytes: &[u8], unhashed: &[&str]) -> Vec<u8> {
    if unhashed.is_empty() {
        return bytes.to_vec();
    }
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(mut map)) => {
            for field in unhashed {
                map.remove(*field);
            }
            serde_json::to_vec(&map).unwrap_or_default()
        }
        _ => bytes.to_vec(),
    }
}

async fn claim_and_execute(layer: Layer, key: String, hash: String, request: Request, next: Next) -> Response {
    let stored = stored_key(&key);
    match claim(&layer, &stored, &hash).await {
        Ok(Claim::Answer(response)) => response,
        Ok(Claim::Run) => execute(layer, key, stored, request, next).await,
        Err(e) => {
            tracing::error!(error = &e as &dyn std::error::Error, "idempotency key store failed");
            Problem::internal().into_response()
        }
    }
}

/// Runs the claimed request and stores its answer under the key (or frees the key).
/// `key` as sent (for the handler's derived ids), `stored` as kept in the table.
async fn execute(layer: Layer, key: String, stored: String, mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(IdempotencyKey { scope: layer.settings.scope.clone(), key });
    let key = stored;
    let response = next.run(req).await;
    let (parts, body) = response.into_parts();
    let stored = match axum::body::to_bytes(body, layer.settings.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            release(&layer, &key).await;
            return Problem::internal().into_response();
        }
    };
    let text = String::from_utf8(stored.to_vec());
    // Not stored: 5xx (outcome unknown), and 401/403 (the request never ran; a retry with the
    // right credentials must run).
    let refused_caller = matches!(parts.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
    let keep = !parts.status.is_server_error() && !refused_caller && text.is_ok();
    if keep {
        let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let status = i64::from(parts.status.as_u16());
        let body = text.as_deref().unwrap_or_default().to_owned();
        // A lost connection (a failover, a killed connection) must not lose the answer: a retry
        // would run the request again and answer the state of now, not the answer of then.
        let mut saved = Err(sqlx::Error::PoolClosed);
        for attempt in 0..STORE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            let (scope, k) = (layer.settings.scope.clone(), key.clone());
            let (content_type, body) = (content_type.clone(), body.clone());
            saved = layer
                .db
                .write(move |conn| {
                    Box::pin(async move {
                        sqlx::query(
                            "UPDATE idempotency_keys SET state = 'completed', response_status = ?, \
                             response_content_type = ?, response_body = ? WHERE scope = ? AND idem_key = ?",
                        )
                        .bind(status)
                        .bind(content_type)
                        .bind(body)
                        .bind(scope)
                        .bind(k)
                        .execute(&mut *conn)
                        .await
                    })
                })
                .await;
            if saved.is_ok() {
                break;
            }
        }
        if let Err(e) = saved {
            // The effect happened; the answer could not be stored. A retry will run again, and
            // the handler's key-derived ids keep it from acting twice.
            tracing::error!(error = &e as &dyn std::error::Error, "storing an idempotent answer failed");
            release(&layer, &key).await;
        }
    } else {
        release(&layer, &key).await;
    }
    Response::from_parts(parts, Body::from(stored))
}

/// Frees a key whose answer is not stored, so that the request can be retried.
async fn release(layer: &Layer, key: &str) {
    let (scope, k) = (layer.settings.scope.clone(), key.to_owned());
    let deleted = layer
        .db
        .write(move |conn| {
            Box::pin(async move {
                sqlx::query("DELETE FROM idempotency_keys WHERE scope = ? AND idem_key = ? AND state = 'in_progress'")
                    .bind(scope)
                    .bind(k)
                    .execute(&mut *conn)
                    .await
            })
        })
        .await;
    if let Err(e) = deleted {
        tracing::warn!(
            error = &e as &dyn std::error::Error,
            "releasing an idempotency key failed; it frees when its lease ends"
        );
    }
}
