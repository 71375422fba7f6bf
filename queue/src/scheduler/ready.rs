//! [`ReadyQueue`]: a bounded FIFO of due jobs for one destination, with priority lanes; and
//! [`ReadyQueues`], a map of them by a key the engine chooses (egress source and
//! destination site).
//!
//! Service order: High before Normal before Bulk, FIFO within a lane, with anti-starvation:
//! each pop that serves another lane while a lane is non-empty counts as passing that lane
//! over; a lane passed over `starvation_limit` times in a row is served next (the one passed
//! over most if several are, higher priority on a tie). So under a continuous flood of High
//! mail, Normal and Bulk each still get at least one pop in `starvation_limit + 1`
//! (`starvation_limit + 2` when both come due on the same pop), and with no contention the
//! order is plain priority order.
//!
//! Invariants:
//! - `len() <= capacity()` always: [`ReadyQueue::push`] gives the job back when full, and the
//!   engine re-arms it in the delay queue a little later (back-pressure, never growth).
//! - Expiry is enforced here too: [`ReadyQueue::pop`] first hands out, as [`Due::Expired`],
//!   an expired job at the head of any lane (a passed-over lane does not hold expired mail),
//!   and checks the job it serves. A job behind the head is checked when it reaches the head;
//!   [`ReadyQueue::remove_expired`] sweeps a whole queue (O(n)).
//! - Anti-starvation counts only jobs served for delivery, not expired ones handed out.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use super::delay::lane;
use super::{Due, Job, SchedulerError};
use crate::Priority;

/// Size and fairness of a ready queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyQueueConfig {
    /// Most jobs a queue holds, all lanes together (`[delivery] ready_queue_capacity`). A
    /// capacity of 0 refuses every job.
    pub capacity: usize,
    /// Most pops in a row that may pass over a non-empty lane
    /// (`[delivery] ready_queue_starvation_limit`); 0 is taken as 1.
    pub starvation_limit: u32,
}

impl Default for ReadyQueueConfig {
    /// 10,000 jobs (the engine's `ready_queue_capacity` default); a waiting lane is served
    /// at least once in 11 pops.
    fn default() -> Self {
        Self {
            capacity: 10_000,
            starvation_limit: 10,
        }
    }
}

impl ReadyQueueConfig {
    /// Checks the values as the configuration loader should: both at least 1.
    pub fn validate(&self) -> Result<(), SchedulerError> {
        if self.capacity == 0 {
            return Err(SchedulerError::InvalidConfig {
                key: "ready_queue_capacity",
                requirement: "must be at least 1",
            });
        }
        if self.starvation_limit == 0 {
            return Err(SchedulerError::InvalidConfig {
                key: "ready_queue_starvation_limit",
                requirement: "must be at least 1",
            });
        }
        Ok(())
    }
}

/// A bounded FIFO of due jobs with High, Normal and Bulk lanes (see the module docs for the
/// service order).
#[derive(Debug, Clone)]
pub struct ReadyQueue {
    /// Indexed by [`lane`]: High, Normal, Bulk.
    lanes: [VecDeque<Job>; 3],
    capacity: usize,
    starvation_limit: u32,
    /// Pops in a row that served another lane while this one was non-empty.
    passed_over: [u32; 3],
}

impl ReadyQueue {
    /// An empty queue (lanes allocate on first use).
    pub fn new(config: ReadyQueueConfig) -> Self {
        Self {
            lanes: Default::default(),
            capacity: config.capacity,
            starvation_limit: config.starvation_limit.max(1),
            passed_over: [0; 3],
        }
    }

