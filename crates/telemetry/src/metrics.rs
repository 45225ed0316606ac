//! Prometheus metrics shared by every service in a process.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of the HTTP metrics. `route` is the route template (`/api/contact-us/v1/requests/{id}`),
/// never the raw path, so ids cannot blow up the number of series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

/// Latency buckets in seconds, from 1 ms to 10 s.
const LATENCY_BUCKETS_S: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The process's metrics registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    latency: Family<HttpLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("fintech");
        let requests = Family::<HttpLabels, Counter>::default();
        let latency =
            Family::<HttpLabels, Histogram>::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS_S.iter().copied()));
        registry.register("http_requests", "HTTP requests served", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency", latency.clone());
        Metrics { inner: Arc::new(Inner { registry, requests, latency }) }
    }

    pub fn observe_request(&self, labels: HttpLabels, seconds: f64) {
        self.inner.latency.get_or_create(&labels).observe(seconds);
        self.inner.requests.get_or_create(&labels).inc();
    }

    /// The Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = encode(&mut out, &self.inner.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_counters_and_histograms_by_route_and_status() {
        let m = Metrics::new();
        let labels = HttpLabels { method: "GET".into(), route: "/healthz".into(), status: 200 };
        m.observe_request(labels.clone(), 0.003);
        m.observe_request(labels, 0.2);
        let text = m.encode();
        assert!(
            text.contains(r#"fintech_http_requests_total{method="GET",route="/healthz",status="200"} 2"#),
            "{text}"
        );
        assert!(text.contains("fintech_http_request_duration_seconds_bucket"), "{text}");
    }
}
