//! Helpers shared by the tests: temporary directories, deterministic messages, a runtime.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use queue::{
    BodyType, DsnRet, Envelope, MessageId, Notify, Priority, Recipient, SledSpool, SpoolConfig,
};

/// A directory under the system temp dir, unique to this process and call, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "queue-test-{name}-{}-{nanos}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    /// The spool directory inside this temp dir.
    pub(crate) fn spool(&self) -> PathBuf {
        self.0.join("spool")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Small seeded generator (splitmix64).
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A body that depends only on the id: 512 to 8,703 octets, CRLF lines.
pub(crate) fn body_for(id: MessageId) -> Vec<u8> {
    let seed = id.as_u128() as u64 ^ (id.as_u128() >> 64) as u64;
    let len = 512 + (mix(seed) % 8_192) as usize;
    let mut body = format!("Message-ID: <{id}@test>\r\n\r\n").into_bytes();
    let mut state = seed;
    while body.len() < len {
        state = mix(state);
        body.extend_from_slice(format!("{state:016x}{state:016x}\r\n").as_bytes());
    }
    body.truncate(len);
    body
}

/// An envelope that depends only on the id, using every field.
pub(crate) fn envelope_for(id: MessageId) -> Envelope {
    let seed = mix(id.as_u128() as u64);
    let recipients = (0..1 + seed % 3)
        .map(|i| Recipient {
            notify: if i == 0 {
                Notify::FAILURE | Notify::DELAY
            } else {
                Notify::empty()
            },
            orcpt: (i == 1).then(|| format!("rfc822;r{i}@example.org")),
            ..Recipient::new(format!("r{i}-{id}@example.org"))
        })
        .collect();
    let mut env = Envelope::new(format!("bounce-{id}@example.com"), recipients, id.unix_ms());
    env.dsn.ret = Some(DsnRet::Headers);
    env.dsn.envid = Some(format!("env-{id}"));
    env.tags.tenant = Some("tenant-a".into());
    env.tags.campaign = Some(format!("c{}", seed % 7));
    env.priority = Priority::Bulk;
    env.body_type = BodyType::EightBitMime;
    env.size = body_for(id).len() as u64;
    env.received_from = "192.0.2.7".into();
    env
}

/// A two-worker multi-thread runtime, like a small server's.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub(crate) fn open(dir: &Path) -> (SledSpool, queue::Recovery) {
    while_locked(|| SledSpool::open(dir, SpoolConfig::default()))
}

/// Runs an open until it stops failing on the database lock, for at most 10 s. Reopening
/// in the same process races with sled's I/O threads, which hold the lock for a moment
/// after the last handle is dropped.
pub(crate) fn while_locked<T, E: std::fmt::Display>(mut open: impl FnMut() -> Result<T, E>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match open() {
            Ok(value) => return value,
            Err(e)
                if (e.to_string().contains("could not acquire lock")
                    || e.to_string().contains("is locked by another process"))
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("open failed: {e}"),
        }
    }
}

/// The raw sled database of a closed spool, to damage it behind the spool's back.
pub(crate) fn open_raw(dir: &Path) -> sled::Db {
    while_locked(|| {
        sled::Config::new()
            .path(dir)
            .segment_size(SpoolConfig::default().segment_size)
            .open()
    })
}

/// A spool opened with [`SledSpool::open_lazy`].
pub(crate) fn open_lazy(dir: &Path) -> SledSpool {
    while_locked(|| SledSpool::open_lazy(dir, SpoolConfig::default()))
}

/// Apparent size of every file under `dir`.
pub(crate) fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            dir_size(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}