    /// Appends `job` to its priority's lane; gives it back when the queue is full.
    #[expect(
        clippy::result_large_err,
        reason = "the refused job goes straight back to the delay queue; boxing it would \
                  allocate on the back-pressure path"
    )]
    pub fn push(&mut self, job: Job) -> Result<(), Job> {
        if self.is_full() {
            return Err(job);
        }
        self.lanes[lane(job.priority)].push_back(job);
        Ok(())
    }

    /// The next job to hand out at `now_ms`: an expired job at the head of a lane first (as
    /// [`Due::Expired`]), else the next job in service order.
    pub fn pop(&mut self, now_ms: u64) -> Option<Due> {
        if let Some(lane) = self
            .lanes
            .iter_mut()
            .find(|lane| lane.front().is_some_and(|job| job.is_expired(now_ms)))
        {
            return lane.pop_front().map(Due::Expired);
        }
        let served = self.choose()?;
        let job = self.lanes[served].pop_front()?;
        for (index, lane) in self.lanes.iter().enumerate() {
            self.passed_over[index] = if index == served || lane.is_empty() {
                0
            } else {
                self.passed_over[index].saturating_add(1)
            };
        }
        Some(Due::classify(job, now_ms))
    }

    /// The lane to serve: the starving lane passed over most (ties: higher priority), else
    /// the highest non-empty lane.
    fn choose(&self) -> Option<usize> {
        let starving = (0..3)
            .filter(|&i| !self.lanes[i].is_empty() && self.passed_over[i] >= self.starvation_limit)
            // max_by_key keeps the last maximum: iterate from Bulk up so ties go to High.
            .rev()
            .max_by_key(|&i| self.passed_over[i]);
        starving.or_else(|| (0..3).find(|&i| !self.lanes[i].is_empty()))
    }

    /// Number of jobs held, all lanes.
    pub fn len(&self) -> usize {
        self.lanes.iter().map(VecDeque::len).sum()
    }

    /// `true` when no job is held.
    pub fn is_empty(&self) -> bool {
        self.lanes.iter().all(VecDeque::is_empty)
    }

    /// `true` when [`push`](Self::push) would refuse a job.
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity
    }

    /// Most jobs the queue holds.
    pub const fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of jobs of one priority.
    pub fn lane_len(&self, priority: Priority) -> usize {
        self.lanes[lane(priority)].len()
    }

    /// Every job, lane by lane (High, Normal, Bulk), each in FIFO order.
    pub fn iter(&self) -> impl Iterator<Item = &Job> + '_ {
        self.lanes.iter().flatten()
    }

    /// Removes every job for which `predicate` is true; returns them lane by lane, in FIFO
    /// order. O(n).
    pub fn remove_where<F: FnMut(&Job) -> bool>(&mut self, mut predicate: F) -> Vec<Job> {
        let mut removed = Vec::new();
        for lane in &mut self.lanes {
            let mut kept = VecDeque::with_capacity(lane.len());
            for job in lane.drain(..) {
                if predicate(&job) {
                    removed.push(job);
                } else {
                    kept.push_back(job);
                }
            }
            *lane = kept;
        }
        removed
    }

    /// Removes every job expired at `now_ms`, wherever it sits. O(n).
    pub fn remove_expired(&mut self, now_ms: u64) -> Vec<Job> {
        self.remove_where(|job| job.is_expired(now_ms))
    }
}

/// Ready queues by key (the engine uses (egress source, destination site)), created on
/// first push with one shared configuration.
#[derive(Debug, Clone)]
pub struct ReadyQueues<K> {
    config: ReadyQueueConfig,
    queues: HashMap<K, ReadyQueue>,
}

impl<K: Eq + Hash> ReadyQueues<K> {
    /// No queues yet; each is made with `config` when first pushed to.
    pub fn new(config: ReadyQueueConfig) -> Self {
        Self {
            config,
            queues: HashMap::new(),
        }
    }

