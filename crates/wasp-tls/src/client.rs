//! TLS to a cluster's endpoints: the CAs the server is verified against (or the web PKI),
//! the SANs it must carry (Istio's SPIFFE identities), and the client certificate wasp
//! presents for mTLS; files re-read when they change.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::verify_server_cert_signed_by_trust_anchor,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use wasp_spec::ClientTls;

use crate::cert::CertInfo;
use crate::error::TlsError;
use crate::pem::{self, Identity};
use crate::watched::Watched;

/// A rustls client configuration for a cluster; its trust and certificate rotate behind it.
pub fn client_config(spec: &ClientTls) -> Result<rustls::ClientConfig, TlsError> {
    if let Some(sni) = &spec.sni {
        ServerName::try_from(sni.as_str()).map_err(|e| TlsError::BadServerName {
            name: sni.clone(),
            reason: e.to_string(),
        })?;
    }
    let trust = match &spec.ca_file {
        Some(ca) => {
            let ca = ca.clone();
            Watched::new(vec![ca.clone()], move || Trust::new(pem::roots(&ca)?))?
        }
        None => Watched::new(Vec::new(), || {
            Trust::new(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
        })?,
    };
    let verifier = Arc::new(ServerVerifier {
        trust,
        sans: spec.subject_alt_names.clone(),
        algorithms: pem::provider().signature_verification_algorithms,
    });
    let builder = rustls::ClientConfig::builder_with_provider(pem::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Settings(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    Ok(match &spec.client_certificate {
        Some(files) => {
            let (cert, key) = (files.cert_file.clone(), files.key_file.clone());
            let identity = Watched::new(vec![cert.clone(), key.clone()], move || {
                Identity::load(&cert, &key)
            })?;
            builder.with_client_cert_resolver(Arc::new(ClientIdentity(identity)))
        }
        None => builder.with_no_client_auth(),
    })
}

/// The current CA bundle and rustls' verifier over it.
struct Trust {
    roots: Arc<RootCertStore>,
    webpki: Arc<WebPkiServerVerifier>,
}

impl Trust {
    fn new(roots: RootCertStore) -> Result<Trust, TlsError> {
        let roots = Arc::new(roots);
        let webpki = WebPkiServerVerifier::builder_with_provider(roots.clone(), pem::provider())
            .build()
            .map_err(|e| TlsError::Settings(e.to_string()))?;
        Ok(Trust { roots, webpki })
    }
}

#[derive(Debug)]
struct ServerVerifier {
    trust: Watched<Trust>,
    sans: Vec<String>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let trust = self.trust.current();
        if self.sans.is_empty() {
            return trust.webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp,
                now,
            );
        }
        // Envoy with match_typed_subject_alt_names: the chain must verify and the certificate
        // must carry one of the names; the host name plays no part (Istio's workload
        // certificates carry only a SPIFFE URI).
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &trust.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        let info = CertInfo::of(end_entity).ok_or(rustls::Error::InvalidCertificate(
            CertificateError::BadEncoding,
        ))?;
        if self.sans.iter().any(|san| info.has_san(san)) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(SanMismatch {
                    expected: self.sans.clone(),
                    found: info
                        .uri_sans
                        .iter()
                        .chain(&info.dns_sans)
                        .cloned()
                        .collect(),
                })),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The server certificate lacks every expected SAN.
#[derive(Debug, thiserror::Error)]
#[error(
    "the server certificate has none of the expected subject alt names {expected:?} (it has {found:?})"
)]
struct SanMismatch {
    expected: Vec<String>,
    found: Vec<String>,
}

#[derive(Debug)]
struct ClientIdentity(Watched<Identity>);

impl ResolvesClientCert for ClientIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
