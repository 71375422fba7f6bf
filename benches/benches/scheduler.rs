//! criterion benches of the retry scheduler (`queue::scheduler`).
//!
//! Run with `cargo bench -p benches --bench scheduler`. Numbers are recorded in
//! `docs/scheduler.md`.
//!
//! - `delay_queue/insert_1m`: one million jobs inserted into an empty queue (grown by
//!   doubling), at random times over four hours; throughput per insert.
//! - `delay_queue/pop_due_1m`: a queue of one million drained with `pop_due`; per pop.
//! - `delay_queue/hold_1m`: steady state at one million jobs: pop the earliest job and insert
//!   it again four hours later; time per pop plus insert.
//! - `ready_queue/push_pop`: a ready queue half full (512 of 1,024) of mixed priorities: push
//!   one job, pop one; time per push plus pop.
//! - `retry/next_attempt_ms` and `jobs_from_envelope/1_recipient`: the per-attempt and
//!   per-message helpers.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use queue::scheduler::{
    DelayQueue, Interner, Job, ReadyQueue, ReadyQueueConfig, RecipientIndices, RetryPolicy,
    jobs_from_envelope,
};
use queue::{Envelope, MessageId, Priority, Recipient, Tags};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const JOBS: usize = 1_000_000;
const FOUR_HOURS_MS: u64 = 4 * 3_600_000;
const PRIORITIES: [Priority; 3] = [Priority::Bulk, Priority::Normal, Priority::High];

/// `count` one-recipient jobs over 1,000 domains, 50 tenants, 2,000 campaigns, with their
/// attempt times spread over four hours.
fn jobs(count: usize) -> Vec<(Job, u64)> {
    let mut rng = StdRng::seed_from_u64(1);
    let mut interner = Interner::new();
    let domains: Vec<Arc<str>> = (0..1_000)
        .map(|d| interner.domain(&format!("recipient-domain-{d}.example")))
        .collect();
    (0..count)
        .map(|i| {
            let tenant = rng.random_range(0..50u32);
            let job = Job {
                message: MessageId::from_u128(i as u128),
                domain: Arc::clone(&domains[rng.random_range(0..domains.len())]),
                recipients: RecipientIndices::one(0),
                tenant: Some(interner.intern(&format!("tenant-{tenant}"))),
                campaign: Some(interner.intern(&format!(
                    "tenant-{tenant}/campaign-{}",
                    rng.random_range(0..40u32)
                ))),
                pool: Some(interner.intern(&format!("pool-{}", tenant % 8))),
                created_ms: 0,
                expires_ms: u64::MAX,
                size: 20_000,
                attempts: 1,
                priority: PRIORITIES[rng.random_range(0..3)],
            };
            (job, rng.random_range(0..FOUR_HOURS_MS))
        })
        .collect()
}

fn filled(jobs: &[(Job, u64)]) -> DelayQueue {
    let mut queue = DelayQueue::new();
    for (job, at) in jobs.iter().cloned() {
        queue.insert(job, at);
    }
    queue
}

fn delay_queue(c: &mut Criterion) {
    let jobs = jobs(JOBS);
    let full = filled(&jobs);
    let mut group = c.benchmark_group("delay_queue");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));

    group.throughput(Throughput::Elements(JOBS as u64));
    group.bench_function("insert_1m", |b| {
        b.iter_batched(
            || jobs.clone(),
            |jobs| {
                let mut queue = DelayQueue::new();
                for (job, at) in jobs {
                    queue.insert(job, at);
                }
                queue
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("pop_due_1m", |b| {
        b.iter_batched(
            || full.clone(),
            |mut queue| {
                while let Some(due) = queue.pop_due(u64::MAX) {
                    black_box(due);
                }
                queue
            },
            BatchSize::PerIteration,
        )
    });

    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    let mut queue = full.clone();
    let mut now = 0u64;
    group.bench_function("hold_1m", |b| {
        b.iter(|| {
            now += FOUR_HOURS_MS / JOBS as u64;
            let job = queue.pop_due(u64::MAX).map(|due| due.into_job());
            if let Some(job) = job {
                queue.insert(job, now + FOUR_HOURS_MS);
            }
        })
    });
    group.finish();
}

fn ready_queue(c: &mut Criterion) {
    let jobs = jobs(4_096);
    let mut queue = ReadyQueue::new(ReadyQueueConfig {
        capacity: 1_024,
        starvation_limit: 10,
    });
    for (job, _) in jobs.iter().take(512).cloned() {
        let _ = queue.push(job);
    }
    let mut next = jobs.iter().cycle().map(|(job, _)| job.clone());
    let mut group = c.benchmark_group("ready_queue");
    group.throughput(Throughput::Elements(1));
    group.bench_function("push_pop", |b| {
        b.iter_batched(
            || next.next(),
            |job| {
                if let Some(job) = job {
                    let _ = black_box(queue.push(job));
                }
                black_box(queue.pop(0))
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn helpers(c: &mut Criterion) {
    let policy = RetryPolicy::default();
    let mut rng = StdRng::seed_from_u64(3);
    let mut attempts = 0u32;
    c.bench_function("retry/next_attempt_ms", |b| {
        b.iter(|| {
            attempts = attempts % 12 + 1;
            policy.next_attempt_ms(black_box(attempts), 1_764_000_000_000, None, &mut rng)
        })
    });

    let mut interner = Interner::new();
    let mut envelope = Envelope::new(
        "bounces@mail.tenant.example",
        vec![Recipient::new(
            "subscriber.12345@recipient-domain-7.example",
        )],
        1_764_000_000_000,
    );
    envelope.tags = Tags {
        tenant: Some("tenant-7".into()),
        campaign: Some("tenant-7/campaign-3".into()),
        pool: Some("pool-1".into()),
    };
    let id = MessageId::from_u128(1);
    c.bench_function("jobs_from_envelope/1_recipient", |b| {
        b.iter(|| jobs_from_envelope(id, black_box(&envelope), 432_000_000, &mut interner))
    });
}

criterion_group!(benches, delay_queue, ready_queue, helpers);
criterion_main!(benches);
