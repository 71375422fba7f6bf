//! A lazily opened spool accepts new messages at once while its old content is streamed
//! out in batches; old and new never mix, and damaged envelopes are quarantined.

use std::ops::ControlFlow;

use queue::{EntryKind, MessageId, QuarantineReason, Spool};

use crate::common::{TempDir, body_for, envelope_for, open, open_lazy, open_raw, runtime};

#[test]
fn old_messages_stream_in_batches_while_new_ones_are_stored() {
    let dir = TempDir::new("lazy");
    let rt = runtime();
    let old: Vec<MessageId> = (0..25).map(|_| MessageId::generate()).collect();
    let finished = old[3];
    {
        let (spool, _) = open(&dir.spool());
        for &id in &old {
            rt.block_on(spool.store(id, envelope_for(id), body_for(id)))
                .unwrap();
        }
        let mut done = envelope_for(finished);
        for recipient in &mut done.recipients {
            recipient.state = queue::RecipientState::Delivered;
        }
        rt.block_on(spool.update(finished, &done)).unwrap();
        rt.block_on(spool.close()).unwrap();
    }

    let spool = open_lazy(&dir.spool());
    assert!(old.iter().all(|&id| id < spool.opened_at()));
    // New mail arrives before (and while) the old is read.
    let new: Vec<MessageId> = (0..5).map(|_| MessageId::generate()).collect();
    for &id in &new {
        assert!(id > spool.opened_at());
        rt.block_on(spool.store(id, envelope_for(id), body_for(id)))
            .unwrap();
    }
    let mut batches = Vec::new();
    spool
        .recover_envelopes(10, |batch| {
            batches.push(batch);
            ControlFlow::Continue(())
        })
        .unwrap();
    let sizes: Vec<usize> = batches
        .iter()
        .map(|b| b.pending.len() + b.finished.len())
        .collect();
    assert_eq!(sizes, [10, 10, 5]);
    let pending: Vec<MessageId> = batches
        .iter()
        .flat_map(|b| b.pending.iter().map(|m| m.id))
        .collect();
    let expected: Vec<MessageId> = old.iter().copied().filter(|&id| id != finished).collect();
    assert_eq!(
        pending, expected,
        "old pending messages, in arrival order, no new ones"
    );
    let finished_ids: Vec<MessageId> = batches
        .iter()
        .flat_map(|b| b.finished.iter().map(|m| m.id))
        .collect();
    assert_eq!(finished_ids, [finished]);
    for message in batches.iter().flat_map(|b| &b.pending) {
        assert_eq!(message.envelope, envelope_for(message.id));
    }
    // The new messages are intact and readable.
    for &id in &new {
        assert_eq!(spool.body(id).unwrap().as_ref(), &body_for(id)[..]);
    }
}

