//! Connection limits: how many sessions at once, in all and per client address.
//!
//! A [`ConnectionPermit`] is held for the life of a session; dropping it gives the slot back,
//! so a session that ends in any way (error, panic, timeout) never leaks a slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts sessions, in all and per client address.
#[derive(Debug)]
pub(crate) struct ConnectionLimits {
    max_total: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The process-wide limit.
    Total,
    /// The limit for one client address.
    PerIp,
}

impl ConnectionLimits {
    /// Limits with `max_total` sessions at once over all listeners.
    pub(crate) fn new(max_total: usize) -> Arc<Self> {
        Arc::new(ConnectionLimits {
            max_total,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// Takes a slot for a session from `ip`, if both limits allow.
    pub(crate) fn acquire(
        self: &Arc<Self>,
        ip: IpAddr,
        max_per_ip: usize,
    ) -> Result<ConnectionPermit, Refusal> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.total >= self.max_total {
            return Err(Refusal::Total);
        }
        let per_ip = counts.per_ip.entry(ip).or_insert(0);
        if *per_ip >= max_per_ip {
            return Err(Refusal::PerIp);
        }
        *per_ip += 1;
        counts.total += 1;
        metrics::gauge!("smtp_sessions").set(counts.total as f64);
        Ok(ConnectionPermit {
            limits: self.clone(),
            ip,
        })
    }

    /// Sessions open now.
    #[cfg(test)]
    fn total(&self) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

/// One session's slot; given back on drop.
#[derive(Debug)]
pub(crate) struct ConnectionPermit {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self.limits.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.total -= 1;
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
        metrics::gauge!("smtp_sessions").set(counts.total as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_and_slots_come_back() {
        let limits = ConnectionLimits::new(3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let p1 = limits.acquire(a, 2).unwrap();
        let p2 = limits.acquire(a, 2).unwrap();
        assert_eq!(limits.acquire(a, 2).unwrap_err(), Refusal::PerIp);
        let p3 = limits.acquire(b, 2).unwrap();
        assert_eq!(limits.acquire(b, 2).unwrap_err(), Refusal::Total);
        drop(p1);
        let p4 = limits.acquire(a, 2).unwrap();
        assert_eq!(limits.total(), 3);
        drop((p2, p3, p4));
        assert_eq!(limits.total(), 0);
    }
}
