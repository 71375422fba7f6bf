//! [`DelayQueue`]: the timer structure holding every job until its next attempt.
//!
//! Two vectors: a slab of jobs (`Vec<Option<Job>>` with a free list of empty slots, reused
//! last-freed first) and a binary min-heap (std [`BinaryHeap`] with reversed order) of small
//! keys `(at_ms, rank, slot)`, where `rank` packs the inverted priority (2 bits) above an
//! insertion sequence number (62 bits). So two integer comparisons order by time, then
//! higher priority first, then first in, first out; and the heap moves 24-byte keys, not
//! 128-byte jobs.
//!
//! Complexity: `insert` and `pop_due` O(log n), `next_due_ms` and `len` O(1);
//! `remove_where`, `iter` and `shrink_to_fit` O(n).
//!
//! Why this structure (measured at one million jobs, see `docs/scheduler.md`): against a
//! heap of whole jobs (144-byte entries), keys plus slab pop about twice as fast (the sift
//! touches a third of the cache lines) for about 8 more bytes per job; both are far below
//! the 200 bytes per job budget and far faster than delivery needs. A hierarchical timing
//! wheel would make insert and pop O(1) but needs per-slot priority and FIFO order and
//! cascading; it is only worth it if this heap shows up in profiles. Removal is only by
//! predicate (admin: bounce or suspend by filter), which is O(n) with any structure, so
//! there is no lazy deletion: the heap is rebuilt without the removed keys at once, there
//! are no tombstones to skip on pop or to count in memory, and `len` is exact.
//!
//! Invariants: every key points at an occupied slot and every occupied slot has exactly one
//! key; no key's time is later than its job's `expires_ms` (an insert past expiry is moved
//! to the expiry time), so an expired job never waits behind a due one; a popped job is
//! [`Due::Expired`] exactly when `now_ms >= job.expires_ms`.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::{Due, Job};
use crate::Priority;

/// Jobs waiting for their next attempt, ordered by time, then priority, then insertion.
#[derive(Debug, Clone, Default)]
pub struct DelayQueue {
    heap: BinaryHeap<Key>,
    /// The jobs; `None` slots are listed in `free`.
    slots: Vec<Option<Job>>,
    /// Empty slots, reused last-freed first (still warm in the cache).
    free: Vec<usize>,
    /// Insertion counter (the FIFO tie-break); 2^62 inserts before it wraps.
    next_seq: u64,
}

#[derive(Debug, Clone, Copy)]
struct Key {
    at_ms: u64,
    /// Lane (0 = High, 1 = Normal, 2 = Bulk) in the top 2 bits, sequence below: smaller
    /// goes first among keys of the same time.
    rank: u64,
    slot: usize,
}

const SEQ_BITS: u32 = 62;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;

/// 0 for the priority served first.
pub(super) const fn lane(priority: Priority) -> usize {
    match priority {
        Priority::High => 0,
        Priority::Normal => 1,
        Priority::Bulk => 2,
    }
}

