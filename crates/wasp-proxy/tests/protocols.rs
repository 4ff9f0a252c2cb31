//! Protocols on both sides: HTTP/2 with prior knowledge downstream, HTTP/2 upstream, and
//! TLS downstream with ALPN (h2 and http/1.1), with the TLS properties plugins see.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Version;
use rustls_pki_types::ServerName;
use support::*;
use wasp_proxy::spec::{ServerTls, UpstreamProtocol};

#[test]
fn http2_downstream_multiplexes_paused_streams_through_a_plugin() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    let answers = block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        // Streams paused by the plugin (until its timer) and plain ones, all at once on one
        // connection.
        let mut tasks = Vec::new();
        for i in 0..8 {
            let mut sender = sender.clone();
            let scenario = if i % 2 == 0 { "tick-pause" } else { "headers" };
            tasks.push(tokio::spawn(async move {
                let req = request(
                    addr,
                    Proto::H2,
                    "POST",
                    &format!("/s/{i}"),
                    &[("x-scenario", scenario)],
                    full(format!("body-{i}")),
                );
                answer(sender.send_request(req).await.unwrap())
                    .await
                    .unwrap()
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.version, Version::HTTP_2);
        assert_eq!(a.header("x-echo-path"), Some(format!("/s/{i}").as_str()));
        assert_eq!(a.body, format!("body-{i}"));
        assert_eq!(a.header("x-hostcalls-response"), Some("1"));
    }
    assert_eq!(
        metric(&stats(&proxy), "wasp_downstream_connections_total"),
        Some(1.0)
    );
    proxy.shutdown();
}

#[test]
fn http2_upstream_cluster() {
    let up = upstream();
    let mut spec = spec(up.address, vec![plugin("hostcalls", "")]);
    spec.clusters[0].protocol = UpstreamProtocol::Http2;
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    for proto in [Proto::H1, Proto::H2] {
        let a = exchange(
            addr,
            proto,
            "POST",
            "/up2?q=1",
            &[("x-scenario", "buffer-request")],
            chunked(&["over ", "h2"]),
        );
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.header("x-echo-version"), Some("HTTP/2.0"));
        assert_eq!(a.header("x-echo-path"), Some("/up2?q=1"));
        assert_eq!(a.body, "OVER H2");
        // Hop-by-hop framing never reaches an HTTP/2 upstream.
        assert_eq!(a.header("x-echo-h-transfer-encoding"), None);
        assert_eq!(a.header("x-echo-h-connection"), None);
    }
    // Streams to the upstream are multiplexed on the worker's pooled connection(s).
    let seen = up.seen();
    assert!(seen.iter().all(|s| s.version == Version::HTTP_2));
    proxy.shutdown();
}

struct Tls {
    _dir: tempfile::TempDir,
    server: ServerTls,
    roots: rustls::RootCertStore,
}

/// A self-signed certificate for `localhost` and 127.0.0.1.
fn self_signed() -> Tls {
    let key =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_file = dir.path().join("cert.pem");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&cert_file, key.cert.pem()).unwrap();
    std::fs::write(&key_file, key.signing_key.serialize_pem()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(key.cert.der().clone()).unwrap();
    Tls {
        _dir: dir,
        server: ServerTls {
            cert_file,
            key_file,
            ca_file: None,
            require_client_certificate: false,
        },
        roots,
    }
}

/// One request over TLS offering `alpn`; the answer and the negotiated protocol.
fn tls_exchange(
    addr: SocketAddr,
    roots: &rustls::RootCertStore,
    server_name: &str,
    alpn: &[&[u8]],
    headers: &[(&str, &str)],
) -> (Answer, Option<Vec<u8>>) {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots.clone())
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let tls = connector.connect(name, tcp).await.unwrap();
        let negotiated = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let proto = if negotiated.as_deref() == Some(b"h2") {
            Proto::H2
        } else {
            Proto::H1
        };
        let req = request(addr, proto, "GET", "/tls", headers, empty());
        let a = answer(exchange_on(tls, proto, req).await.unwrap())
            .await
            .unwrap();
        (a, negotiated)
    })
}

