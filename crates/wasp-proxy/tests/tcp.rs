//! TCP listeners over real sockets: bytes relayed both ways, a half-close passed on as
//! Envoy's tcp_proxy does, a large transfer intact through bounded buffers, the idle timeout,
//! SNI routes with TLS passed through, TLS terminated, an unreachable upstream.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;
use wasp_proxy::spec::*;

/// A TCP server on its own thread running `serve` for every connection.
fn tcp_upstream(serve: fn(TcpStream)) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve(conn));
        }
    });
    address
}

/// Reads everything until the client's FIN, then answers it upper-cased and closes.
fn upper_after_eof(mut conn: TcpStream) {
    let mut all = Vec::new();
    let _ = conn.read_to_end(&mut all);
    let _ = conn.write_all(&all.to_ascii_uppercase());
}

/// Echoes as it reads; half-closes after the client's FIN.
fn echo(mut conn: TcpStream) {
    let mut buf = [0u8; 65536];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
    let _ = conn.shutdown(Shutdown::Write);
}

fn tcp_spec(listener: ListenerSpec, clusters: Vec<ClusterSpec>) -> ProxySpec {
    ProxySpec {
        admin: Some("127.0.0.1:0".parse().unwrap()),
        admin_read_only: false,
        workers: 1,
        node: NodeSpec::default(),
        listeners: vec![listener],
        clusters,
        plugins: Vec::new(),
        buffer_limit_bytes: 1 << 20,
        tracing: None,
        plugin_recovery: Default::default(),
        max_connections: None,
    }
}

fn tcp_listener(proxy: TcpProxySpec) -> ListenerSpec {
    ListenerSpec {
        name: "tcp".into(),
        address: "127.0.0.1:0".parse().unwrap(),
        direction: TrafficDirection::Inbound,
        tls: None,
        routes: Vec::new(),
        virtual_hosts: Vec::new(),
        tcp: Some(proxy),
        access_log: Vec::new(),
        http: Default::default(),
    }
}

fn to(cluster: &str) -> TcpProxySpec {
    TcpProxySpec {
        cluster: Some(cluster.into()),
        ..TcpProxySpec::default()
    }
}

