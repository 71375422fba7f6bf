//! The Prometheus exporter: the recorder every `metrics::counter!`/`gauge!`/`histogram!` of
//! the MTA writes to, and the catalogue of the metrics the MTA emits (names, types, labels,
//! help text and histogram buckets), rendered by `GET /metrics`.
//!
//! Invariants: the recorder is installed once per process ([`install_recorder`]); every
//! metric name in the sources is in [`METRICS`] with its type (a test reads the sources);
//! labels are bounded sets (providers, sources, reasons, results), never recipient domains
//! or addresses; histograms are rendered as Prometheus histograms with the buckets below.

use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use super::AdminError;

/// The type of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up.
    Counter,
    /// A value now.
    Gauge,
    /// A distribution, rendered with buckets.
    Histogram,
}

/// One metric the MTA emits.
#[derive(Debug, Clone, Copy)]
pub struct MetricInfo {
    /// The name, as exported.
    pub name: &'static str,
    /// Its type.
    pub kind: MetricKind,
    /// Its label names.
    pub labels: &'static [&'static str],
    /// The `# HELP` text.
    pub help: &'static str,
    /// Bucket upper bounds (histograms only).
    pub buckets: &'static [f64],
}

const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const BATCH_WRITES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
const BATCH_BYTES: &[f64] = &[
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
];

