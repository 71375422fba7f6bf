//! Damaged entries are moved to quarantine on open, reported, and never crash the open.

use queue::{DecodeError, EntryKind, MessageId, QuarantineReason, Spool};

use crate::common::{TempDir, body_for, envelope_for, open, open_raw, runtime};

fn key(prefix: u8, id: MessageId) -> Vec<u8> {
    [&[prefix][..], &id.to_bytes()].concat()
}

#[test]
fn damaged_entries_are_quarantined_and_reported() {
    let dir = TempDir::new("quarantine");
    let rt = runtime();
    let ids: Vec<MessageId> = (0..4).map(|_| MessageId::generate()).collect();
    let (garbled, headless, orphan) = (ids[1], ids[2], MessageId::generate());
    {
        let (spool, _) = open(&dir.spool());
        for &id in &ids {
            rt.block_on(spool.store(id, envelope_for(id), body_for(id)))
                .unwrap();
        }
        rt.block_on(spool.close()).unwrap();
    }
    // Damage the spool behind its back, through the storage engine.
    let garbage = b"\x01\x80\x00 not an envelope".to_vec();
    {
        let db = open_raw(&dir.spool());
        let messages = db.open_tree("messages").unwrap();
        messages
            .insert(key(b'E', garbled), garbage.clone())
            .unwrap();
        messages.remove(key(b'B', headless)).unwrap();
        messages
            .insert(key(b'B', orphan), &b"lost body"[..])
            .unwrap();
        messages.insert(&b"junk"[..], &b"?"[..]).unwrap();
        db.flush().unwrap();
    }

    let (spool, recovery) = open(&dir.spool());
    let mut reports: Vec<_> = recovery
        .quarantined
        .iter()
        .map(|r| (r.id, r.kind, r.reason.clone()))
        .collect();
    reports.sort_by_key(|r| (r.0, r.1 as u8));
    let undecodable = QuarantineReason::Undecodable(DecodeError::BadVarint {
        field: "created_ms",
    });
    let mut expected = vec![
        (None, EntryKind::Unknown, QuarantineReason::UnknownKey),
        (Some(garbled), EntryKind::Envelope, undecodable.clone()),
        (Some(garbled), EntryKind::Body, undecodable),
        (
            Some(headless),
            EntryKind::Envelope,
            QuarantineReason::MissingBody,
        ),
        (Some(orphan), EntryKind::Body, QuarantineReason::OrphanBody),
    ];
    expected.sort_by_key(|r| (r.0, r.1 as u8));
    assert_eq!(reports, expected);

    // The intact messages are pending, exact.
    let pending: Vec<_> = recovery.pending.iter().map(|m| m.id).collect();
    assert_eq!(pending, [ids[0], ids[3]]);
    for &id in &pending {
        assert_eq!(spool.envelope(id).unwrap(), envelope_for(id));
        assert_eq!(spool.body(id).unwrap().as_ref(), &body_for(id)[..]);
    }
    // The damaged ones left the live spool; the raw bytes are kept in quarantine.
    assert!(spool.envelope(garbled).is_err() && spool.body(garbled).is_err());
    assert!(spool.envelope(headless).is_err());
    let kept = spool.quarantined().unwrap();
    assert_eq!(kept.len(), 5);
    let garbled_envelope = kept
        .iter()
        .find(|e| e.id == Some(garbled) && e.kind == EntryKind::Envelope)
        .unwrap();
    assert_eq!(garbled_envelope.bytes.as_ref(), &garbage[..]);
    assert!(garbled_envelope.reason.contains("undecodable"));
    let garbled_body = kept
        .iter()
        .find(|e| e.id == Some(garbled) && e.kind == EntryKind::Body)
        .unwrap();
    assert_eq!(garbled_body.bytes.as_ref(), &body_for(garbled)[..]);
    // The listing gives the same entries without their bytes, up to its limit.
    let (listed, total) = spool.quarantine_listing(3).unwrap();
    assert_eq!((listed.len(), total), (3, 5));
    for (listing, entry) in listed.iter().zip(&kept) {
        assert_eq!(
            (listing.id, listing.kind, listing.len, &listing.reason),
            (entry.id, entry.kind, entry.bytes.len(), &entry.reason)
        );
    }
    assert_eq!(
        spool.quarantined_body(garbled).unwrap().unwrap().as_ref(),
        &body_for(garbled)[..]
    );
    assert!(spool.quarantined_body(headless).unwrap().is_none());
    drop(spool);

    // Moved, not copied: the next open finds nothing new, and the quarantine stays.
    let (spool, recovery) = open(&dir.spool());
    assert!(recovery.quarantined.is_empty());
    assert_eq!(recovery.pending.len(), 2);
    assert_eq!(spool.quarantined().unwrap().len(), 5);

    // An operator deletes a message's entries once dealt with; they stay deleted.
    assert_eq!(spool.remove_quarantined(garbled).unwrap(), 2);
    assert_eq!(spool.remove_quarantined(garbled).unwrap(), 0);
    assert_eq!(spool.remove_quarantined(ids[0]).unwrap(), 0);
    drop(spool);
    let (spool, _) = open(&dir.spool());
    let left = spool.quarantined().unwrap();
    assert_eq!(left.len(), 3);
    assert!(left.iter().all(|e| e.id != Some(garbled)));
    drop(spool);
    // Their reasons went with them.
    let db = open_raw(&dir.spool());
    let reasons = db.open_tree("quarantine.reasons").unwrap();
    assert!(reasons.get(key(b'B', garbled)).unwrap().is_none());
    assert!(reasons.get(key(b'E', garbled)).unwrap().is_none());
    assert_eq!(reasons.len(), 3);
}
