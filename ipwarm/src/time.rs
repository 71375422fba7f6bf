//! Injected time: the [`Clock`] the engine reads, a [`ManualClock`] for tests and
//! simulations, and the calendar arithmetic of warmup days.
//!
//! Invariants: nothing else in this crate reads a clock. Every operation that depends on time
//! takes `now_ms`, milliseconds since the Unix epoch (the convention of `queue::scheduler`).
//! A *day* is a UTC calendar day, numbered from the epoch (`now_ms / 86_400_000`), so day
//! boundaries are midnight UTC whatever the host's time zone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds in a day.
pub const DAY_MS: u64 = 86_400_000;

/// A source of "now" in Unix milliseconds.
pub trait Clock: Send + Sync {
    /// The current time, milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that moves only when told to (tests, simulations, replays).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock showing `now_ms`.
    pub fn new(now_ms: u64) -> ManualClock {
        ManualClock(AtomicU64::new(now_ms))
    }

    /// Sets the time.
    pub fn set(&self, now_ms: u64) {
        self.0.store(now_ms, Ordering::Relaxed);
    }

    /// Moves the time forward.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let now = self.0.load(Ordering::Relaxed);
        self.0.store(now.saturating_add(by), Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The UTC day number (days since 1970-01-01) of a time.
pub fn day_of(now_ms: u64) -> u32 {
    u32::try_from(now_ms / DAY_MS).unwrap_or(u32::MAX)
}

/// The first millisecond of a day.
pub fn day_start_ms(day: u32) -> u64 {
    u64::from(day) * DAY_MS
}

/// Parses a calendar date `YYYY-MM-DD` (years 1970 to 9999) into its day number.
pub fn parse_date(text: &str) -> Option<u32> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = text.get(range)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if year < 1970 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    u32::try_from(days_from_civil(year, month, day)).ok()
}

/// Formats a day number as `YYYY-MM-DD`.
pub fn format_date(day: u32) -> String {
    let (year, month, dom) = civil_from_days(i64::from(day));
    format!("{year:04}-{month:02}-{dom:02}")
}

fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_and_format() {
        let table = [
            ("1970-01-01", Some(0)),
            ("1970-01-02", Some(1)),
            ("2000-02-29", Some(11_016)),
            ("2026-11-20", Some(20_777)),
            ("2024-12-31", Some(20_088)),
            ("2025-01-01", Some(20_089)),
            ("2023-02-29", None),
            ("2026-13-01", None),
            ("2026-00-10", None),
            ("2026-01-32", None),
            ("1969-12-31", None),
            ("2026-1-05", None),
            ("2026/11/20", None),
            ("+026-11-20", None),
            ("", None),
        ];
        for (text, day) in table {
            assert_eq!(parse_date(text), day, "{text}");
            if let Some(day) = day {
                assert_eq!(format_date(day), text);
            }
        }
        // Every day of four years round-trips.
        for day in 20_000..21_461 {
            assert_eq!(parse_date(&format_date(day)), Some(day));
        }
    }

    #[test]
    fn days_are_utc_calendar_days() {
        // 2026-11-20T23:59:59.999Z and 2026-11-21T00:00:00.000Z.
        let midnight = day_start_ms(20_778);
        assert_eq!(day_of(midnight - 1), 20_777);
        assert_eq!(day_of(midnight), 20_778);
        assert_eq!(day_start_ms(day_of(midnight + 5)), midnight);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance(Duration::from_secs(2));
        assert_eq!(clock.now_ms(), 3_000);
        clock.set(5);
        assert_eq!(clock.now_ms(), 5);
        assert!(SystemClock.now_ms() > 1_700_000_000_000);
    }
}
