//! The retry scheduler: in-memory structures that decide *when* and *in what order* the
//! pending recipients of spooled messages are tried.
//!
//! Role, in pipeline order:
//!
//! 1. [`jobs_from_envelope`] turns a spooled envelope into [`Job`]s: one per destination
//!    domain, covering that domain's pending recipients. Strings that repeat across millions
//!    of jobs (domains, tenant, campaign and pool tags) are shared through an [`Interner`].
//! 2. A [`DelayQueue`] holds every job that waits for its next attempt, ordered by
//!    next-attempt time (ties: higher [`Priority`](crate::Priority) first, then insertion
//!    order). [`DelayQueue::pop_due`] hands out due jobs.
//! 3. The engine moves a due job to a [`ReadyQueue`] (bounded FIFO with priority lanes and
//!    anti-starvation), one per (egress source, destination site), kept in a
//!    [`ReadyQueues`] map; connection pools [`pop`](ReadyQueue::pop) from it. A full ready
//!    queue refuses the job (back-pressure): the engine re-arms it in the delay queue.
//! 4. After a temporary failure, [`RetryPolicy::next_attempt_ms`] gives the next attempt
//!    time: exponential backoff with jitter, capped, or exactly the time a throttle asked
//!    for.
//!
//! Invariants:
//! - **Expiry is enforced wherever a job sits.** A job is expired at `now_ms >=
//!   job.expires_ms`. The delay queue never holds a job past its expiry (an attempt
//!   scheduled later fires at `expires_ms` instead), and both queues hand out an expired job
//!   as [`Due::Expired`], never as [`Due::Attempt`].
//! - **Time is injected.** Nothing here reads a clock, sleeps, spawns or does I/O: every
//!   operation that depends on time takes `now_ms` (unix milliseconds), and randomness comes
//!   from a generator the caller passes. The structures are plain single-threaded values
//!   (`&mut self`); the engine wraps them in a mutex.
//! - **Bounded.** A [`ReadyQueue`] never holds more than its capacity. The delay queue is
//!   bounded by the spool (one job per message and domain), and is compact: measured
//!   bytes per job are in `docs/scheduler.md`.
//!
//! # Example
//!
//! One message to two domains, the gmail.com attempt throttled, the retry scheduled:
//!
//! ```
//! use queue::scheduler::{
//!     DelayQueue, Due, Interner, ReadyQueue, ReadyQueueConfig, RetryPolicy, jobs_from_envelope,
//! };
//! use queue::{Envelope, MessageId, Recipient};
//! use rand::SeedableRng;
//!
//! let now = 1_764_000_000_000;
//! let envelope = Envelope::new(
//!     "bounces@esp.example",
//!     vec![Recipient::new("a@gmail.com"), Recipient::new("b@yahoo.com")],
//!     now,
//! );
//! let mut interner = Interner::new();
//! let max_age = 5 * 86_400_000;
//! let mut delayed = DelayQueue::new();
//! for job in jobs_from_envelope(MessageId::from_u128(1), &envelope, max_age, &mut interner) {
//!     delayed.insert(job, envelope.next_attempt_ms);
//! }
//!
//! // The engine's timer fires: due jobs go to their destination's ready queue.
//! let mut ready = ReadyQueue::new(ReadyQueueConfig::default());
//! while let Some(Due::Attempt(job)) = delayed.pop_due(now) {
//!     ready.push(job).expect("room in the ready queue");
//! }
//! assert_eq!(ready.len(), 2);
//!
//! // A connection takes the gmail.com job; the attempt fails temporarily.
//! let Some(Due::Attempt(mut job)) = ready.pop(now) else { unreachable!() };
//! assert_eq!(&*job.domain, "gmail.com");
//! job.attempts += 1;
//! let mut rng = rand::rngs::StdRng::seed_from_u64(1);
//! let retry = RetryPolicy::default().next_attempt_ms(job.attempts, now, None, &mut rng);
//! // 5 minutes plus or minus 20 %.
//! assert!((now + 240_000..=now + 360_000).contains(&retry));
//! delayed.insert(job, retry);
//! assert_eq!(delayed.next_due_ms(), Some(retry));
//! ```
//!
//! Operator documentation (what the scheduler does, configuration, measured memory and
//! speed): `docs/scheduler.md`.

mod delay;
mod error;
mod interner;
mod job;
mod ready;
mod retry;

pub use delay::DelayQueue;
pub use error::SchedulerError;
pub use interner::Interner;
pub use job::{Due, Job, RecipientIndices, domain_of, jobs_from_envelope};
pub use ready::{ReadyQueue, ReadyQueueConfig, ReadyQueues};
pub use retry::RetryPolicy;
