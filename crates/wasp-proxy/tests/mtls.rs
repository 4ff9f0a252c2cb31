//! mTLS both ways over real sockets: a client with a SPIFFE certificate reaches a plugin that
//! reads its identity; wasp presents its own certificate to an upstream that requires one and
//! checks the upstream's SPIFFE id; a rotated listener certificate is served to new
//! connections while an open one goes on.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::{Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls_pki_types::ServerName;
use support::*;
use wasp_proxy::spec::{CertificateFiles, ClientTls, ServerTls};

const SLEEP: &str = "spiffe://cluster.local/ns/default/sa/sleep";
const PROXY: &str = "spiffe://cluster.local/ns/default/sa/wasp";
const BACKEND: &str = "spiffe://cluster.local/ns/default/sa/backend";

struct Ca(Issuer<'static, KeyPair>);

impl Ca {
    fn write(dir: &Path) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "mesh root");
        let key = KeyPair::generate().unwrap();
        std::fs::write(dir.join("ca.pem"), params.self_signed(&key).unwrap().pem()).unwrap();
        Ca(Issuer::new(params, key))
    }

    fn leaf(&self, dir: &Path, name: &str, spiffe: &str) -> CertificateFiles {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), format!("{name}.test")]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .subject_alt_names
            .push(SanType::URI(spiffe.try_into().unwrap()));
        let key = KeyPair::generate().unwrap();
        let files = CertificateFiles {
            cert_file: dir.join(format!("{name}.pem")),
            key_file: dir.join(format!("{name}.key")),
        };
        std::fs::write(
            &files.cert_file,
            params.signed_by(&key, &self.0).unwrap().pem(),
        )
        .unwrap();
        std::fs::write(&files.key_file, key.serialize_pem()).unwrap();
        files
    }
}

/// An HTTPS upstream that requires a client certificate from the CA and answers with the
/// client's SPIFFE id (`x-peer`) and the plugin's view of the downstream client (`x-client`).
fn mtls_upstream(dir: &Path, server: &CertificateFiles) -> SocketAddr {
    let context = Arc::new(
        wasp_tls::ServerContext::new(
            &ServerTls {
                cert_file: server.cert_file.clone(),
                key_file: server.key_file.clone(),
                ca_file: Some(dir.join("ca.pem")),
                require_client_certificate: true,
            },
            &[b"http/1.1"],
        )
        .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let context = context.clone();
                tokio::spawn(async move {
                    let Ok(tls) = tokio_rustls::TlsAcceptor::from(context.config())
                        .accept(tcp)
                        .await
                    else {
                        return;
                    };
                    let session = context.session(tls.get_ref().1);
                    let peer = session
                        .peer
                        .map(|p| p.uri_sans.join(","))
                        .unwrap_or_default();
                    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let client = req
                            .headers()
                            .get("x-prop-connection-uri_san_peer_certificate")
                            .map(|v| v.to_str().unwrap().to_string())
                            .unwrap_or_default();
                        let response = Response::builder()
                            .header("x-peer", peer.clone())
                            .header("x-client", client)
                            .body(http_body_util::Full::new(bytes::Bytes::from_static(b"ok")))
                            .unwrap();
                        async move { Ok::<_, std::convert::Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
    });
    address
}

fn client_config(dir: &Path, cert: Option<&CertificateFiles>) -> Arc<rustls::ClientConfig> {
    let client = ClientTls {
        ca_file: Some(dir.join("ca.pem")),
        client_certificate: cert.cloned(),
        ..ClientTls::default()
    };
    Arc::new(wasp_tls::client_config(&client).unwrap())
}

/// A request over a new TLS connection; the answer and the subject of the server certificate.
fn https_get(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    headers: &[(&str, &str)],
) -> Result<Answer, String> {
    block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let name = ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let req = request(addr, Proto::H1, "GET", "/", headers, empty());
        let response = exchange_on(tls, Proto::H1, req)
            .await
            .map_err(|e| e.to_string())?;
        answer(response).await.map_err(|e| e.to_string())
    })
}

#[test]
fn mesh_identities_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::write(dir.path());
    let upstream = mtls_upstream(dir.path(), &ca.leaf(dir.path(), "backend", BACKEND));
    let wasp_identity = ca.leaf(dir.path(), "wasp", PROXY);
    let sleep = ca.leaf(dir.path(), "sleep", SLEEP);

    let mut spec = spec(upstream, vec![plugin("hostcalls", "")]);
    spec.listeners[0].tls = Some(ServerTls {
        cert_file: wasp_identity.cert_file.clone(),
        key_file: wasp_identity.key_file.clone(),
        ca_file: Some(dir.path().join("ca.pem")),
        require_client_certificate: true,
    });
    let cluster_tls = |sans: &[&str]| ClientTls {
        ca_file: Some(dir.path().join("ca.pem")),
        client_certificate: Some(wasp_identity.clone()),
        subject_alt_names: sans.iter().map(ToString::to_string).collect(),
        ..ClientTls::default()
    };
    spec.clusters[0].tls = Some(cluster_tls(&[BACKEND]));
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    let props = [
        ("x-scenario", "properties"),
        (
            "x-properties",
            "connection.uri_san_peer_certificate,connection.mtls",
        ),
    ];

    let a = https_get(addr, client_config(dir.path(), Some(&sleep)), &props).unwrap();
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    // The upstream saw wasp's certificate; the plugin saw the client's.
    assert_eq!(a.header("x-peer"), Some(PROXY));
    assert_eq!(unhex(a.header("x-client").unwrap()), SLEEP.as_bytes());

    // Without a client certificate the handshake is refused.
    let refused = https_get(addr, client_config(dir.path(), None), &props);
    assert!(refused.is_err(), "{refused:?}");
    proxy.shutdown();

    // An upstream whose SPIFFE id is not the expected one: 503, as Envoy.
    let mut spec = support::spec(upstream, vec![]);
    spec.clusters[0].tls = Some(cluster_tls(&["spiffe://cluster.local/ns/default/sa/other"]));
    let proxy = start(spec);
    let a = get(proxy.address("main").unwrap(), "/", &[]);
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{a:?}");
    proxy.shutdown();
}

