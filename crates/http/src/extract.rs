//! Extractors whose rejections are problem+json with stable codes.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::problem::{FieldError, Problem};

/// Longest serde message echoed back in a problem's detail.
const MAX_DETAIL_CHARS: usize = 300;

/// A parser's message without the values it quotes (`invalid type: integer `4242...`, expected
/// a string` names the kind, not the value: a value may be a card number, a CVV or a password),
/// and without anything that looks like a card number.
fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) =
        ["invalid type: ", "invalid value: "].iter().filter_map(|p| rest.find(p).map(|i| (i, p.len()))).min()
    {
        let (start, len) = at;
        out.push_str(&rest[..start + len]);
        let after = &rest[start + len..];
        let Some(end) = after.find(", expected") else {
            rest = after;
            break;
        };
        // Keep the kind (`string`, `integer`, `floating point`...), drop the quoted value.
        let kind: String = after[..end].split(['`', '"', '\'']).next().unwrap_or_default().trim_end().to_owned();
        out.push_str(&kind);
        rest = &after[end..];
    }
    out.push_str(rest);
    fintech_types::card::redact_card_numbers(&out)
}

fn short(text: String) -> String {
    let text = scrub(&text);
    if text.chars().count() <= MAX_DETAIL_CHARS {
        text
    } else {
        let mut s: String = text.chars().take(MAX_DETAIL_CHARS).collect();
        s.push('…');
        s
    }
}

/// `axum::Json` with problem rejections:
/// wrong or missing `Content-Type` → 415 `unsupported_media_type`; not JSON → 400
/// `malformed_json`; JSON of the wrong shape (missing field, wrong type, unknown field) → 422
/// `validation_failed`; over the body limit → 413 `payload_too_large`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> Problem {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => Problem::unsupported_media_type(
            "unsupported_media_type",
            "Send the body as JSON with `Content-Type: application/json`.",
        ),
        JsonRejection::JsonSyntaxError(e) => Problem::malformed_json(short(e.body_text())),
        JsonRejection::JsonDataError(e) => {
            Problem::validation(vec![FieldError::new("body", "invalid_shape", short(e.body_text()))])
        }
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE),
        other => Problem::bad_request("unreadable_body", short(other.body_text())),
    }
}

/// `axum::extract::Query` with a 400 `invalid_query` problem on rejection.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> Problem {
    Problem::bad_request("invalid_query", short(rejection.body_text()))
}

/// Parses a JSON body already read into memory, with the same problems as [`ApiJson`]: not JSON
/// → 400 `malformed_json`; wrong shape → 422 `validation_failed`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            Problem::validation(vec![FieldError::new("body", "invalid_shape", short(e.to_string()))])
        }
        _ => Problem::malformed_json(short(e.to_string())),
    })
}

/// The client's address: the last `X-Forwarded-For` entry when `trust_forwarded_for` (our own
/// proxy appends the address it saw, so the last entry is the one no client can forge), else
/// the connection's peer; `unknown` when neither is there (a test without a socket).
pub fn client_ip(parts: &Parts, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for
        && let Some(last) = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok())
    {
        return last.to_string();
    }
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "unknown".into(), |c| c.0.ip().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Card {
        number: String,
        cvv: Option<String>,
        month: u8,
    }

    #[test]
    fn parser_messages_quote_no_values() {
        for body in [
            r#"{"number": 4242424242424242, "month": 1}"#,
            r#"{"number": "4242424242424242", "cvv": 987, "month": 1}"#,
            r#"{"number": "x", "month": "4242424242424242"}"#,
            r#"{"number": "x", "month": 987}"#,
        ] {
            let problem = parse_json::<Card>(body.as_bytes()).expect_err("refused");
            let detail = problem.errors[0].message.clone();
            assert!(!detail.contains("4242") && !detail.contains("987"), "{detail}");
            assert!(detail.contains("invalid"), "still says what is wrong: {detail}");
        }
        let unknown = parse_json::<Card>(br#"{"number": "x", "month": 1, "role": "admin"}"#).expect_err("refused");
        assert!(unknown.errors[0].message.contains("unknown field `role`"), "{:?}", unknown.errors);
    }
}
