//! Reading PEM files: certificate chains, private keys, CA bundles, and a certificate with its
//! key as rustls signs with it.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::cert::CertInfo;
use crate::error::TlsError;

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file, in file order; at least one.
pub(crate) fn chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| read_error(path, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| read_error(path, &e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: path.into() });
    }
    Ok(certs)
}

/// A CA bundle as trust anchors.
pub(crate) fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in chain(path)? {
        roots.add(cert).map_err(|e| TlsError::BadCa {
            path: path.into(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

fn read_error(path: &Path, e: &rustls_pki_types::pem::Error) -> TlsError {
    TlsError::Read {
        path: path.into(),
        reason: e.to_string(),
    }
}

/// A certificate chain with its key, ready to sign handshakes, and what the leaf says.
pub struct Identity {
    /// What rustls presents.
    pub key: Arc<CertifiedKey>,
    /// The leaf's facts (`*_local_certificate` attributes).
    pub info: Arc<CertInfo>,
}

impl Identity {
    /// Reads and pairs the two files; fails when the key does not belong to the certificate.
    pub fn load(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        let certs = chain(cert)?;
        let private = PrivateKeyDer::from_pem_file(key).map_err(|e| read_error(key, &e))?;
        let mismatch = |e: rustls::Error| TlsError::KeyMismatch {
            cert: cert.into(),
            key: key.into(),
            reason: e.to_string(),
        };
        let info = Arc::new(CertInfo::of(&certs[0]).unwrap_or_default());
        let certified = CertifiedKey::from_der(certs, private, &provider()).map_err(mismatch)?;
        Ok(Identity {
            key: Arc::new(certified),
            info,
        })
    }
}
