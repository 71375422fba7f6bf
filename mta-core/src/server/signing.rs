//! DKIM signing at reception: once per message, before the spool write, so the signature
//! covers the message exactly as it will be sent however many retries follow.
//!
//! Invariants: an RSA signature (or a large body) is computed on the blocking pool, never on
//! a reactor thread, so one CPU-heavy signature does not stall other sessions; the signer is
//! swapped whole on reload (a failed reload keeps the old one); the message is never changed
//! except for the DKIM-Signature fields prepended.

use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime};

use dkim::Signer;

/// The signer in force, shared by every session and replaced on reload.
#[derive(Clone)]
pub struct SignerHandle(Arc<RwLock<Arc<Signer>>>);

impl SignerHandle {
    /// A handle on `signer`.
    pub fn new(signer: Signer) -> SignerHandle {
        SignerHandle(Arc::new(RwLock::new(Arc::new(signer))))
    }

    /// The signer in force.
    pub fn current(&self) -> Arc<Signer> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the signer.
    pub fn replace(&self, signer: Signer) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(signer);
    }
}

/// Why a message could not be signed.
pub(crate) enum SignError {
    /// The message itself (two From fields, From domains that differ...): refuse it.
    Message(dkim::DkimError),
    /// Anything else (crypto, a lost blocking task): try again later.
    Internal,
}

/// Signs `message` (our Received header already on top) and returns it with its
/// DKIM-Signature fields prepended; unchanged when no key applies.
pub(crate) async fn sign(
    handle: &SignerHandle,
    message: Vec<u8>,
    tenant: Option<&str>,
) -> Result<Vec<u8>, SignError> {
    let signer = handle.current();
    if signer.is_empty() {
        return Ok(message);
    }
    let now = SystemTime::now();
    let started = Instant::now();
    let tenant = tenant.map(str::to_owned);
    let blocking = signer.needs_blocking(&message, tenant.as_deref());
    let (message, result) = if blocking {
        tokio::task::spawn_blocking(move || {
            let result = signer.sign(&message, tenant.as_deref(), now);
            (message, result)
        })
        .await
        .map_err(|_| SignError::Internal)?
    } else {
        let result = signer.sign(&message, tenant.as_deref(), now);
        (message, result)
    };
    let mode = if blocking { "blocking" } else { "inline" };
    metrics::histogram!("dkim_sign_seconds", "mode" => mode)
        .record(started.elapsed().as_secs_f64());
    match result {
        Ok(signed) if signed.is_empty() => {
            metrics::counter!("dkim_unsigned_total").increment(1);
            Ok(message)
        }
        Ok(signed) => {
            for info in signed.signatures() {
                metrics::counter!(
                    "dkim_signatures_total",
                    "algorithm" => info.key_type().signature_algorithm(),
                    "role" => info.role().as_str()
                )
                .increment(1);
            }
            let header = signed.into_header();
            let mut out = Vec::with_capacity(header.len() + message.len());
            out.extend_from_slice(&header);
            out.extend_from_slice(&message);
            Ok(out)
        }
        Err(error) => {
            metrics::counter!("dkim_failures_total", "reason" => error.reason()).increment(1);
            if error.is_message_error() {
                Err(SignError::Message(error))
            } else {
                tracing::warn!(%error, "DKIM signing failed");
                Err(SignError::Internal)
            }
        }
    }
}
