//! identity's tables (portable SQL).

use fintech_auth::{Kind, Role};
use fintech_db::sqlx::{self, AnyConnection, Row, any::AnyRow};

/// A user who signs in.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub kind: Kind,
    pub email: String,
    pub password_hash: String,
    pub roles: Vec<Role>,
    pub status: String,
    pub created_at: String,
    /// The TOTP secret (base32), once enrolment started.
    pub totp_secret: Option<String>,
    /// Whether sign-in needs a TOTP code (enrolment confirmed).
    pub totp_enabled: bool,
    /// The last TOTP step used: no code of it or before is accepted again.
    pub totp_last_step: Option<i64>,
    /// The E.164 number SMS codes go to, once SMS enrolment is confirmed.
    pub phone: Option<String>,
    /// Whether SMS codes are a second factor of the user.
    pub sms_enabled: bool,
}

impl User {
    /// Whether sign-in needs a second factor: TOTP or SMS enabled.
    pub fn has_second_factor(&self) -> bool {
        self.totp_enabled || self.sms_enabled
    }

    /// The second factors enabled, as the challenge names them: `totp`, `sms`.
    pub fn second_factors(&self) -> Vec<String> {
        [("totp", self.totp_enabled), ("sms", self.sms_enabled)]
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| name.to_owned())
            .collect()
    }
}

pub fn kind_parse(s: &str) -> Option<Kind> {
    [Kind::Customer, Kind::Merchant, Kind::Staff].into_iter().find(|k| k.as_str() == s)
}

fn user_from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    let roles: String = row.try_get("roles")?;
    Ok(User {
        id: row.try_get("id")?,
        kind: kind_parse(&kind).ok_or_else(|| sqlx::Error::Decode(format!("unknown user kind {kind}").into()))?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        roles: roles.split(',').filter_map(Role::parse).collect(),
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
        totp_secret: row.try_get("totp_secret")?,
        totp_enabled: row.try_get::<i64, _>("totp_enabled")? != 0,
        totp_last_step: row.try_get("totp_last_step")?,
        phone: row.try_get("phone")?,
        sms_enabled: row.try_get::<i64, _>("sms_enabled")? != 0,
    })
}

macro_rules! user_columns {
    () => {
        "id, kind, email, password_hash, roles, status, created_at, totp_secret, totp_enabled, totp_last_step, \
         phone, sms_enabled"
    };
}

pub fn roles_text(roles: &[Role]) -> String {
    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
}

pub async fn insert_user(conn: &mut AnyConnection, u: &User) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO users (id, kind, email, password_hash, roles, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&u.id)
    .bind(u.kind.as_str())
    .bind(&u.email)
    .bind(&u.password_hash)
    .bind(roles_text(&u.roles))
    .bind(&u.status)
    .bind(&u.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn user_by_email(conn: &mut AnyConnection, email: &str) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE email = ?"))
        .bind(email)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

pub async fn user_by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE id = ?"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

pub async fn any_admin(conn: &mut AnyConnection) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE kind = 'staff' AND roles LIKE '%admin%'")
        .fetch_one(conn)
        .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// A refresh token as stored.
#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub family_id: String,
    pub user_id: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub family_revoked: bool,
}

pub async fn refresh_token(conn: &mut AnyConnection, token_hash: &str) -> Result<Option<RefreshRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT t.family_id, f.user_id, t.expires_at, t.used_at, f.revoked_at FROM refresh_tokens t \
         JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = ?",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(RefreshRow {
            family_id: r.try_get("family_id")?,
            user_id: r.try_get("user_id")?,
            expires_at: r.try_get("expires_at")?,
            used_at: r.try_get("used_at")?,
            family_revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
        })
    })
    .transpose()
}

