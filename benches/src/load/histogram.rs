//! Accept latency as an HdrHistogram (the `hdrhistogram` crate): 1 µs to 1 hour at three
//! significant digits, so a reported quantile is within 0.1 % of the true value (and never
//! above the maximum seen). Count, minimum, maximum and mean are kept exactly beside it.
//! Cheap to record and to merge (one histogram per load worker, merged at the end).

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Largest latency tracked at full precision, in microseconds (one hour); longer ones are
/// counted at this value (the exact maximum is still kept).
const HIGHEST_MICROS: u64 = 3_600_000_000;
/// Significant decimal digits kept.
const SIGNIFICANT_DIGITS: u8 = 3;

/// Recorded durations, in microseconds.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    histogram: Histogram<u64>,
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

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> LatencyHistogram {
        LatencyHistogram {
            histogram: Histogram::new_with_bounds(1, HIGHEST_MICROS, SIGNIFICANT_DIGITS)
                .expect("constant bounds are valid"),
            count: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }

    /// Records one duration.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(micros.max(1));
        self.count += 1;
        self.min = self.min.min(micros);
        self.max = self.max.max(micros);
        self.sum += u128::from(micros);
    }

    /// Adds another histogram's records to this one.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        // Same bounds on both sides, values already clamped: adding cannot fail.
        self.histogram
            .add(&other.histogram)
            .expect("histograms with equal bounds add");
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

    /// The value at quantile `q` (0.0..=1.0): the highest value equivalent (at three
    /// significant digits) to the record of that rank, capped at the maximum. Zero when
    /// empty.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let value = self.histogram.value_at_quantile(q.clamp(0.0, 1.0));
        Duration::from_micros(value.min(self.max))
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
    fn quantiles_are_within_a_thousandth() {
        let mut h = LatencyHistogram::new();
        assert_eq!(h.quantile(0.5), Duration::ZERO);
        assert_eq!(
            (h.min(), h.max(), h.mean()),
            (Duration::ZERO, Duration::ZERO, Duration::ZERO)
        );
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let table = [(0.5, 50u64), (0.9, 90), (0.99, 99), (1.0, 100)];
        for (q, exact_ms) in table {
            let got = h.quantile(q).as_micros() as u64;
            let exact = exact_ms * 1000;
            assert!(
                got >= exact && got <= exact + exact / 1000,
                "q={q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.max(), Duration::from_millis(100));
        assert_eq!(h.min(), Duration::from_millis(1));
        assert_eq!(h.mean(), Duration::from_micros(50_500));
    }

    #[test]
    fn merging_adds_records_and_keeps_exact_extremes() {
        let mut h = LatencyHistogram::new();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let mut other = LatencyHistogram::new();
        other.record(Duration::from_secs(2));
        other.record(Duration::ZERO);
        h.merge(&other);
        assert_eq!((h.count(), h.max()), (102, Duration::from_secs(2)));
        assert_eq!(h.min(), Duration::ZERO);
        assert_eq!(h.quantile(1.0), Duration::from_secs(2));
        // Beyond the tracked range: counted at the top, the maximum stays exact.
        h.record(Duration::from_secs(5 * 3600));
        assert_eq!(h.max(), Duration::from_secs(5 * 3600));
        assert!(h.quantile(1.0) >= Duration::from_secs(3600));
    }
}
