//! HTTP routes of identity, relative to `/api/identity`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fintech_auth::{Caller, JwkSet, Kind, Role, scopes};
use fintech_config::Secret;
use fintech_http::{ApiJson, FieldError};
use fintech_kit::ServiceContext;
use fintech_kit::ratelimit::{Limiter, Rule, Store};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::IdentityError;
use crate::password;
use crate::signing::SigningKeys;
use crate::store::{self, ApiKey, User};
use crate::tokens::{self, AccessToken, Issuer, RefreshRefusal, Subject};
use fintech_kit::security::SecurityLog;

/// Which service may ask for tokens to call which others. Anything not listed is refused.
pub const SERVICE_CALLS: &[(&str, &[&str])] =
    &[("accounts", &["ledger"]), ("payments", &["ledger", "accounts", "vault", "risk"]), ("statements", &["ledger"])];

/// Sign-in, sign-up and key exchanges per client address: 20 at once, then one every 3 s.
pub const PER_IP: Rule = Rule { capacity: 20, refill_every: Duration::from_secs(3) };
/// Failed sign-ins per e-mail address and client address: 5, then one a minute. Counted per
/// address pair, so an attacker elsewhere cannot lock the owner out.
pub const FAILURES_PER_ACCOUNT_AND_IP: Rule = Rule { capacity: 5, refill_every: Duration::from_secs(60) };

/// Wrong one-time codes per user (a sign-in challenge or an enrolment): 5, then one a minute.
/// Only someone who knows the password reaches a challenge, so this cannot lock an owner out
/// by guessing from outside.
pub const OTP_FAILURES_PER_USER: Rule = Rule { capacity: 5, refill_every: Duration::from_secs(60) };
/// Wrong codes per challenge before it dies (then: sign in again).
pub const MAX_CHALLENGE_ATTEMPTS: i64 = 5;
/// How long a second-factor challenge lives.
pub const CHALLENGE_TTL_SECS: i64 = 300;

/// SMS sent to one phone number (SMS pumping: paid messages to numbers an attacker is paid
/// for): 3, then one every 10 minutes, whoever asks. Enrolment and sign-in codes alike.
pub const SMS_PER_NUMBER: Rule = Rule { capacity: 3, refill_every: Duration::from_secs(600) };
/// SMS sent for one user, to any number: 5, then one every 10 minutes.
pub const SMS_PER_USER: Rule = Rule { capacity: 5, refill_every: Duration::from_secs(600) };
/// SMS asked for from one client address (many accounts, many numbers): 10, then one a minute.
pub const SMS_PER_IP: Rule = Rule { capacity: 10, refill_every: Duration::from_secs(60) };

/// Rate limits of identity.
#[derive(Debug)]
pub struct Limits {
    pub per_ip: Limiter,
    pub failures: Limiter,
    pub otp_failures: Limiter,
    pub sms_per_number: Limiter,
    pub sms_per_user: Limiter,
    pub sms_per_ip: Limiter,
}

impl Limits {
    /// identity's limits, with their buckets in `store` (Redis when configured: shared by every
    /// replica).
    pub fn new(store: &Store) -> Self {
        Limits {
            per_ip: Limiter::new("identity-per-ip", PER_IP, store),
            failures: Limiter::new("identity-failures", FAILURES_PER_ACCOUNT_AND_IP, store),
            otp_failures: Limiter::new("identity-otp-failures", OTP_FAILURES_PER_USER, store),
            sms_per_number: Limiter::new("identity-sms-per-number", SMS_PER_NUMBER, store),
            sms_per_user: Limiter::new("identity-sms-per-user", SMS_PER_USER, store),
            sms_per_ip: Limiter::new("identity-sms-per-ip", SMS_PER_IP, store),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AppState {
    pub ctx: ServiceContext,
    pub issuer: Issuer,
    pub keys: Arc<SigningKeys>,
    pub limits: Arc<Limits>,
    /// Where one-time codes sent by SMS are kept (Redis when `redis.url` is set).
    pub codes: crate::codes::CodeStore,
    pub refresh_ttl: Duration,
    pub service_secrets: Arc<BTreeMap<String, Secret<String>>>,
    pub trust_forwarded_for: bool,
    /// Security records, logged and staged for the audit log.
    pub security: SecurityLog,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/sign-up", post(sign_up))
        .route("/v1/sign-in", post(sign_in))
        .route("/v1/sign-in/mfa", post(sign_in_mfa))
        .route("/v1/sign-in/mfa/sms", post(crate::sms::sign_in_sms))
        .route("/v1/mfa/totp", post(enroll_totp))
        .route("/v1/mfa/totp/confirm", post(confirm_totp))
        .route("/v1/mfa/sms", post(crate::sms::enroll_sms))
        .route("/v1/mfa/sms/confirm", post(crate::sms::confirm_sms))
        .route("/v1/refresh", post(refresh))
        .route("/v1/sign-out", post(sign_out))
        .route("/v1/jwks.json", get(jwks))
        .route("/v1/me", get(me))
        .route("/v1/staff", post(create_staff))
        .route("/v1/api-keys", post(create_api_key).get(list_api_keys))
        .route("/v1/api-keys/{id}/revoke", post(revoke_api_key))
        .route("/v1/api-key-tokens", post(api_key_token))
        .route("/v1/service-tokens", post(service_token))
        .route("/v1/signing-keys", post(rotate_signing_key))
        .with_state(state)
}

/// The client's address: the connection's peer, or the last `X-Forwarded-For` entry when our
/// own proxy sets it (`identity.trust_forwarded_for`).
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = IdentityError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(fintech_http::extract::client_ip(parts, state.trust_forwarded_for)))
    }
}

