//! identity: who is calling. Customers and merchants sign up and sign in (argon2id passwords),
//! staff have roles, merchants have API keys, services have secrets. identity answers with
//! short-lived signed access tokens (EdDSA, verified by every service through `fintech-auth`)
//! and single-use refresh tokens; it publishes its public keys as a JWKS document and rotates
//! its signing key without downtime.
//!
//! Second factors: TOTP ([`mfa`]) and one-time codes by SMS ([`sms`]), sent through the
//! platform's message sender (the embedded outbox until the notifications service brings the SMS
//! gateways).
//!
//! NOT YET (issue "Security"): recovery codes and turning a second factor off, disabling users
//! and changing roles; private signing keys are not KMS-wrapped yet (see [`signing`]).

pub mod codes;
pub mod config;
pub mod error;
pub mod mfa;
pub mod password;
pub mod routes;
pub mod signing;
pub mod sms;
pub mod store;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fintech_auth::{Kind, Role, SharedKeys};

use fintech_kit::{Service, ServiceContext, Started, config_key};
use sqlx::migrate::Migrator;
use utoipa::OpenApi;

pub use tokens::Issuer;

pub const SERVICE: &str = "identity";
/// Security records (sign-ins, failures, role and key changes) for the audit log.
pub const TOPIC: &str = "identity.events";

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL: Migrator = sqlx::migrate!("./migrations/mysql");

const TOKEN_SCHEME: fintech_kit::BearerScheme = fintech_kit::BearerScheme("bearer");

#[derive(OpenApi)]
#[openapi(
    info(title = "identity", description = "Sign-up, sign-in, tokens, keys."),
    paths(
        routes::sign_up, routes::sign_in, routes::sign_in_mfa, sms::sign_in_sms, routes::enroll_totp, routes::confirm_totp,
        sms::enroll_sms, sms::confirm_sms, routes::refresh, routes::sign_out, routes::jwks, routes::me,
        routes::create_staff, routes::create_api_key, routes::list_api_keys, routes::revoke_api_key,
        routes::api_key_token, routes::service_token, routes::rotate_signing_key,
    ),
    components(schemas(fintech_http::Problem, fintech_http::FieldError)),
    modifiers(&TOKEN_SCHEME),
)]
struct ApiDoc;

/// The identity service. Starts first: the others verify tokens with its keys.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdentityService;

/// Creates the first administrator when there is none. Its password comes from configuration,
/// or is generated into `<data dir>/identity/bootstrap-admin-password` (mode 0600); the log
/// shows the path, never the password.
async fn bootstrap_admin(ctx: &ServiceContext, config: &config::IdentityConfig) -> anyhow::Result<()> {
    let mut conn = ctx.db.pool().acquire().await?;
    if store::any_admin(&mut conn).await? {
        return Ok(());
    }
    drop(conn);
    let password = match &config.bootstrap_admin_password {
        Some(p) => p.expose().clone(),
        None => fintech_kit::secret_file::load_or_generate(None, &ctx.data_dir, "bootstrap-admin-password")
            .await?
            .expose()
            .clone(),
    };
    let user = store::User {
        id: uuid::Uuid::now_v7().to_string(),
        kind: Kind::Staff,
        email: config.bootstrap_admin_email.to_lowercase(),
        password_hash: password::hash(password).await.map_err(|e| anyhow::anyhow!("{e}"))?,
        roles: vec![Role::Admin],
        status: "active".into(),
        created_at: fintech_telemetry::now_rfc3339(),
        totp_secret: None,
        totp_enabled: false,
        totp_last_step: None,
        phone: None,
        sms_enabled: false,
    };
    let row = user.clone();
    match ctx.db.write(move |conn| Box::pin(async move { store::insert_user(&mut *conn, &row).await })).await {
        // Another replica created it first.
        Err(e) if fintech_db::is_unique_violation(&e) => return Ok(()),
        other => other?,
    }
    fintech_kit::security::SecurityLog::new(ctx, SERVICE, TOPIC)
        .note("bootstrap_admin_created", &user.id, &[("email", &user.email)])
        .await;
    Ok(())
}

#[async_trait]
impl Service for IdentityService {
    fintech_kit::service_basics!(SERVICE, SQLITE, MYSQL, ApiDoc);