#[test]
fn undecodable_envelopes_are_quarantined_with_their_body() {
    let dir = TempDir::new("lazy-quarantine");
    let rt = runtime();
    let ids: Vec<MessageId> = (0..3).map(|_| MessageId::generate()).collect();
    {
        let (spool, _) = open(&dir.spool());
        for &id in &ids {
            rt.block_on(spool.store(id, envelope_for(id), body_for(id)))
                .unwrap();
        }
        rt.block_on(spool.close()).unwrap();
    }
    {
        let db = open_raw(&dir.spool());
        let messages = db.open_tree("messages").unwrap();
        let key = [&[b'E'][..], &ids[1].to_bytes()].concat();
        messages.insert(key, &b"\x01\x80\x00 garbage"[..]).unwrap();
        db.flush().unwrap();
    }
    let spool = open_lazy(&dir.spool());
    let mut batches = Vec::new();
    spool
        .recover_envelopes(100, |b| {
            batches.push(b);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(batches.len(), 1);
    let pending: Vec<MessageId> = batches[0].pending.iter().map(|m| m.id).collect();
    assert_eq!(pending, [ids[0], ids[2]]);
    let reported: Vec<_> = batches[0]
        .quarantined
        .iter()
        .map(|r| (r.id, r.kind))
        .collect();
    assert_eq!(reported, [(Some(ids[1]), EntryKind::Envelope)]);
    assert!(spool.envelope(ids[1]).is_err() && spool.body(ids[1]).is_err());
    let kept = spool.quarantined().unwrap();
    let kinds: Vec<_> = kept.iter().map(|e| (e.id, e.kind)).collect();
    assert_eq!(
        kinds,
        [
            (Some(ids[1]), EntryKind::Body),
            (Some(ids[1]), EntryKind::Envelope)
        ]
    );
    assert_eq!(kept[0].bytes.as_ref(), &body_for(ids[1])[..]);
    drop(spool);
    // A full open afterwards finds a consistent spool.
    let (_, recovery) = open(&dir.spool());
    assert!(recovery.quarantined.is_empty());
    assert_eq!(recovery.pending.len(), 2);
}

#[test]
fn a_pending_envelope_without_its_body_is_quarantined() {
    let dir = TempDir::new("lazy-missing-body");
    let rt = runtime();
    let ids: Vec<MessageId> = (0..2).map(|_| MessageId::generate()).collect();
    {
        let (spool, _) = open(&dir.spool());
        for &id in &ids {
            rt.block_on(spool.store(id, envelope_for(id), body_for(id)))
                .unwrap();
        }
        rt.block_on(spool.close()).unwrap();
    }
    {
        let db = open_raw(&dir.spool());
        let messages = db.open_tree("messages").unwrap();
        let key = [&[b'B'][..], &ids[0].to_bytes()].concat();
        assert!(messages.remove(key).unwrap().is_some(), "body key layout");
        db.flush().unwrap();
    }
    let spool = open_lazy(&dir.spool());
    let mut batches = Vec::new();
    spool
        .recover_envelopes(100, |b| {
            batches.push(b);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(batches.len(), 1);
    let pending: Vec<MessageId> = batches[0].pending.iter().map(|m| m.id).collect();
    assert_eq!(pending, [ids[1]]);
    let reported: Vec<_> = batches[0]
        .quarantined
        .iter()
        .map(|r| (r.id, r.kind, r.reason.to_string()))
        .collect();
    assert_eq!(
        reported,
        [(
            Some(ids[0]),
            EntryKind::Envelope,
            QuarantineReason::MissingBody.to_string()
        )]
    );
    assert!(spool.envelope(ids[0]).is_err());
}

#[test]
fn ids_drawn_after_open_sort_after_stored_ones_from_the_future() {
    let dir = TempDir::new("lazy-future");
    let rt = runtime();
    // A message stored by a process whose clock ran an hour ahead.
    let now = MessageId::generate();
    let future = MessageId::from_parts(now.unix_ms() + 3_600_000, 0, 42);
    {
        let (spool, _) = open(&dir.spool());
        rt.block_on(spool.store(future, envelope_for(future), body_for(future)))
            .unwrap();
        rt.block_on(spool.close()).unwrap();
    }
    let spool = open_lazy(&dir.spool());
    assert!(spool.opened_at() > future);
    assert!(MessageId::generate() > future);
    let mut pending = Vec::new();
    spool
        .recover_envelopes(100, |b| {
            pending.extend(b.pending.iter().map(|m| m.id));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(pending, [future]);
}

#[test]
fn recovery_stops_when_asked() {
    let dir = TempDir::new("lazy-stop");
    let rt = runtime();
    {
        let (spool, _) = open(&dir.spool());
        for _ in 0..30 {
            let id = MessageId::generate();
            rt.block_on(spool.store(id, envelope_for(id), body_for(id)))
                .unwrap();
        }
        rt.block_on(spool.close()).unwrap();
    }
    let spool = open_lazy(&dir.spool());
    let mut seen = 0;
    spool
        .recover_envelopes(10, |b| {
            seen += b.pending.len();
            ControlFlow::Break(())
        })
        .unwrap();
    assert_eq!(seen, 10);
}
