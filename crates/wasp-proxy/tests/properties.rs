//! Properties (`proxy_get_property`) as plugins see them on a real connection, with Envoy's
//! names and encodings: strings raw, integers 8 bytes little-endian.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::*;

const PROPS: &str = "source.address,source.port,destination.address,destination.port,\
request.path,request.url_path,request.query,request.host,request.method,request.scheme,\
request.protocol,request.id,request.time,connection.id,connection.mtls,connection.tls_version,\
xds.node.id,node.id,node.cluster,xds.node.cluster,xds.node.metadata.region,plugin_name,\
plugin_root_id,plugin_vm_id,upstream.address,xds.cluster_name,xds.listener_direction,\
xds.filter_chain_name,response.code,no.such.property";

/// The raw value of a property the plugin reported, `None` for NOT_FOUND.
fn prop(a: &Answer, path: &str) -> Option<Vec<u8>> {
    let name = format!("x-echo-h-x-prop-{}", path.replace('.', "-"));
    let value = a
        .header(&name)
        .unwrap_or_else(|| panic!("{name} missing: {a:?}"));
    (value != "none").then(|| unhex(value))
}

fn text(a: &Answer, path: &str) -> String {
    String::from_utf8(prop(a, path).unwrap_or_else(|| panic!("{path} not found"))).unwrap()
}

fn int(a: &Answer, path: &str) -> i64 {
    let bytes = prop(a, path).unwrap_or_else(|| panic!("{path} not found"));
    i64::from_le_bytes(bytes.try_into().unwrap())
}

/// Requests on one connection; answers with the client's own address.
fn on_one_connection(
    addr: SocketAddr,
    proto: Proto,
    requests: &[(&str, &[(&str, &str)])],
) -> (SocketAddr, Vec<Answer>) {
    block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let local = tcp.local_addr().unwrap();
        let io = hyper_util::rt::TokioIo::new(tcp);
        let mut answers = Vec::new();
        match proto {
            Proto::H1 => {
                let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
                tokio::spawn(conn);
                for (path, headers) in requests {
                    sender.ready().await.unwrap();
                    let req = request(addr, proto, "GET", path, headers, empty());
                    answers.push(
                        answer(sender.send_request(req).await.unwrap())
                            .await
                            .unwrap(),
                    );
                }
            }
            Proto::H2 => {
                let (mut sender, conn) =
                    hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                        .await
                        .unwrap();
                tokio::spawn(conn);
                for (path, headers) in requests {
                    let req = request(addr, proto, "GET", path, headers, empty());
                    answers.push(
                        answer(sender.send_request(req).await.unwrap())
                            .await
                            .unwrap(),
                    );
                }
            }
        }
        (local, answers)
    })
}