#[test]
fn rotated_listener_certificate_reaches_new_connections_only() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::write(dir.path());
    let up = upstream();
    let first = ca.leaf(dir.path(), "first", PROXY);
    let live = CertificateFiles {
        cert_file: dir.path().join("live.pem"),
        key_file: dir.path().join("live.key"),
    };
    std::fs::copy(&first.cert_file, &live.cert_file).unwrap();
    std::fs::copy(&first.key_file, &live.key_file).unwrap();
    let mut spec = spec(up.address, vec![]);
    spec.listeners[0].tls = Some(ServerTls {
        cert_file: live.cert_file.clone(),
        key_file: live.key_file.clone(),
        ca_file: None,
        require_client_certificate: false,
    });
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    let config = client_config(dir.path(), None);

    block_on(async {
        // A keep-alive connection opened on the first certificate.
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(config.clone())
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let served_by = |tls: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>| {
            let der = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
            wasp_tls::CertInfo::of(&der).unwrap().subject
        };
        assert_eq!(served_by(&tls), "CN=first");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let send = |sender: &mut hyper::client::conn::http1::SendRequest<_>| {
            sender.send_request(request(addr, Proto::H1, "GET", "/", &[], empty()))
        };
        assert_eq!(send(&mut sender).await.unwrap().status(), StatusCode::OK);

        // Rotate (rename, as agents do) and wait for the next check.
        let second = ca.leaf(dir.path(), "second", PROXY);
        std::fs::rename(&second.cert_file, &live.cert_file).unwrap();
        std::fs::rename(&second.key_file, &live.key_file).unwrap();
        tokio::time::sleep(wasp_tls::watched::RECHECK + Duration::from_millis(200)).await;

        // A client of its own: a resumed TLS session would not show the certificate again.
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let fresh = tokio_rustls::TlsConnector::from(client_config(dir.path(), None))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        assert_eq!(served_by(&fresh), "CN=second");
        // The connection opened before the rotation still serves requests.
        assert_eq!(send(&mut sender).await.unwrap().status(), StatusCode::OK);
    });
    proxy.shutdown();
}

#[test]
fn a_reload_that_turns_on_client_certificates_applies_to_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::write(dir.path());
    let up = upstream();
    let identity = ca.leaf(dir.path(), "wasp", PROXY);
    let sleep = ca.leaf(dir.path(), "sleep", SLEEP);
    let mut spec = spec(up.address, vec![]);
    spec.listeners[0].tls = Some(ServerTls {
        cert_file: identity.cert_file.clone(),
        key_file: identity.key_file.clone(),
        ca_file: None,
        require_client_certificate: false,
    });
    let proxy = start(spec.clone());
    let addr = proxy.address("main").unwrap();
    let anonymous = https_get(addr, client_config(dir.path(), None), &[]).unwrap();
    assert_eq!(anonymous.status, StatusCode::OK);

    // STRICT from now on (Istio's PeerAuthentication flip), by a reload, not a restart.
    let mut strict = spec.clone();
    if let Some(tls) = strict.listeners[0].tls.as_mut() {
        tls.ca_file = Some(dir.path().join("ca.pem"));
        tls.require_client_certificate = true;
    }
    proxy.reload(strict).unwrap();
    assert_eq!(proxy.address("main"), Some(addr), "the port stays bound");
    let refused = https_get(addr, client_config(dir.path(), None), &[]);
    assert!(refused.is_err(), "{refused:?}");
    let mutual = https_get(addr, client_config(dir.path(), Some(&sleep)), &[]).unwrap();
    assert_eq!(mutual.status, StatusCode::OK);

    // A certificate file that does not exist: refused, STRICT stays.
    let mut broken = spec;
    if let Some(tls) = broken.listeners[0].tls.as_mut() {
        tls.cert_file = dir.path().join("missing.pem");
    }
    let error = proxy.reload(broken).unwrap_err().to_string();
    assert!(error.contains("listener main: TLS"), "{error}");
    assert!(https_get(addr, client_config(dir.path(), None), &[]).is_err());
    proxy.shutdown();
}