    async fn start(&self, ctx: ServiceContext) -> anyhow::Result<Started> {
        let config: config::IdentityConfig = ctx.config.section(&config_key(SERVICE))?;
        let access_ttl = Duration::from_secs(config.access_token_ttl_secs);
        let service_ttl = Duration::from_secs(config.service_token_ttl_secs);
        let retire_after = access_ttl.max(service_ttl) + Duration::from_secs(fintech_auth::verify::LEEWAY_SECS + 60);
        let keys = signing::SigningKeys::load(
            ctx.db.clone(),
            Duration::from_millis(config.key_activation_delay_ms),
            retire_after,
        )
        .await
        .map_err(|e| anyhow::anyhow!("loading the signing keys: {e}"))?;
        bootstrap_admin(&ctx, &config).await?;
        let issuer = Issuer::new(Arc::clone(&keys), access_ttl, service_ttl);
        ctx.registry.provide::<SharedKeys>(keys.ring());
        ctx.registry.provide::<Issuer>(issuer.clone());
        let reload_every = Duration::from_millis(config.key_reload_ms);
        let (reloader, shutdown) = (Arc::clone(&keys), ctx.shutdown.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(reload_every) => {
                        if let Err(e) = reloader.reload().await {
                            tracing::warn!(error = %e, "reloading the signing keys failed; keeping the current ones");
                        }
                    }
                }
            }
        });
        let security = fintech_kit::security::SecurityLog::new(&ctx, SERVICE, TOPIC);
        let limits = Arc::new(routes::Limits::new(&ctx.rate_limits));
        let codes = codes::CodeStore::new(&ctx);
        let state = routes::AppState {
            ctx,
            issuer,
            keys,
            limits,
            codes,
            refresh_ttl: Duration::from_secs(config.refresh_token_ttl_secs),
            service_secrets: Arc::new(config.service_secrets.clone()),
            trust_forwarded_for: config.trust_forwarded_for,
            security,
        };
        Ok(Started { router: routes::router(state), checks: Vec::new() })
    }
}

/// Tokens minted in-process, for tests and `fintech bench`: identity must run in the same
/// process (it offers its [`Issuer`] there). Never reachable over HTTP.
pub mod mint {
    use fintech_auth::{Kind, Role};

    use crate::Issuer;
    use crate::tokens::Subject;

    /// identity's issuer, found in a process's registry.
    #[derive(Debug, Clone)]
    pub struct Minter(Issuer);

    impl Minter {
        /// The minter of the identity running in the process of `registry`.
        pub fn from_registry(registry: &fintech_kit::registry::Registry) -> Option<Minter> {
            registry.get::<Issuer>().map(Minter)
        }

        fn token(&self, subject: Subject) -> String {
            self.0.access(&subject).map(|t| t.access_token).unwrap_or_default()
        }

        /// A customer's (or merchant's) token; `id` is also their accounts customer id.
        pub fn user(&self, kind: Kind, id: &str) -> String {
            self.token(Subject {
                id: id.into(),
                kind,
                roles: Vec::new(),
                scopes: Vec::new(),
                api_key_id: None,
                mfa: false,
            })
        }

        /// A merchant's API-key token with `scopes`.
        pub fn api_key(&self, merchant_id: &str, scopes: &[&str]) -> String {
            self.token(Subject {
                id: merchant_id.into(),
                kind: Kind::Merchant,
                roles: Vec::new(),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                api_key_id: Some("test-key".into()),
                mfa: false,
            })
        }

        /// A staff member's token with `roles`.
        pub fn staff(&self, roles: &[Role]) -> String {
            self.token(Subject {
                id: "staff-test".into(),
                kind: Kind::Staff,
                roles: roles.to_vec(),
                scopes: Vec::new(),
                api_key_id: None,
                mfa: false,
            })
        }

        /// `claims` signed with identity's active key, as they are: expired, not yet valid, for
        /// another audience or issuer... (the auth-bypass tests).
        pub fn sign_claims(&self, claims: &fintech_auth::Claims) -> String {
            self.0.sign_raw(claims).unwrap_or_default()
        }

        /// The claims a customer's token would carry now.
        pub fn customer_claims(&self, id: &str) -> fintech_auth::Claims {
            let now = fintech_telemetry::now_unix_ms() / 1000;
            fintech_auth::Claims {
                iss: fintech_auth::ISSUER.into(),
                sub: id.into(),
                aud: fintech_auth::PUBLIC_AUDIENCE.into(),
                exp: now + 600,
                nbf: now,
                iat: now,
                jti: "forged".into(),
                kind: Kind::Customer,
                roles: Vec::new(),
                scopes: Vec::new(),
                mfa: false,
                api_key_id: None,
            }
        }

        /// `service`'s token for calling `audience`.
        pub fn service(&self, service: &str, audience: &str) -> String {
            self.0.service(service, audience).map(|t| t.access_token).unwrap_or_default()
        }
    }
}
