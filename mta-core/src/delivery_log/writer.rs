//! The writer thread: takes records off the channel, writes them as JSON lines through a
//! buffer, flushes, and rotates.
//!
//! Invariants:
//! - lines are written whole and in the order records were sent; a rotation happens between
//!   two lines, never inside one;
//! - buffered lines reach the file at most [`FLUSH_INTERVAL`] after they were written, or
//!   sooner when [`FLUSH_RECORDS`] are pending or the buffer fills; a record waits at most
//!   `BUSY_POLL` (2 ms) in the channel while records keep coming (the writer then polls instead of
//!   being woken per record), and not at all otherwise;
//! - after a rotation at most `keep` rotated files remain;
//! - an I/O error never stops the thread: it is counted, logged once, and reported by
//!   `close()`; the next rotation reopens the file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{DeliveryLogConfig, LogError, Record};

/// Longest time a written line may sit in the buffer.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Lines buffered before a flush even if [`FLUSH_INTERVAL`] has not passed.
pub const FLUSH_RECORDS: usize = 1024;

/// How often an idle writer wakes up to check time-based rotation.
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// While records keep arriving, the writer sleeps this long between drains of the channel
/// instead of blocking on it: a blocked receiver costs every sender a wake-up (a futex call
/// and a context switch per delivery). The channel must hold this long's worth of records
/// (`channel_capacity`, 65,536 by default).
const BUSY_POLL: Duration = Duration::from_millis(2);

/// What goes over the channel.
pub(crate) enum Message {
    /// A record to write (boxed, so channel slots stay small).
    Record(Box<Record>),
    /// Flush, stop, and let `close()` join.
    Close,
}

pub(crate) struct Writer {
    config: DeliveryLogConfig,
    file: BufWriter<File>,
    /// Bytes in the live file, buffered ones included.
    size: u64,
    pending: usize,
    last_flush: Instant,
    next_rotation: Option<SystemTime>,
    line: Vec<u8>,
    first_error: Option<io::Error>,
    /// Time used for the previous rotated name: each new name uses a later millisecond, so
    /// names stay unique and sort in rotation order even when rotations come fast.
    last_stamp: Option<SystemTime>,
}

/// Opens (appending) or creates the live file and returns it with its current size.
pub(crate) fn open_live(path: &Path) -> Result<(File, u64), LogError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|source| LogError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    let open = || -> io::Result<(File, u64)> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok((file, size))
    };
    open().map_err(|source| LogError::Open {
        path: path.to_owned(),
        source,
    })
}

impl Writer {
    pub(crate) fn new(config: DeliveryLogConfig, file: File, size: u64) -> Writer {
        let next_rotation = config
            .rotate_interval
            .map(|interval| next_boundary(SystemTime::now(), interval));
        Writer {
            config,
            file: BufWriter::with_capacity(64 * 1024, file),
            size,
            pending: 0,
            last_flush: Instant::now(),
            next_rotation,
            line: Vec::with_capacity(1024),
            first_error: None,
            last_stamp: None,
        }
    }

    /// Writes every record already waiting, without blocking; true when the channel said
    /// to stop (a `Close`, or every sender gone).
    fn drain(&mut self, receiver: &Receiver<Message>) -> bool {
        loop {
            match receiver.try_recv() {
                Ok(Message::Record(record)) => {
                    self.write(&record);
                    if self.pending >= FLUSH_RECORDS {
                        self.flush();
                    }
                }
                Ok(Message::Close) | Err(TryRecvError::Disconnected) => return true,
                Err(TryRecvError::Empty) => return false,
            }
        }
    }

