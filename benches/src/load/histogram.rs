//! A latency histogram with logarithmic buckets: each power of two of microseconds is split
//! into 8 buckets, so a reported quantile is at most 12.5 % above the true value (and never
//! above the maximum seen). Fixed size (496 counters), cheap to record and to merge.

use std::fmt;
use std::time::Duration;

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// Buckets needed for every `u64`.
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB;

/// Recorded durations, in microseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    count: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram::new()
    }
}

fn bucket(value: u64) -> usize {
    if value < SUB as u64 {
        return value as usize;
    }
    let exp = 63 - value.leading_zeros(); // >= SUB_BITS
    let sub = (value >> (exp - SUB_BITS)) as usize & (SUB - 1);
    (exp - SUB_BITS + 1) as usize * SUB + sub
}

/// The largest value that falls in bucket `index`.
fn bucket_top(index: usize) -> u64 {
    if index < SUB {
        return index as u64;
    }
    let exp = (index / SUB) as u32 + SUB_BITS - 1;
    let sub = (index % SUB) as u64;
    let width = 1u64 << (exp - SUB_BITS);
    ((SUB as u64 + sub) << (exp - SUB_BITS)).saturating_add(width - 1)
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> LatencyHistogram {
        LatencyHistogram {
            counts: vec![0; BUCKETS],
            count: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }

    /// Records one duration.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket(micros)] += 1;
        self.count += 1;
        self.min = self.min.min(micros);
        self.max = self.max.max(micros);
        self.sum += u128::from(micros);
    }

    /// Adds another histogram's records to this one.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// Number of records.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest record (zero when empty).
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max)
    }

    /// The smallest record (zero when empty).
    pub fn min(&self) -> Duration {
        Duration::from_micros(if self.count == 0 { 0 } else { self.min })
    }

    /// The mean (zero when empty).
    pub fn mean(&self) -> Duration {
        match self.count {
            0 => Duration::ZERO,
            n => Duration::from_micros(u64::try_from(self.sum / u128::from(n)).unwrap_or(u64::MAX)),
        }
    }

    /// The value at quantile `q` (0.0..=1.0): the top of the bucket holding the record of
    /// that rank, capped at the maximum. Zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_micros(bucket_top(index).min(self.max));
            }
        }
        Duration::from_micros(self.max)
    }
}

/// Formats a duration for reports: µs below 1 ms, ms with two decimals below 10 s.
pub(crate) fn human(d: Duration) -> String {
    let micros = d.as_micros();
    if micros < 1000 {
        format!("{micros} µs")
    } else if micros < 10_000_000 {
        format!("{:.2} ms", micros as f64 / 1000.0)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

impl fmt::Display for LatencyHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {}  p90 {}  p99 {}  max {}  (mean {}, n={})",
            human(self.quantile(0.50)),
            human(self.quantile(0.90)),
            human(self.quantile(0.99)),
            human(self.max()),
            human(self.mean()),
            self.count
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tops_bound_their_values() {
        let mut previous = 0;
        for value in (0u64..5000).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let index = bucket(value);
            assert!(index >= previous, "{value}");
            assert!(index < BUCKETS, "{value}");
            assert!(bucket_top(index) >= value, "{value}");
            if value >= 8 {
                // The bucket is at most 1/8 of its lower bound wide.
                assert!(bucket_top(index) - value <= value / 8, "{value}");
            }
            previous = index;
        }
        assert_eq!(bucket(7), 7);
        assert_eq!(bucket(8), 8);
        assert_eq!(bucket(15), 15);
        assert_eq!(bucket(16), 16);
        assert_eq!(bucket(17), 16);
        assert_eq!(bucket_top(16), 17);
    }

    #[test]
    fn quantiles_are_within_an_eighth() {
        let mut h = LatencyHistogram::new();
        assert_eq!(h.quantile(0.5), Duration::ZERO);
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let table = [(0.5, 50u64), (0.9, 90), (0.99, 99), (1.0, 100)];
        for (q, exact_ms) in table {
            let got = h.quantile(q).as_micros() as u64;
            let exact = exact_ms * 1000;
            assert!(
                got >= exact && got <= exact + exact / 8,
                "q={q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.max(), Duration::from_millis(100));
        assert_eq!(h.min(), Duration::from_millis(1));
        assert_eq!(h.mean(), Duration::from_micros(50_500));
        let mut other = LatencyHistogram::new();
        other.record(Duration::from_secs(2));
        h.merge(&other);
        assert_eq!((h.count(), h.max()), (101, Duration::from_secs(2)));
        assert_eq!(h.quantile(1.0), Duration::from_secs(2));
    }
}
