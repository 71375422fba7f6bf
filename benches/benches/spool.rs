//! criterion benches of the spool: group-committed, synced `store` at several concurrencies.
//!
//! Run with `cargo bench -p benches --bench spool`. Each sample has `concurrency` writer
//! threads storing messages back to back (closed loop: a writer's next store starts when its
//! previous one resolved, as an SMTP session answers 250 before the next message), so the
//! reported throughput is messages per second and the time per element is the spool's cost
//! per message at that concurrency. The messages of a sample are removed after it (untimed), so
//! the spool stays small. Latency percentiles come from the load tool
//! (`cargo run --release -p queue --example spool_load`); both are recorded in `docs/spool.md`.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use benches::message_body;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use queue::{Envelope, MessageId, Recipient, SledSpool, Spool, SpoolConfig};

/// Wakes a thread parked in [`block_on`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future on the current thread (the spool's futures only wait for its committer).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park();
    }
}

fn envelope(size: usize, writer: usize) -> Envelope {
    let mut envelope = Envelope::new(
        format!("bounces+{writer}@mail.example.com"),
        vec![Recipient::new(format!(
            "customer.{writer}@recipient-domain.example"
        ))],
        0,
    );
    envelope.size = size as u64;
    envelope
}

/// Stores `count` messages from `concurrency` threads; returns the time taken and the ids.
fn store_many(
    spool: &SledSpool,
    body: &[u8],
    concurrency: usize,
    count: u64,
) -> (Duration, Vec<MessageId>) {
    let remaining = AtomicU64::new(count);
    let started = Instant::now();
    let ids = thread::scope(|s| {
        let writers: Vec<_> = (0..concurrency)
            .map(|w| {
                let remaining = &remaining;
                s.spawn(move || {
                    let mut ids = Vec::new();
                    while remaining
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        let id = MessageId::generate();
                        block_on(spool.store(id, envelope(body.len(), w), body.to_vec()))
                            .expect("store");
                        ids.push(id);
                    }
                    ids
                })
            })
            .collect();
        writers
            .into_iter()
            .flat_map(|w| w.join().expect("writer"))
            .collect()
    });
    (started.elapsed(), ids)
}

fn spool_store(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("spool-bench-{}", std::process::id()));
    let (spool, _) = SledSpool::open(&dir, SpoolConfig::default()).expect("open spool");
    let mut group = c.benchmark_group("spool_store");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for (name, size) in [("4KiB", 4 * 1024), ("100KiB", 100 * 1024)] {
        let body = message_body(size);
        for concurrency in [1usize, 10, 50] {
            group.throughput(Throughput::Elements(1));
            group.bench_function(format!("{name}/c{concurrency}"), |b| {
                b.iter_custom(|iters| {
                    let (elapsed, ids) = store_many(&spool, &body, concurrency, iters);
                    let removals: Vec<_> = ids.into_iter().map(|id| spool.remove(id)).collect();
                    for removal in removals {
                        block_on(removal).expect("remove");
                    }
                    elapsed
                })
            });
        }
    }
    group.finish();
    block_on(spool.close()).expect("close");
    drop(spool);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, spool_store);
criterion_main!(benches);
