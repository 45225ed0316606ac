//! The messages notifications sends, one function per kind: each builds the e-mail (subject, text
//! and HTML with every value escaped) and, for the kinds that go by SMS too, a short text. The
//! values come from events; free text a person typed (a payment's description, a contact
//! request's subject) goes through [`redact_card_numbers`] first, and [`contains_card_number`]
//! is checked on everything before it leaves (`lib.rs`): no message carries a full card number.

use fintech_money::{Currency, Money};

/// One message, ready for its channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The SMS text, for the kinds that also go by SMS.
    pub sms: Option<String>,
}

/// `12.34 USD` from minor units, or the raw figures if the currency is unknown to us.
pub fn amount(minor: i64, currency: &str) -> String {
    match currency.parse::<Currency>() {
        Ok(c) => Money::new(minor, c).to_string(),
        Err(_) => format!("{minor} (minor units) {}", currency.chars().take(3).collect::<String>()),
    }
}

/// `&`, `<`, `>`, `"` and `'` as HTML entities.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Free text on one line, at most `max` characters, card numbers masked.
fn one_line(text: &str, max: usize) -> String {
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let line = redact_card_numbers(line.trim());
    if line.chars().count() > max { format!("{}…", line.chars().take(max - 1).collect::<String>()) } else { line }
}

/// The Luhn check of a digit string.
fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// The runs of digits in `text` that may be written card numbers: digits with at most one space
/// or `-` between two of them. Each run is (byte start, byte end, its digits).
fn digit_runs(text: &str) -> Vec<(usize, usize, Vec<u8>)> {
    let bytes = text.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits = Vec::new();
        let mut end = i;
        while i < bytes.len() {
            if bytes[i].is_ascii_digit() {
                digits.push(bytes[i] - b'0');
                i += 1;
                end = i;
            } else if (bytes[i] == b' ' || bytes[i] == b'-') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                i += 1;
            } else {
                break;
            }
        }
        runs.push((start, end, digits));
    }
    runs
}

/// Whether a run of digits may be a card number: 13 to 19 digits passing the Luhn check. A
/// longer run is suspect if any 13 to 19 digits inside it pass (a number glued to others).
fn holds_card_number(digits: &[u8]) -> bool {
    match digits.len() {
        0..=12 => false,
        13..=19 => luhn(digits),
        _ => (13..=19).any(|len| digits.windows(len).any(luhn)),
    }
}

/// Whether `text` holds something that looks like a full card number (13 to 19 digits, spaces or
/// dashes allowed between them, passing the Luhn check).
pub fn contains_card_number(text: &str) -> bool {
    digit_runs(text).iter().any(|(_, _, digits)| holds_card_number(digits))
}

/// `text` with every run of digits that holds a card number replaced by `•••• ` and its last four
/// digits.
pub fn redact_card_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end, digits) in digit_runs(text) {
        if holds_card_number(&digits) {
            out.push_str(&text[last..start]);
            let tail: String = digits[digits.len() - 4..].iter().map(|d| char::from(b'0' + d)).collect();
            out.push_str("•••• ");
            out.push_str(&tail);
            last = end;
        }
    }
    out.push_str(&text[last..]);
    out
}

const SIGNATURE_TEXT: &str = "\n\n— FINTECH\nThis message was sent automatically; replies are not read.\n";

/// Wraps paragraphs (already escaped) in the plain HTML every message uses.
fn html(title: &str, paragraphs: &[String]) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
    out.push_str(&escape_html(title));
    out.push_str("</title></head>\n<body style=\"font-family:sans-serif\">\n");
    for p in paragraphs {
        out.push_str("<p>");
        out.push_str(p);
        out.push_str("</p>\n");
    }
    out.push_str("<p style=\"color:#666\">— FINTECH. This message was sent automatically; replies are not read.</p>\n");
    out.push_str("</body></html>\n");
    out
}

fn greeting(name: &str) -> String {
    let name = one_line(name, 100);
    if name.is_empty() { "Hello,".to_owned() } else { format!("Hello {name},") }
}

/// What a payment receipt and a transfer notice show.
#[derive(Debug, Clone)]
pub struct PaymentFacts<'a> {
    pub name: &'a str,
    pub amount_minor: i64,
    pub currency: &'a str,
    pub description: &'a str,
    pub reference: &'a str,
    /// The card's last four digits, for a card payment.
    pub card_last4: Option<&'a str>,
}

impl PaymentFacts<'_> {
    fn amount(&self) -> String {
        amount(self.amount_minor, self.currency)
    }

    fn description(&self) -> String {
        one_line(self.description, 140)
    }

    /// The card, shown as `•••• 4242` (the last four digits only, and only if they are four digits).
    fn card(&self) -> Option<String> {
        self.card_last4.filter(|l| l.len() == 4 && l.bytes().all(|b| b.is_ascii_digit())).map(|l| format!("•••• {l}"))
    }
}

