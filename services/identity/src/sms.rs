//! One-time codes by SMS: a second factor for people without an authenticator app.
//!
//! A code is 6 digits drawn uniformly from ring's `SystemRandom` (rejection sampling, zero
//! padded) and sent through the platform's [`MessageSender`](fintech_kit::messages::MessageSender):
//! the SMS gateways when `sms.providers` names them, else the embedded outbox
//! (`<data>/outbox/sms/`). A code works for [`CODE_TTL_SECS`] (5 minutes, never past its sign-in
//! challenge), once, and dies after [`MAX_CODE_ATTEMPTS`] wrong tries; wrong codes also count
//! against the user's `OTP_FAILURES_PER_USER`. A newer code replaces the earlier ones of the same
//! enrolment or challenge.
//!
//! Only a salted SHA-256 of a code is stored ([`code_hash`]), compared in constant time: in
//! identity's database, or in Redis when `redis.url` is set ([`crate::codes`]). The
//! code itself is never logged, recorded, answered or stored: the outbox message is the only
//! place it is written. Phone numbers in logs, records and answers are masked (`+1555*****67`).
//!
//! Sending is limited per number (SMS pumping), per user and per client address
//! (`SMS_PER_NUMBER`, `SMS_PER_USER`, `SMS_PER_IP` in `routes.rs`): 429 `too_many_attempts`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fintech_auth::Caller;
use fintech_http::{ApiJson, FieldError};
use fintech_types::Phone;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use fintech_kit::messages::MessageError;

use crate::codes::Slot;
use crate::error::IdentityError;
use crate::routes::{self, AppState, ClientIp, MAX_CHALLENGE_ATTEMPTS};
use crate::store::{self, User};
use crate::tokens;

/// How long a code sent by SMS works (at most as long as its sign-in challenge).
pub const CODE_TTL_SECS: i64 = 300;
/// Wrong tries of one code before it dies: ask for a new one.
pub const MAX_CODE_ATTEMPTS: i64 = 5;
/// Digits of a code.
pub const CODE_DIGITS: usize = 6;
/// A user's codes expired longer ago than this are deleted when a new one is stored, so the
/// table holds what the SMS limits let through in about a day.
pub const KEEP_EXPIRED_SECS: i64 = 86_400;
/// How many codes there are: 10^[`CODE_DIGITS`].
const CODE_SPACE: u32 = 1_000_000;
/// Random `u32`s at or above this are drawn again, so that every code is equally likely: the
/// largest multiple of [`CODE_SPACE`] that fits.
const UNBIASED_LIMIT: u32 = (u32::MAX / CODE_SPACE) * CODE_SPACE;
/// The message kind of an enrolment code, for the sender.
pub const KIND_ENROLMENT: &str = "otp_enrolment";
/// The message kind of a sign-in code.
pub const KIND_SIGN_IN: &str = "otp_sign_in";

/// What a code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Proving the number before it becomes a second factor.
    Enrol,
    /// Answering a sign-in challenge.
    SignIn,
}

impl Purpose {
    /// As stored (`sms_codes.purpose`) and recorded.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Enrol => "enrol",
            Purpose::SignIn => "sign_in",
        }
    }

    fn message_kind(self) -> &'static str {
        match self {
            Purpose::Enrol => KIND_ENROLMENT,
            Purpose::SignIn => KIND_SIGN_IN,
        }
    }
}

/// The code of a uniformly random `n`, or `None` when `n` must be drawn again (no code is
/// likelier than another).
pub fn code_from(n: u32) -> Option<String> {
    (n < UNBIASED_LIMIT).then(|| format!("{:0width$}", n % CODE_SPACE, width = CODE_DIGITS))
}

/// A new 6-digit code from the system's CSPRNG.
fn new_code() -> Result<String, IdentityError> {
    loop {
        if let Some(code) = code_from(u32::from_be_bytes(tokens::random_bytes::<4>()?)) {
            return Ok(code);
        }
    }
}

/// How a code is stored: SHA-256 hex of the row's salt, `:` and the code.
pub fn code_hash(salt: &str, code: &str) -> String {
    tokens::sha256_hex(&format!("{salt}:{code}"))
}

/// Whether `code` is the code of `row` (constant-time comparison of the salted hashes).
fn is_code_of(row: &store::SmsCode, code: &str) -> bool {
    let presented = code_hash(&row.code_salt, code);
    let well_formed = code.len() == CODE_DIGITS && code.bytes().all(|b| b.is_ascii_digit());
    let equal = bool::from(presented.as_bytes().ct_eq(row.code_hash.as_bytes()));
    well_formed && equal
}

