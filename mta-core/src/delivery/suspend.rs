//! Operator suspensions: delivery stopped for a domain, provider, source or tenant
//! (optionally one campaign) until a time, set through the admin API.
//!
//! Invariants: a suspended job is never attempted: it is handed back to the scheduler for
//! the suspension's end, without counting an attempt; expired suspensions are dropped when
//! seen; a change is written to disk (next to the spool) before it takes effect, so a
//! restart keeps what the admin API answered; writing never holds the list's lock, which
//! every delivery attempt takes.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use queue::scheduler::Job;
use tracing::warn;

use crate::admin::types::{NewSuspension, Suspension, SuspensionScope};

const FILE: &str = "suspensions.json";

/// The suspensions in force.
pub(crate) struct Suspensions {
    list: Mutex<Vec<Suspension>>,
    /// Whether `list` holds any suspension: every delivery checks it, most find none, and
    /// those need not take the lock. Set under the lock whenever the list changes.
    any: AtomicBool,
    /// Serialises changes: each writes the changed list to disk, then applies the change
    /// in memory, under it (the list's own lock, which delivery takes, is never held
    /// across a write).
    save_lock: Mutex<()>,
    path: PathBuf,
}

fn ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Until when the suspensions in `list` hold `job` (the latest end of those covering it).
fn until_in(
    list: &[Suspension],
    job: &Job,
    provider: Option<&str>,
    source: Option<&str>,
) -> Option<u64> {
    if list.is_empty() {
        return None;
    }
    let now = SystemTime::now();
    list.iter()
        .filter(|s| s.expires_at > now)
        .filter(|s| covers(&s.scope, job, provider, source))
        .map(|s| ms(s.expires_at))
        .max()
}

/// The moment (unix ms) a suspension ends: jobs it holds are scheduled for exactly this.
pub(crate) fn end_ms(suspension: &Suspension) -> u64 {
    ms(suspension.expires_at)
}

/// Whether `scope` covers `job` when it leaves through `provider` and `source` (`None`: not
/// known yet, so provider and source scopes do not cover it).
pub(crate) fn covers(
    scope: &SuspensionScope,
    job: &Job,
    provider: Option<&str>,
    source: Option<&str>,
) -> bool {
    match scope {
        SuspensionScope::Domain(d) => d.eq_ignore_ascii_case(&job.domain),
        SuspensionScope::Provider(p) => provider == Some(p.as_str()),
        SuspensionScope::Source(name) => source == Some(name.as_str()),
        SuspensionScope::Tenant { tenant, campaign } => {
            job.tenant.as_deref() == Some(tenant.as_str())
                && campaign
                    .as_deref()
                    .is_none_or(|c| job.campaign.as_deref() == Some(c))
        }
    }
}