impl Key {
    const fn order(&self) -> (u64, u64) {
        (self.at_ms, self.rank)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.order() == other.order()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    /// Reversed: the key due first is the greatest, at the top of the max-heap.
    fn cmp(&self, other: &Self) -> Ordering {
        other.order().cmp(&self.order())
    }
}

impl DelayQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty queue with room for `capacity` jobs (for a rebuild from the spool, whose
    /// size is known).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            heap: BinaryHeap::with_capacity(capacity),
            slots: Vec::with_capacity(capacity),
            free: Vec::new(),
            next_seq: 0,
        }
    }

    /// Schedules `job` for `at_ms`, or for its expiry if that comes first; returns the time
    /// it was scheduled for (to record as the envelope's next-attempt time).
    pub fn insert(&mut self, job: Job, at_ms: u64) -> u64 {
        let at_ms = at_ms.min(job.expires_ms);
        let rank = ((lane(job.priority) as u64) << SEQ_BITS) | (self.next_seq & SEQ_MASK);
        self.next_seq = self.next_seq.wrapping_add(1);
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(job);
                slot
            }
            None => {
                self.slots.push(Some(job));
                self.slots.len() - 1
            }
        };
        self.heap.push(Key { at_ms, rank, slot });
        at_ms
    }

    /// The next job due at `now_ms`, if any: the earliest, then the highest priority, then
    /// the first inserted. [`Due::Expired`] when `now_ms >= job.expires_ms`.
    pub fn pop_due(&mut self, now_ms: u64) -> Option<Due> {
        if self.heap.peek()?.at_ms > now_ms {
            return None;
        }
        let key = self.heap.pop()?;
        // Always occupied (module invariant).
        let job = self.slots[key.slot].take()?;
        self.free.push(key.slot);
        Some(Due::classify(job, now_ms))
    }

    /// When the next job is due (its attempt or expiry time), for the engine's timer; `None`
    /// when empty.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.heap.peek().map(|key| key.at_ms)
    }

    /// Number of jobs held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// `true` when no job is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Every job, in no particular order (for counting by domain, tenant, age).
    pub fn iter(&self) -> impl Iterator<Item = &Job> + '_ {
        self.slots.iter().flatten()
    }

    /// Every job with the time it is scheduled for, in no particular order.
    pub fn iter_scheduled(&self) -> impl Iterator<Item = (u64, &Job)> + '_ {
        // Every key has its job (module invariant), so nothing is filtered out.
        self.heap
            .iter()
            .filter_map(|key| Some((key.at_ms, self.slots[key.slot].as_ref()?)))
    }

    /// Removes every job for which `predicate` is true and returns them in the order they
    /// would have been popped. O(n): the heap is rebuilt.
    pub fn remove_where<F: FnMut(&Job) -> bool>(&mut self, mut predicate: F) -> Vec<Job> {
        self.remove_scheduled_where(|_, job| predicate(job))
    }

    /// Like [`DelayQueue::remove_where`], with the time each job is scheduled for given to
    /// `predicate` (to take, say, only the jobs held until one moment).
    pub fn remove_scheduled_where<F: FnMut(u64, &Job) -> bool>(
        &mut self,
        mut predicate: F,
    ) -> Vec<Job> {
        let mut removed: Vec<(Key, Job)> = Vec::new();
        for key in self.heap.iter() {
            let slot = &mut self.slots[key.slot];
            if slot.as_ref().is_some_and(|job| predicate(key.at_ms, job))
                && let Some(job) = slot.take()
            {
                self.free.push(key.slot);
                removed.push((*key, job));
            }
        }
        if !removed.is_empty() {
            let slots = &self.slots;
            self.heap.retain(|key| slots[key.slot].is_some());
        }
        // Keys order reversed (due first is greatest): reverse again for due order.
        removed.sort_unstable_by_key(|&(key, _)| std::cmp::Reverse(key));
        removed.into_iter().map(|(_, job)| job).collect()
    }

    /// Bytes allocated for keys, job slots and the free list (the shared strings and the
    /// rare multi-recipient index lists are not counted). For the memory gauge.
    pub fn allocated_bytes(&self) -> usize {
        self.heap.capacity() * size_of::<Key>()
            + self.slots.capacity() * size_of::<Option<Job>>()
            + self.free.capacity() * size_of::<usize>()
    }

    /// Compacts the job slots and gives back unused capacity (after a large drain: the slab
    /// otherwise keeps its peak size). O(n).
    pub fn shrink_to_fit(&mut self) {
        let mut keys = std::mem::take(&mut self.heap).into_vec();
        let mut slots = Vec::with_capacity(keys.len());
        for key in &mut keys {
            slots.push(self.slots[key.slot].take());
            key.slot = slots.len() - 1;
        }
        keys.shrink_to_fit();
        self.heap = BinaryHeap::from(keys);
        self.slots = slots;
        self.free = Vec::new();
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::MessageId;
    use crate::scheduler::RecipientIndices;

    /// A job named by its message id number, for tests of both queues.
    pub(crate) fn job(n: u128, priority: Priority, expires_ms: u64) -> Job {
        Job {
            message: MessageId::from_u128(n),
            domain: Arc::from(if n.is_multiple_of(2) {
                "even.example"
            } else {
                "odd.example"
            }),
            recipients: RecipientIndices::one(0),
            tenant: None,
            campaign: None,
            pool: None,
            created_ms: 0,
            expires_ms,
            size: 1_000,
            attempts: 0,
            priority,
        }
    }

    fn drain(queue: &mut DelayQueue, now: u64) -> Vec<(u128, bool)> {
        std::iter::from_fn(|| queue.pop_due(now))
            .map(|d| (d.job().message.as_u128(), d.is_expired()))
            .collect()
    }

    #[test]
    fn per_job_memory_is_small() {
        assert_eq!(size_of::<Key>(), 24);
        assert_eq!(size_of::<Option<Job>>(), size_of::<Job>());
    }

    #[test]
    fn ordering_table() {
        use Priority::{Bulk, High, Normal};
        type Case = (&'static [(u128, u64, Priority)], &'static [u128]);
        // (id, at, priority) inserted in this order -> ids popped.
        let table: [Case; 5] = [
            // Time first.
            (&[(1, 30, High), (2, 10, Bulk), (3, 20, Normal)], &[2, 3, 1]),
            // Same time: priority, whatever the insertion order.
            (&[(1, 10, Bulk), (2, 10, Normal), (3, 10, High)], &[3, 2, 1]),
            // Same time and priority: first in, first out.
            (
                &[(1, 10, Normal), (2, 10, Normal), (3, 10, Normal)],
                &[1, 2, 3],
            ),
            // Mixed.
            (
                &[
                    (1, 20, Bulk),
                    (2, 10, Bulk),
                    (3, 20, High),
                    (4, 10, Bulk),
                    (5, 20, Bulk),
                    (6, 10, High),
                ],
                &[6, 2, 4, 3, 1, 5],
            ),
            (&[], &[]),
        ];
        for (inserts, expected) in table {
            let mut queue = DelayQueue::new();
            for &(id, at, priority) in inserts {
                assert_eq!(queue.insert(job(id, priority, u64::MAX), at), at);
            }
            assert_eq!(queue.len(), inserts.len());
            let popped: Vec<u128> = drain(&mut queue, 1_000).into_iter().map(|p| p.0).collect();
            assert_eq!(popped, expected, "{inserts:?}");
            assert!(queue.is_empty());
        }
    }

    #[test]
    fn only_due_jobs_are_popped() {
        let mut queue = DelayQueue::new();
        assert_eq!(queue.next_due_ms(), None);
        assert_eq!(queue.pop_due(u64::MAX), None);
        queue.insert(job(1, Priority::Normal, u64::MAX), 100);
        queue.insert(job(2, Priority::Normal, u64::MAX), 50);
        assert_eq!(queue.next_due_ms(), Some(50));
        assert_eq!(queue.pop_due(49), None);
        assert_eq!(drain(&mut queue, 50), [(2, false)]);
        assert_eq!(queue.next_due_ms(), Some(100));
        assert_eq!(drain(&mut queue, 99), []);
        assert_eq!(drain(&mut queue, 100), [(1, false)]);
        assert_eq!(queue.next_due_ms(), None);
    }

    #[test]
    fn expiry_table() {
        // (at, expires, now) -> (scheduled time, due at now, expired)
        let table = [
            // Attempt before expiry, popped on time.
            ((100, 500, 100), (100, true, false)),
            // Attempt after expiry: fires at expiry, as expired.
            ((900, 500, 500), (500, true, true)),
            ((900, 500, 499), (500, false, false)),
            // Attempt exactly at expiry: expired.
            ((500, 500, 500), (500, true, true)),
            // Attempt before expiry, but popped after it (engine late): expired.
            ((100, 500, 600), (100, true, true)),
        ];
        for ((at, expires, now), (scheduled, due, expired)) in table {
            let mut queue = DelayQueue::new();
            assert_eq!(
                queue.insert(job(1, Priority::Normal, expires), at),
                scheduled
            );
            assert_eq!(queue.next_due_ms(), Some(scheduled));
            let popped = drain(&mut queue, now);
            let expected: &[(u128, bool)] = if due { &[(1, expired)] } else { &[] };
            assert_eq!(popped, expected, "at {at} expires {expires} now {now}");
        }
    }

    #[test]
    fn expired_job_overtakes_later_attempts() {
        let mut queue = DelayQueue::new();
        queue.insert(job(1, Priority::High, u64::MAX), 400);
        // Wants 10 000 but expires at 300: comes out first, expired.
        queue.insert(job(2, Priority::Bulk, 300), 10_000);
        assert_eq!(drain(&mut queue, 1_000), [(2, true), (1, false)]);
    }

    #[test]
    fn remove_where_returns_matches_in_due_order_and_keeps_the_rest() {
        let mut queue = DelayQueue::new();
        for (id, at) in [(1, 50), (2, 40), (3, 30), (4, 20), (5, 10), (6, 60)] {
            queue.insert(job(id, Priority::Normal, u64::MAX), at);
        }
        // Even ids are on even.example.
        let removed: Vec<u128> = queue
            .remove_where(|j| &*j.domain == "even.example")
            .iter()
            .map(|j| j.message.as_u128())
            .collect();
        assert_eq!(removed, [4, 2, 6]);
        assert_eq!(queue.len(), 3);
        assert!(queue.remove_where(|_| false).is_empty());
        assert_eq!(queue.len(), 3);
        assert_eq!(queue.next_due_ms(), Some(10));
        assert_eq!(drain(&mut queue, 100), [(5, false), (3, false), (1, false)]);
    }

    #[test]
    fn remove_scheduled_where_sees_each_jobs_time() {
        let mut queue = DelayQueue::new();
        for (id, at) in [(1, 500), (2, 700), (3, 500), (4, 900)] {
            queue.insert(job(id, Priority::Normal, u64::MAX), at);
        }
        // A job capped at its expiry is scheduled for the expiry, not the time asked.
        queue.insert(job(5, Priority::Normal, 500), 2_000);
        let removed: Vec<u128> = queue
            .remove_scheduled_where(|at, j| at == 500 && j.message.as_u128() != 5)
            .iter()
            .map(|j| j.message.as_u128())
            .collect();
        assert_eq!(removed, [1, 3]);
        assert_eq!(queue.len(), 3);
        assert_eq!(
            drain(&mut queue, 1_000),
            [(5, true), (2, false), (4, false)]
        );
    }

    #[test]
    fn iteration_sees_every_job() {
        let mut queue = DelayQueue::with_capacity(8);
        for id in 0..7 {
            queue.insert(job(id, Priority::Normal, 1_000), 2_000 + id as u64);
        }
        let even = queue
            .iter()
            .filter(|j| &*j.domain == "even.example")
            .count();
        assert_eq!((queue.iter().count(), even), (7, 4));
        // Scheduled times were capped at the expiry.
        assert!(queue.iter_scheduled().all(|(at, _)| at == 1_000));
        assert!(queue.allocated_bytes() >= 7 * (size_of::<Key>() + size_of::<Job>()));
        // Compaction keeps the jobs and their order.
        assert_eq!(drain(&mut queue, 999), []);
        queue.pop_due(1_000);
        queue.shrink_to_fit();
        assert_eq!(queue.len(), 6);
        assert_eq!(
            queue.allocated_bytes(),
            6 * (size_of::<Key>() + size_of::<Job>())
        );
        let ids: Vec<u128> = drain(&mut queue, 1_000).iter().map(|p| p.0).collect();
        assert_eq!(ids, [1, 2, 3, 4, 5, 6]);
        queue.shrink_to_fit();
        assert_eq!(queue.allocated_bytes(), 0);
    }

    /// Random inserts, pops, removals and compactions against a sorted map keyed the way
    /// the queue must order (exercises slot reuse).
    #[test]
    fn matches_a_sorted_model() {
        let mut rng = StdRng::seed_from_u64(2024);
        let mut queue = DelayQueue::new();
        let mut model: BTreeMap<(u64, usize, u64), u128> = BTreeMap::new();
        let (mut seq, mut now) = (0u64, 0u64);
        for step in 0..20_000u128 {
            if step % 997 == 0 {
                let removed: Vec<u128> = queue
                    .remove_where(|j| j.message.as_u128().is_multiple_of(5))
                    .iter()
                    .map(|j| j.message.as_u128())
                    .collect();
                let want: Vec<u128> = model
                    .values()
                    .copied()
                    .filter(|id| id.is_multiple_of(5))
                    .collect();
                model.retain(|_, id| !id.is_multiple_of(5));
                assert_eq!(removed, want, "step {step}");
            } else if step % 1_999 == 0 {
                queue.shrink_to_fit();
            } else if rng.random_bool(0.6) {
                let priority =
                    [Priority::Bulk, Priority::Normal, Priority::High][rng.random_range(0..3)];
                let at = now + rng.random_range(0..50);
                queue.insert(job(step, priority, u64::MAX), at);
                model.insert((at, lane(priority), seq), step);
                seq += 1;
            } else {
                now += rng.random_range(0..20);
                let got = queue.pop_due(now).map(|d| d.job().message.as_u128());
                let want = match model.first_key_value() {
                    Some((&(at, ..), _)) if at <= now => model.pop_first().map(|(_, id)| id),
                    _ => None,
                };
                assert_eq!(got, want, "step {step}");
            }
            assert_eq!(queue.len(), model.len());
            assert_eq!(queue.next_due_ms(), model.keys().next().map(|k| k.0));
        }
    }
}
