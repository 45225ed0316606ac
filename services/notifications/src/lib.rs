//! notifications: tells people what happened, by e-mail and SMS, driven by the platform's events.
//!
//! It subscribes to accounts (customers' names and addresses), payments (receipts, refunds,
//! transfer notices), contact-us (confirmations) and identity (security alerts), and sends each
//! message through the process's senders: [`fintech_kit::email::EmailSender`] (SMTP, or the
//! embedded outbox) and [`fintech_kit::messages::MessageSender`] (the SMS gateways with failover,
//! breakers and a per-number limit, or the embedded outbox).
//!
//! Each message an event asks for is one row of `notification_deliveries` (event, kind,
//! channel), written before the message leaves. So a redelivered event sends nothing twice: a
//! row already `sent` is skipped, and a row still `sending` (the process stopped mid-send)
//! becomes `ambiguous` and is not sent again. A message not sent for a reason that may pass (the
//! SMTP server unreachable) is `retrying`, and the event is handed back to the bus, which tries
//! it again with backoff and dead-letters it after its last attempt.
//!
//! One-time codes do NOT travel through here: identity sends them itself, through the same
//! gateways, so that a code never sits in an event stream (and the audit log, which records every
//! event).
//!
//! No message carries a full card number: templates show the last four digits only, free text is
//! masked ([`templates::redact_card_numbers`]), and a message that still looks like it holds one
//! is not sent (`skipped`).

pub mod config;
pub mod error;
pub mod routes;
pub mod store;
pub mod templates;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fintech_db::Db;
use fintech_db::sqlx::migrate::Migrator;
use fintech_events::{EventEnvelope, EventHandler, HandlerError};
use fintech_kit::email::{Email, EmailSender};
use fintech_kit::messages::{MessageError, MessageSender};
use fintech_kit::ratelimit::{Limiter, Rule};
use fintech_kit::{Service, ServiceContext, Started, config_key};
use serde_json::Value;
use utoipa::OpenApi;

use crate::store::{Delivery, Recipient, status};
use crate::templates::{PaymentFacts, Rendered, SecurityChange};

pub const SERVICE: &str = "notifications";

/// The streams it reads, one subscription each (`notifications.<topic>`).
pub const TOPICS: &[&str] = &["accounts.events", "payments.events", "contact-us.events", "identity.events"];

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL: Migrator = sqlx::migrate!("./migrations/mysql");

const TOKEN_SCHEME: fintech_kit::BearerScheme = fintech_kit::BearerScheme("bearer");

#[derive(OpenApi)]
#[openapi(
    info(title = "notifications", description = "E-mail and SMS to customers, driven by events; SMS delivery statuses."),
    paths(routes::list_deliveries, routes::my_deliveries, routes::twilio_status, routes::vonage_status),
    components(schemas(store::Delivery, routes::Deliveries, fintech_http::Problem, fintech_http::FieldError)),
    modifiers(&TOKEN_SCHEME),
)]
struct ApiDoc;

/// One message an event asks for.
#[derive(Debug, Clone)]
struct Planned {
    kind: &'static str,
    channel: Channel,
    /// The customer it is for (none for a contact request's sender).
    customer_id: Option<String>,
    /// Whose allowance it uses: the customer id, or the e-mail address.
    limit_key: String,
    /// The e-mail address or E.164 number.
    to: String,
    rendered: Rendered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Email,
    Sms,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

/// `a•••@example.com` / `•••••••4567`: enough for support to recognise, not to contact.
fn address_hint(channel: Channel, to: &str) -> String {
    match channel {
        Channel::Email => match to.split_once('@') {
            Some((local, domain)) => format!("{}•••@{domain}", local.chars().next().unwrap_or('•')),
            None => "•••".into(),
        },
        Channel::Sms => {
            let digits: Vec<char> = to.chars().collect();
            let keep = digits.len().saturating_sub(4);
            digits.iter().enumerate().map(|(i, c)| if i < keep { '•' } else { *c }).collect()
        }
    }
}

/// Sends what events ask for.
#[derive(Debug)]
pub struct Notifier {
    db: Db,
    email: Arc<dyn EmailSender>,
    sms: Arc<dyn MessageSender>,
    per_recipient: Limiter,
    config: config::NotificationsConfig,
}

fn text<'a>(data: &'a Value, key: &str) -> &'a str {
    data[key].as_str().unwrap_or_default()
}

