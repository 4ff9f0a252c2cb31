//! A NETWORK WasmPlugin pulled from a real registry (Debian's docker-registry) runs on a TCP
//! listener of `wasp run`: the bytes both ways pass through it, while the HTTP listener next
//! to it is not touched by it; a TrafficExtension's L4 form (`wasm.type: NETWORK`) runs on the
//! other TCP listener, each where its `match.ports` puts it.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use support::*;
use wasp_test_support::raw::raw_get as get;

/// A TCP echo server on its own thread: echoes until the client's FIN, then half-closes.
fn echo_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = conn.shutdown(Shutdown::Write);
            });
        }
    });
    address
}

#[test]
fn a_network_wasmplugin_from_a_registry_runs_on_a_tcp_listener() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (_registry, port) = registry(dir);
    let url = format!("oci://127.0.0.1:{port}/plugins/network:v1");
    let (tcp_port, other_port) = (free_port(), free_port());
    let tcp: SocketAddr = format!("127.0.0.1:{tcp_port}").parse().unwrap();
    let other: SocketAddr = format!("127.0.0.1:{other_port}").parse().unwrap();
    push(&url, &wasp_test_plugins::path("network"), "oci");
    std::fs::create_dir(dir.join("plugins")).unwrap();
    std::fs::write(
        dir.join("plugins/network.yaml"),
        format!(
            "apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {{ name: shouter, namespace: shop }}
spec:
  type: NETWORK
  url: {url}
  pluginConfig: {{ mode: upper tag-upstream }}
  match: [{{ ports: [{{ number: {tcp_port} }}] }}]
---
apiVersion: extensions.istio.io/v1alpha1
kind: TrafficExtension
metadata: {{ name: tagger, namespace: shop }}
spec:
  match: [{{ ports: [{{ number: {other_port} }}] }}]
  wasm:
    type: NETWORK
    url: {url}
    pluginConfig: {{ mode: tag-upstream }}
"
        ),
    )
    .unwrap();
    let upstream = echo_upstream();
    let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    std::fs::write(
        dir.join("wasp.yaml"),
        format!(
            r#"admin: {{ address: "{admin}" }}
workload: {{ namespace: shop, labels: {{ app: cart }} }}
listeners:
  - name: db
    address: "{tcp}"
    protocol: tcp
    cluster: echo
  - name: db2
    address: "{other}"
    protocol: tcp
    cluster: echo
  - name: web
    address: "{http}"
    routes:
      - match: {{ prefix: / }}
        direct_response: {{ status: 200, body: "plain http\n" }}
clusters:
  - name: echo
    endpoints: ["{upstream}"]
plugins:
  sources: [./plugins/]
  insecureRegistries: ["127.0.0.1:{port}"]
"#
        ),
    )
    .unwrap();
    let _wasp = run_wasp(dir, admin);
    let log = || std::fs::read_to_string(dir.join("wasp.log")).unwrap_or_default();

    let mut conn = TcpStream::connect(tcp).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"hello over tcp").unwrap();
    conn.shutdown(Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("[wasp]"), "{answer}\n{}", log());
    assert_eq!(answer.replace("[wasp]", ""), "HELLO OVER TCP");

    // The HTTP listener has no network plugin in its way.
    let page = get(http, "/").unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(page.body, "plain http\n");

    // /plugins shows it, running.
    let plugins = get(admin, "/plugins").unwrap().body;
    assert!(
        plugins.contains("shop.shouter") && plugins.contains("\"ready\""),
        "{plugins}"
    );
}