/// The first 16 hex digits of the SHA-256 of an e-mail address as typed: enough to match the
/// records of one address (hash it the same way), without the text itself.
fn email_digest(email: &str) -> String {
    tokens::sha256_hex(email).chars().take(16).collect()
}

fn now_text() -> String {
    fintech_telemetry::now_rfc3339()
}

fn parse_email(raw: &str) -> Result<String, FieldError> {
    fintech_types::Email::parse(raw)
        .map(|e| e.as_str().to_lowercase())
        .map_err(|m| FieldError::new("email", "invalid_email", m))
}

/// Sign-up request. Unknown fields (`role`, `status`...) are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpRequest {
    pub email: String,
    pub password: String,
    /// `customer` (default) or `merchant`.
    #[serde(default)]
    pub kind: Option<String>,
}

/// A user as shown to themselves or staff.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub kind: String,
    pub email: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.clone(),
            kind: u.kind.as_str().into(),
            email: u.email.clone(),
            roles: u.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            created_at: u.created_at.clone(),
        }
    }
}

async fn create_user(
    state: &AppState,
    email: String,
    password_text: String,
    kind: Kind,
    roles: Vec<Role>,
) -> Result<User, IdentityError> {
    let user = User {
        id: uuid::Uuid::now_v7().to_string(),
        kind,
        email,
        password_hash: password::hash(password_text).await?,
        roles,
        status: "active".into(),
        created_at: now_text(),
        totp_secret: None,
        totp_enabled: false,
        totp_last_step: None,
        phone: None,
        sms_enabled: false,
    };
    let row = user.clone();
    let inserted =
        state.ctx.db.write(move |conn| Box::pin(async move { store::insert_user(&mut *conn, &row).await })).await;
    match inserted {
        Err(e) if fintech_db::is_unique_violation(&e) => Err(IdentityError::EmailTaken),
        other => other.map(|()| user).map_err(IdentityError::from),
    }
}

