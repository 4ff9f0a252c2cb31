//! The certificates of mTLS cases, made fresh for each run and given to both proxies: a CA,
//! the proxies' server certificate (`conformance.local`, a SPIFFE id of its own) and the
//! client's certificate with the SPIFFE id a mesh workload would have. Both proxies serve the
//! same files, so digests, serials and subjects compare exactly.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The client's identity, as Istio would issue it to the `sleep` workload.
pub const CLIENT_SPIFFE: &str = "spiffe://cluster.local/ns/default/sa/sleep";
/// The proxies' own identity.
pub const SERVER_SPIFFE: &str = "spiffe://cluster.local/ns/conformance/sa/proxy";

pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Pki {
    /// Makes the certificates and writes them under `dir`.
    pub fn write(dir: &Path) -> anyhow::Result<Pki> {
        std::fs::create_dir_all(dir)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::OrganizationName, "cluster.local");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "conformance root");
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf =
            |name: &str, dns: &str, spiffe: &str, serial: u8| -> anyhow::Result<(String, String)> {
                let mut params = CertificateParams::new(vec![dns.to_string()])?;
                params
                    .subject_alt_names
                    .push(SanType::URI(spiffe.try_into()?));
                params.distinguished_name.push(DnType::CountryName, "US");
                params
                    .distinguished_name
                    .push(DnType::OrganizationName, "wasp, conformance");
                params.distinguished_name.push(DnType::CommonName, name);
                params.serial_number = Some(vec![0x00, 0x1f, serial].into());
                let key = KeyPair::generate()?;
                let cert = params.signed_by(&key, &issuer)?;
                Ok((cert.pem(), key.serialize_pem()))
            };
        let pki = Pki {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        };
        std::fs::write(&pki.ca, ca_cert.pem())?;
        let (cert, key) = leaf("proxy", crate::client::AUTHORITY, SERVER_SPIFFE, 1)?;
        std::fs::write(&pki.server_cert, cert)?;
        std::fs::write(&pki.server_key, key)?;
        let (cert, key) = leaf("sleep", "sleep.default.svc", CLIENT_SPIFFE, 2)?;
        std::fs::write(&pki.client_cert, cert)?;
        std::fs::write(&pki.client_key, key)?;
        Ok(pki)
    }

    /// A client configuration trusting the CA, with the client certificate or without, and
    /// ALPN for the protocol the request uses.
    pub fn client_config(
        &self,
        with_certificate: bool,
        http2: bool,
    ) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca)? {
            roots.add(cert?)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let mut config = if with_certificate {
            let chain =
                CertificateDer::pem_file_iter(&self.client_cert)?.collect::<Result<Vec<_>, _>>()?;
            builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(&self.client_key)?)?
        } else {
            builder.with_no_client_auth()
        };
        config.alpn_protocols = vec![if http2 {
            b"h2".to_vec()
        } else {
            b"http/1.1".to_vec()
        }];
        Ok(Arc::new(config))
    }
}
