//! Rates as operators write them (`"600/min"`), and the GCRA limiter that enforces them.
//!
//! GCRA (generic cell rate algorithm) keeps one timestamp per limiter: the theoretical
//! arrival time of the next event. An event may go when `now >= tat - burst_tolerance`; it
//! then pushes `tat` one emission interval further. This spreads events evenly (no burst at
//! the start of each minute) while allowing a small burst (`burst` events back to back).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

/// A rate: `count` events per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Events allowed in each period.
    pub count: u32,
    /// The period.
    pub per: Duration,
}

/// A rate that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid rate {0:?}: expected COUNT/UNIT with UNIT one of s, sec, min, h, hour, d, day (e.g. \"600/min\")"
)]
pub struct RateParseError(String);

impl FromStr for Rate {
    type Err = RateParseError;

    fn from_str(text: &str) -> Result<Rate, RateParseError> {
        let error = || RateParseError(text.to_owned());
        let (count, unit) = text.split_once('/').ok_or_else(error)?;
        let count: u32 = count.trim().parse().map_err(|_| error())?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "min" | "minute" => Duration::from_secs(60),
            "h" | "hr" | "hour" => Duration::from_secs(3600),
            "d" | "day" => Duration::from_secs(86_400),
            _ => return Err(error()),
        };
        if count == 0 {
            return Err(error());
        }
        Ok(Rate { count, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "min",
            3600 => "h",
            _ => "d",
        };
        write!(f, "{}/{}", self.count, unit)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Rate, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Rate {
    /// Time between two events at this rate.
    pub fn interval(&self) -> Duration {
        self.per / self.count
    }
}

/// A GCRA rate limiter over an injected clock (milliseconds or any monotonic unit in
/// `Duration` since an origin).
#[derive(Debug, Clone)]
pub struct Gcra {
    interval: Duration,
    tolerance: Duration,
    /// Theoretical arrival time of the next event, since the clock's origin.
    tat: Duration,
}

impl Gcra {
    /// A limiter for `rate` allowing `burst` events back to back (at least 1).
    pub fn new(rate: Rate, burst: u32) -> Gcra {
        let interval = rate.interval();
        Gcra {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
            tat: Duration::ZERO,
        }
    }

    /// Takes one event at `now` if allowed; otherwise says how long to wait.
    pub fn try_acquire(&mut self, now: Duration) -> Result<(), Duration> {
        let tat = self.tat.max(now);
        let allowed_at = tat.saturating_sub(self.tolerance);
        if now < allowed_at {
            return Err(allowed_at - now);
        }
        self.tat = tat + self.interval;
        Ok(())
    }

    /// Replaces the rate, keeping the schedule (used when shaping changes at run time).
    pub fn set_rate(&mut self, rate: Rate, burst: u32) {
        self.interval = rate.interval();
        self.tolerance = self.interval * burst.max(1).saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_as_written() {
        let table = [
            ("600/min", Some((600, 60))),
            ("10/s", Some((10, 1))),
            ("36000/h", Some((36_000, 3600))),
            ("100/day", Some((100, 86_400))),
            ("0/min", None),
            ("600", None),
            ("600/week", None),
            ("x/min", None),
        ];
        for (text, expected) in table {
            let got = text
                .parse::<Rate>()
                .ok()
                .map(|r| (r.count, r.per.as_secs()));
            assert_eq!(got, expected, "{text}");
        }
        assert_eq!("600/min".parse::<Rate>().unwrap().to_string(), "600/min");
    }

    #[test]
    fn gcra_spreads_events_evenly_with_a_burst() {
        let rate: Rate = "60/min".parse().unwrap(); // one per second
        let mut gcra = Gcra::new(rate, 2);
        let t = |ms: u64| Duration::from_millis(ms);
        assert!(gcra.try_acquire(t(0)).is_ok());
        assert!(gcra.try_acquire(t(0)).is_ok(), "burst of 2");
        assert_eq!(gcra.try_acquire(t(0)), Err(t(1000)));
        assert_eq!(gcra.try_acquire(t(400)), Err(t(600)));
        assert!(gcra.try_acquire(t(1000)).is_ok());
        assert_eq!(gcra.try_acquire(t(1000)), Err(t(1000)));
        // Over a long run the rate holds: 100 events take 99 s after the burst.
        let mut gcra = Gcra::new(rate, 1);
        let mut now = t(0);
        let mut sent = 0;
        while sent < 100 {
            match gcra.try_acquire(now) {
                Ok(()) => sent += 1,
                Err(wait) => now += wait,
            }
        }
        assert_eq!(now, t(99_000));
    }
}
