//! TLS for listeners (rustls, ALPN h2 and http/1.1).

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::spec::ServerTls;

/// A TLS acceptor for a listener, or why the certificate or key cannot be used. `http`:
/// offer h2 and http/1.1 by ALPN (a TCP listener offers nothing).
pub fn acceptor(tls: &ServerTls, http: bool) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert_file)
        .map_err(|e| format!("cannot read {}: {e}", tls.cert_file.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad certificate in {}: {e}", tls.cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", tls.cert_file.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .map_err(|e| format!("bad private key in {}: {e}", tls.key_file.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not match: {e}"))?;
    if http {
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// What properties say of a TLS session a listener terminated.
pub fn info(session: &rustls::ServerConnection) -> crate::filter::properties::TlsInfo {
    crate::filter::properties::TlsInfo {
        sni: session.server_name().map(str::to_owned),
        version: session
            .protocol_version()
            .and_then(|v| v.as_str())
            .map(|v| v.replace("TLSv1_", "TLSv1."))
            .unwrap_or_default(),
    }
}
