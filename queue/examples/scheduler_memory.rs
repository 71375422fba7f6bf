//! Memory of the scheduler's delay queue with a large backlog.
//!
//! Builds `--jobs` jobs (default one million), each from a one-recipient envelope cut by
//! `jobs_from_envelope` as a spool recovery does, spread over `--domains` destination
//! domains (default 1,000, the first ones much more frequent, as real lists are), 50
//! tenants, 2,000 campaigns and 8 pools, and schedules them over the next four hours. Prints
//! the size of the types, the queue's allocation per job, the process RSS (`VmRSS` from
//! `/proc/self/status`) before and after, the time of the admin API's O(n) operations
//! (counting by domain, removing one tenant's jobs) and the time to fill and drain the queue.
//!
//! ```text
//! cargo run --release -p queue --example scheduler_memory -- [--jobs 1000000] [--domains 1000] [--reserve]
//! ```
//!
//! `--reserve` allocates the queue for the exact number of jobs up front (a rebuild from the
//! spool knows it); without it the queue grows by doubling, as it does while mail arrives.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use queue::scheduler::{DelayQueue, Interner, Job, jobs_from_envelope};
use queue::{Envelope, MessageId, Priority, Recipient, Tags};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

struct Args {
    jobs: usize,
    domains: usize,
    reserve: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        jobs: 1_000_000,
        domains: 1_000,
        reserve: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{v}: {e}"));
        match flag.as_str() {
            "--jobs" => args.jobs = number(value()?)?,
            "--domains" => args.domains = number(value()?)?.max(1),
            "--reserve" => args.reserve = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// Resident set size of this process in bytes, from `/proc/self/status`.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() -> std::io::Result<()> {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            writeln!(std::io::stderr(), "scheduler_memory: {message}")?;
            std::process::exit(2);
        }
    };
    let mut out = std::io::stdout().lock();
    let mut rng = StdRng::seed_from_u64(1);
    let domains: Vec<String> = (0..args.domains)
        .map(|d| format!("recipient-domain-{d}.example"))
        .collect();
    let now_ms: u64 = 1_764_000_000_000;
    let max_age_ms: u64 = 5 * 24 * 3_600_000;

    let rss_before = rss_bytes().unwrap_or(0);
    let started = Instant::now();
    let mut interner = Interner::new();
    let mut queue = if args.reserve {
        DelayQueue::with_capacity(args.jobs)
    } else {
        DelayQueue::new()
    };
    for i in 0..args.jobs {
        // Skewed: squaring a uniform draw favours the first domains (the big mailbox
        // providers), with a long tail.
        let draw: f64 = rng.random();
        let domain = &domains[((draw * draw) * args.domains as f64) as usize % args.domains];
        let tenant = rng.random_range(0..50u32);
        let mut envelope = Envelope::new(
            format!("bounces+{i}@mail.tenant-{tenant}.example"),
            vec![Recipient::new(format!("subscriber.{i}@{domain}"))],
            now_ms,
        );
        envelope.tags = Tags {
            tenant: Some(format!("tenant-{tenant}")),
            campaign: Some(format!(
                "tenant-{tenant}/campaign-{}",
                rng.random_range(0..40u32)
            )),
            pool: Some(format!("pool-{}", tenant % 8)),
        };
        envelope.priority = if i % 10 == 0 {
            Priority::High
        } else {
            Priority::Bulk
        };
        envelope.size = 20_000;
        let id = MessageId::from_parts(now_ms, (i % 65_536) as u16, i as u64);
        for job in jobs_from_envelope(id, &envelope, max_age_ms, &mut interner) {
            let at = now_ms + rng.random_range(0..4 * 3_600_000);
            queue.insert(job, at);
        }
    }
    let fill = started.elapsed();
    let rss_after = rss_bytes().unwrap_or(0);
    let jobs = queue.len().max(1) as f64;

    writeln!(
        out,
        "jobs {} (domains {}, interned strings {}), queue {}",
        queue.len(),
        args.domains,
        interner.len(),
        if args.reserve {
            "reserved"
        } else {
            "grown by doubling"
        }
    )?;
    writeln!(
        out,
        "size_of: Job {} bytes; queue allocation {:.1} MiB = {:.1} bytes/job",
        size_of::<Job>(),
        mib(queue.allocated_bytes() as u64),
        queue.allocated_bytes() as f64 / jobs
    )?;
    writeln!(
        out,
        "RSS before {:.1} MiB, after {:.1} MiB: {:.1} bytes/job",
        mib(rss_before),
        mib(rss_after),
        rss_after.saturating_sub(rss_before) as f64 / jobs
    )?;

    let started = Instant::now();
    let mut by_domain: HashMap<&str, usize> = HashMap::new();
    for job in queue.iter() {
        *by_domain.entry(&job.domain).or_default() += 1;
    }
    let count = started.elapsed();
    let (busiest, busiest_jobs) = by_domain
        .iter()
        .max_by_key(|(_, n)| **n)
        .map_or(("", 0), |(d, n)| (*d, *n));
    writeln!(
        out,
        "count by domain: {:.1} ms ({} domains, busiest {busiest} with {busiest_jobs} jobs)",
        count.as_secs_f64() * 1e3,
        by_domain.len()
    )?;
    let started = Instant::now();
    let removed = queue.remove_where(|job| job.tenant.as_deref() == Some("tenant-7"));
    writeln!(
        out,
        "remove_where tenant-7: {:.1} ms ({} jobs removed, {} left)",
        started.elapsed().as_secs_f64() * 1e3,
        removed.len(),
        queue.len()
    )?;
    drop(removed);

    let started = Instant::now();
    let mut popped = 0usize;
    let end = now_ms + 4 * 3_600_000;
    while let Some(due) = queue.pop_due(end) {
        popped += usize::from(!due.is_expired());
    }
    let drain = started.elapsed();
    let per_job = |d: Duration| d.as_nanos() as f64 / jobs;
    writeln!(
        out,
        "fill {:.2} s ({:.0} ns/job, envelope building included); drain {:.2} s ({:.0} ns/pop), {popped} attempts",
        fill.as_secs_f64(),
        per_job(fill),
        drain.as_secs_f64(),
        per_job(drain)
    )?;
    Ok(())
}