/// Register as a customer or a merchant; sign in afterwards.
#[utoipa::path(post, path = "/api/identity/v1/sign-up", tag = "identity", request_body = SignUpRequest,
    responses((status = 201, body = UserView), (status = 409, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 422, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 429, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn sign_up(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(req): ApiJson<SignUpRequest>,
) -> Result<Response, IdentityError> {
    state.limits.per_ip.take(&ip.0).await.map_err(IdentityError::TooManyAttempts)?;
    let mut errors = Vec::new();
    let email = parse_email(&req.email).map_err(|e| errors.push(e)).ok();
    let kind = match req.kind.as_deref().unwrap_or("customer") {
        "customer" => Some(Kind::Customer),
        "merchant" => Some(Kind::Merchant),
        _ => {
            errors.push(FieldError::new("kind", "invalid_kind", "must be customer or merchant"));
            None
        }
    };
    if let Err(e) = password::check_policy(&req.password, &req.email) {
        errors.push(e);
    }
    let (Some(email), Some(kind), true) = (email, kind, errors.is_empty()) else {
        return Err(IdentityError::Validation(errors));
    };
    let user = create_user(&state, email, req.password, kind, Vec::new()).await?;
    state.security.note("user_signed_up", &user.id, &[("kind", kind.as_str())]).await;
    Ok((StatusCode::CREATED, axum::Json(UserView::from(&user))).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    pub email: String,
    pub password: String,
}

/// Tokens after a sign-in or a refresh.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Session {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    /// Single use: each refresh answers a new one. Using one twice ends the session.
    pub refresh_token: String,
    pub user: UserView,
}

fn subject_of(user: &User, mfa: bool) -> Subject {
    Subject {
        id: user.id.clone(),
        kind: user.kind,
        roles: user.roles.clone(),
        scopes: Vec::new(),
        api_key_id: None,
        mfa,
    }
}

async fn session(state: &AppState, user: &User, family: tokens::Family) -> Result<Session, IdentityError> {
    // A user with a second factor got here through it (sign-in) or through a session that did.
    let access = state.issuer.access(&subject_of(user, user.has_second_factor()))?;
    let refresh_token = tokens::new_refresh(&state.ctx.db, family, &user.id, state.refresh_ttl).await?;
    Ok(Session {
        access_token: access.access_token,
        token_type: access.token_type,
        expires_in: access.expires_in,
        refresh_token,
        user: UserView::from(user),
    })
}

/// Sign in with e-mail and password.
///
/// Limits: 20 attempts per client address at once, then one every 3 s; 5 failures per e-mail
/// and client address, then one a minute. Beyond either: 429 `too_many_attempts` with
/// `Retry-After`. The owner signing in from another address is not affected.
#[utoipa::path(post, path = "/api/identity/v1/sign-in", tag = "identity", request_body = SignInRequest,
    responses((status = 200, body = Session), (status = 401, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 429, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn sign_in(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(req): ApiJson<SignInRequest>,
) -> Result<Response, IdentityError> {
    let email = req.email.trim().to_lowercase();
    let pair = format!("{email}|{}", ip.0);
    state.limits.per_ip.take(&ip.0).await.map_err(IdentityError::TooManyAttempts)?;
    // Security records name the address typed only by a hash: what was typed may be someone
    // else's address, or a password in the wrong field, and the audit log cannot forget it.
    let typed = email_digest(&email);
    if let Err(wait) = state.limits.failures.check(&pair).await {
        state.security.note("sign_in_throttled", "-", &[("ip", &ip.0), ("email_sha256", &typed)]).await;
        return Err(IdentityError::TooManyAttempts(wait));
    }
    if req.password.chars().count() > password::MAX_PASSWORD_CHARS {
        state.limits.failures.charge(&pair).await;
        return Err(IdentityError::InvalidCredentials);
    }
    let mut conn = state.ctx.db.pool().acquire().await?;
    let user = store::user_by_email(&mut conn, &email).await?;
    drop(conn);
    let ok = password::verify(req.password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    match user {
        Some(user) if ok && user.status == "active" => {
            state.limits.failures.forgive(&pair).await;
            if user.has_second_factor() {
                state.security.note("sign_in_needs_second_factor", &user.id, &[("ip", &ip.0)]).await;
                return Ok(axum::Json(challenge(&state, &user, &ip.0).await?).into_response());
            }
            state.security.note("sign_in_succeeded", &user.id, &[("ip", &ip.0)]).await;
            Ok(axum::Json(session(&state, &user, tokens::Family::New).await?).into_response())
        }
        _ => {
            state.limits.failures.charge(&pair).await;
            let account = user.as_ref().map_or("-", |u| u.id.as_str());
            state.security.note("sign_in_failed", account, &[("ip", &ip.0), ("email_sha256", &typed)]).await;
            Err(IdentityError::InvalidCredentials)
        }
    }
}

/// The answer to a password sign-in of a user with a second factor: no tokens yet.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MfaChallenge {
    /// Always `true`.
    pub mfa_required: bool,
    /// Send it with the code to `POST /v1/sign-in/mfa`; single use, 5 minutes, 5 tries.
    pub mfa_token: String,
    pub expires_in: i64,
    /// The user's second factors, any of which answers the challenge: `totp` (the authenticator
    /// app's code), `sms` (a code sent by SMS).
    pub methods: Vec<String>,
    /// Present when a code was sent by SMS with this answer: for a user whose only second factor
    /// is SMS. Anyone with `sms` among the methods may ask for one (again) with
    /// `POST /v1/sign-in/mfa/sms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms: Option<crate::sms::SmsCodeSent>,
}

async fn challenge(state: &AppState, user: &User, ip: &str) -> Result<MfaChallenge, IdentityError> {
    // SMS only: the code goes out with the challenge. The SMS limits are checked before anything
    // is stored; beyond them the sign-in answers 429.
    let sms_to = if user.sms_enabled && !user.totp_enabled { Some(crate::sms::user_phone(user)?) } else { None };
    if let Some(phone) = &sms_to {
        crate::sms::take_allowance(state, &user.id, phone, ip).await?;
    }
    let token = format!("mfa_{}", tokens::random_token::<32>()?);
    let hash = tokens::sha256_hex(&token);
    let expires = fintech_telemetry::now_unix_ms() / 1000 + CHALLENGE_TTL_SECS;
    let (user_id, h) = (user.id.clone(), hash.clone());
    state
        .ctx
        .db
        .write(move |conn| Box::pin(async move { store::insert_challenge(&mut *conn, &h, &user_id, expires).await }))
        .await?;
    let sms = match &sms_to {
        Some(phone) => {
            Some(crate::sms::send_code(state, &user.id, crate::sms::Purpose::SignIn, Some(hash), phone, expires).await?)
        }
        None => None,
    };
    Ok(MfaChallenge {
        mfa_required: true,
        mfa_token: token,
        expires_in: CHALLENGE_TTL_SECS,
        methods: user.second_factors(),
        sms,
    })
}

/// The live challenge of `mfa_token` (neither spent nor expired) with its hash and its user
/// (active, with a second factor); else 401 `invalid_mfa_token`. Wrong tries are the caller's.
pub(crate) async fn live_challenge(
    state: &AppState,
    mfa_token: &str,
    now: i64,
) -> Result<(String, store::Challenge, User), IdentityError> {
    if mfa_token.len() > 100 {
        return Err(IdentityError::InvalidMfaToken);
    }
    let hash = tokens::sha256_hex(mfa_token);
    let mut conn = state.ctx.db.pool().acquire().await?;
    let found = store::challenge(&mut conn, &hash).await?;
    let challenge = found.filter(|c| !c.used && c.expires_at > now).ok_or(IdentityError::InvalidMfaToken)?;
    let user = store::user_by_id(&mut conn, &challenge.user_id)
        .await?
        .filter(|u| u.status == "active" && u.has_second_factor());
    drop(conn);
    let user = user.ok_or(IdentityError::InvalidMfaToken)?;
    Ok((hash, challenge, user))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaSignInRequest {
    pub mfa_token: String,
    /// The 6-digit code: the authenticator app's, or the one sent by SMS for this challenge.
    pub code: String,
}

/// Checks `code` against `user`'s TOTP secret and spends its step (never twice); enables TOTP
/// when `enable`. False for a wrong, expired or replayed code; the caller counts it.
async fn totp_step(state: &AppState, user: &User, code: &str, enable: bool) -> Result<bool, IdentityError> {
    let secret = user.totp_secret.as_deref().and_then(crate::mfa::base32_decode).ok_or(IdentityError::MfaNotStarted)?;
    let now = fintech_telemetry::now_unix_ms() / 1000;
    let used = match crate::mfa::verify(&secret, code, now, user.totp_last_step) {
        Some(step) => {
            let user_id = user.id.clone();
            state
                .ctx
                .db
                .write(move |conn| {
                    Box::pin(async move { store::use_totp_step(&mut *conn, &user_id, step, enable).await })
                })
                .await?
        }
        None => false,
    };
    Ok(used)
}

/// A wrong, expired or replayed one-time code (`kind`: `totp`, `sms`, or both tried): counted
/// against the user's limit and recorded. Never the code.
pub(crate) async fn code_failed(state: &AppState, user_id: &str, kind: &str) {
    state.limits.otp_failures.charge(user_id).await;
    state.security.note("second_factor_failed", user_id, &[("kind", kind)]).await;
}

/// Checks a TOTP code as [`totp_step`] does; wrong codes count against the user's limit, and a
/// right one forgives them.
async fn spend_code(state: &AppState, user: &User, code: &str, enable: bool) -> Result<(), IdentityError> {
    state.limits.otp_failures.check(&user.id).await.map_err(IdentityError::TooManyAttempts)?;
    if !totp_step(state, user, code, enable).await? {
        code_failed(state, &user.id, "totp").await;
        return Err(IdentityError::InvalidMfaCode);
    }
    state.limits.otp_failures.forgive(&user.id).await;
    Ok(())
}

/// Finish a sign-in with the second factor: the challenge of `POST /v1/sign-in` and a code,
/// the authenticator app's or the one sent by SMS for this challenge (the latest one sent).
/// Limits: 5 wrong codes per challenge (then sign in again), 5 per user then one a minute
/// (429 `too_many_attempts`); an SMS code works once, for 5 minutes, 5 tries.
#[utoipa::path(post, path = "/api/identity/v1/sign-in/mfa", tag = "identity", request_body = MfaSignInRequest,
    responses((status = 200, body = Session), (status = 401, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 429, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn sign_in_mfa(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<MfaSignInRequest>,
) -> Result<axum::Json<Session>, IdentityError> {
    let now = fintech_telemetry::now_unix_ms() / 1000;
    let (hash, challenge, user) = live_challenge(&state, &req.mfa_token, now).await?;
    // The user's limit first (429 says when to come back), then the challenge's own.
    state.limits.otp_failures.check(&user.id).await.map_err(IdentityError::TooManyAttempts)?;
    if challenge.attempts >= MAX_CHALLENGE_ATTEMPTS {
        return Err(IdentityError::InvalidMfaToken);
    }
    // The SMS code of this challenge if one was sent, else (or if it does not match) the app's.
    let method = if user.sms_enabled && crate::sms::spend_sign_in_code(&state, &hash, &req.code, now).await? {
        Some("sms")
    } else if user.totp_enabled && totp_step(&state, &user, &req.code, false).await? {
        Some("totp")
    } else {
        None
    };
    let Some(method) = method else {
        let h = hash.clone();
        state.ctx.db.write(move |conn| Box::pin(async move { store::challenge_failed(&mut *conn, &h).await })).await?;
        code_failed(&state, &user.id, &user.second_factors().join(",")).await;
        return Err(IdentityError::InvalidMfaCode);
    };
    state.limits.otp_failures.forgive(&user.id).await;
    let spent = state
        .ctx
        .db
        .write(move |conn| Box::pin(async move { store::use_challenge(&mut *conn, &hash, now).await }))
        .await?;
    if !spent {
        return Err(IdentityError::InvalidMfaToken);
    }
    state.security.note("sign_in_succeeded", &user.id, &[("second_factor", method)]).await;
    Ok(axum::Json(session(&state, &user, tokens::Family::New).await?))
}

/// A new TOTP secret for the authenticator app.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TotpEnrolment {
    /// Base32, for typing into the app.
    pub secret: String,
    /// For a QR code.
    pub otpauth_uri: String,
}

/// A person signed in with a password (not a service, not an API key) manages their own
/// second factors.
pub(crate) fn may_enrol(caller: &Caller) -> Result<(), IdentityError> {
    let person = caller.kind() != Kind::Service && caller.claims().api_key_id.is_none();
    Ok(caller.require(person, "enrol a second factor")?)
}

/// Start TOTP enrolment (a user signed in with a password): answers the secret once. It takes
/// effect when a first code is confirmed.
#[utoipa::path(post, path = "/api/identity/v1/mfa/totp", tag = "identity", security(("bearer" = [])),
    responses((status = 201, body = TotpEnrolment), (status = 409, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn enroll_totp(caller: Caller, State(state): State<AppState>) -> Result<Response, IdentityError> {
    may_enrol(&caller)?;
    let mut conn = state.ctx.db.pool().acquire().await?;
    let user = store::user_by_id(&mut conn, caller.subject()).await?.ok_or(IdentityError::NotFound)?;
    drop(conn);
    if user.totp_enabled {
        return Err(IdentityError::MfaAlreadyEnabled);
    }
    let secret = crate::mfa::base32(&tokens::random_bytes::<{ crate::mfa::SECRET_BYTES }>()?);
    let (user_id, s) = (user.id.clone(), secret.clone());
    let set = state
        .ctx
        .db
        .write(move |conn| Box::pin(async move { store::set_totp_secret(&mut *conn, &user_id, &s).await }))
        .await?;
    if !set {
        return Err(IdentityError::MfaAlreadyEnabled);
    }
    state.security.note("second_factor_enrolment_started", &user.id, &[]).await;
    let otpauth_uri = crate::mfa::otpauth_uri("FINTECH", &user.email, &secret);
    Ok((StatusCode::CREATED, axum::Json(TotpEnrolment { secret, otpauth_uri })).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirmRequest {
    pub code: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TotpEnabled {
    pub enabled: bool,
}

/// Confirm TOTP enrolment with a first code: from then on, sign-in needs a code.
#[utoipa::path(post, path = "/api/identity/v1/mfa/totp/confirm", tag = "identity", request_body = TotpConfirmRequest,
    security(("bearer" = [])), responses((status = 200, body = TotpEnabled),
        (status = 401, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 409, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn confirm_totp(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TotpConfirmRequest>,
) -> Result<axum::Json<TotpEnabled>, IdentityError> {
    may_enrol(&caller)?;
    let mut conn = state.ctx.db.pool().acquire().await?;
    let user = store::user_by_id(&mut conn, caller.subject()).await?.ok_or(IdentityError::NotFound)?;
    drop(conn);
    if user.totp_enabled {
        return Err(IdentityError::MfaAlreadyEnabled);
    }
    spend_code(&state, &user, &req.code, true).await?;
    state.security.note("second_factor_enabled", &user.id, &[("kind", "totp")]).await;
    Ok(axum::Json(TotpEnabled { enabled: true }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Trade a refresh token for new tokens. A refresh token works once; presenting a used one
/// again ends its whole session (every token issued from the same sign-in).
#[utoipa::path(post, path = "/api/identity/v1/refresh", tag = "identity", request_body = RefreshRequest,
    responses((status = 200, body = Session), (status = 401, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<axum::Json<Session>, IdentityError> {
    if req.refresh_token.len() > 200 {
        return Err(IdentityError::InvalidRefreshToken);
    }
    let (user_id, family) = match tokens::spend_refresh(&state.ctx.db, &req.refresh_token).await? {
        Ok(found) => found,
        Err(why) => {
            let reason = match why {
                RefreshRefusal::Unknown => "unknown",
                RefreshRefusal::Expired => "expired",
                RefreshRefusal::Revoked => "revoked",
                RefreshRefusal::Reused => "reused_family_revoked",
            };
            state.security.note("refresh_refused", "-", &[("reason", reason)]).await;
            return Err(IdentityError::InvalidRefreshToken);
        }
    };
    let mut conn = state.ctx.db.pool().acquire().await?;
    let user = store::user_by_id(&mut conn, &user_id).await?.filter(|u| u.status == "active");
    drop(conn);
    let user = user.ok_or(IdentityError::InvalidRefreshToken)?;
    Ok(axum::Json(session(&state, &user, family).await?))
}

/// End the session of a refresh token (its whole family). Always 204, known token or not.
#[utoipa::path(post, path = "/api/identity/v1/sign-out", tag = "identity", request_body = RefreshRequest,
    responses((status = 204)))]
pub async fn sign_out(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<StatusCode, IdentityError> {
    if req.refresh_token.len() <= 200 && tokens::revoke_refresh(&state.ctx.db, &req.refresh_token).await? {
        state.security.note("signed_out", "-", &[]).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// identity's public signing keys (RFC 7517), for verifiers.
#[utoipa::path(get, path = "/api/identity/v1/jwks.json", tag = "identity", responses((status = 200)))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let set: JwkSet = state.keys.jwks();
    ([(axum::http::header::CACHE_CONTROL, "public, max-age=60")], axum::Json(set)).into_response()
}

/// Who the token belongs to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub subject: String,
    pub kind: String,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    pub expires_at: i64,
}

/// The caller, as its token says.
#[utoipa::path(get, path = "/api/identity/v1/me", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn me(caller: Caller) -> axum::Json<Me> {
    let c = caller.claims();
    axum::Json(Me {
        subject: c.sub.clone(),
        kind: c.kind.as_str().into(),
        roles: c.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        scopes: c.scopes.clone(),
        expires_at: c.exp,
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStaffRequest {
    pub email: String,
    pub password: String,
    /// `support`, `operator`, `admin`.
    pub roles: Vec<String>,
}

/// Add a staff member (admins only).
#[utoipa::path(post, path = "/api/identity/v1/staff", tag = "identity", request_body = NewStaffRequest, security(("bearer" = [])),
    responses((status = 201, body = UserView), (status = 403, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 422, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn create_staff(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<NewStaffRequest>,
) -> Result<Response, IdentityError> {
    caller.require_role(Role::Admin, "create staff")?;
    let mut errors = Vec::new();
    let email = parse_email(&req.email).map_err(|e| errors.push(e)).ok();
    let roles: Vec<Role> = req.roles.iter().filter_map(|r| Role::parse(r)).collect();
    if roles.is_empty() || roles.len() != req.roles.len() {
        errors.push(FieldError::new("roles", "invalid_roles", "must list one or more of support, operator, admin"));
    }
    if let Err(e) = password::check_policy(&req.password, &req.email) {
        errors.push(e);
    }
    let (Some(email), true) = (email, errors.is_empty()) else {
        return Err(IdentityError::Validation(errors));
    };
    let user = create_user(&state, email, req.password, Kind::Staff, roles).await?;
    state
        .security
        .note("staff_created", &user.id, &[("by", caller.subject()), ("roles", &store::roles_text(&user.roles))])
        .await;
    Ok((StatusCode::CREATED, axum::Json(UserView::from(&user))).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKeyRequest {
    pub name: String,
    /// `payments:write`, `payments:read`, `payments:manage`, `webhooks:manage`.
    pub scopes: Vec<String>,
}

/// A new API key: the only time `key` is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewApiKey {
    pub key: String,
    #[serde(flatten)]
    pub api_key: ApiKey,
}

/// A merchant signed in with their password: API keys manage no API keys.
fn merchant_signed_in(caller: &Caller) -> bool {
    caller.kind() == Kind::Merchant && caller.claims().api_key_id.is_none()
}

/// Create an API key (merchants signed in with their password).
#[utoipa::path(post, path = "/api/identity/v1/api-keys", tag = "identity", request_body = NewApiKeyRequest, security(("bearer" = [])),
    responses((status = 201, body = NewApiKey), (status = 403, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn create_api_key(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<NewApiKeyRequest>,
) -> Result<Response, IdentityError> {
    caller.require(merchant_signed_in(&caller), "create an API key")?;
    let mut errors = Vec::new();
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(FieldError::new("name", "invalid_name", "must be 1 to 100 characters"));
    }
    if req.scopes.is_empty() || req.scopes.iter().any(|s| !scopes::ALL.contains(&s.as_str())) {
        errors.push(FieldError::new(
            "scopes",
            "invalid_scopes",
            "must list one or more of payments:write, payments:read, payments:manage, webhooks:manage",
        ));
    }
    if !errors.is_empty() {
        return Err(IdentityError::Validation(errors));
    }
    let prefix = tokens::random_token::<6>()?.replace(['-', '_'], "x");
    let key = format!("fk_{prefix}_{}", tokens::random_token::<32>()?);
    let mut scopes = req.scopes.clone();
    scopes.sort();
    scopes.dedup();
    let api_key = ApiKey {
        id: uuid::Uuid::now_v7().to_string(),
        prefix,
        name,
        scopes,
        created_at: now_text(),
        revoked_at: None,
        user_id: caller.subject().to_owned(),
        key_hash: tokens::sha256_hex(&key),
    };
    let row = api_key.clone();
    state.ctx.db.write(move |conn| Box::pin(async move { store::insert_api_key(&mut *conn, &row).await })).await?;
    state.security.note("api_key_created", caller.subject(), &[("api_key_id", &api_key.id)]).await;
    Ok((StatusCode::CREATED, axum::Json(NewApiKey { key, api_key })).into_response())
}

/// The caller's API keys (never their secrets).
#[utoipa::path(get, path = "/api/identity/v1/api-keys", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = [ApiKey])))]
pub async fn list_api_keys(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<ApiKey>>, IdentityError> {
    // Keys manage keys no more than they create them: a password sign-in is needed.
    caller.require(merchant_signed_in(&caller), "list API keys")?;
    let mut conn = state.ctx.db.pool().acquire().await?;
    Ok(axum::Json(store::api_keys_of(&mut conn, caller.subject()).await?))
}

/// Revoke one of the caller's API keys; tokens already exchanged expire on their own.
#[utoipa::path(post, path = "/api/identity/v1/api-keys/{id}/revoke", tag = "identity", params(("id" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = ApiKey), (status = 404, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn revoke_api_key(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<ApiKey>, IdentityError> {
    caller.require(merchant_signed_in(&caller), "revoke an API key")?;
    let mut conn = state.ctx.db.pool().acquire().await?;
    // Another merchant's key answers 404, as a missing one.
    let found = store::api_key_by_id(&mut conn, &id).await?.filter(|k| k.user_id == caller.subject());
    drop(conn);
    let key = found.ok_or(IdentityError::NotFound)?;
    let now = now_text();
    let key_id = key.id.clone();
    state
        .ctx
        .db
        .write(move |conn| Box::pin(async move { store::revoke_api_key(&mut *conn, &key_id, &now).await }))
        .await?;
    state.security.note("api_key_revoked", caller.subject(), &[("api_key_id", &key.id)]).await;
    let mut conn = state.ctx.db.pool().acquire().await?;
    Ok(axum::Json(store::api_key_by_id(&mut conn, &key.id).await?.ok_or(IdentityError::NotFound)?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyTokenRequest {
    pub api_key: String,
}

/// Trade an API key for an access token carrying its scopes.
#[utoipa::path(post, path = "/api/identity/v1/api-key-tokens", tag = "identity", request_body = ApiKeyTokenRequest,
    responses((status = 200, body = AccessToken), (status = 401, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn api_key_token(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(req): ApiJson<ApiKeyTokenRequest>,
) -> Result<axum::Json<AccessToken>, IdentityError> {
    state.limits.per_ip.take(&ip.0).await.map_err(IdentityError::TooManyAttempts)?;
    let prefix = req.api_key.strip_prefix("fk_").and_then(|rest| rest.split_once('_')).map(|(p, _)| p.to_owned());
    let found = match prefix {
        Some(p) if req.api_key.len() <= 100 => {
            let mut conn = state.ctx.db.pool().acquire().await?;
            store::api_key_by_prefix(&mut conn, &p).await?
        }
        _ => None,
    };
    let presented = tokens::sha256_hex(&req.api_key);
    let found =
        found.filter(|k| k.revoked_at.is_none() && bool::from(k.key_hash.as_bytes().ct_eq(presented.as_bytes())));
    let Some(key) = found else {
        state.security.note("api_key_refused", "-", &[("ip", &ip.0)]).await;
        return Err(IdentityError::InvalidApiKey);
    };
    let subject = Subject {
        id: key.user_id.clone(),
        kind: Kind::Merchant,
        roles: Vec::new(),
        scopes: key.scopes.clone(),
        api_key_id: Some(key.id.clone()),
        mfa: false,
    };
    Ok(axum::Json(state.issuer.access(&subject)?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceTokenRequest {
    pub service: String,
    pub secret: String,
    /// The one service the token may call.
    pub audience: String,
}

/// A service token: a service proves itself with its secret and gets a token for one audience.
#[utoipa::path(post, path = "/api/identity/v1/service-tokens", tag = "identity", request_body = ServiceTokenRequest,
    responses((status = 200, body = AccessToken), (status = 401, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 403, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn service_token(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(req): ApiJson<ServiceTokenRequest>,
) -> Result<axum::Json<AccessToken>, IdentityError> {
    let known = state.service_secrets.get(&req.service);
    // Compare digests so that the comparison's time does not depend on the secret's length.
    let presented = tokens::sha256_hex(&req.secret);
    let valid =
        known.is_some_and(|s| bool::from(tokens::sha256_hex(s.expose()).as_bytes().ct_eq(presented.as_bytes())));
    if !valid {
        state.limits.per_ip.take(&ip.0).await.map_err(IdentityError::TooManyAttempts)?;
        state.security.note("service_token_refused", &req.service, &[("ip", &ip.0)]).await;
        return Err(IdentityError::InvalidServiceCredentials);
    }
    let allowed = SERVICE_CALLS.iter().any(|(s, auds)| *s == req.service && auds.contains(&req.audience.as_str()));
    if !allowed {
        state.security.note("service_token_audience_refused", &req.service, &[("audience", &req.audience)]).await;
        return Err(IdentityError::AudienceNotAllowed);
    }
    Ok(axum::Json(state.issuer.service(&req.service, &req.audience)?))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// Sign with the new key at once (a compromised key) instead of after the activation delay.
    #[serde(default)]
    pub immediate: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rotated {
    pub kid: String,
    /// When the new key starts signing (Unix ms).
    pub active_from_ms: i64,
}

/// Rotate the signing key (admins only): the new key is published now and signs after the
/// activation delay; the old one stays published until its last token has expired.
#[utoipa::path(post, path = "/api/identity/v1/signing-keys", tag = "identity", request_body = RotateRequest, security(("bearer" = [])),
    responses((status = 201, body = Rotated), (status = 403, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn rotate_signing_key(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RotateRequest>,
) -> Result<Response, IdentityError> {
    caller.require_role(Role::Admin, "rotate signing keys")?;
    let (kid, active_from_ms) = state.keys.rotate(req.immediate).await?;
    state.security.note("signing_key_rotated", caller.subject(), &[("kid", &kid)]).await;
    Ok((StatusCode::CREATED, axum::Json(Rotated { kid, active_from_ms })).into_response())
}