fn connect(proxy: &wasp_proxy::Proxy) -> TcpStream {
    let conn = TcpStream::connect(proxy.address("tcp").unwrap()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn
}

#[test]
fn bytes_pass_both_ways_and_a_half_close_is_passed_on() {
    let up = tcp_upstream(upper_after_eof);
    let proxy = start(tcp_spec(
        to("db").pipe(tcp_listener),
        vec![cluster("db", up)],
    ));
    let mut conn = connect(&proxy);
    conn.write_all(b"hello ").unwrap();
    conn.write_all(b"wasp").unwrap();
    // The upstream answers only after it saw our FIN: the half-close must reach it, and its
    // answer must still come back on the half-closed connection.
    conn.shutdown(Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).unwrap();
    assert_eq!(answer, b"HELLO WASP");
    let text = stats(&proxy);
    assert!(
        text.contains("envoy_listener_downstream_cx_active{envoy_listener_address="),
        "{text}"
    );
    assert!(
        eventually(Duration::from_secs(2), || metric(
            &stats(&proxy),
            "envoy_tcp_downstream_cx_rx_bytes_total{envoy_tcp_prefix=\"tcp\"}"
        ) == Some(10.0)),
        "{text}"
    );
    assert_eq!(
        metric(
            &stats(&proxy),
            "envoy_tcp_downstream_cx_tx_bytes_total{envoy_tcp_prefix=\"tcp\"}"
        ),
        Some(10.0)
    );
    assert_eq!(
        metric(
            &stats(&proxy),
            "envoy_tcp_downstream_cx_total{envoy_tcp_prefix=\"tcp\"}"
        ),
        Some(1.0)
    );
    proxy.shutdown();
}

#[test]
fn a_large_transfer_arrives_intact_both_ways() {
    let up = tcp_upstream(echo);
    let proxy = start(tcp_spec(
        to("echo").pipe(tcp_listener),
        vec![cluster("echo", up)],
    ));
    let conn = connect(&proxy);
    let sent: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut writer = conn.try_clone().unwrap();
    let to_send = sent.clone();
    // Writing 8 MiB while nobody reads would stall on full buffers: read at the same time.
    let write = std::thread::spawn(move || {
        writer.write_all(&to_send).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut received = Vec::new();
    (&conn).read_to_end(&mut received).unwrap();
    write.join().unwrap();
    assert_eq!(received.len(), sent.len());
    assert!(received == sent, "the bytes changed on the way");
    proxy.shutdown();
}

#[test]
fn an_idle_connection_is_closed_and_an_active_one_is_not() {
    let up = tcp_upstream(echo);
    let mut relay = to("echo");
    relay.idle_timeout = Some(Duration::from_millis(400));
    let proxy = start(tcp_spec(tcp_listener(relay), vec![cluster("echo", up)]));

    // Active: a byte every 100 ms for 1.2 s (three idle timeouts) keeps it open.
    let mut active = connect(&proxy);
    for _ in 0..12 {
        active.write_all(b"x").unwrap();
        let mut byte = [0u8; 1];
        active.read_exact(&mut byte).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    active.shutdown(Shutdown::Both).unwrap();

    let mut idle = connect(&proxy);
    let started = Instant::now();
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).unwrap();
    let took = started.elapsed();
    assert!(rest.is_empty());
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(eventually(Duration::from_secs(2), || metric(
        &stats(&proxy),
        "envoy_tcp_idle_timeout_total{envoy_tcp_prefix=\"tcp\"}"
    ) == Some(1.0)));
    proxy.shutdown();
}

/// Reads the first bytes the client sends (its ClientHello), then answers `NAME` and closes.
fn tag_a(conn: TcpStream) {
    tag(conn, b"a");
}
fn tag_b(conn: TcpStream) {
    tag(conn, b"b");
}
fn tag_default(conn: TcpStream) {
    tag(conn, b"default");
}
fn tag(mut conn: TcpStream, name: &[u8]) {
    let mut buf = [0u8; 4096];
    if matches!(conn.read(&mut buf), Ok(n) if n > 0) {
        let _ = conn.write_all(name);
    }
}

/// The first flight of a TLS client for `server_name` (its ClientHello), as rustls sends it.
fn client_hello(server_name: &str) -> Vec<u8> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string()).unwrap();
    let mut tls = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut out = Vec::new();
    tls.write_tls(&mut out).unwrap();
    out
}

/// What the upstream a connection reached says after the ClientHello for `server_name`
/// (sent in two pieces, as a slow client would); empty when the proxy closed it.
fn reached(proxy: &wasp_proxy::Proxy, server_name: &str) -> String {
    let mut conn = connect(proxy);
    let hello = client_hello(server_name);
    conn.write_all(&hello[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    conn.write_all(&hello[10..]).unwrap();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    String::from_utf8(answer).unwrap()
}

#[test]
fn sni_routes_pick_the_cluster_and_pass_the_tls_bytes_through() {
    let (a, b, default) = (
        tcp_upstream(tag_a),
        tcp_upstream(tag_b),
        tcp_upstream(tag_default),
    );
    let clusters = vec![
        cluster("a", a),
        cluster("b", b),
        cluster("default", default),
    ];
    let routes = vec![
        SniRoute {
            server_names: vec!["a.example.com".into()],
            cluster: "a".into(),
        },
        SniRoute {
            server_names: vec!["*.b.example".into()],
            cluster: "b".into(),
        },
    ];
    let relay = TcpProxySpec {
        cluster: Some("default".into()),
        sni_routes: routes.clone(),
        idle_timeout: None,
    };
    let proxy = start(tcp_spec(tcp_listener(relay), clusters.clone()));
    assert_eq!(reached(&proxy, "a.example.com"), "a");
    assert_eq!(
        reached(&proxy, "A.Example.COM"),
        "a",
        "server names compare without case"
    );
    assert_eq!(reached(&proxy, "db.b.example"), "b");
    assert_eq!(
        reached(&proxy, "b.example"),
        "default",
        "a wildcard needs a label"
    );
    assert_eq!(reached(&proxy, "other.example"), "default");
    proxy.shutdown();

    // Without a default cluster, an unknown name is closed and counted.
    let relay = TcpProxySpec {
        cluster: None,
        sni_routes: routes,
        idle_timeout: None,
    };
    let proxy = start(tcp_spec(tcp_listener(relay), clusters));
    assert_eq!(reached(&proxy, "other.example"), "");
    assert_eq!(reached(&proxy, "a.example.com"), "a");
    assert!(eventually(Duration::from_secs(2), || metric(
        &stats(&proxy),
        "envoy_tcp_downstream_cx_no_route_total{envoy_tcp_prefix=\"tcp\"}"
    ) == Some(1.0)));
    proxy.shutdown();
}

#[test]
fn tls_is_terminated_and_plain_bytes_go_upstream() {
    let up = tcp_upstream(upper_after_eof);
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, key.cert.pem()).unwrap();
    std::fs::write(&key_file, key.signing_key.serialize_pem()).unwrap();
    let mut listener = tcp_listener(to("db"));
    listener.tls = Some(ServerTls {
        cert_file,
        key_file,
        ca_file: None,
        require_client_certificate: false,
    });
    let proxy = start(tcp_spec(listener, vec![cluster("db", up)]));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(key.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut stream = rustls::StreamOwned::new(tls, connect(&proxy));
    stream.write_all(b"over tls").unwrap();
    stream.conn.send_close_notify();
    stream.flush().unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert_eq!(answer, b"OVER TLS");
    proxy.shutdown();
}

#[test]
fn an_unreachable_upstream_closes_the_client_connection() {
    let proxy = start(tcp_spec(
        to("gone").pipe(tcp_listener),
        vec![cluster("gone", closed_port())],
    ));
    let mut conn = connect(&proxy);
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    assert!(answer.is_empty());
    assert!(eventually(Duration::from_secs(2), || metric(
        &stats(&proxy),
        "envoy_tcp_upstream_cx_connect_fail_total{envoy_tcp_prefix=\"tcp\"}"
    ) == Some(1.0)));
    proxy.shutdown();
}

/// `value.pipe(f)` = `f(value)`: reads left to right in the specs above.
trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

/// A TCP listener to `echo` with the network test plugin, configured with `config`.
fn with_network_plugin(config: &str) -> wasp_proxy::Proxy {
    let up = tcp_upstream(echo);
    let mut spec = tcp_spec(to("echo").pipe(tcp_listener), vec![cluster("echo", up)]);
    spec.plugins = vec![with_wasm(plugin("network", config), |w| w.network = true)];
    start(spec)
}

#[test]
fn a_network_plugin_rewrites_both_directions() {
    let proxy = with_network_plugin("upper tag-upstream");
    let mut conn = connect(&proxy);
    conn.write_all(b"hello wasp").unwrap();
    conn.shutdown(Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8(answer).unwrap();
    // Upper-cased on the way up, tagged (per chunk) on the way down.
    assert!(answer.starts_with("[wasp]"), "{answer}");
    assert_eq!(answer.replace("[wasp]", ""), "HELLO WASP");
    proxy.shutdown();
}

#[test]
fn a_network_plugin_holds_bytes_until_it_lets_them_go() {
    let proxy = with_network_plugin("hold-line");
    let mut conn = connect(&proxy);
    conn.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    conn.write_all(b"abc").unwrap();
    let mut buf = [0u8; 64];
    // Held: nothing reached the echo upstream, so nothing comes back.
    assert!(conn.read(&mut buf).is_err(), "the held bytes went through");
    conn.write_all(b"def\n").unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    while got.len() < 7 {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"abcdef\n", "all the held bytes, once, in order");
    drop(conn);
    proxy.shutdown();
}

#[test]
fn a_network_plugin_can_close_the_connection() {
    let proxy = with_network_plugin("close-on=BYE");
    let mut conn = connect(&proxy);
    conn.write_all(b"fine\n").unwrap();
    let mut buf = [0u8; 5];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"fine\n");
    conn.write_all(b"now BYE").unwrap();
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "closed without passing the bytes on: {rest:?}"
    );
    proxy.shutdown();
}
