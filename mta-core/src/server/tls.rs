//! The STARTTLS server configuration: the operator's PEM files, or a self-signed certificate
//! for our host name made at start when none are configured.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::aws_lc_rs;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {source}")]
    Pem {
        /// The file.
        path: String,
        /// What went wrong.
        source: rustls_pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{0}: no certificate found")]
    NoCertificate(String),
    /// rustls refused the certificate or key.
    #[error("certificate or key refused: {0}")]
    Rustls(#[from] rustls::Error),
    /// The self-signed certificate could not be made.
    #[error("cannot make a self-signed certificate: {0}")]
    SelfSigned(#[from] rcgen::Error),
}

/// A TLS acceptor from PEM files.
pub(crate) fn acceptor_from_pem(
    certificate: &Path,
    key: &Path,
) -> Result<TlsAcceptor, TlsSetupError> {
    let pem_error = |path: &Path| {
        let path = path.display().to_string();
        move |source| TlsSetupError::Pem { path, source }
    };
    let chain = CertificateDer::pem_file_iter(certificate)
        .map_err(pem_error(certificate))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error(certificate))?;
    if chain.is_empty() {
        return Err(TlsSetupError::NoCertificate(
            certificate.display().to_string(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(pem_error(key))?;
    acceptor(chain, key)
}

/// A TLS acceptor with a fresh self-signed certificate for `hostname`.
pub(super) fn acceptor_self_signed(hostname: &str) -> Result<TlsAcceptor, TlsSetupError> {
    let certified = rcgen::generate_simple_self_signed(vec![hostname.to_owned()])?;
    let chain = vec![certified.cert.der().clone()];
    let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der())
        .map_err(|e| TlsSetupError::Rustls(rustls::Error::General(e.to_owned())))?;
    acceptor(chain, key)
}

fn acceptor(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<TlsAcceptor, TlsSetupError> {
    let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
