//! Handshakes between wasp-tls's server and client configurations, in memory: mTLS required
//! and optional, SAN matching toward upstreams, and certificate rotation by file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{CertificateParams, DnType, Issuer, KeyPair, SanType};
use rustls::{ClientConnection, ServerConnection};
use wasp_spec::{CertificateFiles, ClientTls, ServerTls};
use wasp_tls::{ServerContext, Session, client_config};

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf with a DNS name and, optionally, a SPIFFE URI; written as `<name>.pem` / `.key`.
    fn leaf(&self, dir: &Path, name: &str, spiffe: Option<&str>) -> CertificateFiles {
        let mut params = CertificateParams::new(vec![format!("{name}.test")]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        if let Some(uri) = spiffe {
            params
                .subject_alt_names
                .push(SanType::URI(uri.try_into().unwrap()));
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let files = CertificateFiles {
            cert_file: dir.join(format!("{name}.pem")),
            key_file: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert_file, cert.pem()).unwrap();
        std::fs::write(&files.key_file, key.serialize_pem()).unwrap();
        files
    }

    fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.pem).unwrap();
        path
    }
}

/// Runs a handshake to completion; the server's view of it, or the first error.
fn handshake(
    server: &ServerContext,
    client: rustls::ClientConfig,
    name: &str,
) -> Result<Session, String> {
    let mut s = ServerConnection::new(server.config()).map_err(|e| e.to_string())?;
    let mut c = ClientConnection::new(Arc::new(client), name.to_string().try_into().unwrap())
        .map_err(|e| e.to_string())?;
    for _ in 0..20 {
        let mut buf = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).unwrap();
        }
        s.process_new_packets()
            .map_err(|e| format!("server: {e}"))?;
        let mut buf = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
        }
        c.process_new_packets()
            .map_err(|e| format!("client: {e}"))?;
        if !s.is_handshaking() && !c.is_handshaking() && !c.wants_write() {
            return Ok(server.session(&s));
        }
    }
    Err("handshake did not finish".into())
}

fn server_tls(files: &CertificateFiles, ca: Option<PathBuf>, require: bool) -> ServerTls {
    ServerTls {
        cert_file: files.cert_file.clone(),
        key_file: files.key_file.clone(),
        ca_file: ca,
        require_client_certificate: require,
    }
}

const SLEEP: &str = "spiffe://cluster.local/ns/default/sa/sleep";
const BACKEND: &str = "spiffe://cluster.local/ns/default/sa/backend";

#[test]
fn required_client_certificate_is_verified_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("mesh-ca");
    let ca_file = ca.write(dir.path(), "ca.pem");
    let server = ServerContext::new(
        &server_tls(
            &ca.leaf(dir.path(), "server", Some(BACKEND)),
            Some(ca_file.clone()),
            true,
        ),
        &[],
    )
    .unwrap();
    let client = |cert| ClientTls {
        ca_file: Some(ca_file.clone()),
        client_certificate: cert,
        ..ClientTls::default()
    };

    let with_cert =
        client_config(&client(Some(ca.leaf(dir.path(), "sleep", Some(SLEEP))))).unwrap();
    let session = handshake(&server, with_cert, "server.test").unwrap();
    assert!(session.mtls() && session.peer_validated);
    let peer = session.peer.unwrap();
    assert_eq!(peer.uri_sans, [SLEEP]);
    assert_eq!(peer.subject, "CN=sleep");
    assert_eq!(peer.issuer, "CN=mesh-ca");
    assert_eq!(session.local.unwrap().uri_sans, [BACKEND]);
    assert_eq!(session.version, "TLSv1.3");

    let without = client_config(&client(None)).unwrap();
    let err = handshake(&server, without, "server.test").unwrap_err();
    assert!(err.contains("server:"), "{err}");

    // A certificate from another CA is refused.
    let other = Ca::new("other-ca");
    let stranger = client_config(&client(Some(other.leaf(dir.path(), "stranger", None)))).unwrap();
    assert!(handshake(&server, stranger, "server.test").is_err());
}

#[test]
fn optional_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("mesh-ca");
    let ca_file = ca.write(dir.path(), "ca.pem");
    let server = ServerContext::new(
        &server_tls(
            &ca.leaf(dir.path(), "server", None),
            Some(ca_file.clone()),
            false,
        ),
        &[],
    )
    .unwrap();
    let plain = ClientTls {
        ca_file: Some(ca_file),
        ..ClientTls::default()
    };
    let session = handshake(&server, client_config(&plain).unwrap(), "server.test").unwrap();
    assert!(!session.mtls() && !session.peer_validated && session.peer.is_none());
}

