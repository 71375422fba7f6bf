//! The committer records its histograms under the documented names.
//!
//! A process-wide recorder is installed once for this test binary; other tests running at the
//! same time add records too, so the checks are lower bounds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use queue::{MessageId, Spool};

use crate::common::{TempDir, body_for, envelope_for, open, runtime};

/// Values recorded per histogram, keyed by name and labels (`name{k=v}`).
static RECORDS: Mutex<Option<HashMap<String, Vec<f64>>>> = Mutex::new(None);

struct Capture;

struct Series(String);

impl HistogramFn for Series {
    fn record(&self, value: f64) {
        let mut records = RECORDS.lock().unwrap();
        records
            .get_or_insert_with(HashMap::new)
            .entry(self.0.clone())
            .or_default()
            .push(value);
    }
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::noop()
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = if labels.is_empty() {
            key.name().to_owned()
        } else {
            format!("{}{{{}}}", key.name(), labels.join(","))
        };
        Histogram::from_arc(Arc::new(Series(name)))
    }
}

fn recorded(name: &str) -> Vec<f64> {
    RECORDS
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|r| r.get(name).cloned())
        .unwrap_or_default()
}

#[test]
fn commit_histograms_are_recorded() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| metrics::set_global_recorder(Capture).unwrap());

    let dir = TempDir::new("metrics");
    let rt = runtime();
    let (spool, _) = open(&dir.spool());
    let ids: Vec<MessageId> = (0..3).map(|_| MessageId::generate()).collect();
    for &id in &ids {
        rt.block_on(spool.store(id, envelope_for(id), body_for(id)))
            .unwrap();
    }
    rt.block_on(spool.update(ids[0], &envelope_for(ids[0])))
        .unwrap();
    rt.block_on(spool.remove(ids[1])).unwrap();

    let commits = recorded("spool_commit_seconds");
    assert!(commits.len() >= 5, "{commits:?}");
    assert!(commits.iter().all(|&s| s > 0.0 && s < 60.0), "{commits:?}");
    let batches = recorded("spool_batch_messages");
    assert!(batches.len() >= 5 && batches.contains(&1.0), "{batches:?}");
    assert!(!recorded("spool_batch_bytes").is_empty());
    for op in ["store", "update", "remove"] {
        let waits = recorded(&format!("spool_write_seconds{{op={op}}}"));
        assert!(!waits.is_empty(), "no spool_write_seconds for {op}");
    }
}
