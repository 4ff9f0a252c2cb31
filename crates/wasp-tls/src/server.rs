//! TLS a listener terminates: its certificate and, for mTLS, the CAs client certificates are
//! verified against, both re-read when their files change.
//!
//! One `rustls::ServerConfig` lives as long as the listener; what rotates is behind it: the
//! certificate resolver and the client verifier look up the current [`Watched`] files at each
//! handshake. A connection keeps the certificate it was set up with.

use std::sync::Arc;

use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};
use wasp_spec::ServerTls;

use crate::cert::CertInfo;
use crate::error::TlsError;
use crate::pem::{self, Identity};
use crate::session::Session;
use crate::watched::Watched;

/// A listener's TLS: the rustls configuration to accept with, and what a finished handshake
/// tells the attributes.
#[derive(Debug)]
pub struct ServerContext {
    config: Arc<rustls::ServerConfig>,
    identity: Arc<Watched<Identity>>,
    mtls: bool,
}

impl ServerContext {
    /// Reads the files now (an error is a configuration error). `alpn`: the protocols to offer
    /// (`h2`, `http/1.1` for HTTP listeners; none for TCP).
    pub fn new(spec: &ServerTls, alpn: &[&[u8]]) -> Result<ServerContext, TlsError> {
        let (cert, key) = (spec.cert_file.clone(), spec.key_file.clone());
        let identity = Arc::new(Watched::new(vec![cert.clone(), key.clone()], move || {
            Identity::load(&cert, &key)
        })?);
        let builder = rustls::ServerConfig::builder_with_provider(pem::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Settings(e.to_string()))?;
        let builder = match &spec.ca_file {
            Some(ca) => builder.with_client_cert_verifier(Arc::new(ClientVerifier::new(
                ca.clone(),
                spec.require_client_certificate,
            )?)),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(Arc::new(Resolver(identity.clone())));
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(ServerContext {
            config: Arc::new(config),
            identity,
            mtls: spec.ca_file.is_some(),
        })
    }

    /// The configuration to accept a connection with.
    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        self.config.clone()
    }

    /// What a finished handshake established.
    pub fn session(&self, conn: &rustls::ServerConnection) -> Session {
        let peer = conn
            .peer_certificates()
            .and_then(<[CertificateDer<'_>]>::first)
            .and_then(CertInfo::of)
            .map(Arc::new);
        Session {
            sni: conn.server_name().map(str::to_owned),
            // A certificate the verifier let through was verified: it refuses unverifiable ones.
            peer_validated: self.mtls && peer.is_some(),
            peer,
            local: Some(self.identity.current().info.clone()),
            ..Session::of_common(conn)
        }
    }
}

#[derive(Debug)]
struct Resolver(Arc<Watched<Identity>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().key.clone())
    }
}

/// Verifies client certificates with the current CA bundle.
struct ClientVerifier {
    inner: Watched<Arc<dyn ClientCertVerifier>>,
    mandatory: bool,
    schemes: Vec<SignatureScheme>,
}

impl std::fmt::Debug for ClientVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientVerifier")
            .field("mandatory", &self.mandatory)
            .finish_non_exhaustive()
    }
}

impl ClientVerifier {
    fn new(ca: std::path::PathBuf, mandatory: bool) -> Result<ClientVerifier, TlsError> {
        let files = vec![ca.clone()];
        let inner = Watched::new(files, move || {
            let roots = Arc::new(pem::roots(&ca)?);
            let builder = WebPkiClientVerifier::builder_with_provider(roots, pem::provider());
            let builder = if mandatory {
                builder
            } else {
                builder.allow_unauthenticated()
            };
            builder.build().map_err(|e| TlsError::BadCa {
                path: ca.clone(),
                reason: e.to_string(),
            })
        })?;
        let schemes = inner.current().supported_verify_schemes();
        Ok(ClientVerifier {
            inner,
            mandatory,
            schemes,
        })
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // The bundle may change under us; clients pick their certificate without hints.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .current()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner
            .current()
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner
            .current()
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}