    /// Runs until `Close` or until every sender is gone; returns the first I/O error seen.
    pub(crate) fn run(mut self, receiver: Receiver<Message>) -> Result<(), LogError> {
        let mut busy = false;
        loop {
            let received = if busy {
                // Records kept coming: sleep instead of waiting on the channel, so that
                // senders find nobody to wake (no futex call, no context switch per record).
                std::thread::sleep(BUSY_POLL);
                receiver.try_recv().map_err(|e| match e {
                    TryRecvError::Empty => RecvTimeoutError::Timeout,
                    TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                })
            } else {
                let wait = if self.pending > 0 {
                    FLUSH_INTERVAL.saturating_sub(self.last_flush.elapsed())
                } else {
                    IDLE_WAKE
                };
                receiver.recv_timeout(wait)
            };
            // Rotate before writing, so a record that arrives after a boundary starts the
            // new file instead of closing the old one.
            self.rotate_if_due(SystemTime::now());
            match received {
                Ok(Message::Record(record)) => {
                    self.write(&record);
                    let closed = self.drain(&receiver);
                    if self.pending >= FLUSH_RECORDS || self.last_flush.elapsed() >= FLUSH_INTERVAL
                    {
                        self.flush();
                    }
                    if closed {
                        break;
                    }
                    busy = true;
                }
                Ok(Message::Close) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    // A busy poll that found nothing only flushes when due; a wait that timed
                    // out waited for exactly that.
                    if self.pending > 0 && (!busy || self.last_flush.elapsed() >= FLUSH_INTERVAL) {
                        self.flush();
                    }
                    busy = false;
                }
            }
        }
        self.flush();
        match self.first_error.take() {
            Some(source) => Err(LogError::Write {
                path: self.config.path.clone(),
                source,
            }),
            None => Ok(()),
        }
    }

    fn write(&mut self, record: &Record) {
        self.line.clear();
        if let Err(error) = serde_json::to_writer(&mut self.line, record) {
            self.fail(io::Error::other(error));
            return;
        }
        self.line.push(b'\n');
        match self.file.write_all(&self.line) {
            Ok(()) => {
                self.size += self.line.len() as u64;
                self.pending += 1;
                metrics::counter!("delivery_log_records_total").increment(1);
            }
            Err(error) => self.fail(error),
        }
        if self.config.rotate_size > 0 && self.size >= self.config.rotate_size {
            self.rotate(SystemTime::now());
        }
    }

    fn flush(&mut self) {
        if let Err(error) = self.file.flush() {
            self.fail(error);
        }
        self.pending = 0;
        self.last_flush = Instant::now();
    }

    fn rotate_if_due(&mut self, now: SystemTime) {
        let (Some(due), Some(interval)) = (self.next_rotation, self.config.rotate_interval) else {
            return;
        };
        if now < due {
            return;
        }
        // An empty file is not worth a rotated copy; just wait for the next boundary.
        if self.size > 0 {
            self.rotate(now);
        }
        self.next_rotation = Some(next_boundary(now, interval));
    }

    /// Renames the live file to `<path>.<UTC time>`, opens a fresh one, prunes old files.
    fn rotate(&mut self, now: SystemTime) {
        self.flush();
        let path = self.config.path.clone();
        let millis = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis();
        let now_ms = UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX));
        let stamp = match self.last_stamp {
            Some(last) if now_ms <= last => last + Duration::from_millis(1),
            _ => now_ms,
        };
        self.last_stamp = Some(stamp);
        let rotated = free_rotated_name(&path, stamp);
        if let Err(error) = fs::rename(&path, &rotated) {
            // Keep writing to the current file; it will be tried again at the next check.
            self.fail(error);
            return;
        }
        match open_live(&path) {
            Ok((file, size)) => {
                self.file = BufWriter::with_capacity(64 * 1024, file);
                self.size = size;
            }
            Err(LogError::Open { source, .. } | LogError::CreateDir { source, .. }) => {
                // The old handle still points at the renamed file: keep using it rather
                // than losing records, and try again at the next rotation.
                self.fail(source);
                return;
            }
            Err(_) => return,
        }
        metrics::counter!("delivery_log_rotations_total").increment(1);
        if let Err(error) = prune(&path, self.config.keep) {
            self.fail(error);
        }
    }

    fn fail(&mut self, error: io::Error) {
        metrics::counter!("delivery_log_write_errors_total").increment(1);
        if self.first_error.is_none() {
            tracing::error!(path = %self.config.path.display(), %error, "delivery log I/O error");
            self.first_error = Some(error);
        }
    }
}

/// The first multiple of `interval` since the Unix epoch that is after `now`.
pub(crate) fn next_boundary(now: SystemTime, interval: Duration) -> SystemTime {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let step = interval.as_millis().max(1);
    let next = (since.as_millis() / step + 1) * step;
    UNIX_EPOCH + Duration::from_millis(u64::try_from(next).unwrap_or(u64::MAX))
}

/// `<path>.<YYYYMMDDTHHMMSS.mmmZ>` for `now` (names sort by time).
pub(crate) fn rotated_name(path: &Path, now: SystemTime) -> PathBuf {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let stamp: String = humantime::format_rfc3339_millis(UNIX_EPOCH + since)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".");
    name.push(stamp);
    path.with_file_name(name)
}