impl Notifier {
    /// A notifier writing its deliveries to `db`, sending through `email` and `sms`, each
    /// recipient within `per_recipient`.
    pub fn new(
        db: Db,
        email: Arc<dyn EmailSender>,
        sms: Arc<dyn MessageSender>,
        per_recipient: Limiter,
        config: config::NotificationsConfig,
    ) -> Notifier {
        Notifier { db, email, sms, per_recipient, config }
    }

    /// The per-recipient limit of `config`, kept in `store` (Redis or memory).
    pub fn limiter(config: &config::NotificationsConfig, store: &fintech_kit::ratelimit::Store) -> Limiter {
        let per_hour = config.per_recipient_per_hour.max(1);
        let rule = Rule { capacity: per_hour, refill_every: Duration::from_secs((3600 / u64::from(per_hour)).max(1)) };
        Limiter::new("notifications-per-recipient", rule, store)
    }

    /// The messages `event` asks for (none for the events it does not notify about).
    async fn plan(&self, event: &EventEnvelope) -> Result<Vec<Planned>, HandlerError> {
        let data = &event.data;
        let mut planned = Vec::new();
        match event.event_type.as_str() {
            "payment.captured" | "payment.refunded" | "transfer.completed" => {
                let amount_minor = match event.event_type.as_str() {
                    "payment.refunded" => data["refunded_minor"].as_i64(),
                    "payment.captured" => {
                        data["captured_minor"].as_i64().filter(|v| *v > 0).or(data["amount_minor"].as_i64())
                    }
                    _ => data["amount_minor"].as_i64(),
                };
                let Some(amount_minor) = amount_minor else { return Ok(planned) };
                let facts = |name: &'static str| PaymentFacts {
                    name,
                    amount_minor,
                    currency: text(data, "currency"),
                    description: text(data, "description"),
                    reference: text(data, "id"),
                    card_last4: data["card_last4"].as_str(),
                };
                let payer = self.customer(data["payer_customer_id"].as_str()).await?;
                let payee = self.customer(data["payee_customer_id"].as_str()).await?;
                match event.event_type.as_str() {
                    "payment.captured" => {
                        if let Some(r) = &payer {
                            let f = PaymentFacts { name: &r.name, ..facts("") };
                            planned.extend(messages(r, "payment_receipt", templates::payment_receipt(&f)));
                        }
                    }
                    "payment.refunded" => {
                        if let Some(r) = &payer {
                            let f = PaymentFacts { name: &r.name, ..facts("") };
                            planned.extend(messages(r, "refund_notice", templates::refund_notice(&f)));
                        }
                    }
                    _ => {
                        if let Some(r) = &payer {
                            let f = PaymentFacts { name: &r.name, ..facts("") };
                            planned.extend(messages(r, "transfer_sent", templates::transfer_sent(&f)));
                        }
                        if let Some(r) = &payee {
                            let f = PaymentFacts { name: &r.name, ..facts("") };
                            planned.extend(messages(r, "transfer_received", templates::transfer_received(&f)));
                        }
                    }
                }
            }
            "contact.requested" => {
                let to = text(data, "email").trim();
                if !to.is_empty() {
                    let rendered = templates::contact_confirmation(
                        text(data, "name"),
                        text(data, "subject"),
                        text(data, "request_id"),
                    );
                    planned.push(Planned {
                        kind: "contact_confirmation",
                        channel: Channel::Email,
                        customer_id: None,
                        limit_key: format!("email:{}", to.to_lowercase()),
                        to: to.to_owned(),
                        rendered,
                    });
                }
                if let Some(support) = &self.config.support_email {
                    let rendered = templates::support_alert(
                        text(data, "name"),
                        to,
                        text(data, "subject"),
                        text(data, "request_id"),
                        data["has_attachment"].as_bool().unwrap_or(false),
                    );
                    planned.push(Planned {
                        kind: "support_alert",
                        channel: Channel::Email,
                        customer_id: None,
                        // Support's inbox has its own allowance: a flood of requests from one
                        // address cannot silence the alerts about everyone else's.
                        limit_key: "support".into(),
                        to: support.clone(),
                        rendered,
                    });
                }
            }
            other => {
                if let Some(change) = SecurityChange::from_event(other) {
                    if change == SecurityChange::SignedIn && !self.config.sign_in_alerts {
                        return Ok(planned);
                    }
                    if let Some(r) = self.customer(Some(&event.ordering_key)).await? {
                        planned.extend(messages(
                            &r,
                            "security_alert",
                            templates::security_alert(&r.name, change, &event.time),
                        ));
                    }
                }
            }
        }
        Ok(planned)
    }

    async fn customer(&self, id: Option<&str>) -> Result<Option<Recipient>, HandlerError> {
        match id.filter(|i| !i.is_empty()) {
            None => Ok(None),
            Some(id) => store::recipient(&self.db, id).await.map_err(HandlerError::new),
        }
    }

    /// Sends one planned message at most once. `Err` only when it should be tried again.
    async fn deliver(&self, event: &EventEnvelope, p: &Planned) -> Result<(), HandlerError> {
        let channel = p.channel.as_str();
        let existing = store::find(&self.db, &event.id, p.kind, channel).await.map_err(HandlerError::new)?;
        let id = match existing {
            Some(d) if d.status == status::RETRYING => d.id,
            Some(d) if d.status == status::SENDING => {
                // The process stopped after writing this row, maybe after the message left.
                store::transition(
                    &self.db,
                    &d.id,
                    &[status::SENDING],
                    status::AMBIGUOUS,
                    None,
                    Some("interrupted while sending; not sent again, so no duplicate"),
                    false,
                )
                .await
                .map_err(HandlerError::new)?;
                tracing::warn!(delivery = %d.id, kind = p.kind, channel, "a message interrupted while sending is not sent again");
                return Ok(());
            }
            Some(_) => return Ok(()),
            None => {
                let now = fintech_telemetry::now_rfc3339();
                let mut d = Delivery {
                    id: uuid::Uuid::now_v7().to_string(),
                    event_id: event.id.clone(),
                    kind: p.kind.to_owned(),
                    channel: channel.to_owned(),
                    customer_id: p.customer_id.clone(),
                    address_hint: address_hint(p.channel, &p.to),
                    status: status::RETRYING.to_owned(),
                    message_id: None,
                    detail: None,
                    attempts: 0,
                    created_at: now.clone(),
                    updated_at: now,
                };
                let held = [&p.rendered.subject, &p.rendered.text, &p.rendered.html]
                    .into_iter()
                    .chain(p.rendered.sms.as_ref())
                    .any(|part| templates::contains_card_number(part));
                if held {
                    d.status = status::SKIPPED.into();
                    d.detail = Some("held: the text looked like it held a card number".into());
                    tracing::error!(kind = p.kind, channel, event_id = %event.id, "a message that looked like it held a card number was not sent");
                } else if let Err(wait) = self.per_recipient.take(&p.limit_key).await {
                    d.status = status::LIMITED.into();
                    d.detail =
                        Some(format!("too many messages to this recipient; allowance back in {} s", wait.secs()));
                    tracing::warn!(kind = p.kind, channel, "message not sent: recipient limit");
                }
                let terminal = d.status != status::RETRYING;
                if !store::insert(&self.db, &d).await.map_err(HandlerError::new)? || terminal {
                    return Ok(());
                }
                d.id
            }
        };
        // Claim it: only one attempt may be in flight, and a crash from here on is visible.
        if !store::transition(&self.db, &id, &[status::RETRYING], status::SENDING, None, None, true)
            .await
            .map_err(HandlerError::new)?
        {
            return Ok(());
        }
        let outcome = match p.channel {
            Channel::Email => {
                let email = Email {
                    to: p.to.clone(),
                    subject: p.rendered.subject.clone(),
                    text: p.rendered.text.clone(),
                    html: Some(p.rendered.html.clone()),
                };
                self.email.send_email(&email, p.kind).await
            }
            Channel::Sms => self.sms.send_sms(&p.to, p.rendered.sms.as_deref().unwrap_or_default(), p.kind).await,
        };
        let (to, message_id, detail, retry) = match &outcome {
            Ok(message_id) => (status::SENT, Some(message_id.as_str()), None, false),
            Err(MessageError::Ambiguous(why)) => (status::AMBIGUOUS, None, Some(why.clone()), false),
            Err(e @ (MessageError::Undelivered(_) | MessageError::Invalid(_))) => {
                (status::UNDELIVERABLE, None, Some(e.to_string()), false)
            }
            Err(e @ MessageError::Limited(_)) => (status::LIMITED, None, Some(e.to_string()), false),
            Err(e @ (MessageError::Unavailable(_) | MessageError::Io(_))) => {
                (status::RETRYING, None, Some(e.to_string()), true)
            }
        };
        store::transition(&self.db, &id, &[status::SENDING], to, message_id, detail.as_deref(), false)
            .await
            .map_err(HandlerError::new)?;
        if retry {
            return Err(HandlerError(format!("{} {channel} not sent yet: {}", p.kind, detail.unwrap_or_default())));
        }
        Ok(())
    }

    /// accounts' customers: their names and addresses, kept for the messages to come.
    async fn remember(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        let data = &event.data;
        let (Some(customer_id), Some(email)) = (data["customer_id"].as_str(), data["email"].as_str()) else {
            return Ok(());
        };
        let recipient = Recipient {
            customer_id: customer_id.to_owned(),
            name: text(data, "name").to_owned(),
            email: email.to_owned(),
            phone: data["phone"].as_str().map(str::to_owned),
        };
        let event_id = event.id.clone();
        let engine = self.db.engine();
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    if fintech_events::inbox::claim(conn, engine, SERVICE, &event_id).await? {
                        store::upsert_recipient(conn, &recipient).await?;
                    }
                    Ok(())
                })
            })
            .await
            .map_err(HandlerError::new)
    }
}

