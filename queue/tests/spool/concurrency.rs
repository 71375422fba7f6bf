//! Many concurrent writers: all complete, and their writes share commits.

use std::sync::Arc;

use queue::{MessageId, SledSpool, Spool, SpoolConfig};

use crate::common::{TempDir, body_for, envelope_for, runtime};

/// Spawns `tasks` tasks that each store `each` messages, and returns the ids.
fn store_concurrently(spool: &Arc<SledSpool>, tasks: usize, each: usize) -> Vec<MessageId> {
    let rt = runtime();
    rt.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let spool = Arc::clone(spool);
                tokio::spawn(async move {
                    let mut ids = Vec::new();
                    for _ in 0..each {
                        let id = MessageId::generate();
                        spool
                            .store(id, envelope_for(id), body_for(id))
                            .await
                            .unwrap();
                        ids.push(id);
                    }
                    ids
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.unwrap());
        }
        all
    })
}

#[test]
fn concurrent_stores_are_group_committed() {
    let dir = TempDir::new("concurrency");
    let (spool, _) = SledSpool::open(dir.spool(), SpoolConfig::default()).unwrap();
    let spool = Arc::new(spool);
    let ids = store_concurrently(&spool, 50, 6);
    assert_eq!(ids.len(), 300);
    for &id in &ids {
        assert_eq!(spool.body(id).unwrap().as_ref(), &body_for(id)[..]);
    }
    let stats = spool.stats();
    assert_eq!(stats.writes, 300);
    assert_eq!(stats.failed_commits, 0);
    assert!(stats.largest_batch > 1, "{stats:?}");
    assert!(stats.commits < 300, "{stats:?}");
}

#[test]
fn batches_respect_max_batch_and_max_batch_bytes() {
    let table = [
        // (max_batch, max_batch_bytes, largest batch allowed)
        (4, usize::MAX, 4),
        // Bodies are 512 to 8,703 octets: a batch closes once it holds 10,000 octets,
        // so it holds at most one message past 9,999 octets, and at most 20 of 512.
        (1_000, 10_000, 20),
        (1, usize::MAX, 1),
    ];
    for (max_batch, max_batch_bytes, bound) in table {
        let dir = TempDir::new("max-batch");
        let config = SpoolConfig {
            max_batch,
            max_batch_bytes,
            ..SpoolConfig::default()
        };
        let (spool, _) = SledSpool::open(dir.spool(), config).unwrap();
        let spool = Arc::new(spool);
        let ids = store_concurrently(&spool, 40, 3);
        let stats = spool.stats();
        assert_eq!(stats.writes, ids.len() as u64);
        assert!(
            stats.largest_batch <= bound,
            "{max_batch} {max_batch_bytes}: {stats:?}"
        );
        if max_batch > 1 {
            assert!(stats.largest_batch > 1, "{stats:?}");
        }
    }
}
