//! RFC 5322 dates (`Thu, 26 Nov 2026 12:00:00 +0000`), always in UTC: the `Received:` header
//! the server adds and the `Date:` of DSNs.
//!
//! Invariant: times before the Unix epoch are shown as the epoch (the spool never holds
//! them); the output is always 31 ASCII characters.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `time` as an RFC 5322 `date-time` in UTC.
pub(crate) fn rfc5322(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Unix milliseconds as a [`SystemTime`].
pub(crate) fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic Gregorian calendar
/// (H. Hinnant's algorithm, restricted to non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_table() {
        let table = [
            (0, "Thu, 01 Jan 1970 00:00:00 +0000"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 +0000"),
            (1_709_251_199, "Thu, 29 Feb 2024 23:59:59 +0000"),
            (1_735_689_600, "Wed, 01 Jan 2025 00:00:00 +0000"),
            (1_795_694_400, "Thu, 26 Nov 2026 12:00:00 +0000"),
            (4_102_444_800, "Fri, 01 Jan 2100 00:00:00 +0000"),
            (1_795_715_262, "Thu, 26 Nov 2026 17:47:42 +0000"),
            (4_133_980_799, "Fri, 31 Dec 2100 23:59:59 +0000"),
        ];
        for (seconds, text) in table {
            let time = UNIX_EPOCH + Duration::from_secs(seconds);
            assert_eq!(rfc5322(time), text, "{seconds}");
            assert_eq!(rfc5322(from_unix_ms(seconds * 1000 + 999)), text);
        }
        assert_eq!(
            rfc5322(UNIX_EPOCH - Duration::from_secs(5)),
            "Thu, 01 Jan 1970 00:00:00 +0000"
        );
    }
}
