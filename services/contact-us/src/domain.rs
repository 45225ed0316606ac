//! Contact requests: parsing and validation of what customers send.

use fintech_http::FieldError;
use fintech_types::Email;
use fintech_types::card::redact_card_numbers;
use serde::Deserialize;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_SUBJECT_CHARS: usize = 200;
pub const MAX_MESSAGE_CHARS: usize = 10_000;
pub const MAX_FILE_NAME_CHARS: usize = 200;

/// What a customer sends (JSON body, or the text fields of a multipart form).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactForm {
    pub name: Option<String>,
    pub email: Option<String>,
    pub subject: Option<String>,
    pub message: Option<String>,
}

/// A validated contact request.
#[derive(Debug, Clone)]
pub struct NewContactRequest {
    pub name: String,
    pub email: Email,
    pub subject: String,
    pub message: String,
}

fn text(errors: &mut Vec<FieldError>, field: &str, value: Option<&str>, max: usize, multiline: bool) -> Option<String> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        errors.push(FieldError::new(field, "required", format!("`{field}` is required")));
        return None;
    };
    if value.chars().count() > max {
        errors.push(FieldError::new(field, "too_long", format!("`{field}` must be at most {max} characters")));
        return None;
    }
    let bad_control = value.chars().any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')));
    if bad_control {
        errors.push(FieldError::new(field, "invalid_characters", format!("`{field}` contains control characters")));
        return None;
    }
    Some(value.to_owned())
}

impl ContactForm {
    /// Every problem at once, so the customer can fix the form in one go.
    pub fn validate(&self) -> Result<NewContactRequest, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = text(&mut errors, "name", self.name.as_deref(), MAX_NAME_CHARS, false);
        let subject = text(&mut errors, "subject", self.subject.as_deref(), MAX_SUBJECT_CHARS, false);
        let message = text(&mut errors, "message", self.message.as_deref(), MAX_MESSAGE_CHARS, true);
        let email = match self.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
            None => {
                errors.push(FieldError::new("email", "required", "`email` is required"));
                None
            }
            Some(raw) => match Email::parse(raw) {
                Ok(e) => Some(e),
                Err(why) => {
                    errors.push(FieldError::new("email", "invalid_email", format!("`email` {why}")));
                    None
                }
            },
        };
        match (name, email, subject, message) {
            (Some(name), Some(email), Some(subject), Some(message)) if errors.is_empty() => {
                // People type card numbers into support messages; only vault may keep one.
                let (name, subject, message) =
                    (redact_card_numbers(&name), redact_card_numbers(&subject), redact_card_numbers(&message));
                Ok(NewContactRequest { name, email, subject, message })
            }
            _ => Err(errors),
        }
    }
}

/// Attachment types accepted, with the magic bytes that prove the declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentType {
    Pdf,
    Png,
    Jpeg,
    PlainText,
}

impl AttachmentType {
    pub const ALLOWED: &'static str = "application/pdf, image/png, image/jpeg, text/plain";

    pub fn from_declared(content_type: &str) -> Option<AttachmentType> {
        let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/pdf" => Some(AttachmentType::Pdf),
            "image/png" => Some(AttachmentType::Png),
            "image/jpeg" => Some(AttachmentType::Jpeg),
            "text/plain" => Some(AttachmentType::PlainText),
            _ => None,
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            AttachmentType::Pdf => "application/pdf",
            AttachmentType::Png => "image/png",
            AttachmentType::Jpeg => "image/jpeg",
            AttachmentType::PlainText => "text/plain; charset=utf-8",
        }
    }

    /// Does the content really look like the declared type?
    pub fn matches(self, bytes: &[u8]) -> bool {
        match self {
            AttachmentType::Pdf => bytes.starts_with(b"%PDF-"),
            AttachmentType::Png => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            AttachmentType::Jpeg => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
            AttachmentType::PlainText => {
                std::str::from_utf8(bytes).is_ok_and(|t| !t.chars().any(|c| c.is_control() && !c.is_whitespace()))
            }
        }
    }
}

/// A file name safe to store and to echo in `Content-Disposition`: the last path segment,
/// printable ASCII without quotes or separators, at most 200 characters.
pub fn safe_file_name(raw: Option<&str>) -> String {
    let base = raw.unwrap_or_default().rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .filter(|c| !matches!(c, '"' | '\\' | '/' | ';'))
        .take(MAX_FILE_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() { "attachment".to_owned() } else { cleaned }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_error_is_reported() {
        let form = ContactForm {
            name: Some(" ".into()),
            email: Some("nope".into()),
            subject: Some("x".repeat(201)),
            message: None,
        };
        let errors = form.validate().expect_err("invalid");
        let codes: Vec<_> = errors.iter().map(|e| (e.field.as_str(), e.code.as_str())).collect();
        assert_eq!(
            codes,
            vec![("name", "required"), ("subject", "too_long"), ("message", "required"), ("email", "invalid_email")]
        );
        let ok = ContactForm {
            name: Some("Ana".into()),
            email: Some("ana@example.com".into()),
            subject: Some("Card".into()),
            message: Some("line 1\nline 2".into()),
        };
        assert!(ok.validate().is_ok());
        let card = ContactForm {
            subject: Some("card 4242 4242 4242 4242".into()),
            message: Some("It is 4242424242424242, exp 12/31".into()),
            ..ok.clone()
        };
        let kept = card.validate().expect("valid");
        assert!(!kept.subject.contains("4242 4242") && !kept.message.contains("4242424242424242"), "{kept:?}");
        assert!(kept.message.contains("exp 12/31"));
        let ctrl = ContactForm { name: Some("A\u{7}na".into()), ..ok };
        assert_eq!(ctrl.validate().expect_err("bell")[0].code, "invalid_characters");
    }

    #[test]
    fn attachment_types_need_matching_content() {
        assert_eq!(AttachmentType::from_declared("application/PDF"), Some(AttachmentType::Pdf));
        assert_eq!(AttachmentType::from_declared("application/x-msdownload"), None);
        assert!(AttachmentType::Pdf.matches(b"%PDF-1.7 ..."));
        assert!(!AttachmentType::Pdf.matches(b"MZ\x90\x00"));
        assert!(AttachmentType::PlainText.matches("héllo\n".as_bytes()));
        assert!(!AttachmentType::PlainText.matches(b"\x00\x01"));
        assert!(!AttachmentType::Png.matches(b"%PDF-"));
    }

    #[test]
    fn file_names_are_made_safe() {
        assert_eq!(safe_file_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(safe_file_name(Some("C:\\Users\\a\\scan \"1\".pdf")), "scan 1.pdf");
        assert_eq!(safe_file_name(Some(".htaccess")), "htaccess");
        assert_eq!(safe_file_name(None), "attachment");
        assert_eq!(safe_file_name(Some("\u{202e}fdp.exe")), "fdp.exe");
    }
}