/// A message about money: the greeting, one sentence with the amount (bold in the HTML), then
/// the description and the reference.
fn money_message(f: &PaymentFacts<'_>, subject: String, before: &str, after: &str) -> Rendered {
    let amount = f.amount();
    let (description, reference) = (f.description(), one_line(f.reference, 64));
    let text = format!(
        "{}\n\n{before}{amount}{after}.\nDescription: {description}\nReference: {reference}{SIGNATURE_TEXT}",
        greeting(f.name)
    );
    let html = html(
        &subject,
        &[
            escape_html(&greeting(f.name)),
            format!("{}<strong>{}</strong>{}.", escape_html(before), escape_html(&amount), escape_html(after)),
            format!("Description: {}<br>Reference: {}", escape_html(&description), escape_html(&reference)),
        ],
    );
    Rendered { subject, text, html, sms: None }
}

/// To the payer, when a payment is captured.
pub fn payment_receipt(f: &PaymentFacts<'_>) -> Rendered {
    let card = f.card().map(|c| format!(" with the card {c}")).unwrap_or_default();
    money_message(f, format!("Receipt: you paid {}", f.amount()), "You paid ", &card)
}

/// To the payer, when a payment is refunded (in part or whole).
pub fn refund_notice(f: &PaymentFacts<'_>) -> Rendered {
    money_message(
        f,
        format!("Refund: {} back to your account", f.amount()),
        "A refund of ",
        " was made to your account",
    )
}

/// To the sender of a transfer.
pub fn transfer_sent(f: &PaymentFacts<'_>) -> Rendered {
    money_message(f, format!("You sent {}", f.amount()), "Your transfer of ", " was completed")
}

/// To the receiver of a transfer: e-mail and SMS.
pub fn transfer_received(f: &PaymentFacts<'_>) -> Rendered {
    let sms = format!("FINTECH: you received {}. Ref {}", f.amount(), one_line(f.reference, 40));
    Rendered { sms: Some(sms), ..money_message(f, format!("You received {}", f.amount()), "You received ", "") }
}

/// To whoever sent a contact request: we have it.
pub fn contact_confirmation(name: &str, subject_line: &str, request_id: &str) -> Rendered {
    let about = one_line(subject_line, 120);
    let subject = "We received your message".to_owned();
    let text = format!(
        "{}\n\nThank you for contacting FINTECH. We received your message \"{about}\" and will answer by e-mail.\n\
         Your request number: {}{SIGNATURE_TEXT}",
        greeting(name),
        one_line(request_id, 64)
    );
    let html = html(
        &subject,
        &[
            escape_html(&greeting(name)),
            format!(
                "Thank you for contacting FINTECH. We received your message “{}” and will answer by e-mail.",
                escape_html(&about)
            ),
            format!("Your request number: {}", escape_html(&one_line(request_id, 64))),
        ],
    );
    Rendered { subject, text, html, sms: None }
}

/// To support staff: a new contact request to answer. The message itself stays in contact-us,
/// behind support's sign-in; the alert names who wrote and about what.
pub fn support_alert(name: &str, email: &str, subject_line: &str, request_id: &str, attachment: bool) -> Rendered {
    let (name, email, about, id) =
        (one_line(name, 100), one_line(email, 254), one_line(subject_line, 120), one_line(request_id, 64));
    let subject = format!("New contact request: {about}");
    let subject = if subject.chars().count() > 200 { subject.chars().take(200).collect() } else { subject };
    let with = if attachment { " (with an attachment)" } else { "" };
    let text = format!(
        "A new contact request{with} from {name} <{email}>: \"{about}\".\nRead and answer it in the support \
         console: request {id} (GET /api/contact-us/v1/requests/{id}).{SIGNATURE_TEXT}"
    );
    let html = html(
        &subject,
        &[
            format!(
                "A new contact request{} from {} &lt;{}&gt;: “{}”.",
                escape_html(with),
                escape_html(&name),
                escape_html(&email),
                escape_html(&about)
            ),
            format!("Read and answer it in the support console: request {}.", escape_html(&id)),
        ],
    );
    Rendered { subject, text, html, sms: None }
}

/// A change to the sign-in or the keys of an account, which its owner should know about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityChange {
    SignedIn,
    SecondFactorEnabled,
    ApiKeyCreated,
}

impl SecurityChange {
    /// From identity's `security.<name>` event type.
    pub fn from_event(event_type: &str) -> Option<SecurityChange> {
        match event_type {
            "security.sign_in_succeeded" => Some(SecurityChange::SignedIn),
            "security.second_factor_enabled" => Some(SecurityChange::SecondFactorEnabled),
            "security.api_key_created" => Some(SecurityChange::ApiKeyCreated),
            _ => None,
        }
    }