#[test]
fn tls_downstream_with_alpn_and_tls_properties() {
    let up = upstream();
    let tls = self_signed();
    let mut spec = spec(up.address, vec![plugin("hostcalls", "")]);
    spec.listeners[0].tls = Some(tls.server.clone());
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    let props: &[(&str, &str)] = &[
        ("x-scenario", "properties"),
        (
            "x-properties",
            "connection.tls_version,connection.requested_server_name,request.scheme,request.protocol,connection.mtls",
        ),
    ];
    let prop = |a: &Answer, name: &str| {
        let v = a
            .header(&format!("x-echo-h-x-prop-{}", name.replace('.', "-")))
            .unwrap_or_else(|| panic!("{name}: {a:?}"));
        // The Rust SDK reports an empty value as no value.
        if v == "none" {
            return String::new();
        }
        String::from_utf8(unhex(v)).unwrap()
    };
    for (alpn, version, protocol) in [
        (&[&b"h2"[..], b"http/1.1"][..], Version::HTTP_2, "HTTP/2"),
        (&[&b"http/1.1"[..]][..], Version::HTTP_11, "HTTP/1.1"),
        (&[][..], Version::HTTP_11, "HTTP/1.1"),
    ] {
        let (a, negotiated) = tls_exchange(addr, &tls.roots, "localhost", alpn, props);
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.version, version);
        if alpn.is_empty() {
            assert_eq!(negotiated, None);
        } else {
            assert_eq!(negotiated.as_deref(), Some(alpn[0]));
        }
        assert_eq!(prop(&a, "connection.tls_version"), "TLSv1.3");
        assert_eq!(prop(&a, "connection.requested_server_name"), "localhost");
        // HTTP/2 passes the client's :scheme on, as Envoy (this client says `http`); HTTP/1.1
        // takes it from the connection.
        let scheme = if version == Version::HTTP_2 {
            "http"
        } else {
            "https"
        };
        assert_eq!(prop(&a, "request.scheme"), scheme);
        assert_eq!(prop(&a, "request.protocol"), protocol);
        assert_eq!(a.header("x-echo-h-x-forwarded-proto"), Some("https"));
        assert_eq!(a.header("x-hostcalls-response"), Some("1"));
    }
    // Without SNI (an IP address as the name), the server name is empty (which the Rust
    // SDK shows as no value).
    let (a, _) = tls_exchange(addr, &tls.roots, "127.0.0.1", &[b"h2"], props);
    assert_eq!(a.status, 200);
    assert_eq!(prop(&a, "connection.requested_server_name"), "");
    // Plain text on the TLS port gets no HTTP answer, and the listener goes on.
    let answer = raw(
        addr,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_millis(500),
    );
    assert!(!answer.starts_with("HTTP/"), "{answer}");
    let (a, _) = tls_exchange(addr, &tls.roots, "localhost", &[b"http/1.1"], &[]);
    assert_eq!(a.status, 200);
    proxy.shutdown();
}

#[test]
fn tls_listener_with_a_bad_certificate_does_not_start() {
    let up = upstream();
    let dir = tempfile::tempdir().unwrap();
    let cert_file = dir.path().join("cert.pem");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&cert_file, "not a certificate").unwrap();
    std::fs::write(&key_file, "not a key").unwrap();
    let mut spec = spec(up.address, vec![]);
    spec.listeners[0].tls = Some(ServerTls {
        cert_file,
        key_file,
        ca_file: None,
        require_client_certificate: false,
    });
    let host = wasp_host::Host::new(wasp_host::HostConfig {
        pooling_instances: Some(4),
        ..Default::default()
    })
    .unwrap();
    match wasp_proxy::Proxy::start(spec, host) {
        Err(wasp_proxy::StartError::Tls { name, .. }) => assert_eq!(name, "main"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("started with a bad certificate"),
    }
}