#[test]
fn connection_request_node_and_plugin_properties() {
    let up = upstream();
    let mut spec = spec(up.address, vec![plugin("hostcalls", "")]);
    spec.node
        .metadata
        .insert("region".into(), serde_json::Value::String("eu-1".into()));
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    let before = SystemTime::now();
    let headers: &[(&str, &str)] = &[("x-scenario", "properties"), ("x-properties", PROPS)];
    for (proto, protocol) in [(Proto::H1, "HTTP/1.1"), (Proto::H2, "HTTP/2")] {
        let (client, answers) =
            on_one_connection(addr, proto, &[("/p/a?x=1", headers), ("/p/b", headers)]);
        let a = &answers[0];
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(text(a, "source.address"), client.to_string());
        assert_eq!(int(a, "source.port"), i64::from(client.port()));
        assert_eq!(text(a, "destination.address"), addr.to_string());
        assert_eq!(int(a, "destination.port"), i64::from(addr.port()));
        assert_eq!(text(a, "request.path"), "/p/a?x=1");
        assert_eq!(text(a, "request.url_path"), "/p/a");
        assert_eq!(text(a, "request.query"), "x=1");
        assert_eq!(text(a, "request.host"), addr.to_string());
        assert_eq!(text(a, "request.method"), "GET");
        assert_eq!(text(a, "request.scheme"), "http");
        assert_eq!(text(a, "request.protocol"), protocol, "{proto:?}");
        assert_eq!(
            text(a, "request.id"),
            a.header("x-echo-h-x-request-id").unwrap()
        );
        let time = UNIX_EPOCH + Duration::from_nanos(int(a, "request.time") as u64);
        assert!(time >= before - Duration::from_secs(1) && time <= SystemTime::now());
        assert_eq!(prop(a, "connection.mtls"), Some(vec![0]));
        // Plain TCP: no TLS attributes.
        assert_eq!(prop(a, "connection.tls_version"), None);
        assert_eq!(text(a, "xds.node.id"), "test-node");
        // Envoy 1.40 answers only the `xds.` spellings.
        assert_eq!(prop(a, "node.id"), None);
        assert_eq!(prop(a, "node.cluster"), None);
        assert_eq!(text(a, "xds.node.cluster"), "test-cluster");
        assert_eq!(text(a, "xds.node.metadata.region"), "eu-1");
        assert_eq!(text(a, "plugin_name"), "hostcalls");
        assert_eq!(text(a, "plugin_root_id"), "hostcalls");
        assert_eq!(text(a, "plugin_vm_id"), "hostcalls");
        assert_eq!(int(a, "xds.listener_direction"), 1, "inbound");
        assert_eq!(text(a, "xds.filter_chain_name"), "main");
        // Envoy routes before the filters run: the cluster is known, the upstream host is
        // not picked yet, and of course there is no response yet.
        assert_eq!(prop(a, "upstream.address"), None);
        assert_eq!(text(a, "xds.cluster_name"), "backend");
        assert_eq!(prop(a, "response.code"), None);
        assert_eq!(prop(a, "no.such.property"), None);

        // The same connection: the same id; the request's own attributes change.
        let b = &answers[1];
        assert_eq!(text(b, "request.path"), "/p/b");
        assert_eq!(prop(a, "connection.id"), prop(b, "connection.id"));
        assert_eq!(text(b, "source.address"), client.to_string());
        assert_ne!(text(a, "request.id"), text(b, "request.id"));
    }
    // Another connection, another id.
    let c = get(addr, "/", headers);
    let d = get(addr, "/", headers);
    assert_ne!(prop(&c, "connection.id"), prop(&d, "connection.id"));
    proxy.shutdown();
}

#[test]
fn request_protocol_of_http_1_0() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    let answer = raw(
        addr,
        b"GET /old HTTP/1.0\r\nHost: x\r\nx-scenario: properties\r\nx-properties: request.protocol\r\n\r\n",
        Duration::from_secs(2),
    );
    assert_eq!(raw_status(&answer), Some(200), "{answer}");
    let line = answer
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("x-echo-h-x-prop-request-protocol:")
        })
        .unwrap_or_else(|| panic!("{answer}"));
    let value = line.split_once(':').unwrap().1.trim();
    assert_eq!(unhex(value), b"HTTP/1.0");
    proxy.shutdown();
}

#[test]
fn plugin_name_is_the_plugins_own() {
    let up = upstream();
    let mut p = plugin("hostcalls", "");
    p.name = "ns.my-plugin".into();
    let p = with_wasm(p, |w| {
        w.root_id = "my_root".into();
        w.vm_id = "my_vm".into();
    });
    let proxy = start(spec(up.address, vec![p]));
    let addr = proxy.address("main").unwrap();
    let a = get(
        addr,
        "/",
        &[
            ("x-scenario", "properties"),
            ("x-properties", "plugin_name,plugin_root_id,plugin_vm_id"),
        ],
    );
    assert_eq!(text(&a, "plugin_name"), "ns.my-plugin");
    assert_eq!(text(&a, "plugin_root_id"), "my_root");
    assert_eq!(text(&a, "plugin_vm_id"), "my_vm");
    proxy.shutdown();
}

#[test]
fn set_property_at_a_dotted_path_is_not_read_back_as_in_envoy() {
    let up = upstream();
    let proxy = start(spec(up.address, vec![plugin("hostcalls", "")]));
    let addr = proxy.address("main").unwrap();
    let a = get(addr, "/", &[("x-scenario", "set-property")]);
    // Envoy stores `wasp.test` whole but reads a path by its first segment.
    assert_eq!(a.header("x-echo-h-x-set-property"), Some("none"), "{a:?}");
    // Filter state belongs to the stream: a new request does not see it.
    let b = get(
        addr,
        "/",
        &[("x-scenario", "properties"), ("x-properties", "wasp.test")],
    );
    assert_eq!(prop(&b, "wasp.test"), None);
    proxy.shutdown();
}
