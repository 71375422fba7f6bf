//! What `store`, `update` and `remove` acknowledged is there after a reopen.

use queue::{MessageId, RecipientState, Spool};

use crate::common::{TempDir, body_for, envelope_for, open, runtime};

#[test]
fn acknowledged_writes_survive_reopen() {
    let dir = TempDir::new("durability");
    let rt = runtime();
    let ids: Vec<MessageId> = (0..60).map(|_| MessageId::generate()).collect();
    let mut expected_pending = Vec::new();
    let mut expected_finished = Vec::new();
    {
        let (spool, _) = open(&dir.spool());
        for &id in &ids {
            rt.block_on(spool.store(id, envelope_for(id), body_for(id)))
                .unwrap();
        }
        for (i, &id) in ids.iter().enumerate() {
            let mut env = envelope_for(id);
            match i % 3 {
                // Untouched.
                0 => expected_pending.push((id, env)),
                // Finished but not removed: reported as finished.
                1 => {
                    for r in &mut env.recipients {
                        r.state = RecipientState::Failed;
                        r.last_reply = Some("550 5.1.1 No such user".into());
                    }
                    rt.block_on(spool.update(id, &env)).unwrap();
                    expected_finished.push((id, env));
                }
                // Removed.
                _ => rt.block_on(spool.remove(id)).unwrap(),
            }
        }
        // Dropped with no flush or close: only what each call guaranteed.
    }
    let (spool, recovery) = open(&dir.spool());
    assert!(
        recovery.quarantined.is_empty(),
        "{:?}",
        recovery.quarantined
    );
    let pending: Vec<_> = recovery
        .pending
        .iter()
        .map(|m| (m.id, m.envelope.clone()))
        .collect();
    let finished: Vec<_> = recovery
        .finished
        .iter()
        .map(|m| (m.id, m.envelope.clone()))
        .collect();
    // In id (arrival) order, exact envelopes.
    assert_eq!(pending, expected_pending);
    assert_eq!(finished, expected_finished);
    for (id, _) in pending.iter().chain(&finished) {
        assert_eq!(spool.body(*id).unwrap().as_ref(), &body_for(*id)[..]);
    }
    for (i, id) in ids.iter().enumerate() {
        if i % 3 == 2 {
            assert!(spool.body(*id).is_err() && spool.envelope(*id).is_err());
        }
    }
}

/// After a failed commit the spool writes nothing more until it is reopened: a later sync
/// could succeed over data the failed one lost, and acknowledge mail on a hole.
#[test]
fn a_failed_commit_stops_every_later_write() {
    let dir = TempDir::new("poisoned");
    let rt = runtime();
    let (spool, _) = open(&dir.spool());
    let first = MessageId::generate();
    rt.block_on(spool.store(first, envelope_for(first), body_for(first)))
        .unwrap();
    // The commit's blob sync lists this directory: without it the commit fails.
    let blobs = dir.spool().join("blobs");
    std::fs::remove_dir_all(&blobs).unwrap();
    let second = MessageId::generate();
    let failed = rt.block_on(spool.store(second, envelope_for(second), body_for(second)));
    assert!(failed.is_err(), "{failed:?}");
    std::fs::create_dir(&blobs).unwrap();
    let third = MessageId::generate();
    let refused = rt.block_on(spool.store(third, envelope_for(third), body_for(third)));
    let error = refused.expect_err("no write after a failed commit");
    assert!(
        error.to_string().contains("storage")
            || format!("{error:?}").contains("stopped writing after a failed commit"),
        "{error:?}"
    );
    assert!(spool.stats().failed_commits >= 2);
    assert!(spool.refuses_writes());
    // Discarding from quarantine is a write too.
    assert!(spool.remove_quarantined(first).is_err());
    drop(spool);
    // Reopened, the spool works again and still has what it acknowledged.
    let (spool, _) = open(&dir.spool());
    assert!(spool.envelope(first).is_ok());
    rt.block_on(spool.store(third, envelope_for(third), body_for(third)))
        .unwrap();
}
