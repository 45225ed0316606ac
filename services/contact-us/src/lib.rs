//! contact-us: customers' contact and support requests, with one optional attachment kept in the
//! bucket. Emits `contact.requested` (topic `contact-us.events`) for the confirmation to the
//! customer and the alert to support.

pub mod config;
pub mod domain;
pub mod error;
pub mod routes;
pub mod store;

use std::sync::Arc;

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
        let token = fintech_kit::placeholder::load_or_generate(
            config.support.placeholder_staff_token.as_ref(),
            &ctx.data_dir,
            "placeholder-staff-token",
        )
        .await?;
        let state = routes::AppState {
            max_attachment_bytes: config.attachments.max_bytes,
            placeholder_staff_token: Arc::new(token),
            ctx,
        };
        Ok(Started { router: routes::router(state), checks: Vec::new() })
    }
}