/// The e-mail of `kind` to `r`, and its SMS when the template has one and `r` has a number.
fn messages(r: &Recipient, kind: &'static str, rendered: Rendered) -> Vec<Planned> {
    let mut out = Vec::new();
    if let Some(phone) = r.phone.as_deref().filter(|_| rendered.sms.is_some()) {
        out.push(Planned {
            kind,
            channel: Channel::Sms,
            customer_id: Some(r.customer_id.clone()),
            limit_key: r.customer_id.clone(),
            to: phone.to_owned(),
            rendered: rendered.clone(),
        });
    }
    out.insert(
        0,
        Planned {
            kind,
            channel: Channel::Email,
            customer_id: Some(r.customer_id.clone()),
            limit_key: r.customer_id.clone(),
            to: r.email.clone(),
            rendered,
        },
    );
    out
}

#[async_trait]
impl EventHandler for Notifier {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        if event.event_type == "customer.created" {
            return self.remember(event).await;
        }
        let planned = self.plan(event).await?;
        let mut first_error = None;
        for p in &planned {
            if let Err(e) = self.deliver(event, p).await {
                first_error.get_or_insert(e);
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(())
    }
}

/// The notifications service.
#[derive(Debug, Default, Clone, Copy)]
pub struct NotificationsService;

#[async_trait]
impl Service for NotificationsService {
    fintech_kit::service_basics!(SERVICE, SQLITE, MYSQL, ApiDoc);

    async fn start(&self, ctx: ServiceContext) -> anyhow::Result<Started> {
        let config: config::NotificationsConfig = ctx.config.section(&config_key(SERVICE))?;
        let platform = fintech_kit::PlatformSettings::load(&ctx.config)?;
        let per_recipient = Notifier::limiter(&config, &ctx.rate_limits);
        let notifier = Arc::new(Notifier::new(
            ctx.db.clone(),
            Arc::clone(&ctx.email),
            Arc::clone(&ctx.messages),
            per_recipient,
            config,
        ));
        ctx.subscribe_each(SERVICE, TOPICS, |_| notifier.clone()).await?;
        let state = routes::AppState {
            db: ctx.db.clone(),
            callbacks: Arc::new(routes::Callbacks::from_settings(&platform.sms)),
        };
        Ok(Started { router: routes::router(state), checks: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_masked_for_the_records() {
        assert_eq!(address_hint(Channel::Email, "ana.lopes@example.com"), "a•••@example.com");
        assert_eq!(address_hint(Channel::Sms, "+15551234567"), "••••••••4567");
    }
}