    fn what(self) -> &'static str {
        match self {
            SecurityChange::SignedIn => "Someone signed in to your FINTECH account",
            SecurityChange::SecondFactorEnabled => "A second sign-in factor was turned on for your FINTECH account",
            SecurityChange::ApiKeyCreated => "A new API key was created for your FINTECH account",
        }
    }

    /// Whether it also goes by SMS (the changes that could lock the owner out or hand access on).
    fn by_sms(self) -> bool {
        !matches!(self, SecurityChange::SignedIn)
    }
}

/// To an account's owner, when its sign-in or keys change.
pub fn security_alert(name: &str, change: SecurityChange, when: &str) -> Rendered {
    let what = change.what();
    let subject = format!("Security alert: {}", what.to_lowercase().replace("fintech", "FINTECH"));
    let when = one_line(when, 40);
    let text = format!(
        "{}\n\n{what} at {when} (UTC).\nIf this was you, there is nothing to do. If not, sign in and change your \
         password now, and contact us.{SIGNATURE_TEXT}",
        greeting(name)
    );
    let html = html(
        &subject,
        &[
            escape_html(&greeting(name)),
            format!("{} at {} (UTC).", escape_html(what), escape_html(&when)),
            "If this was you, there is nothing to do. If not, sign in and change your password now, and contact us."
                .to_owned(),
        ],
    );
    let sms = change.by_sms().then(|| format!("FINTECH security alert: {what}. Not you? Change your password now."));
    Rendered { subject, text, html, sms }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(description: &'a str) -> PaymentFacts<'a> {
        PaymentFacts {
            name: "Ana <b>Lopes</b>",
            amount_minor: 123_456,
            currency: "USD",
            description,
            reference: "pay_1",
            card_last4: Some("4242"),
        }
    }

    #[test]
    fn amounts_are_exact_from_minor_units() {
        assert_eq!(amount(123_456, "USD"), "1234.56 USD");
        assert_eq!(amount(5, "EUR"), "0.05 EUR");
        assert_eq!(amount(700, "JPY"), "700 JPY");
        assert_eq!(amount(7, "XYZ"), "7 (minor units) XYZ");
    }

    #[test]
    fn html_escapes_every_value_and_text_keeps_it() {
        let r = payment_receipt(&facts("<script>alert(1)</script> & more"));
        assert!(r.html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"), "{}", r.html);
        assert!(r.html.contains("Hello Ana &lt;b&gt;Lopes&lt;/b&gt;,"), "{}", r.html);
        assert!(!r.html.contains("<script>"));
        assert!(r.text.contains("Description: <script>alert(1)</script> & more"), "{}", r.text);
        assert!(r.text.contains("You paid 1234.56 USD with the card •••• 4242."), "{}", r.text);
        assert_eq!(r.subject, "Receipt: you paid 1234.56 USD");
        assert_eq!(r.sms, None);
    }

    #[test]
    fn card_numbers_in_free_text_are_masked() {
        for written in ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "378282246310005"] {
            let r = transfer_received(&facts(&format!("for card {written} thanks")));
            for part in [&r.subject, &r.text, &r.html, r.sms.as_ref().unwrap_or(&String::new())] {
                assert!(!contains_card_number(part), "{written}: {part}");
            }
            assert!(r.text.contains("for card •••• "), "{}", r.text);
        }
        // Digits that are no card number stay: an order number, a date, a phone.
        let r = transfer_sent(&facts("order 1234567890123 on 2026-11-27, call +15551234567"));
        assert!(r.text.contains("order 1234567890123 on 2026-11-27, call +15551234567"), "{}", r.text);
        assert!(contains_card_number("pan 4111111111111111 end"));
        assert!(!contains_card_number("4111111111111112"), "fails Luhn");
        assert!(contains_card_number("x 4000 0566 5566 5556"));
        assert_eq!(redact_card_numbers("a 5555555555554444 b"), "a •••• 4444 b");
    }

    #[test]
    fn control_characters_never_reach_a_subject_or_a_line() {
        let r = contact_confirmation("Ana\r\nBcc: x@evil.example", "Hi\nthere", "req-1");
        assert!(!r.subject.contains('\n'));
        assert!(r.text.starts_with("Hello Ana  Bcc: x@evil.example,"), "{}", r.text);
        assert!(r.text.contains("\"Hi there\""), "{}", r.text);
    }

    #[test]
    fn security_alerts_go_by_sms_only_for_changes() {
        let signed_in = security_alert("Ana", SecurityChange::SignedIn, "2026-11-27T08:00:00Z");
        assert_eq!(signed_in.subject, "Security alert: someone signed in to your FINTECH account");
        assert!(signed_in.sms.is_none());
        let enabled = security_alert("Ana", SecurityChange::SecondFactorEnabled, "2026-11-27T08:00:00Z");
        assert!(enabled.sms.as_deref().is_some_and(|s| s.starts_with("FINTECH security alert")));
        assert_eq!(SecurityChange::from_event("security.sign_in_failed"), None);
    }
}
