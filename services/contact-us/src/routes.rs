//! HTTP routes of contact-us, relative to `/api/contact-us`.

use axum::Router;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Multipart, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use fintech_auth::{AuthError, Caller, Role};
use fintech_events::EventEnvelope;
use fintech_http::extract::parse_json;
use fintech_http::{ApiQuery, FieldError, Problem};
use fintech_kit::ServiceContext;
use fintech_storage::ObjectKey;
use serde::{Deserialize, Serialize};

use crate::domain::{AttachmentType, ContactForm, safe_file_name};
use crate::error::ContactError;
use crate::store::{self, Attachment, ContactRequest};
use crate::{EVENT_CONTACT_REQUESTED, SERVICE, TOPIC};

/// Largest JSON body (the form is at most ~11k characters of text).
pub const MAX_JSON_BYTES: usize = 64 * 1024;
/// Room for the text fields and multipart framing on top of the attachment.
const MULTIPART_OVERHEAD_BYTES: usize = 64 * 1024;
/// Largest text field of a multipart form.
const MAX_TEXT_FIELD_BYTES: usize = 48 * 1024;
pub const MAX_PAGE_SIZE: u32 = 100;
const DEFAULT_PAGE_SIZE: u32 = 25;

#[derive(Debug, Clone)]
pub struct AppState {
    pub ctx: ServiceContext,
    pub max_attachment_bytes: usize,
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.max_attachment_bytes + MULTIPART_OVERHEAD_BYTES;
    Router::new()
        .route("/v1/requests", post(create_request).layer(DefaultBodyLimit::max(body_limit)).get(list_requests))
        .route("/v1/requests/{id}", get(get_request))
        .route("/v1/requests/{id}/attachment", get(download_attachment))
        .with_state(state)
}

/// Support staff: reads contact requests.
#[derive(Debug)]
pub struct SupportStaff;

impl FromRequestParts<AppState> for SupportStaff {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_role(Role::Support, "read contact requests")?;
        Ok(SupportStaff)
    }
}

/// An attachment that passed every check, not yet stored.
struct IncomingAttachment {
    file_name: String,
    kind: AttachmentType,
    bytes: Bytes,
}

/// Reads the request as JSON or multipart, validating everything before anything is written.
async fn read_submission(
    req: Request,
    max_attachment_bytes: usize,
) -> Result<(ContactForm, Option<IncomingAttachment>), ContactError> {
    let content_type =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_owned();
    match essence.as_str() {
        "application/json" => {
            let bytes = axum::body::to_bytes(req.into_body(), MAX_JSON_BYTES).await.map_err(|_| {
                Problem::payload_too_large(
                    "payload_too_large",
                    format!("JSON bodies are limited to {MAX_JSON_BYTES} bytes."),
                )
            })?;
            Ok((parse_json(&bytes)?, None))
        }
        "multipart/form-data" => {
            let multipart = Multipart::from_request(req, &())
                .await
                .map_err(|e| Problem::bad_request("malformed_multipart", e.body_text()))?;
            read_multipart(multipart, max_attachment_bytes).await
        }
        _ => Err(Problem::unsupported_media_type(
            "unsupported_media_type",
            "Send `application/json`, or `multipart/form-data` with an `attachment` file.",
        )
        .into()),
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ContactError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE).into()
    } else {
        Problem::bad_request("malformed_multipart", e.body_text()).into()
    }
}

async fn read_multipart(
    mut multipart: Multipart,
    max_attachment_bytes: usize,
) -> Result<(ContactForm, Option<IncomingAttachment>), ContactError> {
    let mut form = ContactForm::default();
    let mut attachment = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "attachment" {
            if attachment.is_some() {
                return Err(ContactError::Validation(vec![FieldError::new(
                    "attachment",
                    "duplicate",
                    "Only one attachment is accepted.",
                )]));
            }
            let kind =
                field.content_type().and_then(AttachmentType::from_declared).ok_or(ContactError::AttachmentType)?;
            let file_name = safe_file_name(field.file_name());
            let mut buf = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                if buf.len() + chunk.len() > max_attachment_bytes {
                    return Err(ContactError::AttachmentTooLarge { max_bytes: max_attachment_bytes });
                }
                buf.extend_from_slice(&chunk);
            }
            if buf.is_empty() {
                return Err(ContactError::Validation(vec![FieldError::new(
                    "attachment",
                    "empty",
                    "The attachment is empty.",
                )]));
            }
            if !kind.matches(&buf) {
                return Err(ContactError::AttachmentType);
            }
            attachment = Some(IncomingAttachment { file_name, kind, bytes: Bytes::from(buf) });
            continue;
        }
        let slot = match name.as_str() {
            "name" => &mut form.name,
            "email" => &mut form.email,
            "subject" => &mut form.subject,
            "message" => &mut form.message,
            other => {
                let shown: String = other.chars().take(40).collect();
                return Err(ContactError::Validation(vec![FieldError::new(
                    &shown,
                    "unknown_field",
                    "Accepted fields: name, email, subject, message, attachment.",
                )]));
            }
        };
        let mut buf = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if buf.len() + chunk.len() > MAX_TEXT_FIELD_BYTES {
                return Err(ContactError::Validation(vec![FieldError::new(&name, "too_long", "Field is too long.")]));
            }
            buf.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(buf).map_err(|_| {
            ContactError::Validation(vec![FieldError::new(&name, "invalid_utf8", "Field is not UTF-8 text.")])
        })?;
        if slot.replace(value).is_some() {
            return Err(ContactError::Validation(vec![FieldError::new(&name, "duplicate", "Field sent twice.")]));
        }
    }
    Ok((form, attachment))
}