/// [`rotated_name`], with `-1`, `-2`... appended if that name is taken (only after a restart
/// within the same millisecond as the last rotation).
fn free_rotated_name(path: &Path, now: SystemTime) -> PathBuf {
    let base = rotated_name(path, now);
    let mut candidate = base.clone();
    let mut n = 0;
    while candidate.exists() {
        n += 1;
        let mut name = base.file_name().unwrap_or_default().to_owned();
        name.push(format!("-{n}"));
        candidate = base.with_file_name(name);
    }
    candidate
}

/// The rotated files of `path`, oldest first.
pub(crate) fn rotated_files(path: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut prefix = path.file_name().unwrap_or_default().to_owned();
    prefix.push(".");
    let prefix = prefix.to_string_lossy().into_owned();
    let mut files: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix(&prefix).is_some_and(|rest| {
                rest.len() >= 15 && rest.as_bytes()[..8].iter().all(u8::is_ascii_digit)
            })
        })
        .map(|entry| entry.path())
        .collect();
    files.sort();
    Ok(files)
}

/// Deletes all but the newest `keep` rotated files of `path`.
fn prune(path: &Path, keep: usize) -> io::Result<()> {
    let files = rotated_files(path)?;
    let excess = files.len().saturating_sub(keep);
    for old in &files[..excess] {
        fs::remove_file(old)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_boundaries() {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        let day = Duration::from_secs(86_400);
        let hour = Duration::from_secs(3_600);
        // 2026-11-26T12:00:00Z is 1_795_694_400.
        let table = [
            (at(1_795_694_400), day, at(1_795_737_600)),
            (at(1_795_737_599), day, at(1_795_737_600)),
            (at(1_795_737_600), day, at(1_795_824_000)),
            (at(1_795_694_400), hour, at(1_795_698_000)),
            (at(1_795_694_401), hour, at(1_795_698_000)),
            (at(0), Duration::from_secs(1), at(1)),
        ];
        for (now, interval, next) in table {
            assert_eq!(next_boundary(now, interval), next, "{now:?} {interval:?}");
        }
    }

    #[test]
    fn rotated_names() {
        let now = UNIX_EPOCH + Duration::from_millis(1_795_694_400_123);
        assert_eq!(
            rotated_name(Path::new("data/log/delivery.jsonl"), now),
            PathBuf::from("data/log/delivery.jsonl.20261126T120000.123Z")
        );
        assert_eq!(
            rotated_name(Path::new("d.jsonl"), UNIX_EPOCH),
            PathBuf::from("d.jsonl.19700101T000000.000Z")
        );
    }

    #[test]
    fn only_rotated_files_are_listed_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("delivery.jsonl");
        let names = [
            "delivery.jsonl",
            "delivery.jsonl.20261126T120000.123Z",
            "delivery.jsonl.20261126T120000.123Z-1",
            "delivery.jsonl.20261127T000000.000Z",
            "delivery.jsonl.bak",
            "other.jsonl.20261126T120000.123Z",
        ];
        for name in names {
            fs::write(dir.path().join(name), b"{}\n").unwrap();
        }
        let listed: Vec<String> = rotated_files(&live)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            listed,
            [
                "delivery.jsonl.20261126T120000.123Z",
                "delivery.jsonl.20261126T120000.123Z-1",
                "delivery.jsonl.20261127T000000.000Z"
            ]
        );
        prune(&live, 1).unwrap();
        let left: Vec<String> = rotated_files(&live)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["delivery.jsonl.20261127T000000.000Z"]);
        for untouched in [
            "delivery.jsonl",
            "delivery.jsonl.bak",
            "other.jsonl.20261126T120000.123Z",
        ] {
            assert!(dir.path().join(untouched).exists(), "{untouched}");
        }
        // A taken name gets a suffix.
        let now = UNIX_EPOCH + Duration::from_millis(1_795_694_400_123);
        assert_eq!(
            free_rotated_name(&live, now).file_name().unwrap(),
            "delivery.jsonl.20261126T120000.123Z"
        );
        fs::write(rotated_name(&live, now), b"").unwrap();
        assert_eq!(
            free_rotated_name(&live, now).file_name().unwrap(),
            "delivery.jsonl.20261126T120000.123Z-1"
        );
    }
}