    /// Appends `job` to the queue of `key`; gives it back when that queue is full.
    #[expect(
        clippy::result_large_err,
        reason = "the refused job goes straight back to the delay queue"
    )]
    pub fn push(&mut self, key: K, job: Job) -> Result<(), Job> {
        let config = self.config;
        self.queues
            .entry(key)
            .or_insert_with(|| ReadyQueue::new(config))
            .push(job)
    }

    /// The next job of the queue of `key` (see [`ReadyQueue::pop`]).
    pub fn pop(&mut self, key: &K, now_ms: u64) -> Option<Due> {
        self.queues.get_mut(key)?.pop(now_ms)
    }

    /// The queue of `key`, if it was ever pushed to (and not removed as empty).
    pub fn get(&self, key: &K) -> Option<&ReadyQueue> {
        self.queues.get(key)
    }

    /// The queue of `key`, for changes.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut ReadyQueue> {
        self.queues.get_mut(key)
    }

    /// Jobs held in all queues. O(queues).
    pub fn len(&self) -> usize {
        self.queues.values().map(ReadyQueue::len).sum()
    }

    /// `true` when no queue holds a job.
    pub fn is_empty(&self) -> bool {
        self.queues.values().all(ReadyQueue::is_empty)
    }

    /// Number of queues.
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// Every queue with its key, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &ReadyQueue)> + '_ {
        self.queues.iter()
    }

    /// Removes every job, in any queue, for which `predicate` is true. O(jobs).
    pub fn remove_where<F: FnMut(&Job) -> bool>(&mut self, mut predicate: F) -> Vec<Job> {
        let mut removed = Vec::new();
        for queue in self.queues.values_mut() {
            removed.extend(queue.remove_where(&mut predicate));
        }
        removed
    }

    /// Removes every job expired at `now_ms`, in any queue. O(jobs).
    pub fn remove_expired(&mut self, now_ms: u64) -> Vec<Job> {
        self.remove_where(|job| job.is_expired(now_ms))
    }

    /// Drops the queues that hold no job (their memory with them); returns how many.
    pub fn remove_empty(&mut self) -> usize {
        let before = self.queues.len();
        self.queues.retain(|_, queue| !queue.is_empty());
        before - self.queues.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::delay::tests::job;

    fn ids(dues: &[Due]) -> Vec<(u128, bool)> {
        dues.iter()
            .map(|d| (d.job().message.as_u128(), d.is_expired()))
            .collect()
    }

    fn drain(queue: &mut ReadyQueue, now: u64) -> Vec<Due> {
        std::iter::from_fn(|| queue.pop(now)).collect()
    }

    fn config(capacity: usize, starvation_limit: u32) -> ReadyQueueConfig {
        ReadyQueueConfig {
            capacity,
            starvation_limit,
        }
    }

    #[test]
    fn service_order_table() {
        use Priority::{Bulk, High, Normal};
        // Ids: 1.. High, 11.. Normal, 21.. Bulk.
        type Case = (u32, &'static [(u128, Priority)], &'static [u128]);
        let table: [Case; 5] = [
            // No contention: priority order, FIFO within a lane.
            (
                10,
                &[(21, Bulk), (11, Normal), (1, High), (22, Bulk), (2, High)],
                &[1, 2, 11, 21, 22],
            ),
            // One lane only: FIFO.
            (1, &[(21, Bulk), (22, Bulk), (23, Bulk)], &[21, 22, 23]),
            // Limit 2: Normal and Bulk waited two pops, are served, then High again...
            (
                2,
                &[
                    (1, High),
                    (2, High),
                    (3, High),
                    (4, High),
                    (5, High),
                    (6, High),
                    (11, Normal),
                    (12, Normal),
                    (21, Bulk),
                    (22, Bulk),
                ],
                &[1, 2, 11, 21, 3, 12, 22, 4, 5, 6],
            ),
            // Limit 3, High against Bulk only.
            (
                3,
                &[
                    (1, High),
                    (2, High),
                    (3, High),
                    (4, High),
                    (5, High),
                    (6, High),
                    (7, High),
                    (21, Bulk),
                    (22, Bulk),
                ],
                &[1, 2, 3, 21, 4, 5, 6, 22, 7],
            ),
            // Limit 0 is taken as 1: strict alternation under contention.
            (
                0,
                &[(1, High), (2, High), (3, High), (21, Bulk), (22, Bulk)],
                &[1, 21, 2, 22, 3],
            ),
        ];
        for (limit, pushes, expected) in table {
            let mut queue = ReadyQueue::new(config(100, limit));
            for &(id, priority) in pushes {
                assert!(queue.push(job(id, priority, u64::MAX)).is_ok());
            }
            let popped: Vec<u128> = ids(&drain(&mut queue, 0)).iter().map(|p| p.0).collect();
            assert_eq!(popped, expected, "limit {limit}");
        }
    }

    #[test]
    fn bulk_is_never_starved_by_a_high_flood() {
        for limit in [1, 4, 10] {
            let mut queue = ReadyQueue::new(config(5_000, limit));
            let mut next = 0u128;
            for _ in 0..600 {
                assert!(queue.push(job(next, Priority::Bulk, u64::MAX)).is_ok());
                next += 1;
            }
            // Keep the High lane full: every pop is followed by a new High job.
            let (mut gap, mut worst, mut bulk_served) = (0u32, 0u32, 0u32);
            for _ in 0..1_000 {
                assert!(queue.push(job(next, Priority::High, u64::MAX)).is_ok());
                next += 1;
                let Some(Due::Attempt(job)) = queue.pop(0) else {
                    panic!("nothing to pop");
                };
                if job.priority == Priority::Bulk {
                    bulk_served += 1;
                    gap = 0;
                } else {
                    gap += 1;
                    worst = worst.max(gap);
                }
            }
            assert_eq!(worst, limit, "limit {limit}");
            assert_eq!(bulk_served, 1_000 / (limit + 1), "limit {limit}");
        }
    }

    #[test]
    fn capacity_is_a_hard_bound() {
        let mut queue = ReadyQueue::new(config(3, 10));
        assert_eq!(queue.capacity(), 3);
        for (id, priority) in [
            (1, Priority::Bulk),
            (2, Priority::High),
            (3, Priority::Normal),
        ] {
            assert!(queue.push(job(id, priority, u64::MAX)).is_ok());
        }
        assert!(queue.is_full());
        // Refused, whatever its priority, and given back intact.
        let refused = queue.push(job(4, Priority::High, u64::MAX));
        assert_eq!(refused, Err(job(4, Priority::High, u64::MAX)));
        assert_eq!(queue.len(), 3);
        assert_eq!(
            [Priority::High, Priority::Normal, Priority::Bulk].map(|p| queue.lane_len(p)),
            [1, 1, 1]
        );
        assert!(queue.pop(0).is_some());
        assert!(queue.push(job(4, Priority::High, u64::MAX)).is_ok());
        assert_eq!(queue.len(), 3);
        // Capacity 0 refuses everything.
        let mut closed = ReadyQueue::new(config(0, 10));
        assert!(closed.push(job(1, Priority::High, u64::MAX)).is_err());
        assert!(closed.is_empty() && closed.pop(0).is_none());
    }

    #[test]
    fn expired_jobs_are_handed_out_as_expired() {
        let mut queue = ReadyQueue::new(config(10, 10));
        // (id, priority, expires)
        for (id, priority, expires) in [
            (1, Priority::High, 1_000),
            (2, Priority::High, 1_000),
            (21, Priority::Bulk, 100), // expired at the head of a passed-over lane
            (11, Priority::Normal, 1_000),
            (12, Priority::Normal, 50), // expired behind a live job
        ] {
            assert!(queue.push(job(id, priority, expires)).is_ok());
        }
        let popped = ids(&drain(&mut queue, 100));
        assert_eq!(
            popped,
            [(21, true), (1, false), (2, false), (11, false), (12, true)]
        );
        // A job served at or after its expiry is expired, never an attempt.
        assert!(queue.push(job(3, Priority::High, 100)).is_ok());
        assert_eq!(ids(&drain(&mut queue, 99)), [(3, false)]);
        assert!(queue.push(job(3, Priority::High, 100)).is_ok());
        assert_eq!(ids(&drain(&mut queue, 100)), [(3, true)]);
    }

    #[test]
    fn removal_by_predicate_and_expiry_sweep() {
        let mut queue = ReadyQueue::new(config(10, 10));
        for (id, priority, expires) in [
            (1, Priority::Bulk, 50),
            (2, Priority::High, 1_000),
            (3, Priority::Bulk, 1_000),
            (4, Priority::Normal, 1_000),
            (5, Priority::High, 40),
        ] {
            assert!(queue.push(job(id, priority, expires)).is_ok());
        }
        let expired: Vec<u128> = queue
            .remove_expired(50)
            .iter()
            .map(|j| j.message.as_u128())
            .collect();
        assert_eq!(expired, [5, 1]);
        let order: Vec<u128> = queue.iter().map(|j| j.message.as_u128()).collect();
        assert_eq!(order, [2, 4, 3]);
        // Even ids are on even.example.
        let removed = queue.remove_where(|j| &*j.domain == "even.example");
        assert_eq!(
            removed
                .iter()
                .map(|j| j.message.as_u128())
                .collect::<Vec<_>>(),
            [2, 4]
        );
        assert_eq!(ids(&drain(&mut queue, 0)), [(3, false)]);
    }

    #[test]
    fn keyed_queues() {
        let mut queues: ReadyQueues<(u8, &str)> = ReadyQueues::new(config(2, 10));
        assert!(queues.is_empty());
        let gmail = (1, "google");
        let yahoo = (1, "yahoo");
        assert!(queues.push(gmail, job(1, Priority::Normal, 500)).is_ok());
        assert!(queues.push(gmail, job(2, Priority::High, u64::MAX)).is_ok());
        // Full per key, not globally.
        assert!(
            queues
                .push(gmail, job(3, Priority::High, u64::MAX))
                .is_err()
        );
        assert!(queues.push(yahoo, job(4, Priority::Bulk, u64::MAX)).is_ok());
        assert_eq!((queues.len(), queues.queue_count()), (3, 2));
        assert_eq!(queues.get(&gmail).map(ReadyQueue::len), Some(2));
        assert_eq!(queues.get(&(2, "google")).map(ReadyQueue::len), None);
        assert_eq!(queues.iter().count(), 2);

        let popped = queues.pop(&gmail, 0).map(|d| d.job().message.as_u128());
        assert_eq!(popped, Some(2));
        assert_eq!(queues.pop(&(9, "none"), 0), None);
        let expired: Vec<u128> = queues
            .remove_expired(500)
            .iter()
            .map(|j| j.message.as_u128())
            .collect();
        assert_eq!(expired, [1]);
        assert_eq!(queues.remove_empty(), 1);
        assert_eq!(queues.queue_count(), 1);
        if let Some(queue) = queues.get_mut(&yahoo) {
            assert!(queue.push(job(5, Priority::Bulk, u64::MAX)).is_ok());
        }
        let bulk = queues.remove_where(|j| j.priority == Priority::Bulk);
        assert_eq!(bulk.len(), 2);
        assert!(queues.is_empty());
    }

    #[test]
    fn validation_table() {
        let table = [
            (config(1, 1), None),
            (ReadyQueueConfig::default(), None),
            (config(0, 1), Some("ready_queue_capacity")),
            (config(1, 0), Some("ready_queue_starvation_limit")),
        ];
        for (config, key) in table {
            let got = config.validate().err().map(|e| match e {
                SchedulerError::InvalidConfig { key, .. } => key,
            });
            assert_eq!(got, key, "{config:?}");
        }
    }
}
