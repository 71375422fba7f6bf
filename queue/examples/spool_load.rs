//! Load tool for the spool: closed-loop writers storing messages, as SMTP sessions do.
//!
//! `concurrency` tasks each store messages back to back (the next store starts when the
//! previous one resolved, as a session answers 250 before reading the next message) until
//! `messages` stores are done in total. Prints throughput, the store latency each writer saw
//! (what delays the 250 reply), the committer's batch sizes and the disk use.
//!
//! ```text
//! cargo run --release -p queue --example spool_load -- \
//!     --body-size 4096 --concurrency 50 --messages 20000 [--segment-size 8388608] \
//!     [--no-fsync] [--remove] [--dir PATH]
//! ```
//!
//! With `--remove` every message is removed right after its store (steady state: disk use
//! should stay flat). The spool directory is a fresh temporary one unless `--dir` is given,
//! and is deleted at the end.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use queue::{Envelope, MessageId, Recipient, SledSpool, Spool, SpoolConfig};

struct Args {
    body_size: usize,
    concurrency: usize,
    messages: usize,
    remove: bool,
    dir: Option<PathBuf>,
    config: SpoolConfig,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        body_size: 4096,
        concurrency: 10,
        messages: 10_000,
        remove: false,
        dir: None,
        config: SpoolConfig::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{v}: {e}"));
        match flag.as_str() {
            "--body-size" => args.body_size = number(value()?)?,
            "--concurrency" => args.concurrency = number(value()?)?.max(1),
            "--messages" => args.messages = number(value()?)?,
            "--segment-size" => args.config.segment_size = number(value()?)?,
            "--max-batch" => args.config.max_batch = number(value()?)?,
            "--max-batch-bytes" => args.config.max_batch_bytes = number(value()?)?,
            "--no-fsync" => args.config.fsync = false,
            "--remove" => args.remove = true,
            "--dir" => args.dir = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank]
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let (dir, temporary) = match &args.dir {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("spool-load-{}", std::process::id())),
            true,
        ),
    };
    let (spool, _) = SledSpool::open(&dir, args.config.clone())?;
    let spool = Arc::new(spool);
    let body: Arc<[u8]> = vec![b'x'; args.body_size].into();
    let remaining = Arc::new(AtomicUsize::new(args.messages));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()?;

    let started = Instant::now();
    let mut latencies: Vec<Duration> = runtime.block_on(async {
        let writers: Vec<_> = (0..args.concurrency)
            .map(|w| {
                let (spool, body, remaining) = (
                    Arc::clone(&spool),
                    Arc::clone(&body),
                    Arc::clone(&remaining),
                );
                let remove = args.remove;
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    while remaining
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        let id = MessageId::generate();
                        let mut envelope = Envelope::new(
                            format!("bounces+{w}@mail.example.com"),
                            vec![Recipient::new(format!("customer.{w}@example.net"))],
                            id.unix_ms(),
                        );
                        envelope.size = body.len() as u64;
                        let t = Instant::now();
                        spool.store(id, envelope, body.to_vec()).await?;
                        seen.push(t.elapsed());
                        if remove {
                            spool.remove(id).await?;
                        }
                    }
                    Ok::<_, queue::SpoolError>(seen)
                })
            })
            .collect();
        let mut all = Vec::new();
        for w in writers {
            match w.await {
                Ok(Ok(seen)) => all.extend(seen),
                Ok(Err(e)) => return Err(Box::new(e) as Box<dyn std::error::Error>),
                Err(e) => return Err(Box::new(e)),
            }
        }
        Ok(all)
    })?;
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let stats = spool.stats();
    let on_disk = dir_size(&dir);
    runtime.block_on(spool.close())?;
    drop(spool);
    if temporary {
        std::fs::remove_dir_all(&dir)?;
    }

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "body={} concurrency={} messages={} fsync={} segment={} remove={}",
        args.body_size,
        args.concurrency,
        latencies.len(),
        args.config.fsync,
        args.config.segment_size,
        args.remove
    )?;
    writeln!(
        out,
        "  {:.0} msg/s, {:.1} MiB/s of bodies",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        (latencies.len() * args.body_size) as f64 / elapsed.as_secs_f64() / (1 << 20) as f64
    )?;
    writeln!(
        out,
        "  store latency p50 {:.2?} p90 {:.2?} p99 {:.2?} max {:.2?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    )?;
    writeln!(
        out,
        "  commits {} avg batch {:.1} largest {} ; disk {:.1} MiB",
        stats.commits,
        stats.writes as f64 / stats.commits.max(1) as f64,
        stats.largest_batch,
        on_disk as f64 / (1 << 20) as f64
    )?;
    Ok(())
}