pub async fn insert_family(conn: &mut AnyConnection, id: &str, user_id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO refresh_families (id, user_id, created_at) VALUES (?, ?, ?)")
        .bind(id)
        .bind(user_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert_refresh(
    conn: &mut AnyConnection,
    token_hash: &str,
    family_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
        .bind(token_hash)
        .bind(family_id)
        .bind(now)
        .bind(expires_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks a token used; false when it already was (a concurrent use).
pub async fn use_refresh(conn: &mut AnyConnection, token_hash: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL")
        .bind(now)
        .bind(token_hash)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn revoke_family(
    conn: &mut AnyConnection,
    family_id: &str,
    now: i64,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_families SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL")
        .bind(now)
        .bind(reason)
        .bind(family_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A merchant's API key, without its secret.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: String,
    /// Identifies the key in lists and logs (`fk_<prefix>_...`).
    pub prefix: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
    #[serde(skip)]
    pub user_id: String,
    #[serde(skip)]
    pub key_hash: String,
}

macro_rules! key_columns {
    () => {
        "id, prefix, key_hash, user_id, name, scopes, created_at, revoked_at"
    };
}

fn key_from_row(r: &AnyRow) -> Result<ApiKey, sqlx::Error> {
    let scopes: String = r.try_get("scopes")?;
    Ok(ApiKey {
        id: r.try_get("id")?,
        prefix: r.try_get("prefix")?,
        key_hash: r.try_get("key_hash")?,
        user_id: r.try_get("user_id")?,
        name: r.try_get("name")?,
        scopes: scopes.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

pub async fn insert_api_key(conn: &mut AnyConnection, k: &ApiKey) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_keys (id, prefix, key_hash, user_id, name, scopes, created_at, revoked_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
    )
    .bind(&k.id)
    .bind(&k.prefix)
    .bind(&k.key_hash)
    .bind(&k.user_id)
    .bind(&k.name)
    .bind(k.scopes.join(","))
    .bind(&k.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn api_key_by_prefix(conn: &mut AnyConnection, prefix: &str) -> Result<Option<ApiKey>, sqlx::Error> {
    let row = sqlx::query(concat!("SELECT ", key_columns!(), " FROM api_keys WHERE prefix = ?"))
        .bind(prefix)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(key_from_row).transpose()
}

pub async fn api_keys_of(conn: &mut AnyConnection, user_id: &str) -> Result<Vec<ApiKey>, sqlx::Error> {
    let rows =
        sqlx::query(concat!("SELECT ", key_columns!(), " FROM api_keys WHERE user_id = ? ORDER BY created_at, id"))
            .bind(user_id)
            .fetch_all(conn)
            .await?;
    rows.iter().map(key_from_row).collect()
}

pub async fn api_key_by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<ApiKey>, sqlx::Error> {
    let row = sqlx::query(concat!("SELECT ", key_columns!(), " FROM api_keys WHERE id = ?"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(key_from_row).transpose()
}

/// Revokes the key `id` (if not revoked yet).
pub async fn revoke_api_key(conn: &mut AnyConnection, id: &str, now: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Starts (or restarts) TOTP enrolment; false when a second factor is already enabled.
pub async fn set_totp_secret(conn: &mut AnyConnection, user_id: &str, secret: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE users SET totp_secret = ?, totp_last_step = NULL WHERE id = ? AND totp_enabled = 0")
        .bind(secret)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Records `step` as used (and enables TOTP when `enable`); false when that step, or a later
/// one, was used already (a replayed code).
pub async fn use_totp_step(
    conn: &mut AnyConnection,
    user_id: &str,
    step: i64,
    enable: bool,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE users SET totp_last_step = ?, totp_enabled = CASE WHEN ? = 1 THEN 1 ELSE totp_enabled END \
         WHERE id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)",
    )
    .bind(step)
    .bind(i64::from(enable))
    .bind(user_id)
    .bind(step)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A second-factor challenge as stored.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub user_id: String,
    pub expires_at: i64,
    pub attempts: i64,
    pub used: bool,
}

pub async fn insert_challenge(
    conn: &mut AnyConnection,
    hash: &str,
    user_id: &str,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO mfa_challenges (token_hash, user_id, expires_at, attempts) VALUES (?, ?, ?, 0)")
        .bind(hash)
        .bind(user_id)
        .bind(expires_at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn challenge(conn: &mut AnyConnection, hash: &str) -> Result<Option<Challenge>, sqlx::Error> {
    let row = sqlx::query("SELECT user_id, expires_at, attempts, used_at FROM mfa_challenges WHERE token_hash = ?")
        .bind(hash)
        .fetch_optional(conn)
        .await?;
    row.map(|r| {
        Ok(Challenge {
            user_id: r.try_get("user_id")?,
            expires_at: r.try_get("expires_at")?,
            attempts: r.try_get("attempts")?,
            used: r.try_get::<Option<i64>, _>("used_at")?.is_some(),
        })
    })
    .transpose()
}

/// Counts a wrong code against the challenge.
pub async fn challenge_failed(conn: &mut AnyConnection, hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE mfa_challenges SET attempts = attempts + 1 WHERE token_hash = ?")
        .bind(hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// Spends the challenge; false when it was spent already.
pub async fn use_challenge(conn: &mut AnyConnection, hash: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE mfa_challenges SET used_at = ? WHERE token_hash = ? AND used_at IS NULL")
        .bind(now)
        .bind(hash)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A one-time code sent by SMS, as stored: never the code, only its salted SHA-256.
#[derive(Debug, Clone)]
pub struct SmsCode {
    pub id: String,
    pub user_id: String,
    /// `enrol` or `sign_in`.
    pub purpose: String,
    /// The sign-in challenge's `token_hash` (purpose `sign_in`).
    pub challenge_hash: Option<String>,
    /// The E.164 number it was sent to.
    pub phone: String,
    /// 16 random bytes, hex.
    pub code_salt: String,
    /// SHA-256 hex of the salt, `:` and the code.
    pub code_hash: String,
    pub expires_at: i64,
    pub attempts: i64,
    /// Spent, or replaced by a newer code.
    pub used: bool,
    pub created_at: i64,
}

macro_rules! sms_columns {
    () => {
        "id, user_id, purpose, challenge_hash, phone, code_salt, code_hash, expires_at, attempts, used_at, created_at"
    };
}

fn sms_from_row(r: &AnyRow) -> Result<SmsCode, sqlx::Error> {
    Ok(SmsCode {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        purpose: r.try_get("purpose")?,
        challenge_hash: r.try_get("challenge_hash")?,
        phone: r.try_get("phone")?,
        code_salt: r.try_get("code_salt")?,
        code_hash: r.try_get("code_hash")?,
        expires_at: r.try_get("expires_at")?,
        attempts: r.try_get("attempts")?,
        used: r.try_get::<Option<i64>, _>("used_at")?.is_some(),
        created_at: r.try_get("created_at")?,
    })
}

/// Retires the live codes the new `code` replaces: the user's earlier enrolment codes, or the
/// earlier codes of the same sign-in challenge.
pub async fn retire_sms_codes(conn: &mut AnyConnection, code: &SmsCode, now: i64) -> Result<(), sqlx::Error> {
    match &code.challenge_hash {
        Some(challenge) => {
            sqlx::query("UPDATE sms_codes SET used_at = ? WHERE challenge_hash = ? AND used_at IS NULL")
                .bind(now)
                .bind(challenge)
                .execute(conn)
                .await?;
        }
        None => {
            sqlx::query("UPDATE sms_codes SET used_at = ? WHERE user_id = ? AND purpose = ? AND used_at IS NULL")
                .bind(now)
                .bind(&code.user_id)
                .bind(&code.purpose)
                .execute(conn)
                .await?;
        }
    }
    Ok(())
}

/// Deletes the user's codes that expired before `before`.
pub async fn purge_sms_codes(conn: &mut AnyConnection, user_id: &str, before: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sms_codes WHERE user_id = ? AND expires_at < ?")
        .bind(user_id)
        .bind(before)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert_sms_code(conn: &mut AnyConnection, c: &SmsCode) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sms_codes (id, user_id, purpose, challenge_hash, phone, code_salt, code_hash, expires_at, \
         attempts, used_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, ?)",
    )
    .bind(&c.id)
    .bind(&c.user_id)
    .bind(&c.purpose)
    .bind(c.challenge_hash.clone())
    .bind(&c.phone)
    .bind(&c.code_salt)
    .bind(&c.code_hash)
    .bind(c.expires_at)
    .bind(c.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The user's latest enrolment code, live or not.
pub async fn latest_enrol_code(conn: &mut AnyConnection, user_id: &str) -> Result<Option<SmsCode>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "SELECT ",
        sms_columns!(),
        " FROM sms_codes WHERE user_id = ? AND purpose = 'enrol' ORDER BY created_at DESC, id DESC LIMIT 1"
    ))
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(sms_from_row).transpose()
}

/// The latest code sent for the sign-in challenge `challenge_hash`, live or not.
pub async fn latest_challenge_code(
    conn: &mut AnyConnection,
    challenge_hash: &str,
) -> Result<Option<SmsCode>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "SELECT ",
        sms_columns!(),
        " FROM sms_codes WHERE challenge_hash = ? ORDER BY created_at DESC, id DESC LIMIT 1"
    ))
    .bind(challenge_hash)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(sms_from_row).transpose()
}

/// Counts a wrong try against the code `id`.
pub async fn sms_code_failed(conn: &mut AnyConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sms_codes SET attempts = attempts + 1 WHERE id = ? AND used_at IS NULL")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Spends the code `id`; false when it is spent, replaced, expired or dead already (a race).
pub async fn use_sms_code(
    conn: &mut AnyConnection,
    id: &str,
    now: i64,
    max_attempts: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sms_codes SET used_at = ? WHERE id = ? AND used_at IS NULL AND attempts < ? AND expires_at > ?",
    )
    .bind(now)
    .bind(id)
    .bind(max_attempts)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Makes `phone` the user's SMS second factor; false when SMS is enabled already.
pub async fn enable_sms(conn: &mut AnyConnection, user_id: &str, phone: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE users SET phone = ?, sms_enabled = 1 WHERE id = ? AND sms_enabled = 0")
        .bind(phone)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}