impl Suspensions {
    /// Loads the saved list from the spool directory (an unreadable file is reported and
    /// ignored).
    pub(crate) fn load(dir: &std::path::Path) -> Suspensions {
        let path = dir.join(FILE);
        let list = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                warn!(path = %path.display(), %error, "suspensions not restored");
                Vec::new()
            }),
            Err(_) => Vec::new(),
        };
        Suspensions {
            any: AtomicBool::new(!list.is_empty()),
            list: Mutex::new(list),
            save_lock: Mutex::new(()),
            path,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Suspension>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `list` to disk (synced); called with `save_lock` held.
    fn write(&self, list: &[Suspension]) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(list).map_err(std::io::Error::other)?;
        super::reputation::write_state(&self.path, &bytes)
    }

    /// Adds a suspension: the list with it is written to disk first, and it is in force
    /// once it is there. Blocking (a synced write): call it off the reactor. `Err`: not
    /// written and not in force.
    pub(crate) fn add(
        &self,
        new: NewSuspension,
        created_by: String,
    ) -> std::io::Result<Suspension> {
        let _saving = self.save_lock.lock().unwrap_or_else(|e| e.into_inner());
        let now = SystemTime::now();
        let suspension = Suspension {
            id: format!("s{:x}", ms(now) ^ rand::random::<u64>() >> 24),
            scope: new.scope,
            reason: new.reason,
            created_at: now,
            expires_at: now + new.duration,
            created_by,
        };
        let mut next = self.list();
        next.push(suspension.clone());
        self.write(&next)?;
        let mut list = self.lock();
        list.push(suspension.clone());
        self.any.store(true, Ordering::Release);
        Ok(suspension)
    }

    /// Removes a suspension by id: the list without it is written to disk first; then it
    /// leaves the list in memory and `release` runs with it while the list is still locked
    /// (see [`Suspensions::hold`]). Returns it, or `None` when there is none with that id.
    /// Blocking (a synced write): call it off the reactor. `Err`: not written, still in
    /// force.
    pub(crate) fn remove_and(
        &self,
        id: &str,
        release: impl FnOnce(&Suspension),
    ) -> std::io::Result<Option<Suspension>> {
        let _saving = self.save_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = self.list();
        let Some(index) = next.iter().position(|s| s.id == id) else {
            return Ok(None);
        };
        next.remove(index);
        self.write(&next)?;
        let mut list = self.lock();
        // Every change goes through `save_lock`; only expiry can have dropped it meanwhile.
        let Some(index) = list.iter().position(|s| s.id == id) else {
            return Ok(None);
        };
        let removed = list.remove(index);
        self.any.store(!list.is_empty(), Ordering::Release);
        release(&removed);
        Ok(Some(removed))
    }

    /// Holds `job` until the end of the latest suspension that covers it, if one does:
    /// `hold` runs (and schedules the job) while the list is locked, so a resume, which
    /// removes the suspension and releases what it held under the same lock, cannot miss a
    /// job held at that moment. Returns the job when no suspension covers it. Lock order:
    /// the list, then whatever `hold` takes (the scheduler, the warmup counters).
    pub(crate) fn hold(
        &self,
        job: Job,
        provider: Option<&str>,
        source: Option<&str>,
        hold: impl FnOnce(Job, u64),
    ) -> Option<Job> {
        if self.is_empty() {
            return Some(job);
        }
        let list = self.lock();
        match until_in(&list, &job, provider, source) {
            Some(until) => {
                hold(job, until);
                None
            }
            None => Some(job),
        }
    }

    /// The suspensions in force (expired ones are dropped).
    pub(crate) fn list(&self) -> Vec<Suspension> {
        let now = SystemTime::now();
        let mut list = self.lock();
        list.retain(|s| s.expires_at > now);
        self.any.store(!list.is_empty(), Ordering::Release);
        list.clone()
    }

    /// Until when `job` is suspended (unix ms), if it is: by its domain, tenant or campaign,
    /// or by the provider or source it would leave through (when known).
    pub(crate) fn until(
        &self,
        job: &Job,
        provider: Option<&str>,
        source: Option<&str>,
    ) -> Option<u64> {
        until_in(&self.lock(), job, provider, source)
    }

    /// True when no suspension is in force (the fast path of every check).
    pub(crate) fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn new(domain: &str) -> NewSuspension {
        NewSuspension {
            scope: SuspensionScope::Domain(domain.into()),
            duration: Duration::from_secs(3600),
            reason: "testing".into(),
        }
    }

    #[test]
    fn changes_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let suspensions = Suspensions::load(dir.path());
        let kept = suspensions.add(new("a.test"), "test".into()).unwrap();
        let resumed = suspensions.add(new("b.test"), "test".into()).unwrap();
        let mut released = Vec::new();
        let removed = suspensions
            .remove_and(&resumed.id, |s| released.push(s.id.clone()))
            .unwrap();
        assert_eq!(removed.map(|s| s.id), Some(resumed.id.clone()));
        assert_eq!(released, std::slice::from_ref(&resumed.id));
        assert!(
            suspensions
                .remove_and(&resumed.id, |_| {})
                .unwrap()
                .is_none()
        );
        let restarted: Vec<_> = Suspensions::load(dir.path())
            .list()
            .into_iter()
            .map(|s| (s.id, s.scope))
            .collect();
        assert_eq!(restarted, vec![(kept.id, kept.scope)]);
    }

    #[test]
    fn a_change_that_cannot_be_written_does_not_take_effect() {
        let dir = tempfile::tempdir().unwrap();
        let suspensions = Suspensions::load(dir.path());
        let kept = suspensions.add(new("a.test"), "test".into()).unwrap();
        // Make the file's directory unusable: nothing can be written there any more.
        std::fs::remove_dir_all(dir.path()).unwrap();
        assert!(suspensions.add(new("b.test"), "test".into()).is_err());
        let mut released = false;
        assert!(
            suspensions
                .remove_and(&kept.id, |_| released = true)
                .is_err()
        );
        assert!(!released);
        assert_eq!(suspensions.list(), vec![kept]);
    }
}
