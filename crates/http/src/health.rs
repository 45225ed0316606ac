//! `/healthz` (liveness: the process answers; no dependency is touched), `/readyz` (every
//! dependency answers within its deadline), `/metrics` (Prometheus text).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use fintech_telemetry::Metrics;
use serde_json::json;

use crate::problem::Problem;

/// Deadline for one readiness check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A dependency that must answer for the process to be ready.
#[async_trait]
pub trait ReadinessCheck: Send + Sync {
    /// Stable name shown in `/readyz` (`contact-us.database`).
    fn name(&self) -> &str;
    /// The error is logged, never shown to the caller.
    async fn check(&self) -> Result<(), String>;
}

#[derive(Clone)]
struct HealthState {
    checks: Arc<Vec<Arc<dyn ReadinessCheck>>>,
    metrics: Metrics,
}

pub fn health_router(checks: Vec<Arc<dyn ReadinessCheck>>, metrics: Metrics) -> Router {
    Router::new()
        .route("/healthz", get(|| async { axum::Json(json!({ "status": "ok" })) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(HealthState { checks: Arc::new(checks), metrics })
}

async fn readyz(State(state): State<HealthState>) -> Response {
    let results = futures::future::join_all(state.checks.iter().map(|c| async move {
        let outcome = match tokio::time::timeout(CHECK_TIMEOUT, c.check()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())),
        };
        (c.name().to_owned(), outcome)
    }))
    .await;
    let mut report = serde_json::Map::new();
    let mut failed = Vec::new();
    for (name, outcome) in results {
        match outcome {
            Ok(()) => {
                report.insert(name, json!("ok"));
            }
            Err(e) => {
                tracing::warn!(check = %name, error = %e, "readiness check failed");
                report.insert(name.clone(), json!("unavailable"));
                failed.push(name);
            }
        }
    }
    if failed.is_empty() {
        axum::Json(json!({ "status": "ready", "checks": report })).into_response()
    } else {
        Problem::service_unavailable("not_ready", format!("Dependencies unavailable: {}", failed.join(", ")))
            .into_response()
    }
}

async fn metrics_text(State(state): State<HealthState>) -> Response {
    let mut response = (StatusCode::OK, state.metrics.encode()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
