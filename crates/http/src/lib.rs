//! The HTTP edge every service shares.
//!
//! - [`problem`]: RFC 9457 `application/problem+json` errors with stable codes;
//! - [`extract`]: JSON and query extractors whose rejections are problems, not plain text;
//! - [`middleware`]: request ids, trace ids, access logs, metrics, timeouts, panic capture, and
//!   the guarantee that every error response is problem+json;
//! - [`health`]: `/healthz`, `/readyz`, `/metrics`;
//! - [`server`]: serving with graceful shutdown on SIGTERM/SIGINT.

pub mod extract;
pub mod health;
pub mod middleware;
pub mod problem;
pub mod server;

pub use extract::{ApiJson, ApiQuery};
pub use problem::{FieldError, Problem};

/// A builder of HTTP clients. reqwest's TLS in this workspace is rustls without a crypto provider
/// of its own (Google's clients require that feature, and features are unified), so a client
/// built without one installed panics: every client is built through here, which installs ring,
/// the workspace's provider, first.
pub fn http_client() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}

/// A stored file as a download: its `Content-Type` and `Content-Disposition: attachment;
/// filename="…"` (each left out when not a valid header value) and `X-Content-Type-Options:
/// nosniff`, so that a browser saves it rather than running it.
pub fn attachment(body: impl Into<axum::body::Body>, content_type: &str, file_name: &str) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let mut response = axum::response::Response::new(body.into());
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Makes ring rustls's process-wide crypto provider (a no-op when one already is).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
