//! Disk use stays bounded when messages are stored and removed in a loop.

use queue::{MessageId, Spool};

use crate::common::{TempDir, dir_size, envelope_for, open, runtime};

#[test]
fn space_is_reclaimed_after_remove() {
    const ROUNDS: usize = 40;
    const PER_ROUND: usize = 200;
    const BODY: usize = 4 * 1024;
    // Live data peaks at one round (200 x 4 KiB = 800 KiB), while 31 MiB are written in all;
    // the engine keeps several segments (512 KiB each) in use besides the live data, and
    // relocates live pages out of sparse ones. Measured here: 3 to 7 MiB, no trend. The
    // bound leaves room for that, not for growth.
    const BOUND: u64 = 12 << 20;

    let dir = TempDir::new("disk");
    let rt = runtime();
    let (spool, _) = open(&dir.spool());
    let body = vec![b'x'; BODY];
    let mut sizes = Vec::new();
    for _ in 0..ROUNDS {
        let ids: Vec<MessageId> = (0..PER_ROUND).map(|_| MessageId::generate()).collect();
        rt.block_on(async {
            let stores: Vec<_> = ids
                .iter()
                .map(|&id| spool.store(id, envelope_for(id), body.clone()))
                .collect();
            for s in stores {
                s.await.unwrap();
            }
            let removes: Vec<_> = ids.iter().map(|&id| spool.remove(id)).collect();
            for r in removes {
                r.await.unwrap();
            }
        });
        sizes.push(dir_size(&dir.spool()));
    }
    let written = (ROUNDS * PER_ROUND * BODY) as u64;
    let peak = sizes.iter().copied().max().unwrap_or(0);
    assert!(peak < BOUND, "directory grew to {peak} bytes: {sizes:?}");
    eprintln!("directory sizes per round: {sizes:?}");
    assert!(peak < written, "no space reclaimed: {sizes:?}");
    // No growth trend: the second half peaks no higher than the first half plus 8 segments
    // (reclamation runs on the engine's own threads and may lag on a loaded machine).
    let (first, second) = sizes.split_at(ROUNDS / 2);
    let first_peak = first.iter().copied().max().unwrap_or(0);
    let second_peak = second.iter().copied().max().unwrap_or(0);
    assert!(
        second_peak <= first_peak + (4 << 20),
        "still growing: {sizes:?}"
    );
}
