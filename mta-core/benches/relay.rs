//! End-to-end relay throughput: a load generator, the MTA and an SMTP sink, all in this
//! process on loopback; every message is received by the MTA (durable spool, fsync before
//! `250`), DKIM-signed when the variant says so, relayed over a second SMTP transaction, and
//! counted when the sink answers `250`.
//!
//! Run with `cargo bench -p mta-core --bench relay`. One element is one message relayed end
//! to end; an iteration is a batch of [`BATCH`] messages sent by [`CONCURRENCY`] pipelining
//! clients, timed from the first MAIL to the sink's last `250`. Variants: 4 KiB and 100 KiB
//! bodies, DKIM off, RSA-2048 and Ed25519. Results are in `docs/performance.md`.

use std::path::Path;
use std::time::{Duration, Instant};

use benches::load::{self, LoadConfig, Weighted};
use benches::sink::{Sink, SinkConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mta_core::config::Config;
use mta_core::lifecycle::{self, Running};

/// Messages per timed iteration.
const BATCH: u64 = 500;
/// Concurrent client connections of the load generator.
const CONCURRENCY: usize = 50;
/// The sender domain of the generated messages (their `From:`), the signing domain.
const FROM_DOMAIN: &str = "mail.example.com";

/// The MTA relaying to a sink, and what the sink had counted when the last batch ended.
struct Relay {
    running: Running,
    sink: Sink,
    delivered: u64,
    _dir: tempfile::TempDir,
}

impl Relay {
    /// Starts a sink and an MTA that relays every domain to it, signing with `dkim`
    /// (an algorithm name such as `rsa-2048`) when given.
    async fn start(dkim: Option<&str>) -> Relay {
        let dir = tempfile::tempdir().expect("temp dir");
        let sink = Sink::start(SinkConfig::default()).await.expect("sink");
        let mut text = relay_config(dir.path(), &sink);
        if let Some(algorithm) = dkim {
            let key = dkim::generate_key(algorithm.parse().expect("algorithm")).expect("key");
            let path = dir.path().join("dkim.pem");
            key.write_pem(&path).expect("write key");
            text.push_str(&format!(
                "[[dkim]]\ndomain = \"{FROM_DOMAIN}\"\nselector = \"bench\"\nkey = {path:?}\n"
            ));
        }
        let config = Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let running = lifecycle::start(config, None).await.expect("MTA start");
        running.recovered().await;
        Relay {
            running,
            sink,
            delivered: 0,
            _dir: dir,
        }
    }

    /// Relays `messages` messages of `size` octets and returns the time from the first MAIL
    /// to the sink's last `250`.
    async fn relay(&mut self, messages: u64, size: usize) -> Duration {
        let started = Instant::now();
        let report = load::run(LoadConfig {
            concurrency: CONCURRENCY,
            sizes: Weighted::single(size),
            ..LoadConfig::new(self.running.addrs[0], messages)
        })
        .await
        .expect("load run");
        assert_eq!(
            report.accepted, messages,
            "the MTA refused messages: {report:?}"
        );
        self.delivered += messages;
        self.sink
            .wait_for_accepted(self.delivered, Duration::from_secs(120))
            .await
            .expect("every message reaches the sink");
        started.elapsed()
    }

    async fn stop(self) {
        self.running.stop().await.expect("MTA stop");
        self.sink.stop().await;
    }
}

/// The MTA's configuration: durable spool, loopback listener open to relaying from
/// 127.0.0.0/8, every domain routed to the sink; logs and the admin socket in `dir`.
fn relay_config(dir: &Path, sink: &Sink) -> String {
    format!(
        "hostname = \"relay.bench.invalid\"\n\
         [spool]\npath = {spool:?}\n\
         [delivery_log]\npath = {log:?}\n\
         [admin]\nsocket = {socket:?}\n\
         [[listener]]\naddress = \"127.0.0.1:0\"\nrelay_networks = [\"127.0.0.0/8\"]\n\
         max_connections_per_ip = 1000\n\
         [[route]]\ndomains = [\"*\"]\nsmarthost = \"{sink}\"\n",
        spool = dir.join("spool"),
        log = dir.join("delivery.jsonl"),
        socket = dir.join("admin.sock"),
        sink = sink.addr(),
    )
}

fn relay(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("relay");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(3))
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Elements(BATCH));
    for (dkim, label) in [
        (None, "no-dkim"),
        (Some("rsa-2048"), "rsa2048"),
        (Some("ed25519"), "ed25519"),
    ] {
        let mut relay = runtime.block_on(Relay::start(dkim));
        for (size, size_label) in [(4096, "4KiB"), (100 * 1024, "100KiB")] {
            group.bench_function(format!("{label}/{size_label}"), |b| {
                b.iter_custom(|iters| {
                    runtime.block_on(async {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            total += relay.relay(BATCH, size).await;
                        }
                        total
                    })
                });
            });
        }
        runtime.block_on(relay.stop());
    }
    group.finish();
}

criterion_group!(benches, relay);
criterion_main!(benches);
