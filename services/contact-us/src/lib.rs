//! contact-us: customers' contact and support requests, with one optional attachment kept in the
//! bucket. Emits `contact.requested` (topic `contact-us.events`) for the confirmation to the
//! customer and the alert to support.

pub mod config;
pub mod domain;
pub mod error;
pub mod routes;
pub mod store;

use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use fintech_db::Engine;
use fintech_db::sqlx::migrate::Migrator;
use fintech_kit::{Service, ServiceContext, Started, config_key};
use utoipa::OpenApi;

pub const SERVICE: &str = "contact-us";
pub const TOPIC: &str = "contact-us.events";
pub const EVENT_CONTACT_REQUESTED: &str = "contact.requested";

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL: Migrator = sqlx::migrate!("./migrations/mysql");

#[derive(OpenApi)]
#[openapi(
    info(title = "contact-us", description = "Contact and support requests."),
    paths(routes::create_request, routes::list_requests, routes::get_request, routes::download_attachment),
    components(schemas(fintech_http::Problem, fintech_http::FieldError)),
    modifiers(&StaffTokenScheme),
)]
struct ApiDoc;

struct StaffTokenScheme;

impl utoipa::Modify for StaffTokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "placeholder_staff_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The contact-us service.
#[derive(Debug, Default, Clone, Copy)]
pub struct ContactUs;

#[async_trait]
impl Service for ContactUs {
    fn name(&self) -> &'static str {
        SERVICE
    }

    fn migrations(&self, engine: Engine) -> &'static Migrator {
        match engine {
            Engine::Sqlite => &SQLITE,
            Engine::MySql => &MYSQL,
        }
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        ApiDoc::openapi()
    }

    async fn start(&self, ctx: ServiceContext) -> anyhow::Result<Started> {
        let config: config::ContactUsConfig = ctx.config.section(&config_key(SERVICE))?;
        let token = match &config.support.placeholder_staff_token {
            Some(t) => t.expose().clone(),
            None => generated_staff_token(&ctx).await?,
        };
        let state = routes::AppState {
            max_attachment_bytes: config.attachments.max_bytes,
            placeholder_staff_token: Arc::new(fintech_config::Secret::new(token)),
            ctx,
        };
        Ok(Started { router: routes::router(state), checks: Vec::new() })
    }
}

/// PLACEHOLDER: the staff token in `<data dir>/contact-us/placeholder-staff-token`, created with
/// mode 0600 on first start. The path is logged, never the token.
async fn generated_staff_token(ctx: &ServiceContext) -> anyhow::Result<String> {
    let path = ctx.data_dir.join("placeholder-staff-token");
    if let Ok(existing) = tokio::fs::read_to_string(&path).await {
        let existing = existing.trim().to_owned();
        if existing.len() >= 32 {
            return Ok(existing);
        }
    }
    tokio::fs::create_dir_all(&ctx.data_dir).await.context("creating the contact-us data folder")?;
    let token: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&path).await.context("writing the placeholder staff token")?;
    // An existing file keeps its old mode on open; make sure only the owner can read it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).await?;
    }
    tokio::io::AsyncWriteExt::write_all(&mut file, token.as_bytes()).await?;
    tracing::info!(path = %path.display(), "generated the placeholder support staff token");
    Ok(token)
}
