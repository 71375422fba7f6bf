//! The write and read operations and their error variants.

use queue::{Change, MessageId, RecipientState, SledSpool, Spool, SpoolConfig, SpoolError};

use crate::common::{TempDir, body_for, envelope_for, open, open_raw, runtime, while_locked};

#[test]
fn store_read_update_remove() {
    let dir = TempDir::new("round-trip");
    let rt = runtime();
    let (spool, recovery) = open(&dir.spool());
    assert!(recovery.pending.is_empty() && recovery.quarantined.is_empty());

    let id = MessageId::generate();
    let envelope = envelope_for(id);
    rt.block_on(spool.store(id, envelope.clone(), body_for(id)))
        .unwrap();
    assert_eq!(spool.body(id).unwrap().as_ref(), &body_for(id)[..]);
    assert_eq!(spool.envelope(id).unwrap(), envelope);
    // A lone message is committed at once, alone.
    assert_eq!(spool.stats().writes, 1);
    assert_eq!(spool.stats().largest_batch, 1);

    let mut updated = envelope.clone();
    updated.attempts = 1;
    updated.next_attempt_ms += 60_000;
    updated.recipients[0].state = RecipientState::Delivered;
    updated.recipients[0].last_reply = Some("250 2.0.0 Ok: queued".into());
    rt.block_on(spool.update(id, &updated)).unwrap();
    assert_eq!(spool.envelope(id).unwrap(), updated);
    // The body is untouched by an update.
    assert_eq!(spool.body(id).unwrap().as_ref(), &body_for(id)[..]);

    let body = spool.body(id).unwrap();
    rt.block_on(spool.remove(id)).unwrap();
    assert!(matches!(spool.body(id), Err(SpoolError::NotFound(x)) if x == id));
    assert!(matches!(spool.envelope(id), Err(SpoolError::NotFound(x)) if x == id));
    // A body handle taken before the removal stays valid.
    assert_eq!(body.as_ref(), &body_for(id)[..]);
}

/// Generic over the trait, as the server will be: the futures borrow nothing, so they can be
/// spawned as they are.
async fn store_in_background<S: Spool>(spool: &S, id: MessageId) -> Result<(), SpoolError> {
    let write = spool.store(id, envelope_for(id), body_for(id));
    tokio::spawn(write).await.unwrap()
}

#[test]
fn futures_are_spawnable() {
    let dir = TempDir::new("spawn");
    let (spool, _) = open(&dir.spool());
    let id = MessageId::generate();
    runtime().block_on(store_in_background(&spool, id)).unwrap();
    assert_eq!(spool.envelope(id).unwrap(), envelope_for(id));
}

#[test]
fn error_variants_table() {
    let dir = TempDir::new("errors");
    let rt = runtime();
    let (spool, _) = open(&dir.spool());
    let stored = MessageId::generate();
    let absent = MessageId::generate();
    rt.block_on(spool.store(stored, envelope_for(stored), body_for(stored)))
        .unwrap();

    type Case<'a> = (
        &'a str,
        std::pin::Pin<Box<dyn Future<Output = Result<(), SpoolError>> + Send + 'a>>,
        fn(&SpoolError) -> bool,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "store of a taken id",
            Box::pin(spool.store(stored, envelope_for(stored), b"x".to_vec())),
            |e| matches!(e, SpoolError::AlreadyExists(_)),
        ),
        (
            "update of an absent id",
            Box::pin(spool.update(absent, &envelope_for(absent))),
            |e| matches!(e, SpoolError::NotFound(_)),
        ),
        (
            "remove of an absent id",
            Box::pin(spool.remove(absent)),
            |e| matches!(e, SpoolError::NotFound(_)),
        ),
    ];
    for (name, future, expected) in cases {
        let error = rt.block_on(future).expect_err(name);
        assert!(expected(&error), "{name}: {error:?}");
    }
    // The refused store did not overwrite the stored body.
    assert_eq!(spool.body(stored).unwrap().as_ref(), &body_for(stored)[..]);
    assert!(matches!(spool.body(absent), Err(SpoolError::NotFound(_))));
}

