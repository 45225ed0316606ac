//! The edge middleware applied once around every service's routes.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fintech_telemetry::{HttpLabels, Metrics};
use futures::FutureExt;
use tracing::Instrument;

use crate::problem::{PROBLEM_JSON, Problem, with_request_id};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest request id accepted from a client; longer or odd ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 64;

/// The request id of the current request, in request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Edge settings, from the `http` configuration section.
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    /// Whole-request deadline; past it the client gets 503 `timeout`.
    pub request_timeout: Duration,
    /// Default body limit for routes that set none of their own.
    pub body_limit_bytes: usize,
    /// Google Cloud project, to write trace ids as `projects/<id>/traces/<trace>`.
    pub project_id: Option<String>,
    pub metrics: Metrics,
}

/// Wraps `router` with the edge: 404 fallback, body limit, and [`edge`].
pub fn apply_edge(router: Router, settings: EdgeSettings) -> Router {
    let body_limit = settings.body_limit_bytes;
    router
        .fallback(|| async { Problem::for_status(StatusCode::NOT_FOUND) })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(Arc::new(settings), edge))
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_REQUEST_ID_LEN
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                // It is logged: a client's id that looks like a card number is replaced.
                && !fintech_types::card::contains_card_number(v)
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The trace id from W3C `traceparent` or Google's `X-Cloud-Trace-Context`.
fn trace_id(headers: &HeaderMap) -> Option<String> {
    let is_hex32 = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(tp) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
        let mut parts = tp.split('-');
        if let (Some("00"), Some(id)) = (parts.next(), parts.next())
            && is_hex32(id)
        {
            return Some(id.to_ascii_lowercase());
        }
    }
    let ctx = headers.get("x-cloud-trace-context").and_then(|v| v.to_str().ok())?;
    let id = ctx.split('/').next()?;
    is_hex32(id).then(|| id.to_ascii_lowercase())
}

fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// Request id and trace span, deadline, panic capture, problem+json for every error, access
/// log, metrics.
pub async fn edge(State(settings): State<Arc<EdgeSettings>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(req.headers());
    let trace = trace_id(req.headers()).map(|t| match &settings.project_id {
        Some(p) => format!("projects/{p}/traces/{t}"),
        None => t,
    });
    let method = req.method().clone();
    // Logged: a card number in a path (`/v1/cards/<number>` by mistake) is removed first.
    let path = fintech_types::card::redact_card_numbers(req.uri().path());
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(fintech_types::card::redact_card_numbers);
    req.extensions_mut().insert(RequestId(id.clone()));

    let span = tracing::info_span!("request", request_id = %id, trace = tracing::field::Empty);
    if let Some(t) = &trace {
        span.record("trace", t.as_str());
    }
    let run = AssertUnwindSafe(next.run(req)).catch_unwind();
    let outcome = tokio::time::timeout(settings.request_timeout, run).instrument(span.clone()).await;
    let mut response = match outcome {
        Ok(Ok(response)) => response,
        Ok(Err(_)) => {
            span.in_scope(|| tracing::error!("handler panicked"));
            Problem::internal().into_response()
        }
        Err(_) => {
            span.in_scope(|| {
                tracing::warn!(timeout_ms = settings.request_timeout.as_millis() as u64, "request timed out")
            });
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", "Request timed out")
                .with_detail("The request took longer than this service allows; its outcome is unknown. Check before retrying a request that is not idempotent.")
                .into_response()
        }
    };

    let status = response.status();
    if let Some(problem) = response.extensions_mut().remove::<Problem>() {
        response = with_request_id(problem, &id, response);
    } else if (status.is_client_error() || status.is_server_error())
        && response.headers().get(header::CONTENT_TYPE).is_none_or(|v| v != PROBLEM_JSON)
    {
        // A bare error from the router or a layer (404, 405, 413...): give it the same shape.
        response = with_request_id(Problem::for_status(status), &id, response);
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    // Answers carry personal and financial data: no shared or browser cache keeps them unless
    // a route says otherwise.
    if !response.headers().contains_key(header::CACHE_CONTROL) {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }

    let elapsed = started.elapsed();
    let route_label = route.unwrap_or_else(|| "unmatched".to_owned());
    settings.metrics.observe_request(
        HttpLabels { method: method.to_string(), route: route_label, status: status.as_u16() },
        elapsed.as_secs_f64(),
    );
    let latency = format!("{:.6}s", elapsed.as_secs_f64());
    span.in_scope(|| {
        // The path only: query strings may carry tokens and are never logged.
        if is_probe(&path) {
            tracing::debug!(httpRequest.requestMethod = %method, httpRequest.requestUrl = %path,
                httpRequest.status = status.as_u16(), httpRequest.latency = %latency, "request");
        } else {
            tracing::info!(httpRequest.requestMethod = %method, httpRequest.requestUrl = %path,
                httpRequest.status = status.as_u16(), httpRequest.latency = %latency,
                httpRequest.userAgent = user_agent.as_deref().unwrap_or(""), "request");
        }
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_taken_only_when_safe() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_static("a b"));
        assert_ne!(request_id(&h), "a b");
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_str(&"x".repeat(65)).expect("ascii"));
        assert_eq!(request_id(&h).len(), 36);
    }

    #[test]
    fn trace_ids_come_from_either_header() {
        let mut h = HeaderMap::new();
        assert_eq!(trace_id(&h), None);
        h.insert("x-cloud-trace-context", HeaderValue::from_static("105445AA7843BC8BF206B12000100000/1;o=1"));
        assert_eq!(trace_id(&h).as_deref(), Some("105445aa7843bc8bf206b12000100000"));
        h.insert("traceparent", HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        assert_eq!(trace_id(&h).as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        h.insert("traceparent", HeaderValue::from_static("00-zz-00f067aa0ba902b7-01"));
        assert_eq!(trace_id(&h).as_deref(), Some("105445aa7843bc8bf206b12000100000"));
    }
}