const fn counter(
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricInfo {
    MetricInfo {
        name,
        kind: MetricKind::Counter,
        labels,
        help,
        buckets: &[],
    }
}

const fn gauge(name: &'static str, help: &'static str) -> MetricInfo {
    MetricInfo {
        name,
        kind: MetricKind::Gauge,
        labels: &[],
        help,
        buckets: &[],
    }
}

const fn histogram(
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
    buckets: &'static [f64],
) -> MetricInfo {
    MetricInfo {
        name,
        kind: MetricKind::Histogram,
        labels,
        help,
        buckets,
    }
}

/// Every metric the MTA emits (documented in `docs/admin.md`).
pub const METRICS: &[MetricInfo] = &[
    counter(
        "smtp_connections_total",
        &[],
        "TCP connections accepted by the SMTP listeners.",
    ),
    gauge("smtp_sessions", "SMTP sessions open now."),
    counter(
        "smtp_sessions_refused_total",
        &["reason"],
        "SMTP sessions refused or closed early, by reason.",
    ),
    counter(
        "smtp_messages_received_total",
        &[],
        "Messages accepted (250 after the spool write).",
    ),
    counter(
        "smtp_messages_refused_total",
        &["reason"],
        "Messages refused, by reason.",
    ),
    counter(
        "smtp_recipients_refused_total",
        &["reason"],
        "Recipients refused, by reason.",
    ),
    counter(
        "smtp_auth_failures_total",
        &[],
        "Failed SMTP AUTH attempts.",
    ),
    counter(
        "smtp_tls_failures_total",
        &[],
        "Failed inbound STARTTLS handshakes.",
    ),
    counter(
        "delivery_recipients_total",
        &["result", "provider"],
        "Recipient delivery outcomes, by result and provider.",
    ),
    counter(
        "delivery_connections_total",
        &["provider"],
        "Outbound SMTP connections established, by provider.",
    ),
    counter(
        "delivery_messages_queued_total",
        &[],
        "Messages handed to the delivery engine by the SMTP server.",
    ),
    counter(
        "delivery_dsn_total",
        &[],
        "Delivery status notifications (bounces) queued.",
    ),
    counter(
        "delivery_outcome_record_errors_total",
        &[],
        "Attempt outcomes the spool refused to record (they wait in memory to be recorded).",
    ),
    counter(
        "dkim_signatures_total",
        &["algorithm", "role"],
        "DKIM signatures made at reception.",
    ),
    histogram(
        "dkim_sign_seconds",
        &["mode"],
        "Time to DKIM-sign one message (all its signatures).",
        SECONDS,
    ),
    counter(
        "dkim_failures_total",
        &["reason"],
        "Messages that could not be DKIM-signed.",
    ),
    counter(
        "dkim_unsigned_total",
        &[],
        "Accepted messages no DKIM key applied to.",
    ),
    gauge(
        "delivery_pools",
        "Delivery pools in memory (idle ones are dropped every minute).",
    ),
    gauge(
        "delivery_queued_jobs",
        "Delivery jobs in memory: scheduler, ready queues and connections.",
    ),
    counter(
        "delivery_log_records_total",
        &[],
        "Delivery log lines written.",
    ),
    counter(
        "delivery_log_dropped_total",
        &[],
        "Delivery log records dropped (channel full or log closed).",
    ),
    counter(
        "delivery_log_rotations_total",
        &[],
        "Delivery log rotations.",
    ),
    counter(
        "delivery_log_write_errors_total",
        &[],
        "Delivery log write, flush, rename or delete errors.",
    ),
    counter(
        "dns_cache_hits_total",
        &[],
        "MX plans or errors served from the cache.",
    ),
    counter("dns_cache_misses_total", &[], "MX resolutions started."),
    counter(
        "dns_resolve_errors_total",
        &["kind"],
        "MX resolutions that failed, by kind.",
    ),
    histogram(
        "spool_commit_seconds",
        &[],
        "Time of one spool commit (apply, flush, fdatasync).",
        SECONDS,
    ),
    histogram(
        "spool_batch_messages",
        &[],
        "Spool writes per commit.",
        BATCH_WRITES,
    ),
    histogram(
        "spool_batch_bytes",
        &[],
        "Octets written per spool commit.",
        BATCH_BYTES,
    ),
    histogram(
        "spool_write_seconds",
        &["op"],
        "Spool write latency as the caller sees it, by operation.",
        SECONDS,
    ),
    counter(
        "spool_commit_errors_total",
        &[],
        "Spool commits that failed.",
    ),
    counter(
        "spool_quarantined_total",
        &[],
        "Spool entries moved to quarantine by recovery.",
    ),
    gauge(
        "spool_recovery_seconds",
        "Time the last recovery took to load the spool into the delivery queue.",
    ),
    gauge(
        "spool_recovering",
        "1 while the spool's messages are being loaded into the delivery queue at start.",
    ),
    gauge(
        "spool_recovered_pending",
        "Pending messages found by the last recovery.",
    ),
    gauge(
        "spool_recovered_finished",
        "Finished messages found by the last recovery (and removed).",
    ),
    counter(
        "admin_requests_total",
        &["endpoint", "status"],
        "Admin API requests, by route and HTTP status.",
    ),
];

/// A recorder with the MTA's histogram buckets, not installed (tests use it with
/// `metrics::with_local_recorder`).
pub fn build_recorder() -> PrometheusRecorder {
    let mut builder = PrometheusBuilder::new();
    for metric in METRICS.iter().filter(|m| m.kind == MetricKind::Histogram) {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(metric.name.to_owned()), metric.buckets)
            .expect("every histogram in the catalogue has buckets");
    }
    builder.build_recorder()
}

/// Registers the help text of every metric with the current recorder.
pub fn describe_metrics() {
    for metric in METRICS {
        match metric.kind {
            MetricKind::Counter => metrics::describe_counter!(metric.name, metric.help),
            MetricKind::Gauge => metrics::describe_gauge!(metric.name, metric.help),
            MetricKind::Histogram => metrics::describe_histogram!(metric.name, metric.help),
        }
    }
}

/// Installs the process-wide recorder and returns the handle `GET /metrics` renders from.
/// Call it once, early in `main`, before anything records a metric.
pub fn install_recorder() -> Result<PrometheusHandle, AdminError> {
    let recorder = build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| AdminError::RecorderInstalled)?;
    describe_metrics();
    Ok(handle)
}