#[test]
fn upstream_identity_is_checked_by_san_instead_of_host_name() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("mesh-ca");
    let ca_file = ca.write(dir.path(), "ca.pem");
    let server = ServerContext::new(
        &server_tls(&ca.leaf(dir.path(), "server", Some(BACKEND)), None, false),
        &[],
    )
    .unwrap();
    let expecting = |sans: &[&str]| ClientTls {
        ca_file: Some(ca_file.clone()),
        subject_alt_names: sans.iter().map(ToString::to_string).collect(),
        ..ClientTls::default()
    };
    // The name dialled is not in the certificate: the SAN decides.
    handshake(
        &server,
        client_config(&expecting(&[BACKEND])).unwrap(),
        "10.0.0.1.nip.test",
    )
    .unwrap();
    let err = handshake(
        &server,
        client_config(&expecting(&[SLEEP])).unwrap(),
        "server.test",
    )
    .unwrap_err();
    assert!(
        err.contains("SanMismatch") && err.contains(BACKEND),
        "{err}"
    );
    // Without SANs the host name is checked, as before.
    assert!(
        handshake(
            &server,
            client_config(&expecting(&[])).unwrap(),
            "elsewhere.test"
        )
        .is_err()
    );
    handshake(
        &server,
        client_config(&expecting(&[])).unwrap(),
        "server.test",
    )
    .unwrap();
}

#[test]
fn rotated_files_are_used_by_new_handshakes() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("mesh-ca");
    let ca_file = ca.write(dir.path(), "ca.pem");
    let first = ca.leaf(dir.path(), "first", None);
    let live = CertificateFiles {
        cert_file: dir.path().join("live.pem"),
        key_file: dir.path().join("live.key"),
    };
    std::fs::copy(&first.cert_file, &live.cert_file).unwrap();
    std::fs::copy(&first.key_file, &live.key_file).unwrap();
    let server = ServerContext::new(&server_tls(&live, None, false), &[]).unwrap();
    let client = || {
        client_config(&ClientTls {
            ca_file: Some(ca_file.clone()),
            ..ClientTls::default()
        })
        .unwrap()
    };
    let subject =
        |name| handshake(&server, client(), name).map(|s| s.local.unwrap().subject.clone());
    assert_eq!(subject("first.test").unwrap(), "CN=first");

    // Rotate by rename, as agents do.
    let second = ca.leaf(dir.path(), "second", None);
    std::fs::rename(&second.cert_file, &live.cert_file).unwrap();
    std::fs::rename(&second.key_file, &live.key_file).unwrap();
    std::thread::sleep(wasp_tls::watched::RECHECK + std::time::Duration::from_millis(100));
    assert_eq!(subject("second.test").unwrap(), "CN=second");

    // A half-written rotation (a key that does not match) keeps the last good pair.
    let third = ca.leaf(dir.path(), "third", None);
    std::fs::rename(&third.cert_file, &live.cert_file).unwrap();
    std::thread::sleep(wasp_tls::watched::RECHECK + std::time::Duration::from_millis(100));
    assert_eq!(subject("second.test").unwrap(), "CN=second");
    // The key arrives: the new pair is taken.
    std::fs::rename(&third.key_file, &live.key_file).unwrap();
    std::thread::sleep(wasp_tls::watched::RECHECK + std::time::Duration::from_millis(100));
    assert_eq!(subject("third.test").unwrap(), "CN=third");
}

#[test]
fn unusable_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("mesh-ca");
    let a = ca.leaf(dir.path(), "a", None);
    let b = ca.leaf(dir.path(), "b", None);
    let mismatched = CertificateFiles {
        cert_file: a.cert_file.clone(),
        key_file: b.key_file.clone(),
    };
    let err = ServerContext::new(&server_tls(&mismatched, None, false), &[]).unwrap_err();
    assert!(
        err.to_string().contains("a.pem") && err.to_string().contains("b.key"),
        "{err}"
    );
    let missing_ca = server_tls(&a, Some(dir.path().join("nope.pem")), true);
    let err = ServerContext::new(&missing_ca, &[]).unwrap_err();
    assert!(err.to_string().contains("nope.pem"), "{err}");
}
