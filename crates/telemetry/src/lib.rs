//! Telemetry: one JSON object per log line in the shape Cloud Logging parses from a container's
//! stdout (`severity`, `message`, `time`, `logging.googleapis.com/trace`, `httpRequest`), and
//! Prometheus metrics.
//!
//! Fields of enclosing spans (for example `request_id` of the request span) are copied onto every
//! line logged inside them. An event field named `httpRequest.<name>` is nested under
//! `httpRequest`, and a span or event field named `trace` becomes `logging.googleapis.com/trace`.

mod metrics;

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use metrics::{HttpLabels, Metrics};

/// Where log lines go: stdout in production, a buffer in tests.
pub type SharedWriter = Arc<Mutex<dyn Write + Send>>;

/// Installs the global subscriber writing JSON lines to stdout. `filter` uses `RUST_LOG` syntax
/// (`info`, `info,sqlx=warn`). Calling it twice is harmless: the second call changes nothing.
pub fn init(service: &str, filter: &str) {
    init_to(service, filter, Arc::new(Mutex::new(std::io::stdout())));
}

/// Like [`init`], writing to `writer` (tests read what was logged).
pub fn init_to(service: &str, filter: &str, writer: SharedWriter) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry().with(CloudLoggingLayer::new(service, writer).with_filter(filter)).try_init();
}

/// Whether `filter` is a valid `RUST_LOG`-style filter, so configuration can refuse a bad one.
pub fn is_valid_filter(filter: &str) -> bool {
    EnvFilter::try_new(filter).is_ok()
}

/// A `tracing` layer writing Cloud Logging structured JSON lines.
pub struct CloudLoggingLayer {
    service: String,
    writer: SharedWriter,
}

impl std::fmt::Debug for CloudLoggingLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudLoggingLayer").field("service", &self.service).finish()
    }
}

impl CloudLoggingLayer {
    pub fn new(service: &str, writer: SharedWriter) -> Self {
        CloudLoggingLayer { service: service.to_owned(), writer }
    }
}

/// Fields recorded on a span, kept in the span's extensions.
struct SpanFields(Map<String, Value>);

#[derive(Default)]
struct JsonVisitor(Map<String, Value>);

impl Visit for JsonVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        // Only durations and ratios are logged as floats; money never is.
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The whole cause chain, so one line says what went wrong.
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        self.0.insert(field.name().to_owned(), Value::String(text));
    }
}

fn severity(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG | Level::TRACE => "DEBUG",
    }
}

/// Current UTC time as RFC 3339 with milliseconds (`2026-11-26T06:44:27.123Z`): fixed width, so
/// the strings sort in time order.
pub fn now_rfc3339() -> String {
    rfc3339(std::time::SystemTime::now())
}

/// Milliseconds since the Unix epoch (deadlines, leases and expiries stored as integers).
pub fn now_unix_ms() -> i64 {
    let ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// `d` in whole milliseconds, saturating.
pub fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `t` in UTC as RFC 3339 with milliseconds, like [`now_rfc3339`].
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let now = time::OffsetDateTime::from(t);
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    now.format(&format).unwrap_or_default()
}

const TRACE_KEY: &str = "logging.googleapis.com/trace";

fn place_field(line: &mut Map<String, Value>, key: String, value: Value) {
    if let Some(name) = key.strip_prefix("httpRequest.") {
        let http = line.entry("httpRequest").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(http) = http {
            http.insert(name.to_owned(), value);
        }
    } else if key == "trace" {
        line.insert(TRACE_KEY.to_owned(), value);
    } else if !matches!(key.as_str(), "severity" | "time" | "message" | "service") {
        line.insert(key, value);
    }
}

impl<S> Layer<S> for CloudLoggingLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut visitor = JsonVisitor::default();
        attrs.record(&mut visitor);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(visitor.0));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(fields) = ext.get_mut::<SpanFields>() {
                let mut visitor = JsonVisitor(std::mem::take(&mut fields.0));
                values.record(&mut visitor);
                fields.0 = visitor.0;
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert("severity".into(), Value::from(severity(meta.level())));
        line.insert("time".into(), Value::from(now_rfc3339()));
        line.insert("service".into(), Value::from(self.service.as_str()));
        line.insert("target".into(), Value::from(meta.target()));
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    for (k, v) in &fields.0 {
                        place_field(&mut line, k.clone(), v.clone());
                    }
                }
            }
        }
        let mut visitor = JsonVisitor::default();
        event.record(&mut visitor);
        let message = visitor.0.remove("message").unwrap_or(Value::from(""));
        for (k, v) in visitor.0 {
            place_field(&mut line, k, v);
        }
        line.insert("message".into(), message);
        let mut bytes = Value::Object(line).to_string().into_bytes();
        bytes.push(b'\n');
        if let Ok(mut w) = self.writer.lock() {
            // A failed log write has nowhere better to go; dropping it is the only option.
            let _ = w.write_all(&bytes);
            let _ = w.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::ErrorKind::Other)?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_have_the_cloud_logging_shape() {
        let buffer = Buffer::default();
        let writer: SharedWriter = Arc::new(Mutex::new(buffer.clone()));
        let subscriber = tracing_subscriber::registry().with(CloudLoggingLayer::new("contact-us", writer));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", request_id = "req-1", trace = tracing::field::Empty);
            span.record("trace", "projects/p/traces/abc");
            let _g = span.enter();
            tracing::warn!(httpRequest.status = 503u64, httpRequest.requestMethod = "GET", "slow \"thing\"");
            let err = std::io::Error::other("disk full");
            tracing::error!(error = &err as &dyn std::error::Error, "write failed");
        });
        let text = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf8");
        let lines: Vec<Value> =
            text.lines().map(|l| serde_json::from_str(l).expect("each line is one JSON object")).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["severity"], "WARNING");
        assert_eq!(lines[0]["message"], "slow \"thing\"");
        assert_eq!(lines[0]["request_id"], "req-1");
        assert_eq!(lines[0]["service"], "contact-us");
        assert_eq!(lines[0][TRACE_KEY], "projects/p/traces/abc");
        assert_eq!(lines[0]["httpRequest"]["status"], 503);
        assert_eq!(lines[0]["httpRequest"]["requestMethod"], "GET");
        assert!(lines[0]["time"].as_str().is_some_and(|t| t.ends_with('Z') && t.len() == 24));
        assert_eq!(lines[1]["severity"], "ERROR");
        assert_eq!(lines[1]["error"], "disk full");
    }
}
