//! Prometheus metrics, process-wide: counters are recorded where the facts are known (the HTTP
//! layer, minting, database errors) and rendered by `GET /metrics`.

use std::sync::LazyLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// Answered requests by operation and HTTP status.
    pub requests: IntCounterVec,
    /// Time to answer, by operation.
    pub latency: HistogramVec,
    /// Activation codes written, by product and generator.
    pub codes_issued: IntCounterVec,
    /// Calls answered from a stored answer (Nexway's retries), by operation.
    pub replays: IntCounterVec,
    /// Calls answered with an error, by operation and error code.
    pub refused: IntCounterVec,
    /// Database errors, by kind (unavailable: worth a retry; other: a bug or a broken schema).
    pub database_errors: IntCounterVec,
    /// Codes left in each product's pool of pre-loaded codes.
    pub pool_stock: IntGaugeVec,
    /// Log lines that could not be written (a full disk, a reader gone) and were dropped.
    pub log_lines_dropped: IntCounter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new_custom(Some("nexkey".into()), None).expect("valid prefix");
        let requests = IntCounterVec::new(
            Opts::new("requests_total", "Answered HTTP requests"),
            &["operation", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "request_duration_seconds",
                "Time from request to answer, in seconds",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["operation"],
        )
        .expect("valid metric");
        let codes_issued = IntCounterVec::new(
            Opts::new(
                "codes_issued_total",
                "Activation codes minted, by product and generator (a call that fails after \
                 minting rolls its codes back, so this can exceed the codes stored)",
            ),
            &["product", "generator"],
        )
        .expect("valid metric");
        let replays = IntCounterVec::new(
            Opts::new(
                "idempotent_replays_total",
                "Calls answered with the stored answer of an earlier identical call",
            ),
            &["operation"],
        )
        .expect("valid metric");
        let refused = IntCounterVec::new(
            Opts::new(
                "refused_total",
                "Calls answered with an error, by error code",
            ),
            &["operation", "reason"],
        )
        .expect("valid metric");
        let database_errors = IntCounterVec::new(
            Opts::new("database_errors_total", "Failed database operations"),
            &["kind"],
        )
        .expect("valid metric");
        let pool_stock = IntGaugeVec::new(
            Opts::new("pool_stock", "Pre-loaded codes left in each product's pool"),
            &["product"],
        )
        .expect("valid metric");
        let log_lines_dropped = IntCounter::new(
            "log_lines_dropped_total",
            "Log lines dropped because the log stream could not take them",
        )
        .expect("valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(codes_issued.clone()),
            Box::new(replays.clone()),
            Box::new(refused.clone()),
            Box::new(database_errors.clone()),
            Box::new(pool_stock.clone()),
            Box::new(log_lines_dropped.clone()),
        ] {
            registry.register(collector).expect("unique metric names");
        }
        // Listed at zero from the start, so an alert can be written on the rate.
        for kind in ["storage", "contention", "other"] {
            database_errors.with_label_values(&[kind]);
        }
        Metrics {
            registry,
            requests,
            latency,
            codes_issued,
            replays,
            refused,
            database_errors,
            pool_stock,
            log_lines_dropped,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

/// The `product` label of every product not configured: whatever Nexway sends as a product id
/// must not grow the series without bound.
pub const OTHER_PRODUCT: &str = "other";

static CONFIGURED_PRODUCTS: LazyLock<std::sync::RwLock<std::collections::HashSet<String>>> =
    LazyLock::new(Default::default);

/// The products that get a `product` label of their own (the configured ones).
pub fn label_products<'a>(products: impl IntoIterator<Item = &'a str>) {
    let mut known = CONFIGURED_PRODUCTS
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    known.extend(products.into_iter().map(str::to_owned));
}

fn product_label(product: &str) -> &str {
    let known = CONFIGURED_PRODUCTS
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if known.contains(product) {
        product
    } else {
        OTHER_PRODUCT
    }
}

/// One more code minted for `product` by `generator`.
pub fn code_issued(product: &str, generator: &str) {
    metrics()
        .codes_issued
        .with_label_values(&[product_label(product), generator])
        .inc();
}

/// The codes left in a product's pool, as last counted.
pub fn pool_stock(product: &str, available: u64) {
    metrics()
        .pool_stock
        .with_label_values(&[product_label(product)])
        .set(i64::try_from(available).unwrap_or(i64::MAX));
}

/// One more failed database operation.
pub fn database_error(kind: &str) {
    metrics().database_errors.with_label_values(&[kind]).inc();
}

/// One more log line dropped.
pub fn log_line_dropped() {
    metrics().log_lines_dropped.inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_products_get_a_label_of_their_own() {
        label_products(["METRICS-CONFIGURED"]);
        code_issued("METRICS-CONFIGURED", "random");
        for attacker_chosen in ["METRICS-X1", "METRICS-X2", "METRICS-X3"] {
            code_issued(attacker_chosen, "random");
        }
        let text = metrics().render();
        assert!(text.contains(r#"product="METRICS-CONFIGURED""#), "{text}");
        assert!(!text.contains("METRICS-X"), "{text}");
        assert!(text.contains(r#"product="other""#), "{text}");
    }
}
