//! The log as a whole: a real writer thread writing real files in a temporary directory.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;

use super::writer::rotated_files;
use super::*;

fn config(dir: &Path) -> DeliveryLogConfig {
    DeliveryLogConfig {
        path: dir.join("log/delivery.jsonl"),
        ..DeliveryLogConfig::default()
    }
}

/// A delivery record numbered by `attempt` and tagged with `source`, so tests can find it.
fn numbered(source: &str, n: u32) -> Record {
    Record {
        message_id: Some(format!("{n:032x}")),
        recipient: Some(format!("user{n}@example.org")),
        source: Some(source.to_owned()),
        attempt: Some(n),
        reply_code: Some(250),
        ..Record::new(
            RecordType::Delivery,
            UNIX_EPOCH + Duration::from_millis(1_795_694_400_000 + u64::from(n)),
        )
    }
}

/// Every line of `path` parsed as JSON (panics on a line that is not one object).
fn lines(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{path:?} ends mid-line"
    );
    text.lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{path:?}: not JSON ({e}): {line}"));
            assert!(value.is_object(), "{line}");
            value
        })
        .collect()
}

#[test]
fn close_writes_everything_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let log = DeliveryLog::open(&config).unwrap();
    let records: Vec<Record> = (1..=3).map(|n| numbered("ip-1", n)).collect();
    for record in &records {
        log.log(record.clone());
    }
    log.close().unwrap();
    let text = fs::read_to_string(&config.path).unwrap();
    let expected: String = records.iter().map(|r| r.to_json() + "\n").collect();
    assert_eq!(text, expected);
    // Closed: further records are dropped and counted, a second close is fine.
    log.log(numbered("ip-1", 4));
    assert_eq!(log.dropped(), 1);
    log.close().unwrap();
    assert_eq!(fs::read_to_string(&config.path).unwrap(), expected);
}

#[test]
fn records_reach_the_file_without_close() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let log = DeliveryLog::open(&config).unwrap();
    log.log(numbered("ip-1", 1));
    // Flushed within FLUSH_INTERVAL (100 ms); allow for a loaded machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while lines(&config.path).is_empty() {
        assert!(std::time::Instant::now() < deadline, "not flushed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(lines(&config.path)[0]["attempt"], 1);
    drop(log);
}

#[test]
fn reopening_appends() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    for n in 1..=2 {
        let log = DeliveryLog::open(&config).unwrap();
        log.log(numbered("ip-1", n));
        log.close().unwrap();
    }
    let attempts: Vec<u64> = lines(&config.path)
        .iter()
        .map(|v| v["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [1, 2]);
}

#[test]
fn rotation_by_size_keeps_the_newest_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = DeliveryLogConfig {
        rotate_size: 1_000,
        keep: 3,
        ..config(dir.path())
    };
    let log = DeliveryLog::open(&config).unwrap();
    let total = 200u32;
    for n in 1..=total {
        log.log(numbered("ip-1", n));
    }
    log.close().unwrap();
    assert_eq!(log.dropped(), 0);

    let rotated = rotated_files(&config.path).unwrap();
    assert_eq!(rotated.len(), 3, "{rotated:?}");
    let record_len = numbered("ip-1", 100).to_json().len() as u64 + 1;
    let mut seen = Vec::new();
    for file in &rotated {
        let size = fs::metadata(file).unwrap().len();
        // Rotated as soon as a line took it to rotate_size or more.
        assert!(
            size >= 1_000 && size < 1_000 + record_len + 2,
            "{file:?}: {size}"
        );
        seen.extend(lines(file));
    }
    let live = lines(&config.path);
    assert!(fs::metadata(&config.path).unwrap().len() < 1_000);
    seen.extend(live);
    // What is kept is the newest records, complete and in order.
    let attempts: Vec<u64> = seen
        .iter()
        .map(|v| v["attempt"].as_u64().unwrap())
        .collect();
    let first = attempts[0];
    let expected: Vec<u64> = (first..=u64::from(total)).collect();
    assert_eq!(attempts, expected);
    assert!(first > 1, "older files were deleted");
}

#[test]
fn rotation_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let config = DeliveryLogConfig {
        rotate_interval: Some(Duration::from_secs(1)),
        ..config(dir.path())
    };
    let log = DeliveryLog::open(&config).unwrap();
    log.log(numbered("ip-1", 1));
    // Past the next whole second, and then some for the writer to notice.
    std::thread::sleep(Duration::from_millis(1_300));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while rotated_files(&config.path).unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "not rotated");
        std::thread::sleep(Duration::from_millis(50));
    }
    log.log(numbered("ip-1", 2));
    log.close().unwrap();
    let rotated = rotated_files(&config.path).unwrap();
    assert_eq!(rotated.len(), 1);
    assert_eq!(lines(&rotated[0])[0]["attempt"], 1);
    assert_eq!(lines(&config.path)[0]["attempt"], 2);
}

