//! The engine's hold on `ipwarm`: egress sources and pools, warmup, reply classification,
//! reputation-aware throttles and the suppression list, with their state saved next to the
//! spool so it survives restarts.
//!
//! Invariants: every decision takes the current time as an argument (ipwarm is pure logic);
//! locks are held only for the call into ipwarm, never across an await; snapshots are written
//! atomically (temporary file, fsync, rename), so a crash leaves the previous one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use ipwarm::{
    Class, Classifier, Decision, Egress, EnhancedCode, KeyState, Limits, Permit, Reaction, Source,
    StartLimits, SuppressionOrigin, Suppressions,
};
use tracing::{info, warn};

use super::shaping::ShapingRules;
use crate::client::SmtpReply;
use crate::config::Config;

/// File names of the saved state, in the spool directory.
const EGRESS_STATE: &str = "ipwarm.state";
const SUPPRESSIONS_STATE: &str = "suppressions.state";

/// Egress, throttles, classification and suppressions for one running MTA.
pub(crate) struct Reputation {
    egress: Mutex<Egress>,
    classifier: RwLock<Arc<Classifier>>,
    suppressions: Mutex<Suppressions>,
    /// Held while state files are written (the periodic save and an operator's change may
    /// run at once; both write through the same temporary file).
    saving: Mutex<()>,
    /// Where the state is saved.
    dir: PathBuf,
    /// Address and EHLO name for sources that set none (the built-in `default` source).
    default_address: Option<std::net::IpAddr>,
    default_ehlo: String,
}

/// The start limits of the throttles: the shaping rules' limits per provider.
fn start_limits(rules: &ShapingRules) -> StartLimits {
    let default = rules.default_shaping();
    let mut limits = StartLimits::new(Limits {
        max_connections: default.max_connections,
        max_message_rate: default.max_message_rate,
    });
    for provider in rules.providers() {
        limits.providers.insert(
            provider.name.clone(),
            Limits {
                max_connections: provider.max_connections.unwrap_or(default.max_connections),
                max_message_rate: provider.max_message_rate.or(default.max_message_rate),
            },
        );
    }
    limits
}

fn now_ms() -> u64 {
    super::engine::now_ms()
}

impl Reputation {
    /// Builds everything from the configuration and restores the saved state, if any.
    pub(crate) fn new(config: &Config, rules: &ShapingRules) -> anyhow::Result<Reputation> {
        let ipwarm = config.ipwarm();
        let mut egress = Egress::new(&ipwarm, start_limits(rules))?;
        let classifier = Classifier::new(&ipwarm.classify, ipwarm.classify_builtin)?;
        let mut suppressions = Suppressions::new(ipwarm.suppression.clone());
        let dir = config.spool.path.clone();
        let now = now_ms();
        if let Some(bytes) = read_state(&dir.join(EGRESS_STATE)) {
            match egress.restore(&bytes) {
                Ok(restored) => info!(?restored, "egress state restored"),
                Err(error) => warn!(%error, "egress state not restored; starting fresh"),
            }
        }
        if let Some(bytes) = read_state(&dir.join(SUPPRESSIONS_STATE)) {
            match suppressions.restore(&bytes, now) {
                Ok(entries) => info!(entries, "suppression list restored"),
                Err(error) => warn!(%error, "suppression list not restored; starting empty"),
            }
        }
        Ok(Reputation {
            egress: Mutex::new(egress),
            classifier: RwLock::new(Arc::new(classifier)),
            suppressions: Mutex::new(suppressions),
            saving: Mutex::new(()),
            dir,
            default_address: config.delivery.source_address,
            default_ehlo: config
                .delivery
                .ehlo_name
                .clone()
                .unwrap_or_else(|| config.hostname.clone()),
        })
    }

    fn egress(&self) -> std::sync::MutexGuard<'_, Egress> {
        self.egress.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn suppressions(&self) -> std::sync::MutexGuard<'_, Suppressions> {
        self.suppressions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The source for a job to `provider`, from the pool of its tenant or pool tag; or the
    /// time to try again (warmup allowance spent, every source suspended).
    pub(crate) fn choose(
        &self,
        tenant: Option<&str>,
        pool_tag: Option<&str>,
        warmup_provider: &str,
        throttle_key: &str,
        now: u64,
    ) -> Decision {
        let mut egress = self.egress();
        let pool = egress.pool_for(tenant, pool_tag);
        egress.choose_source_for(pool, warmup_provider, throttle_key, now)
    }

    /// Gives back the warmup allowance a job took when it does not leave after all.
    pub(crate) fn release(&self, source: &str, warmup_provider: &str) {
        self.egress().release(source, warmup_provider, now_ms());
    }

    /// Whether a message may go now.
    pub(crate) fn permit(&self, source: &str, provider: &str) -> Permit {
        self.egress().permit(source, provider, now_ms())
    }

