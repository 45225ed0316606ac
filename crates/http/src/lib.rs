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
