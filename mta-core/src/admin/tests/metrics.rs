//! The exporter: `GET /metrics` passes `promtool check metrics` (Debian package
//! `prometheus`) with every catalogued metric present; the catalogue matches the metrics the
//! sources emit and the ones `docs/admin.md` documents; the recorder installs once.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hyper::Method;

use super::Harness;
use crate::admin::{METRICS, MetricKind, build_recorder, describe_metrics, install_recorder};

/// A plausible value for each label (bounded sets: providers, reasons, results).
fn label_value(label: &str) -> &'static str {
    match label {
        "reason" => "timeout",
        "result" => "delivered",
        "provider" => "gmail",
        "kind" => "nxdomain",
        "op" => "store",
        "endpoint" => "/v1/queue",
        "status" => "200",
        "algorithm" => "rsa-sha256",
        "role" => "author",
        "mode" => "blocking",
        other => panic!("no example value for label {other}"),
    }
}

/// Records every catalogued metric once into `recorder`.
fn record_everything(recorder: &metrics_exporter_prometheus::PrometheusRecorder) {
    metrics::with_local_recorder(recorder, || {
        describe_metrics();
        for metric in METRICS {
            let labels: Vec<metrics::Label> = metric
                .labels
                .iter()
                .map(|l| metrics::Label::new(*l, label_value(l)))
                .collect();
            match metric.kind {
                MetricKind::Counter => metrics::counter!(metric.name, labels).increment(3),
                MetricKind::Gauge => metrics::gauge!(metric.name, labels).set(7.0),
                MetricKind::Histogram => {
                    let h = metrics::histogram!(metric.name, labels);
                    h.record(0.003);
                    h.record(42.0);
                }
            }
        }
    });
}

#[tokio::test]
async fn metrics_pass_promtool_and_hold_every_metric() {
    let recorder = build_recorder();
    record_everything(&recorder);
    let h = Harness::start_with(false, recorder.handle()).await;
    let answer = h.unix().send(Method::GET, "/metrics", None).await.unwrap();
    assert_eq!(answer.status.as_u16(), 200);
    let text = String::from_utf8(answer.body.to_vec()).unwrap();
    for metric in METRICS {
        let kind = match metric.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        };
        assert!(
            text.contains(&format!("# TYPE {} {kind}\n", metric.name)),
            "{} is missing or not a {kind}:\n{text}",
            metric.name
        );
        assert!(
            text.contains(&format!("# HELP {} ", metric.name)),
            "{}",
            metric.name
        );
    }
    assert!(
        text.contains("delivery_recipients_total{result=\"delivered\",provider=\"gmail\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("spool_commit_seconds_bucket{le=\"0.005\"} 1"),
        "{text}"
    );

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (apt-get install prometheus)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}\n{text}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // promtool is not a rubber stamp: a malformed exposition fails it.
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(b"# TYPE x counter\nx{a=\"1\" 3\n")
        .unwrap();
    assert!(!promtool.wait().unwrap().success());
    h.stop().await;
}

/// `(name, kind)` of every `counter!("..")`, `gauge!("..")` and `histogram!("..")` in the
/// workspace's library sources.
fn emitted_metrics() -> BTreeMap<String, (MetricKind, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let mut found = BTreeMap::new();
    let mut dirs: Vec<PathBuf> = [
        "mta-core/src",
        "queue/src",
        "dkim/src",
        "ipwarm/src",
        "smtp-proto/src",
    ]
    .iter()
    .map(|d| root.join(d))
    .filter(|d| d.exists())
    .collect();
    let skip = root.join("mta-core/src/admin/tests");
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path == skip {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (macro_name, kind) in [
                ("counter!(", MetricKind::Counter),
                ("gauge!(", MetricKind::Gauge),
                ("histogram!(", MetricKind::Histogram),
            ] {
                for (at, _) in text.match_indices(macro_name) {
                    if text[..at].ends_with("describe_") {
                        continue;
                    }
                    let rest = text[at + macro_name.len()..].trim_start();
                    let Some(rest) = rest.strip_prefix('"') else {
                        continue;
                    };
                    let name = &rest[..rest.find('"').unwrap()];
                    found.insert(name.to_owned(), (kind, path.clone()));
                }
            }
        }
    }
    found
}

#[test]
fn the_catalogue_matches_the_sources() {
    let emitted = emitted_metrics();
    assert!(
        emitted.len() > 20,
        "the scan finds the metrics: {emitted:?}"
    );
    for (name, (kind, path)) in &emitted {
        let entry = METRICS.iter().find(|m| m.name == name);
        let entry = entry.unwrap_or_else(|| {
            panic!(
                "{name} ({}) is not in admin::METRICS: add it there and to docs/admin.md",
                path.display()
            )
        });
        assert_eq!(entry.kind, *kind, "{name}");
    }
    for metric in METRICS {
        assert!(
            emitted.contains_key(metric.name),
            "{} is catalogued but never emitted",
            metric.name
        );
    }
}

#[test]
fn the_catalogue_is_documented() {
    let docs = include_str!("../../../../docs/admin.md");
    for metric in METRICS {
        let kind = match metric.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        };
        let row = format!("| `{}` | {kind} |", metric.name);
        assert!(docs.contains(&row), "docs/admin.md lacks the row {row}");
        for label in metric.labels {
            let line = docs.lines().find(|l| l.starts_with(&row)).unwrap();
            assert!(
                line.contains(&format!("`{label}`")),
                "{row}: label {label} undocumented"
            );
        }
    }
}

#[test]
fn the_recorder_installs_once() {
    let handle = install_recorder().expect("no other recorder in this test binary");
    metrics::counter!("admin_requests_total", "endpoint" => "/test", "status" => "0").increment(5);
    let text = handle.render();
    assert!(
        text.contains("admin_requests_total{endpoint=\"/test\",status=\"0\"} 5"),
        "{text}"
    );
    assert!(
        text.contains("# HELP admin_requests_total Admin API requests"),
        "{text}"
    );
    assert!(matches!(
        install_recorder(),
        Err(crate::admin::AdminError::RecorderInstalled)
    ));
}