    /// Connections allowed now from `source` to `provider`.
    pub(crate) fn concurrency_limit(&self, source: &str, provider: &str) -> usize {
        self.egress().concurrency_limit(source, provider, now_ms())
    }

    /// The class of a reply.
    pub(crate) fn classify(&self, reply: &SmtpReply, provider: &str) -> Class {
        let classifier = self
            .classifier
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let enhanced = reply.enhanced.map(|e| EnhancedCode {
            class: e.class(),
            subject: e.subject(),
            detail: e.detail(),
        });
        classifier
            .classify(
                &ipwarm::Reply::new(reply.code, enhanced, &reply.text),
                Some(provider),
            )
            .class
    }

    /// Replaces the classification rules (configuration reload).
    pub(crate) fn set_classifier(&self, classifier: Classifier) {
        *self.classifier.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(classifier);
    }

    /// Feeds a message's outcome to the throttles; `retry_at` in the reaction is the time
    /// the throttle wants the message tried again.
    pub(crate) fn record(
        &self,
        source: &str,
        warmup_provider: &str,
        throttle_key: &str,
        class: Class,
        delivered: bool,
    ) -> Reaction {
        let now = now_ms();
        let mut egress = self.egress();
        if delivered {
            egress.record_send(source, warmup_provider, now);
        }
        egress.record(source, throttle_key, class, now)
    }

    /// The entry that suppresses the recipient for the tenant, if one does.
    pub(crate) fn suppression(
        &self,
        tenant: Option<&str>,
        address: &str,
    ) -> Option<ipwarm::SuppressionHit> {
        self.suppressions()
            .lookup(tenant.unwrap_or(""), address, now_ms())
    }

    /// Suppresses a recipient after a bad-mailbox bounce; the reply's codes are its reason.
    pub(crate) fn suppress(&self, tenant: Option<&str>, address: &str, reply: &SmtpReply) {
        let reason = match &reply.enhanced {
            Some(enhanced) => format!("{} {enhanced}", reply.code),
            None => reply.code.to_string(),
        };
        self.suppressions().add(
            tenant.unwrap_or(""),
            address,
            now_ms(),
            SuppressionOrigin::Bounce,
            Some(&reason),
        );
    }

    /// Address to bind and EHLO name for a source (the defaults fill what it leaves unset).
    pub(crate) fn endpoint(&self, source: &Source) -> (Option<std::net::IpAddr>, String) {
        (
            source.address.or(self.default_address),
            source
                .ehlo
                .as_deref()
                .map_or_else(|| self.default_ehlo.clone(), str::to_owned),
        )
    }

    /// Per (source, provider) state for the admin view.
    pub(crate) fn state(&self) -> (Vec<Arc<Source>>, Vec<KeyState>) {
        let egress = self.egress();
        (egress.sources().cloned().collect(), egress.state(now_ms()))
    }

    /// The names of the pools a source belongs to, joined with `, ` (`None`: none).
    pub(crate) fn pools_of(&self, source: &str) -> Option<String> {
        let egress = self.egress();
        let pools = egress.pools_of(source);
        (!pools.is_empty()).then(|| pools.join(", "))
    }

    /// The suppression list (for the admin API).
    pub(crate) fn with_suppressions<T>(&self, f: impl FnOnce(&mut Suppressions, u64) -> T) -> T {
        f(&mut self.suppressions(), now_ms())
    }

    /// Saves egress and suppression state; drops expired suppressions first.
    pub(crate) fn save(&self) {
        let egress = self.egress().snapshot();
        let _writing = self.saving.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(error) = write_state(&self.dir.join(EGRESS_STATE), &egress) {
            warn!(file = EGRESS_STATE, %error, "could not save state");
        }
        if let Err(error) = self.write_suppressions() {
            warn!(file = SUPPRESSIONS_STATE, %error, "could not save state");
        }
    }

    /// Saves the suppression list now (fsync, then rename): an operator's change is on disk
    /// before the admin API answers.
    pub(crate) fn save_suppressions(&self) -> std::io::Result<()> {
        let _writing = self.saving.lock().unwrap_or_else(|e| e.into_inner());
        self.write_suppressions()
    }

    /// Writes the suppression list; the caller holds `saving`.
    fn write_suppressions(&self) -> std::io::Result<()> {
        let now = now_ms();
        // Copied under the lock (deliveries check it), encoded and written after.
        let entries = {
            let mut s = self.suppressions();
            s.purge_expired(now);
            s.in_force(None, now)
        };
        write_state(
            &self.dir.join(SUPPRESSIONS_STATE),
            &ipwarm::encode_snapshot(&entries),
        )
    }
}

fn read_state(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

/// Writes `bytes` to `path` atomically and durably: a temporary file, fsync, rename, then
/// fsync of the directory (so the rename itself survives a power loss).
pub(super) fn write_state(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}