/// Whether `row` can still be answered at `now`.
fn live(row: &store::SmsCode, now: i64) -> bool {
    !row.used && row.expires_at > now && row.attempts < MAX_CODE_ATTEMPTS
}

/// The text of the SMS. The only place the code goes, apart from its salted hash.
fn message(code: &str, expires_in: i64) -> String {
    let minutes = u64::try_from(expires_in).unwrap_or(0).div_ceil(60).max(1);
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    format!("Your FINTECH verification code is {code}. It expires in {minutes} {unit}. Never share it.")
}

fn now_secs() -> i64 {
    fintech_telemetry::now_unix_ms() / 1000
}

/// The number a user with SMS enabled gets codes at.
pub(crate) fn user_phone(user: &User) -> Result<Phone, IdentityError> {
    user.phone
        .as_deref()
        .and_then(|p| Phone::parse(p).ok())
        .ok_or_else(|| IdentityError::Internal("a user with SMS enabled has no valid phone number".into()))
}

/// A code was sent: where (masked) and for how long it works.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SmsCodeSent {
    /// The number, masked: `+1555*****67`.
    pub phone: String,
    /// Seconds the code works.
    pub expires_in: i64,
}

async fn throttled(state: &AppState, user_id: &str, phone: &Phone, ip: &str, limit: &str) {
    state.security.note("sms_throttled", user_id, &[("phone", &phone.masked()), ("ip", ip), ("limit", limit)]).await;
}

/// Takes one SMS from each of the limits (the number, the user, the client address), or none:
/// 429 `too_many_attempts` when any is spent. Checked before anything is stored or sent.
pub(crate) async fn take_allowance(
    state: &AppState,
    user_id: &str,
    phone: &Phone,
    ip: &str,
) -> Result<(), IdentityError> {
    let limits = &state.limits;
    let buckets = [
        ("number", &limits.sms_per_number, phone.as_str()),
        ("user", &limits.sms_per_user, user_id),
        ("ip", &limits.sms_per_ip, ip),
    ];
    for (name, limiter, key) in buckets {
        if let Err(wait) = limiter.check(key).await {
            throttled(state, user_id, phone, ip, name).await;
            return Err(IdentityError::TooManyAttempts(wait));
        }
    }
    for (name, limiter, key) in buckets {
        // Another request may have taken the last token since the check.
        if let Err(wait) = limiter.take(key).await {
            throttled(state, user_id, phone, ip, name).await;
            return Err(IdentityError::TooManyAttempts(wait));
        }
    }
    Ok(())
}

/// Makes a code, stores its salted hash (replacing the earlier codes of the same enrolment or
/// challenge), and sends it to `phone`. The code works until `now + CODE_TTL_SECS`, and never
/// past `not_after` (its challenge's end). Call [`take_allowance`] first.
pub(crate) async fn send_code(
    state: &AppState,
    user_id: &str,
    purpose: Purpose,
    challenge_hash: Option<String>,
    phone: &Phone,
    not_after: i64,
) -> Result<SmsCodeSent, IdentityError> {
    let code = new_code()?;
    let salt: String = tokens::random_bytes::<16>()?.iter().map(|b| format!("{b:02x}")).collect();
    let now = now_secs();
    let expires_at = (now + CODE_TTL_SECS).min(not_after);
    let row = store::SmsCode {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user_id.to_owned(),
        purpose: purpose.as_str().to_owned(),
        challenge_hash,
        phone: phone.as_str().to_owned(),
        code_hash: code_hash(&salt, &code),
        code_salt: salt,
        expires_at,
        attempts: 0,
        used: false,
        created_at: now,
    };
    state.codes.put(row, now).await?;
    let masked = phone.masked();
    let expires_in = expires_at - now;
    let kind = purpose.message_kind();
    let message_id = match state.ctx.messages.send_sms(phone.as_str(), &message(&code, expires_in), kind).await {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = &e as &dyn std::error::Error, phone = %masked, kind,
                "a one-time code could not be sent");
            return Err(match e {
                // The gateways' own per-number limit (SMS pumping): a 429 like identity's limits.
                MessageError::Limited(wait) => IdentityError::TooManyAttempts(wait),
                MessageError::Undelivered(_) | MessageError::Ambiguous(_) | MessageError::Unavailable(_) => {
                    IdentityError::SmsUnavailable
                }
                MessageError::Invalid(_) | MessageError::Io(_) => {
                    IdentityError::Internal("sending a one-time code by SMS failed".into())
                }
            });
        }
    };
    state
        .security
        .note(
            "sms_code_sent",
            user_id,
            &[("phone", &masked), ("purpose", purpose.as_str()), ("message_id", &message_id)],
        )
        .await;
    Ok(SmsCodeSent { phone: masked, expires_in })
}

