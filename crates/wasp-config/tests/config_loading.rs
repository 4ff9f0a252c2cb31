//! Loading a wasp.yaml: a full round trip, the defaults, `buffer_limit` forms and relative
//! paths resolved against the config's folder.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{BASE, Dir, MODULE, sha256};
use wasp_config::spec::{FailStrategy, PathMatch, RouteAction, TrafficDirection, UpstreamProtocol};
use wasp_config::{Workload, load, parse};

#[test]
fn full_example_round_trip() {
    let dir = Dir::new();
    let abs = dir.path().join("hello.wasm");
    let yaml = format!(
        r#"
admin: {{ address: 127.0.0.1:9901 }}
workers: 2
node: {{ id: sidecar~10.1.2.3~pod.ns~ns.svc.cluster.local, cluster: svc, metadata: {{ region: eu, n: 1 }} }}
workload: {{ namespace: ns, labels: {{ app: hello-world, version: 1 }} }}
buffer_limit: 64KiB
listeners:
  - name: inbound
    address: 127.0.0.1:8080
    direction: inbound
    protocol: http
    tls: {{ cert_file: c.pem, key_file: k.pem }}
    routes:
      - match: {{ prefix: /api, headers: [{{ name: X-Env, value: prod }}, {{ name: x-debug }}] }}
        cluster: backend
        timeout: 250ms
      - match: {{ path: /healthz }}
        direct_response: {{ status: 200, body: "ok\n" }}
      - match: {{ regex: "/v[0-9]+/.*" }}
        cluster: backend
        timeout: 0s
      - match: {{ prefix: / }}
        cluster: h2
  - name: outbound
    address: "[::1]:15001"
    direction: outbound
clusters:
  - name: backend
    endpoints: [127.0.0.1:9000, "localhost:9001"]
    protocol: http1
    connect_timeout: 1s
    tls: {{ sni: example.com, ca_file: ca.pem }}
  - name: h2
    endpoints: ["[::1]:9002"]
    protocol: http2
plugins:
  sources: []
  inline:
    - name: hello
      url: file://{abs}
      sha256: {sha}
      pluginName: my_root
      configuration: "any bytes"
      vmConfiguration: "vm conf"
      vmId: shared
      env: {{ B: "2", A: "1" }}
      failStrategy: FAIL_OPEN
      phase: AUTHN
      priority: 10
      listeners: [inbound]
    - name: stats
      url: ./other.wasm
      pluginConfig: {{ z: 1 }}
      failStrategy: FAIL_RELOAD
      phase: STATS
"#,
        abs = abs.display(),
        sha = sha256(MODULE),
    );
    let loaded = dir.load(&yaml).unwrap();
    let spec = &loaded.spec;
    assert_eq!(loaded.source, dir.path().join("wasp.yaml"));
    assert_eq!(
        loaded.workload,
        Workload {
            namespace: "ns".into(),
            labels: [("app", "hello-world"), ("version", "1")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    );
    assert_eq!(spec.admin, Some("127.0.0.1:9901".parse().unwrap()));
    assert_eq!(spec.workers, 2);
    assert_eq!(spec.node.id, "sidecar~10.1.2.3~pod.ns~ns.svc.cluster.local");
    assert_eq!(spec.node.cluster, "svc");
    assert_eq!(
        serde_json::Value::Object(spec.node.metadata.clone()),
        serde_json::json!({"region": "eu", "n": 1})
    );
    assert_eq!(spec.buffer_limit_bytes, 64 * 1024);

    assert_eq!(spec.listeners.len(), 2);
    let inbound = &spec.listeners[0];
    assert_eq!(inbound.name, "inbound");
    assert_eq!(
        inbound.address,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(inbound.direction, TrafficDirection::Inbound);
    let tls = inbound.tls.as_ref().unwrap();
    assert_eq!(tls.cert_file, dir.path().join("c.pem"));
    assert_eq!(tls.key_file, dir.path().join("k.pem"));
    assert_eq!(inbound.routes.len(), 4);
    let r = &inbound.routes[0];
    assert!(matches!(&r.path, PathMatch::Prefix(p) if p == "/api"));
    assert_eq!(r.headers.len(), 2);
    assert_eq!(r.headers[0].name, "x-env");
    assert_eq!(r.headers[0].value.as_deref(), Some("prod"));
    assert_eq!(r.headers[1].name, "x-debug");
    assert_eq!(r.headers[1].value, None);
    assert!(matches!(
        &r.action,
        RouteAction::Cluster { name, timeout: Some(t), .. } if name == "backend" && *t == Duration::from_millis(250)
    ));
    let r = &inbound.routes[1];
    assert!(matches!(&r.path, PathMatch::Exact(p) if p == "/healthz"));
    assert!(matches!(
        &r.action,
        RouteAction::Direct { status: 200, body } if body == "ok\n"
    ));
    let r = &inbound.routes[2];
    let PathMatch::Regex(re) = &r.path else {
        panic!("regex expected")
    };
    assert!(re.is_match("/v1/users"));
    assert!(
        !re.is_match("/api/v1/users"),
        "regexes match the whole path"
    );
    assert!(matches!(
        &r.action,
        RouteAction::Cluster { timeout: None, .. }
    ));
    let r = &inbound.routes[3];
    assert!(matches!(
        &r.action,
        RouteAction::Cluster { name, timeout: Some(t), .. } if name == "h2" && *t == Duration::from_secs(15)
    ));
    let outbound = &spec.listeners[1];
    assert_eq!(
        outbound.address,
        "[::1]:15001".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(outbound.direction, TrafficDirection::Outbound);
    assert!(outbound.tls.is_none());
    assert!(outbound.routes.is_empty());

    assert_eq!(spec.clusters.len(), 2);
    let backend = &spec.clusters[0];
    assert_eq!(backend.name, "backend");
    assert_eq!(backend.endpoints, ["127.0.0.1:9000", "localhost:9001"]);
    assert_eq!(backend.protocol, UpstreamProtocol::Http1);
    assert_eq!(backend.connect_timeout, Duration::from_secs(1));
    let tls = backend.tls.as_ref().unwrap();
    assert_eq!(tls.sni.as_deref(), Some("example.com"));
    assert_eq!(
        tls.ca_file.as_deref(),
        Some(dir.path().join("ca.pem").as_path())
    );
    let h2 = &spec.clusters[1];
    assert_eq!(h2.protocol, UpstreamProtocol::Http2);
    assert_eq!(h2.connect_timeout, Duration::from_secs(5));
    assert!(h2.tls.is_none());

    assert_eq!(spec.plugins.len(), 2);
    let hello = &spec.plugins[0];
    let hello_wasm = hello.wasm().expect("a Wasm plugin");
    assert_eq!(hello.name, "hello");
    assert_eq!(hello.root_id(), "my_root");
    assert_eq!(hello.url, format!("file://{}", abs.display()));
    assert_eq!(&*hello_wasm.module, MODULE);
    assert_eq!(hello_wasm.configuration, b"any bytes");
    assert_eq!(hello_wasm.vm_configuration, b"vm conf");
    assert_eq!(hello_wasm.vm_id, "shared");
    assert_eq!(
        hello_wasm.env,
        [
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), "2".to_string())
        ]
    );
    assert_eq!(hello.fail_strategy, FailStrategy::FailOpen);
    assert_eq!(hello.phase.as_deref(), Some("AUTHN"));
    assert_eq!(hello.priority, Some(10));
    assert_eq!(hello.listeners, ["inbound"]);
    let stats = &spec.plugins[1];
    let stats_wasm = stats.wasm().expect("a Wasm plugin");
    assert_eq!(stats.name, "stats");
    assert_eq!(stats.root_id(), "stats");
    // Unset: empty, as Envoy's (plugins with the same module then share a VM).
    assert_eq!(stats_wasm.vm_id, "");
    assert_eq!(
        stats.url,
        format!("file://{}", dir.path().join("other.wasm").display())
    );
    assert_eq!(stats_wasm.configuration, br#"{"z":1}"#);
    assert!(stats_wasm.vm_configuration.is_empty());
    assert!(stats_wasm.env.is_empty());
    assert_eq!(stats.fail_strategy, FailStrategy::FailReload);
    assert_eq!(stats.phase.as_deref(), Some("STATS"));
    assert_eq!(stats.priority, None);
    assert!(stats.listeners.is_empty());
}

#[test]
fn defaults() {
    let dir = Dir::new();
    let spec = dir.load(BASE).unwrap().spec;
    assert_eq!(spec.admin, None);
    assert_eq!(
        spec.workers,
        std::thread::available_parallelism().unwrap().get()
    );
    assert_eq!(spec.node.id, "");
    assert_eq!(spec.buffer_limit_bytes, 1024 * 1024);
    assert_eq!(spec.listeners[0].direction, TrafficDirection::Inbound);
    assert!(matches!(
        &spec.listeners[0].routes[0].action,
        RouteAction::Cluster { timeout: Some(t), .. } if *t == Duration::from_secs(15)
    ));
    assert_eq!(spec.clusters[0].protocol, UpstreamProtocol::Http1);
    assert_eq!(spec.clusters[0].connect_timeout, Duration::from_secs(5));
    assert!(spec.plugins.is_empty());
    assert_eq!(dir.load(BASE).unwrap().workload, Workload::default());
    assert_eq!(Workload::default().namespace, "default");
}

#[test]
fn buffer_limit_forms() {
    let dir = Dir::new();
    for (text, bytes) in [
        ("1MiB", 1 << 20),
        ("4096", 4096),
        ("\"2 KiB\"", 2048),
        ("1GiB", 1 << 30),
    ] {
        let spec = dir
            .load(&format!("buffer_limit: {text}\n{BASE}"))
            .unwrap()
            .spec;
        assert_eq!(spec.buffer_limit_bytes, bytes, "{text}");
    }
}

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let dir = Dir::new();
    let (cert, key) = common::certificate();
    dir.write("conf/certs/c.pem", cert.as_bytes());
    dir.write("conf/certs/k.pem", key.as_bytes());
    dir.write("plugins/p.wasm", b"p");
    let yaml = "\
listeners:
  - name: inbound
    address: 127.0.0.1:8080
    tls: { cert_file: certs/c.pem, key_file: ./certs/k.pem }
plugins:
  inline:
    - name: p
      url: ../plugins/p.wasm
";
    let file = dir.write("conf/wasp.yaml", yaml.as_bytes());
    // Loaded from elsewhere: paths still resolve against conf/.
    let loaded = load(&file).unwrap();
    let tls = loaded.spec.listeners[0].tls.as_ref().unwrap();
    assert_eq!(tls.cert_file, dir.path().join("conf/certs/c.pem"));
    assert_eq!(tls.key_file, dir.path().join("conf/certs/k.pem"));
    assert_eq!(&*loaded.spec.plugins[0].wasm().unwrap().module, b"p");
    assert_eq!(
        loaded.spec.plugins[0].url,
        format!(
            "file://{}",
            dir.path().join("conf/../plugins/p.wasm").display()
        )
    );
    // parse() takes the same base from the file name it is given.
    let loaded = parse(yaml, &file).unwrap();
    assert_eq!(&*loaded.spec.plugins[0].wasm().unwrap().module, b"p");
    // Absolute paths are kept.
    let abs = dir.path().join("hello.wasm");
    let yaml = format!(
        "{BASE}plugins:\n  inline:\n    - name: p\n      url: {}\n",
        abs.display()
    );
    let loaded = parse(&yaml, &dir.path().join("conf/wasp.yaml")).unwrap();
    assert_eq!(&*loaded.spec.plugins[0].wasm().unwrap().module, MODULE);
}
