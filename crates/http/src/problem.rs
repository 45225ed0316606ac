//! RFC 9457 problem details with a stable `code`.
//!
//! Every error any service answers has this shape:
//! ```json
//! {"type":"urn:fintech:problem:validation_failed","title":"Request validation failed",
//!  "status":422,"code":"validation_failed","detail":"...","errors":[{"field":"email",
//!  "code":"invalid_email","message":"..."}],"request_id":"..."}
//! ```
//! Clients branch on `code` (documented in docs/reference/error-codes.md), never on `title` or
//! `detail`. 5xx problems say nothing about the cause; the cause is logged with the request id.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field's name as sent (`email`, `attachment`).
    pub field: String,
    /// Stable machine-readable reason (`required`, `too_long`, `invalid_email`).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, code: &str, message: impl Into<String>) -> Self {
        FieldError { field: field.to_owned(), code: code.to_owned(), message: message.into() }
    }
}

/// A problem response. Deserializable so that a stored answer (an idempotent replay) can be
/// rendered again with the current request's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Extra headers (e.g. `Allow` on 405); not part of the body.
    #[serde(skip)]
    #[schema(ignore)]
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, title: &str) -> Self {
        Problem {
            type_uri: format!("urn:fintech:problem:{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            code: code.to_owned(),
            detail: None,
            errors: Vec::new(),
            request_id: None,
            headers: Vec::new(),
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    // The platform's common problems. Services add their own codes beside these.

    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, code, "Bad request").with_detail(detail)
    }

    pub fn malformed_json(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "malformed_json", "Request body is not valid JSON").with_detail(detail)
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "Request validation failed")
            .with_detail("One or more fields are invalid; see `errors`.")
            .with_errors(errors)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Authentication required")
            .with_detail(detail)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed").with_detail(detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not_found", "Not found").with_detail(detail)
    }

    pub fn conflict(code: &str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::CONFLICT, code, "Conflict").with_detail(detail)
    }

    pub fn payload_too_large(code: &str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::PAYLOAD_TOO_LARGE, code, "Request too large").with_detail(detail)
    }

    pub fn unsupported_media_type(code: &str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, code, "Unsupported media type").with_detail(detail)
    }

    pub fn service_unavailable(code: &str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, code, "Service unavailable").with_detail(detail)
    }

    /// A 500 that says nothing internal. Log the cause before returning it.
    pub fn internal() -> Self {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Internal error")
            .with_detail("Something went wrong on our side. Quote the request id when contacting support.")
    }

    /// The default problem for a bare error status (what the router or a layer produced).
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::BAD_REQUEST => Problem::bad_request("bad_request", "The request could not be understood."),
            StatusCode::UNAUTHORIZED => Problem::unauthorized("A valid access token is required."),
            StatusCode::FORBIDDEN => Problem::forbidden("You may not do this."),
            StatusCode::NOT_FOUND => Problem::not_found("No such resource."),
            StatusCode::METHOD_NOT_ALLOWED => Problem::new(status, "method_not_allowed", "Method not allowed")
                .with_detail("This resource does not accept that method; see the Allow header."),
            StatusCode::PAYLOAD_TOO_LARGE => Problem::payload_too_large(
                "payload_too_large",
                "The request body is larger than this endpoint accepts.",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Problem::unsupported_media_type(
                "unsupported_media_type",
                "This endpoint does not accept that Content-Type.",
            ),
            StatusCode::UNPROCESSABLE_ENTITY => Problem::validation(Vec::new()),
            StatusCode::TOO_MANY_REQUESTS => {
                Problem::new(status, "rate_limited", "Too many requests").with_detail("Slow down and retry later.")
            }
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => {
                Problem::new(status, "timeout", "Request timed out").with_detail("The request took too long.")
            }
            StatusCode::SERVICE_UNAVAILABLE => Problem::service_unavailable("unavailable", "Try again later."),
            s if s.is_server_error() => Problem::internal(),
            s => Problem::new(s, "error", s.canonical_reason().unwrap_or("Error")),
        }
    }

    fn body(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"urn:fintech:problem:internal_error","title":"Internal error","status":500,"code":"internal_error"}"#
                .to_owned()
        })
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.status_code(), self.body()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        // The middleware re-renders with the request id from this copy.
        response.extensions_mut().insert(self);
        response
    }
}

/// Renders `problem` with `request_id` added, keeping the original response's headers.
pub(crate) fn with_request_id(mut problem: Problem, request_id: &str, mut original: Response) -> Response {
    problem.request_id = Some(request_id.to_owned());
    let body = problem.body();
    *original.body_mut() = axum::body::Body::from(body);
    let headers = original.headers_mut();
    headers.remove(header::CONTENT_LENGTH);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    original.extensions_mut().insert(problem);
    original
}