#[test]
fn many_threads_lose_nothing_when_the_channel_keeps_up() {
    let dir = tempfile::tempdir().unwrap();
    let threads = 8u32;
    let per_thread = 2_000u32;
    let config = DeliveryLogConfig {
        channel_capacity: (threads * per_thread) as usize,
        ..config(dir.path())
    };
    let log = Arc::new(DeliveryLog::open(&config).unwrap());
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for n in 0..per_thread {
                    log.log(numbered(&format!("t{t}"), n));
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    log.close().unwrap();
    assert_eq!(log.dropped(), 0);
    let all = lines(&config.path);
    assert_eq!(all.len(), (threads * per_thread) as usize);
    // Each thread's records are all there, in the order it sent them.
    for t in 0..threads {
        let source = format!("t{t}");
        let attempts: Vec<u64> = all
            .iter()
            .filter(|v| v["source"] == source.as_str())
            .map(|v| v["attempt"].as_u64().unwrap())
            .collect();
        let expected: Vec<u64> = (0..u64::from(per_thread)).collect();
        assert_eq!(attempts, expected, "{source}");
    }
}

#[test]
fn a_full_channel_drops_and_counts_instead_of_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let config = DeliveryLogConfig {
        channel_capacity: 1,
        ..config(dir.path())
    };
    let log = DeliveryLog::open(&config).unwrap();
    let sent = 20_000u32;
    let started = std::time::Instant::now();
    for n in 0..sent {
        log.log(numbered("ip-1", n));
    }
    let elapsed = started.elapsed();
    log.close().unwrap();
    let written = lines(&config.path).len() as u64;
    assert_eq!(written + log.dropped(), u64::from(sent));
    assert!(written >= 1);
    // Not a timing test of the disk: logging 20k records must not wait for 20k writes.
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[test]
fn disabled_log_discards() {
    let dir = tempfile::tempdir().unwrap();
    let config = DeliveryLogConfig {
        enabled: false,
        ..config(dir.path())
    };
    let log = DeliveryLog::open(&config).unwrap();
    log.log(numbered("ip-1", 1));
    log.close().unwrap();
    assert!(!config.path.exists());
    assert!(!config.path.parent().unwrap().exists());
    assert_eq!(log.dropped(), 0);
}

#[test]
fn open_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    // The "directory" is a file.
    let blocker = dir.path().join("blocker");
    fs::write(&blocker, b"").unwrap();
    let config = DeliveryLogConfig {
        path: blocker.join("delivery.jsonl"),
        ..DeliveryLogConfig::default()
    };
    let error = DeliveryLog::open(&config).unwrap_err();
    assert!(matches!(error, LogError::CreateDir { .. }), "{error:?}");
    assert!(error.to_string().contains("blocker"), "{error}");
    let config = DeliveryLogConfig {
        channel_capacity: 0,
        ..DeliveryLogConfig::default()
    };
    assert!(matches!(
        DeliveryLog::open(&config),
        Err(LogError::InvalidConfig { .. })
    ));
}

#[test]
fn records_from_many_threads_are_all_written_in_each_threads_order() {
    // Enough records, sent fast enough, that the writer drains the channel in batches
    // between sleeps (the busy path) as well as waking on a record (the idle path).
    const THREADS: u32 = 3;
    const PER_THREAD: u32 = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let log = Arc::new(DeliveryLog::open(&config).unwrap());
    let senders: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for n in 1..=PER_THREAD {
                    log.log(numbered(&format!("ip-{t}"), n));
                    if n % 1000 == 0 {
                        // Let the writer go idle now and then.
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().unwrap();
    }
    log.close().unwrap();
    assert_eq!(log.dropped(), 0);
    let lines = lines(&config.path);
    assert_eq!(lines.len(), (THREADS * PER_THREAD) as usize);
    for t in 0..THREADS {
        let source = format!("ip-{t}");
        let attempts: Vec<u64> = lines
            .iter()
            .filter(|v| v["source"] == source.as_str())
            .map(|v| v["attempt"].as_u64().unwrap())
            .collect();
        let expected: Vec<u64> = (1..=u64::from(PER_THREAD)).collect();
        assert_eq!(attempts, expected, "{source}");
    }
}