/// Submit a contact request, as JSON or as multipart with one attachment.
#[utoipa::path(
    post,
    path = "/api/contact-us/v1/requests",
    tag = "contact-us",
    request_body(content(
        (ContactForm = "application/json"),
        (ContactForm = "multipart/form-data"),
    ), description = "JSON, or multipart/form-data with the same text fields plus an optional `attachment` file (PDF, PNG, JPEG or plain text)."),
    responses(
        (status = 201, description = "Stored", body = ContactRequestCreated),
        (status = 400, description = "Malformed JSON or multipart", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body or attachment too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported content or attachment type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_request(State(state): State<AppState>, req: Request) -> Result<Response, ContactError> {
    let (form, incoming) = read_submission(req, state.max_attachment_bytes).await?;
    let valid = form.validate().map_err(ContactError::Validation)?;

    let id = uuid::Uuid::now_v7().to_string();
    let created_at = fintech_telemetry::now_rfc3339();
    let attachment = match incoming {
        Some(a) => {
            let attachment_id = uuid::Uuid::now_v7().to_string();
            let key = ObjectKey::parse(&format!("contact-us/requests/{id}/{attachment_id}"))?;
            state.ctx.store.put(&key, a.bytes.clone(), a.kind.mime()).await?;
            Some(Attachment {
                id: attachment_id,
                file_name: a.file_name,
                content_type: a.kind.mime().to_owned(),
                size_bytes: i64::try_from(a.bytes.len()).unwrap_or(i64::MAX),
                object_key: key.to_string(),
            })
        }
        None => None,
    };
    let request = ContactRequest {
        id: id.clone(),
        name: valid.name,
        email: valid.email.as_str().to_owned(),
        subject: valid.subject,
        message: valid.message,
        status: "open".into(),
        created_at,
        attachment,
    };
    if let Err(e) = save(&state.ctx, &request).await {
        // Nothing half-written: the row did not commit, so the object goes too.
        if let Some(a) = &request.attachment
            && let Ok(key) = ObjectKey::parse(&a.object_key)
            && let Err(cleanup) = state.ctx.store.delete(&key).await
        {
            tracing::error!(error = &cleanup as &dyn std::error::Error, object = %key, "orphaned attachment");
        }
        return Err(e);
    }
    state.ctx.events_committed();
    tracing::info!(contact_request_id = %id, has_attachment = request.attachment.is_some(), "contact request stored");

    let body = ContactRequestCreated {
        id: request.id.clone(),
        status: request.status.clone(),
        created_at: request.created_at.clone(),
        attachment: request.attachment.clone(),
    };
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/contact-us/v1/requests/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The request row, its attachment row and the event commit together or not at all.
async fn save(ctx: &ServiceContext, request: &ContactRequest) -> Result<(), ContactError> {
    let mut tx = ctx.db.begin_write().await?;
    store::insert_request(&mut tx, request).await?;
    let event = EventEnvelope::new(
        EVENT_CONTACT_REQUESTED,
        SERVICE,
        request.id.clone(),
        serde_json::json!({
            "request_id": request.id,
            "name": request.name,
            "email": request.email,
            "subject": request.subject,
            "has_attachment": request.attachment.is_some(),
        }),
    );
    fintech_events::outbox::stage(&mut tx, TOPIC, &event).await?;
    tx.commit().await?;
    Ok(())
}

/// What the customer gets back: no echo of the message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContactRequestCreated {
    pub id: String,
    pub status: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Page size, 1 to 100 (default 25).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContactRequestPage {
    pub items: Vec<ContactRequest>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok_and(|u| u.hyphenated().to_string() == s)
}

/// List contact requests, newest first (support staff).
#[utoipa::path(
    get,
    path = "/api/contact-us/v1/requests",
    tag = "contact-us",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ContactRequestPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_requests(
    _staff: SupportStaff,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::Json<ContactRequestPage>, ContactError> {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if limit == 0 || limit > MAX_PAGE_SIZE {
        return Err(Problem::bad_request("invalid_query", format!("`limit` must be 1 to {MAX_PAGE_SIZE}.")).into());
    }
    if let Some(c) = &q.cursor
        && !is_uuid(c)
    {
        return Err(Problem::bad_request("invalid_cursor", "`cursor` must be a `next_cursor` value.").into());
    }
    let mut items = store::list(&state.ctx.db, q.cursor.as_deref(), limit + 1).await?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|r| r.id.clone())
    } else {
        None
    };
    Ok(axum::Json(ContactRequestPage { items, next_cursor }))
}

async fn find(state: &AppState, id: &str) -> Result<ContactRequest, ContactError> {
    if !is_uuid(id) {
        return Err(ContactError::NotFound);
    }
    store::get(&state.ctx.db, id).await?.ok_or(ContactError::NotFound)
}

/// One contact request (support staff).
#[utoipa::path(
    get,
    path = "/api/contact-us/v1/requests/{id}",
    tag = "contact-us",
    params(("id" = String, Path, description = "Contact request id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ContactRequest),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_request(
    _staff: SupportStaff,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<ContactRequest>, ContactError> {
    Ok(axum::Json(find(&state, &id).await?))
}

/// Download a request's attachment (support staff).
#[utoipa::path(
    get,
    path = "/api/contact-us/v1/requests/{id}/attachment",
    tag = "contact-us",
    params(("id" = String, Path, description = "Contact request id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The file, as uploaded"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn download_attachment(
    _staff: SupportStaff,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ContactError> {
    let request = find(&state, &id).await?;
    let attachment = request.attachment.ok_or(ContactError::NotFound)?;
    let object = state.ctx.store.get(&ObjectKey::parse(&attachment.object_key)?).await?;
    Ok(fintech_http::attachment(object.bytes, &attachment.content_type, &attachment.file_name))
}