/// Whether `code` is the live code sent for the sign-in challenge `challenge_hash`: spends it if
/// so, counts a wrong try against it if not. `false` when no code was sent for the challenge.
/// The caller counts the failure against the user and the challenge.
pub(crate) async fn spend_sign_in_code(
    state: &AppState,
    challenge_hash: &str,
    code: &str,
    now: i64,
) -> Result<bool, IdentityError> {
    let slot = Slot::SignIn(challenge_hash);
    let Some(row) = state.codes.latest(slot).await? else {
        return Ok(false);
    };
    if live(&row, now) && is_code_of(&row, code) {
        return state.codes.spend(slot, &row.id, now).await;
    }
    if !row.used {
        state.codes.failed(slot, &row.id).await?;
    }
    Ok(false)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmsEnrolRequest {
    /// E.164: `+`, the country code and the number (`+15551234567`). Spaces, dashes, dots and
    /// parentheses between the digits are dropped.
    pub phone: String,
}

/// Start SMS enrolment (a user signed in with a password, not an API key): sends a 6-digit code
/// to `phone`. SMS becomes a second factor once the code is confirmed
/// (`POST /v1/mfa/sms/confirm`). Sending again replaces the earlier code.
///
/// Limits: 3 SMS per number, then one every 10 minutes; 5 per user and 10 per client address,
/// then one every 10 minutes and one a minute. Beyond any: 429 `too_many_attempts` with
/// `Retry-After`.
#[utoipa::path(post, path = "/api/identity/v1/mfa/sms", tag = "identity", request_body = SmsEnrolRequest,
    security(("bearer" = [])), responses((status = 202, body = SmsCodeSent),
        (status = 409, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 422, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 429, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn enroll_sms(
    caller: Caller,
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(req): ApiJson<SmsEnrolRequest>,
) -> Result<Response, IdentityError> {
    routes::may_enrol(&caller)?;
    let phone = Phone::parse(&req.phone).map_err(|why| {
        IdentityError::Validation(vec![FieldError::new("phone", "invalid_phone", format!("`phone` {why}"))])
    })?;
    let mut conn = state.ctx.db.pool().acquire().await?;
    let user = store::user_by_id(&mut conn, caller.subject()).await?.ok_or(IdentityError::NotFound)?;
    drop(conn);
    if user.sms_enabled {
        return Err(IdentityError::MfaAlreadyEnabled);
    }
    take_allowance(&state, &user.id, &phone, &ip.0).await?;
    let sent = send_code(&state, &user.id, Purpose::Enrol, None, &phone, i64::MAX).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(sent)).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmsConfirmRequest {
    /// The 6-digit code of the SMS.
    pub code: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SmsEnabled {
    pub enabled: bool,
    /// The number codes now go to, masked.
    pub phone: String,
}

/// Confirm SMS enrolment with the code sent by `POST /v1/mfa/sms`: from then on, sign-in needs
/// a code. Limits: 5 wrong tries per code (then send a new one), 5 wrong codes per user then one
/// a minute (429 `too_many_attempts`).
#[utoipa::path(post, path = "/api/identity/v1/mfa/sms/confirm", tag = "identity", request_body = SmsConfirmRequest,
    security(("bearer" = [])), responses((status = 200, body = SmsEnabled),
        (status = 401, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 409, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 429, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn confirm_sms(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SmsConfirmRequest>,
) -> Result<axum::Json<SmsEnabled>, IdentityError> {
    routes::may_enrol(&caller)?;
    let mut conn = state.ctx.db.pool().acquire().await?;
    let user = store::user_by_id(&mut conn, caller.subject()).await?.ok_or(IdentityError::NotFound)?;
    drop(conn);
    if user.sms_enabled {
        return Err(IdentityError::MfaAlreadyEnabled);
    }
    state.limits.otp_failures.check(&user.id).await.map_err(IdentityError::TooManyAttempts)?;
    let slot = Slot::Enrol(&user.id);
    let row = state.codes.latest(slot).await?.ok_or(IdentityError::MfaNotStarted)?;
    let now = now_secs();
    // Spent first, then SMS turned on: a failure in between spends the code (ask for a new one)
    // rather than letting it be used twice.
    let enabled = if live(&row, now) && is_code_of(&row, &req.code) {
        if state.codes.spend(slot, &row.id, now).await? {
            let (user_id, phone) = (user.id.clone(), row.phone.clone());
            state
                .ctx
                .db
                .write(move |conn| Box::pin(async move { store::enable_sms(&mut *conn, &user_id, &phone).await }))
                .await?
        } else {
            false
        }
    } else {
        if !row.used {
            state.codes.failed(slot, &row.id).await?;
        }
        false
    };
    if !enabled {
        routes::code_failed(&state, &user.id, "sms").await;
        return Err(IdentityError::InvalidMfaCode);
    }
    state.limits.otp_failures.forgive(&user.id).await;
    let masked = Phone::parse(&row.phone).map(|p| p.masked()).unwrap_or_default();
    state.security.note("second_factor_enabled", &user.id, &[("kind", "sms"), ("phone", &masked)]).await;
    Ok(axum::Json(SmsEnabled { enabled: true, phone: masked }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInSmsRequest {
    /// The challenge of `POST /v1/sign-in`.
    pub mfa_token: String,
}

/// Send the sign-in challenge's code by SMS: for a user with an authenticator app as well (whose
/// sign-in sends no SMS by itself), or to send a code again. It replaces the challenge's earlier
/// code, and works until the challenge ends. Answer the challenge with it at
/// `POST /v1/sign-in/mfa`.
///
/// Limits: as `POST /v1/mfa/sms` (per number, user and client address): 429
/// `too_many_attempts` with `Retry-After`.
#[utoipa::path(post, path = "/api/identity/v1/sign-in/mfa/sms", tag = "identity", request_body = SignInSmsRequest,
    responses((status = 202, body = SmsCodeSent),
        (status = 401, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 409, body = fintech_http::Problem, content_type = "application/problem+json"),
        (status = 429, body = fintech_http::Problem, content_type = "application/problem+json")))]
pub async fn sign_in_sms(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(req): ApiJson<SignInSmsRequest>,
) -> Result<Response, IdentityError> {
    let now = now_secs();
    let (hash, challenge, user) = routes::live_challenge(&state, &req.mfa_token, now).await?;
    if challenge.attempts >= MAX_CHALLENGE_ATTEMPTS {
        return Err(IdentityError::InvalidMfaToken);
    }
    if !user.sms_enabled {
        return Err(IdentityError::SmsNotEnabled);
    }
    let phone = user_phone(&user)?;
    take_allowance(&state, &user.id, &phone, &ip.0).await?;
    let sent = send_code(&state, &user.id, Purpose::SignIn, Some(hash), &phone, challenge.expires_at).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(sent)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_unbiased() {
        assert_eq!(code_from(0).as_deref(), Some("000000"));
        assert_eq!(code_from(42).as_deref(), Some("000042"));
        assert_eq!(code_from(1_234_567).as_deref(), Some("234567"));
        assert_eq!(UNBIASED_LIMIT, 4_294_000_000);
        assert_eq!(code_from(UNBIASED_LIMIT - 1).as_deref(), Some("999999"));
        assert_eq!(code_from(UNBIASED_LIMIT), None, "drawn again");
        assert_eq!(code_from(u32::MAX), None);
        for _ in 0..100 {
            let code = new_code().expect("random");
            assert!(code.len() == CODE_DIGITS && code.bytes().all(|b| b.is_ascii_digit()), "{code}");
        }
    }

    #[test]
    fn stored_salted_and_compared() {
        let row = |salt: &str, code: &str| store::SmsCode {
            id: "id".into(),
            user_id: "user".into(),
            purpose: "enrol".into(),
            challenge_hash: None,
            phone: "+15551234567".into(),
            code_salt: salt.into(),
            code_hash: code_hash(salt, code),
            expires_at: 1_000,
            attempts: 0,
            used: false,
            created_at: 700,
        };
        let a = row("00112233445566778899aabbccddeeff", "123456");
        assert!(is_code_of(&a, "123456"));
        assert!(!is_code_of(&a, "123457"));
        assert!(!is_code_of(&a, "12345"));
        assert!(!is_code_of(&a, " 123456"));
        assert!(!a.code_hash.contains("123456"));
        assert_ne!(a.code_hash, tokens::sha256_hex("123456"), "salted");
        assert_ne!(a.code_hash, row("ffeeddccbbaa99887766554433221100", "123456").code_hash, "a salt per row");
        assert!(live(&a, 999));
        assert!(!live(&a, 1_000), "expired");
        assert!(!live(&store::SmsCode { attempts: MAX_CODE_ATTEMPTS, ..a.clone() }, 999), "dead");
        assert!(!live(&store::SmsCode { used: true, ..a }, 999), "spent");
    }

    #[test]
    fn the_message() {
        assert_eq!(
            message("012345", CODE_TTL_SECS),
            "Your FINTECH verification code is 012345. It expires in 5 minutes. Never share it."
        );
        assert_eq!(
            message("012345", 40),
            "Your FINTECH verification code is 012345. It expires in 1 minute. Never share it."
        );
    }
}
