//! contact-us: customers' contact and support requests, with one optional attachment kept in the
//! bucket. Emits `contact.requested` (topic `contact-us.events`) for the confirmation to the
//! customer and the alert to support.

pub mod config;
pub mod domain;
pub mod error;
pub mod routes;
pub mod store;

use async_trait::async_trait;

use fintech_db::sqlx::migrate::Migrator;
use fintech_kit::{Service, ServiceContext, Started, config_key};
use utoipa::OpenApi;

pub const SERVICE: &str = "contact-us";
pub const TOPIC: &str = "contact-us.events";
pub const EVENT_CONTACT_REQUESTED: &str = "contact.requested";

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL: Migrator = sqlx::migrate!("./migrations/mysql");

/// Access tokens from identity (support staff).
const TOKEN_SCHEME: fintech_kit::BearerScheme = fintech_kit::BearerScheme("bearer");

#[derive(OpenApi)]
#[openapi(
    info(title = "contact-us", description = "Contact and support requests."),
    paths(routes::create_request, routes::list_requests, routes::get_request, routes::download_attachment),
    components(schemas(fintech_http::Problem, fintech_http::FieldError)),
    modifiers(&TOKEN_SCHEME),
)]
struct ApiDoc;

/// The contact-us service.
#[derive(Debug, Default, Clone, Copy)]
pub struct ContactUs;

#[async_trait]
impl Service for ContactUs {
    fintech_kit::service_basics!(SERVICE, SQLITE, MYSQL, ApiDoc);

    async fn start(&self, ctx: ServiceContext) -> anyhow::Result<Started> {
        let config: config::ContactUsConfig = ctx.config.section(&config_key(SERVICE))?;
        let state = routes::AppState { max_attachment_bytes: config.attachments.max_bytes, ctx };
        Ok(Started { router: routes::router(state), checks: Vec::new() })
    }
}
