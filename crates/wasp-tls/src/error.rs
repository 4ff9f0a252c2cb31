//! Why TLS settings cannot be used, naming the file at fault.

use std::path::PathBuf;

/// A certificate, key or CA file that cannot be used, or TLS settings rustls refuses.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read, or holds no PEM of the kind expected.
    #[error("cannot read {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The file holds no certificate.
    #[error("no certificate in {}", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A CA certificate that cannot serve as a trust anchor.
    #[error("unusable CA in {}: {reason}", path.display())]
    BadCa {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key is unusable or does not belong to the certificate.
    #[error("certificate {} and key {} cannot be used together: {reason}", cert.display(), key.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        reason: String,
    },
    /// A server name that is not a DNS name or an IP address.
    #[error("bad sni {name:?}: {reason}")]
    BadServerName {
        /// The name as configured.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// rustls refuses the combination of settings.
    #[error("{0}")]
    Settings(String),
}