/// A new message and a change to another (a DSN and the final states it reports) are one
/// atomic write: both land, or a refusal writes neither.
#[test]
fn store_with_change_writes_both_or_neither() {
    let dir = TempDir::new("store-with-change");
    let rt = runtime();
    let (spool, _) = open(&dir.spool());
    let original = MessageId::generate();
    // Queued without awaiting: the change finds the store whether or not they share a batch.
    let store = spool.store(original, envelope_for(original), body_for(original));
    let mut failed = envelope_for(original);
    failed.recipients[0].state = RecipientState::Failed;
    let dsn = MessageId::generate();
    let with_update = spool.store_with_change(
        dsn,
        envelope_for(dsn),
        body_for(dsn),
        Change::Update(original, &failed),
    );
    rt.block_on(async {
        let (s, w) = tokio::join!(store, with_update);
        s.unwrap();
        w.unwrap();
    });
    assert_eq!(spool.envelope(original).unwrap(), failed);
    assert_eq!(spool.body(dsn).unwrap().as_ref(), &body_for(dsn)[..]);

    let absent = MessageId::generate();
    type Refusal<'a> = (&'a str, MessageId, Change<'a>, fn(&SpoolError) -> bool);
    let refused: [Refusal<'_>; 3] = [
        ("a taken id", dsn, Change::Remove(original), |e| {
            matches!(e, SpoolError::AlreadyExists(_))
        }),
        (
            "an absent message to change",
            MessageId::generate(),
            Change::Remove(absent),
            |e| matches!(e, SpoolError::NotFound(_)),
        ),
        (
            "the new message as its own change",
            absent,
            Change::Update(absent, &failed),
            |e| matches!(e, SpoolError::NotFound(_)),
        ),
    ];
    for (name, id, change, expected) in refused {
        let error = rt
            .block_on(spool.store_with_change(id, envelope_for(id), b"x".to_vec(), change))
            .expect_err(name);
        assert!(expected(&error), "{name}: {error:?}");
        // Neither half was written.
        assert_eq!(spool.envelope(original).unwrap(), failed, "{name}");
        if id != dsn {
            assert!(spool.envelope(id).is_err(), "{name}");
        }
    }
    assert_eq!(spool.body(dsn).unwrap().as_ref(), &body_for(dsn)[..]);

    let second = MessageId::generate();
    rt.block_on(spool.store_with_change(
        second,
        envelope_for(second),
        body_for(second),
        Change::Remove(original),
    ))
    .unwrap();
    drop(spool);
    let (spool, recovery) = open(&dir.spool());
    assert!(matches!(
        spool.envelope(original),
        Err(SpoolError::NotFound(_))
    ));
    assert!(matches!(spool.body(original), Err(SpoolError::NotFound(_))));
    let mut pending: Vec<_> = recovery.pending.iter().map(|m| m.id).collect();
    pending.sort();
    let mut expected = vec![dsn, second];
    expected.sort();
    assert_eq!(pending, expected);
}

#[test]
fn writes_apply_in_call_order_without_awaiting() {
    let dir = TempDir::new("order");
    let rt = runtime();
    let (spool, _) = open(&dir.spool());
    let id = MessageId::generate();
    let mut updated = envelope_for(id);
    updated.attempts = 9;
    // Calls queue their writes at once; awaiting later keeps the order.
    let store = spool.store(id, envelope_for(id), body_for(id));
    let update = spool.update(id, &updated);
    let remove = spool.remove(id);
    let flush = spool.flush();
    rt.block_on(async {
        let (s, u, r, f) = tokio::join!(store, update, remove, flush);
        s.unwrap();
        u.unwrap();
        r.unwrap();
        f.unwrap();
    });
    assert!(matches!(spool.envelope(id), Err(SpoolError::NotFound(_))));
}

#[test]
fn close_refuses_writes_and_keeps_reads() {
    let dir = TempDir::new("close");
    let rt = runtime();
    let (spool, _) = open(&dir.spool());
    let id = MessageId::generate();
    let pending = spool.store(id, envelope_for(id), body_for(id));
    rt.block_on(spool.close()).unwrap();
    // Called before close: committed by it.
    rt.block_on(pending).unwrap();
    let late = MessageId::generate();
    let refused = [
        rt.block_on(spool.store(late, envelope_for(late), body_for(late))),
        rt.block_on(spool.update(id, &envelope_for(id))),
        rt.block_on(spool.remove(id)),
        rt.block_on(spool.flush()),
    ];
    for result in refused {
        assert!(matches!(result, Err(SpoolError::Closed)), "{result:?}");
    }
    // Closing again is harmless; reads still work.
    rt.block_on(spool.close()).unwrap();
    assert_eq!(spool.body(id).unwrap().as_ref(), &body_for(id)[..]);
}

#[test]
fn open_errors_table() {
    let dir = TempDir::new("open-errors");
    let (spool, _) = open(&dir.spool());

    // The directory is locked by the open spool.
    let second = SledSpool::open(dir.spool(), SpoolConfig::default());
    assert!(
        matches!(second, Err(SpoolError::Locked { .. })),
        "{second:?}"
    );
    drop(spool);

    let invalid = SpoolConfig {
        max_batch: 0,
        ..SpoolConfig::default()
    };
    let result = SledSpool::open(dir.spool(), invalid);
    assert!(
        matches!(
            result,
            Err(SpoolError::InvalidConfig {
                key: "max_batch",
                ..
            })
        ),
        "{result:?}"
    );

    // The segment size is fixed at creation.
    let other_segment = SpoolConfig {
        segment_size: 1 << 20,
        ..SpoolConfig::default()
    };
    let result = while_locked(
        || match SledSpool::open(dir.spool(), other_segment.clone()) {
            // Still locked by the engine's threads of the spool just dropped: try again.
            Err(locked @ SpoolError::Locked { .. }) => Err(locked),
            other => Ok(other),
        },
    );
    assert!(matches!(result, Err(SpoolError::Open { .. })), "{result:?}");

    // A layout written by a future version.
    {
        let db = open_raw(&dir.spool());
        db.insert("spool.layout", &[9u8][..]).unwrap();
        db.flush().unwrap();
    }
    let result = while_locked(
        || match SledSpool::open(dir.spool(), SpoolConfig::default()) {
            Err(locked @ SpoolError::Locked { .. }) => Err(locked),
            other => Ok(other),
        },
    );
    assert!(
        matches!(
            result,
            Err(SpoolError::UnsupportedLayout {
                found: 9,
                supported: 1
            })
        ),
        "{result:?}"
    );
}
