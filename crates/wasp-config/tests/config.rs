//! The YAML contract: a full round trip, every kind of error with its location, plugin order,
//! pluginConfig bytes, paths, checksums and the one-line try-out.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasp_config::spec::{FailStrategy, PathMatch, RouteAction, TrafficDirection, UpstreamProtocol};
use wasp_config::{ConfigError, Loaded, Workload, load, parse, quick};

const MODULE: &[u8] = b"\0asm\x01\0\0\0 any bytes: modules are not compiled here";

/// A folder with a module, certificates (contents don't matter) and room for configs.
struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        let dir = Dir {
            tmp: tempfile::tempdir().unwrap(),
        };
        dir.write("hello.wasm", MODULE);
        dir.write("other.wasm", b"\0asm\x01\0\0\0 other");
        dir.write("c.pem", b"cert");
        dir.write("k.pem", b"key");
        dir.write("ca.pem", b"ca");
        dir
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Writes `wasp.yaml` and loads it.
    fn load(&self, yaml: &str) -> Result<Loaded, ConfigError> {
        load(&self.write("wasp.yaml", yaml.as_bytes()))
    }

    /// The error for `yaml`, with the folder taken out of paths (`wasp.yaml:3:5: ...`).
    fn error(&self, yaml: &str) -> String {
        match self.load(yaml) {
            Ok(loaded) => panic!("expected an error, got {:#?}", loaded.spec),
            Err(e) => {
                let e = e.to_string();
                let folder = format!("{}/", self.path().display());
                e.strip_prefix(&folder).map_or(e.clone(), str::to_string)
            }
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Minimal valid document to which error tests append.
const BASE: &str = "\
listeners:
  - name: inbound
    address: 127.0.0.1:8080
    routes:
      - match: { prefix: / }
        cluster: backend
clusters:
  - name: backend
    endpoints: [127.0.0.1:9000]
";

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
        RouteAction::Cluster { name, timeout: Some(t) } if name == "backend" && *t == Duration::from_millis(250)
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
        RouteAction::Cluster { name, timeout: Some(t) } if name == "h2" && *t == Duration::from_secs(15)
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

// ----- errors: each names file:line:column, the field path and what is wrong -----

#[test]
fn unknown_top_level_field() {
    let e = Dir::new().error(&format!("{BASE}admins: {{}}\n"));
    assert!(
        e.starts_with("wasp.yaml:10:1: admins: unknown field `admins`, expected one of"),
        "{e}"
    );
}

#[test]
fn unknown_nested_field() {
    let yaml = "\
listeners:
  - name: inbound
    address: 127.0.0.1:8080
    routes:
      - match: { prefix: /, methods: [GET] }
        cluster: backend
clusters:
  - name: backend
    endpoints: [127.0.0.1:9000]
";
    let e = Dir::new().error(yaml);
    assert!(
        e.starts_with(
            "wasp.yaml:5:29: listeners[0].routes[0].match.methods: unknown field `methods`, expected one of"
        ),
        "{e}"
    );
    // In block style, where the mapping starts at its first key.
    let yaml = BASE.replace("    endpoints:", "    endpoint: x\n    endpoints:");
    let e = Dir::new().error(&yaml);
    assert!(
        e.starts_with("wasp.yaml:9:5: clusters[0].endpoint: unknown field `endpoint`"),
        "{e}"
    );
    let yaml = BASE.replace("  - name: backend", "  - nme: backend");
    let e = Dir::new().error(&yaml);
    assert!(
        e.starts_with("wasp.yaml:8:5: clusters[0].nme: unknown field `nme`"),
        "{e}"
    );
}

#[test]
fn missing_and_mistyped_fields() {
    let dir = Dir::new();
    let e = dir.error(&BASE.replace("    address: 127.0.0.1:8080\n", ""));
    assert_eq!(e, "wasp.yaml:2:5: listeners[0]: missing field `address`");
    let e = dir.error(&format!("workers: many\n{BASE}"));
    assert!(e.starts_with("wasp.yaml:1:10: workers: "), "{e}");
    let e = dir.error(&BASE.replace("[127.0.0.1:9000]", "127.0.0.1:9000"));
    assert!(
        e.starts_with("wasp.yaml:9:16: clusters[0].endpoints: "),
        "{e}"
    );
    let e = dir.error(&format!(
        "{BASE}plugins:\n  inline:\n    - name: p\n      url: hello.wasm\n      failStrategy: FAIL_SOMETIMES\n"
    ));
    assert!(
        e.starts_with(
            "wasp.yaml:14:21: plugins.inline[0].failStrategy: unknown variant `FAIL_SOMETIMES`"
        ),
        "{e}"
    );
    let e = dir.error(&BASE.replace(
        "address: 127.0.0.1:8080",
        "address: 127.0.0.1:8080\n    direction: sideways",
    ));
    assert!(
        e.starts_with("wasp.yaml:4:16: listeners[0].direction: unknown variant `sideways`"),
        "{e}"
    );
}

#[test]
fn yaml_syntax_errors() {
    let dir = Dir::new();
    let e = dir.error("listeners: [\n");
    assert!(e.starts_with("wasp.yaml:1:"), "{e}");
    let e = dir.error(&format!("{BASE}listeners: []\n"));
    assert!(e.starts_with("wasp.yaml:10:1: listeners: duplicate"), "{e}");
    let e = dir.error("");
    assert_eq!(e, "wasp.yaml: listeners: at least one listener is required");
    let e = dir.error("- a\n- b\n");
    assert_eq!(e, "wasp.yaml:1:1: expected a mapping (key: value)");
}

#[test]
fn unreadable_config() {
    let e = load(Path::new("/nonexistent/wasp.yaml")).unwrap_err();
    assert_eq!(e.file(), Some(Path::new("/nonexistent/wasp.yaml")));
    assert_eq!(e.line(), None);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/wasp.yaml: cannot read the file: No such file"),
        "{e}"
    );
}

#[test]
fn no_listeners() {
    let dir = Dir::new();
    let e = dir.error("listeners: []\n");
    assert_eq!(
        e,
        "wasp.yaml:1:12: listeners: at least one listener is required"
    );
    let e = dir.error("workers: 1\n");
    assert_eq!(e, "wasp.yaml: listeners: at least one listener is required");
}

#[test]
fn bad_addresses() {
    let dir = Dir::new();
    let e = dir.error(&BASE.replace("127.0.0.1:8080", "localhost:8080"));
    assert!(
        e.starts_with("wasp.yaml:3:14: listeners[0].address: invalid address `localhost:8080`"),
        "{e}"
    );
    let e = dir.error(&format!("admin: {{ address: 127.0.0.1 }}\n{BASE}"));
    assert!(
        e.starts_with("wasp.yaml:1:19: admin.address: invalid address `127.0.0.1`"),
        "{e}"
    );
    let e = dir.error(&BASE.replace("[127.0.0.1:9000]", "[127.0.0.1:9000, \"http://x:1\"]"));
    assert!(
        e.starts_with("wasp.yaml:9:33: clusters[0].endpoints[1]: invalid endpoint `http://x:1`: endpoints are host:port"),
        "{e}"
    );
    let e = dir.error(&BASE.replace("[127.0.0.1:9000]", "[]"));
    assert_eq!(
        e,
        "wasp.yaml:9:16: clusters[0].endpoints: at least one endpoint (host:port) is required"
    );
    let yaml = BASE.replace(
        "clusters:",
        "  - name: second\n    address: 127.0.0.1:8080\nclusters:",
    );
    let e = dir.error(&yaml);
    assert_eq!(
        e,
        "wasp.yaml:8:14: listeners[1].address: address 127.0.0.1:8080 is already used by listeners[0]"
    );
}

#[test]
fn bad_durations() {
    let dir = Dir::new();
    let e = dir.error(&BASE.replace("cluster: backend", "cluster: backend\n        timeout: 15"));
    assert!(
        e.starts_with(
            "wasp.yaml:7:18: listeners[0].routes[0].timeout: invalid duration `15`: missing unit"
        ),
        "{e}"
    );
    let e = dir.error(&format!("{BASE}    connect_timeout: 3 days\n"));
    assert!(
        e.starts_with("wasp.yaml:10:22: clusters[0].connect_timeout: invalid duration `3 days`"),
        "{e}"
    );
    let e = dir.error(&format!("{BASE}    connect_timeout: 0s\n"));
    assert_eq!(
        e,
        "wasp.yaml:10:22: clusters[0].connect_timeout: must be greater than 0s"
    );
}

#[test]
fn bad_sizes_and_workers() {
    let dir = Dir::new();
    let e = dir.error(&format!("buffer_limit: 1MB\n{BASE}"));
    assert!(
        e.starts_with("wasp.yaml:1:15: buffer_limit: invalid size `1MB`: use binary units"),
        "{e}"
    );
    let e = dir.error(&format!("buffer_limit: 0\n{BASE}"));
    assert_eq!(e, "wasp.yaml:1:15: buffer_limit: must be greater than 0");
    let e = dir.error(&format!("workers: 0\n{BASE}"));
    assert_eq!(e, "wasp.yaml:1:10: workers: must be at least 1");
}

#[test]
fn bad_matches() {
    let dir = Dir::new();
    let e = dir.error(&BASE.replace("{ prefix: / }", "{ regex: \"/a(\" }"));
    assert!(
        e.starts_with("wasp.yaml:5:25: listeners[0].routes[0].match.regex: invalid regex `/a(`: unclosed group"),
        "{e}"
    );
    let e = dir.error(&BASE.replace("{ prefix: / }", "{ }"));
    assert_eq!(
        e,
        "wasp.yaml:5:16: listeners[0].routes[0].match: exactly one of prefix, path or regex is required"
    );
    let e = dir.error(&BASE.replace("{ prefix: / }", "{ prefix: /, path: /x }"));
    assert_eq!(
        e,
        "wasp.yaml:5:16: listeners[0].routes[0].match: exactly one of prefix, path or regex is required, found prefix and path"
    );
    let yaml = BASE.replace(
        "{ prefix: / }",
        "\n          prefix: /\n          headers: [{ name: \"bad name\" }]",
    );
    let e = dir.error(&yaml);
    assert!(
        e.starts_with("wasp.yaml:7:29: listeners[0].routes[0].match.headers[0].name: invalid header name `bad name`"),
        "{e}"
    );
}

#[test]
fn bad_route_actions() {
    let dir = Dir::new();
    let e = dir.error(&BASE.replace("cluster: backend", "cluster: backnd"));
    assert_eq!(
        e,
        "wasp.yaml:6:18: listeners[0].routes[0].cluster: unknown cluster `backnd` (clusters: backend)"
    );
    let e = dir.error(&BASE.replace("        cluster: backend\n", ""));
    assert_eq!(
        e,
        "wasp.yaml:5:9: listeners[0].routes[0]: exactly one of cluster or direct_response is required"
    );
    let e = dir.error(&BASE.replace(
        "cluster: backend",
        "cluster: backend\n        direct_response: { status: 200 }",
    ));
    assert_eq!(
        e,
        "wasp.yaml:7:26: listeners[0].routes[0]: exactly one of cluster or direct_response is required, found both"
    );
    let e = dir.error(&BASE.replace("cluster: backend", "direct_response: { status: 99 }"));
    assert_eq!(
        e,
        "wasp.yaml:6:36: listeners[0].routes[0].direct_response.status: invalid status 99: expected 200 to 599"
    );
    let e = dir.error(&BASE.replace(
        "cluster: backend",
        "direct_response: { status: 204 }\n        timeout: 1s",
    ));
    assert_eq!(
        e,
        "wasp.yaml:7:18: listeners[0].routes[0].timeout: timeout applies only to routes to a cluster"
    );
}

#[test]
fn tcp_listener() {
    let e = Dir::new().error(&BASE.replace(
        "    address: 127.0.0.1:8080",
        "    address: 127.0.0.1:8080\n    protocol: tcp",
    ));
    assert_eq!(
        e,
        "wasp.yaml:4:15: listeners[0].protocol: tcp listeners are not supported yet"
    );
}

#[test]
fn duplicate_names() {
    let dir = Dir::new();
    let yaml = BASE.replace(
        "clusters:",
        "  - name: inbound\n    address: 127.0.0.1:8081\nclusters:",
    );
    let e = dir.error(&yaml);
    assert_eq!(
        e,
        "wasp.yaml:7:11: listeners[1].name: duplicate listener name `inbound` (also listeners[0])"
    );
    let e = dir.error(&format!(
        "{BASE}  - name: backend\n    endpoints: [127.0.0.1:1]\n"
    ));
    assert_eq!(
        e,
        "wasp.yaml:10:11: clusters[1].name: duplicate cluster name `backend` (also clusters[0])"
    );
    let e = dir.error(&format!(
        "{BASE}plugins:\n  inline:\n    - name: p\n      url: hello.wasm\n    - name: p\n      url: hello.wasm\n"
    ));
    assert_eq!(
        e,
        "wasp.yaml:14:13: plugins.inline[1].name: duplicate plugin name `p` (also plugins.inline[0])"
    );
    let e = dir.error(&BASE.replace("name: inbound", "name: \"  \""));
    assert_eq!(e, "wasp.yaml:2:11: listeners[0].name: must not be empty");
}

#[test]
fn tls_files_must_exist() {
    let dir = Dir::new();
    let e = dir.error(&BASE.replace(
        "    routes:",
        "    tls: { cert_file: c.pem, key_file: missing.pem }\n    routes:",
    ));
    let missing = dir.path().join("missing.pem");
    assert!(
        e.starts_with(&format!(
            "wasp.yaml:4:40: listeners[0].tls.key_file: cannot read {}: No such file or directory",
            missing.display()
        )),
        "{e}"
    );
    let e = dir.error(&format!(
        "{BASE}    tls: {{ ca_file: /nonexistent/ca.pem }}\n"
    ));
    assert!(
        e.starts_with("wasp.yaml:10:21: clusters[0].tls.ca_file: cannot read /nonexistent/ca.pem: No such file"),
        "{e}"
    );
    let e = dir.error(&BASE.replace(
        "    routes:",
        "    tls: { cert_file: ., key_file: k.pem }\n    routes:",
    ));
    assert!(e.contains("listeners[0].tls.cert_file: cannot read"), "{e}");
    assert!(e.ends_with("it is a directory"), "{e}");
    let e = dir.error(&format!("{BASE}    tls: {{ sni: \"bad name\" }}\n"));
    assert_eq!(
        e,
        "wasp.yaml:10:17: clusters[0].tls.sni: invalid server name `bad name`: expected a DNS name or an IP address"
    );
    let e = dir.error(&BASE.replace("    routes:", "    tls: { cert_file: c.pem }\n    routes:"));
    assert_eq!(
        e,
        "wasp.yaml:4:10: listeners[0].tls: missing field `key_file`"
    );
}

fn plugin(fields: &str) -> String {
    format!("{BASE}plugins:\n  inline:\n    - name: p\n{fields}")
}

#[test]
fn plugin_files() {
    let dir = Dir::new();
    let e = dir.error(&plugin("      url: nope.wasm\n"));
    assert!(
        e.starts_with(&format!(
            "wasp.yaml:13:12: plugins.inline[0].url: cannot read {}: No such file or directory (os error 2)",
            dir.path().join("nope.wasm").display()
        )),
        "{e}"
    );
    let e = dir.error(&plugin("      url: https://example.com/p.wasm\n"));
    assert!(
        e.starts_with("wasp.yaml:13:12: plugins.inline[0].url: `https://example.com/p.wasm`: inline plugins are read from files; declare a module fetched over https as a WasmPlugin resource in plugins.sources"),
        "{e}"
    );
    let e = dir.error(&plugin("      url: oci://ghcr.io/x/p:1\n"));
    assert!(
        e.contains(
            "plugins.inline[0].url: `oci://ghcr.io/x/p:1`: inline plugins are read from files; declare a module fetched over oci"
        ),
        "{e}"
    );
    let e = dir.error(&plugin("      url: file://p.wasm\n"));
    assert!(e.contains("needs an absolute path"), "{e}");
    let e = dir.error(&plugin("      pluginName: x\n"));
    assert_eq!(
        e,
        "wasp.yaml:12:13: plugins.inline[0]: one of url (a Wasm module) or lua (a Lua script) is required"
    );
    // A Lua filter instead of a module; its script is compiled at load.
    let spec = dir
        .load(&plugin(
            "      lua: { inlineCode: \"function envoy_on_request(h) end\" }\n",
        ))
        .unwrap()
        .spec;
    assert!(spec.plugins[0].is_lua());
    let e = dir.error(&plugin(
        "      lua: { inlineCode: \"function envoy_on_request(h)\" }\n",
    ));
    assert!(
        e.starts_with("wasp.yaml:13:26: plugins.inline[0].lua.inlineCode: lua script 'p': [string \"function envoy_on_request(h)\"]:1: "),
        "{e}"
    );
    let e = dir.error(&plugin(
        "      url: hello.wasm\n      lua: { inlineCode: \"function envoy_on_request(h) end\" }\n",
    ));
    assert!(e.contains("url and lua are mutually exclusive"), "{e}");
}

#[test]
fn sha256_checked() {
    let dir = Dir::new();
    let good = sha256(MODULE);
    let loaded = dir
        .load(&plugin(&format!(
            "      url: hello.wasm\n      sha256: {}\n",
            good.to_uppercase()
        )))
        .unwrap();
    assert_eq!(&*loaded.spec.plugins[0].wasm().unwrap().module, MODULE);
    let bad = sha256(b"something else");
    let e = dir.error(&plugin(&format!(
        "      url: hello.wasm\n      sha256: {bad}\n"
    )));
    assert_eq!(
        e,
        format!(
            "wasp.yaml:14:15: plugins.inline[0].sha256: sha256 mismatch for file://{}: expected {bad}, actual {good}",
            dir.path().join("hello.wasm").display()
        )
    );
    let e = dir.error(&plugin("      url: hello.wasm\n      sha256: abc\n"));
    assert_eq!(
        e,
        "wasp.yaml:14:15: plugins.inline[0].sha256: `abc` is not a sha256 (64 hex digits)"
    );
}

#[test]
fn plugin_sources() {
    let dir = Dir::new();
    // A missing folder is an error naming the field.
    let e = dir.error(&format!("{BASE}plugins:\n  sources: [./wasmplugins/]\n"));
    assert!(
        e.starts_with("wasp.yaml:11:12: plugins.sources[0]: cannot read "),
        "{e}"
    );
    std::fs::create_dir(dir.path().join("wasmplugins")).unwrap();
    std::fs::write(
        dir.path().join("wasmplugins/auth.yaml"),
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: { name: auth, namespace: istio-system }\nspec:\n  url: oci://registry.local/auth:1\n  phase: AUTHN\n",
    )
    .unwrap();
    let loaded = dir
        .load(&format!(
            "{BASE}plugins:\n  sources: [./wasmplugins/]\n  insecureRegistries: [\"registry.local\"]\n"
        ))
        .unwrap();
    let sources = loaded.plugin_sources.as_ref().unwrap();
    assert_eq!(sources.root_namespace, "istio-system");
    assert_eq!(sources.insecure_registries, ["registry.local"]);
    assert_eq!(sources.sources, [dir.path().join("./wasmplugins/")]);
    let resources = loaded.resources.as_ref().unwrap();
    assert_eq!(resources.resources().len(), 1);
    // Root-namespace plugins apply to every workload.
    let decls = resources.plugins_for(&loaded.workload, &sources.root_namespace, &|_| None);
    assert_eq!(decls[0].key, "istio-system/auth");
    // The fingerprint follows the files' contents.
    let before = sources.fingerprint();
    std::fs::write(dir.path().join("wasmplugins/other.yml"), "").unwrap();
    assert_ne!(sources.fingerprint(), before);
    // An invalid resource fails the load, with its own file and line.
    std::fs::write(
        dir.path().join("wasmplugins/bad.yaml"),
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: { name: bad }\nspec:\n  url: oci://x/y:1\n  phase: SOMETIMES\n",
    )
    .unwrap();
    let e = dir.error(&format!("{BASE}plugins:\n  sources: [./wasmplugins/]\n"));
    assert!(e.contains("bad.yaml:6:"), "{e}");
    assert!(e.contains("spec.phase"), "{e}");
    let e = dir.error(&format!(
        "{BASE}plugins:\n  sources: [./wasmplugins/]\n  insecureRegistries: [\"http://x/\"]\n"
    ));
    assert!(e.contains("plugins.insecureRegistries[0]"), "{e}");
}

#[test]
fn plugin_field_errors() {
    let dir = Dir::new();
    let e = dir.error(&plugin(
        "      url: hello.wasm\n      configuration: x\n      pluginConfig: { a: 1 }\n",
    ));
    assert_eq!(
        e,
        "wasp.yaml:15:21: plugins.inline[0].pluginConfig: configuration and pluginConfig are mutually exclusive"
    );
    let e = dir.error(&plugin("      url: hello.wasm\n      pluginConfig: [1]\n"));
    assert_eq!(
        e,
        "wasp.yaml:14:21: plugins.inline[0].pluginConfig: must be a mapping (use configuration for a plain string)"
    );
    let e = dir.error(&plugin(
        "      url: hello.wasm\n      listeners: [inbound, outbound]\n",
    ));
    assert_eq!(
        e,
        "wasp.yaml:14:28: plugins.inline[0].listeners[1]: unknown listener `outbound` (listeners: inbound)"
    );
    let e = dir.error(&plugin("      url: hello.wasm\n      vmid: x\n"));
    assert!(
        e.starts_with(
            "wasp.yaml:14:7: plugins.inline[0].vmid: unknown field `vmid`, expected one of"
        ),
        "{e}"
    );
}

#[test]
fn shared_vm() {
    let dir = Dir::new();
    let spec = dir
        .load(&plugin(
            "      url: hello.wasm\n      vmId: v\n    - name: q\n      url: hello.wasm\n      vmId: v\n",
        ))
        .unwrap()
        .spec;
    let (p, q) = (
        spec.plugins[0].wasm().unwrap(),
        spec.plugins[1].wasm().unwrap(),
    );
    assert_eq!(p.vm_id, "v");
    assert_eq!(q.vm_id, "v");
    assert!(
        std::sync::Arc::ptr_eq(&p.module, &q.module),
        "one module read once"
    );
    // One vmId over different modules is accepted, as by Envoy: the data plane gives each
    // module its own VM, and the vmId still names their common shared data and queues.
    std::fs::copy(dir.path().join("hello.wasm"), dir.path().join("other.wasm")).unwrap();
    let spec = dir
        .load(&plugin(
            "      url: hello.wasm\n      vmId: v\n    - name: q\n      url: other.wasm\n      vmId: v\n      vmConfiguration: other\n",
        ))
        .unwrap()
        .spec;
    let q = spec.plugins[1].wasm().unwrap();
    assert_eq!(q.vm_id, "v");
    assert_eq!(q.vm_configuration, b"other");
}

// ----- pluginConfig bytes -----

fn configuration_of(fields: &str) -> Vec<u8> {
    let dir = Dir::new();
    let spec = dir
        .load(&plugin(&format!("      url: hello.wasm\n{fields}")))
        .unwrap()
        .spec;
    spec.plugins[0].wasm().unwrap().configuration.clone()
}

#[test]
fn plugin_config_is_compact_sorted_json() {
    let bytes =
        configuration_of("      pluginConfig:\n        b:\n          c: [1, x]\n        a: 1\n");
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        r#"{"a":1,"b":{"c":[1,"x"]}}"#
    );
    let bytes = configuration_of(
        "      pluginConfig: { z: { y: 2.0, x: 0.5 }, \"k\\\"q\": \"é\", t: true, n: null }\n",
    );
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        r#"{"k\"q":"é","n":null,"t":true,"z":{"x":0.5,"y":2}}"#
    );
}

#[test]
fn empty_plugin_config_is_no_bytes() {
    assert!(configuration_of("      pluginConfig: {}\n").is_empty());
    assert!(configuration_of("      pluginConfig:\n").is_empty());
    assert!(configuration_of("").is_empty());
    assert_eq!(
        configuration_of("      configuration: '{\"raw\": 1}'\n"),
        br#"{"raw": 1}"#
    );
}

// ----- order -----

#[test]
fn istio_plugin_order() {
    let dir = Dir::new();
    let mut yaml = format!("{BASE}plugins:\n  inline:\n");
    for (name, phase, priority) in [
        ("unset1", None, None),
        ("stats", Some("STATS"), None),
        ("authz_low", Some("AUTHZ"), Some(-5)),
        ("unspecified", Some("UNSPECIFIED_PHASE"), Some(100)),
        ("authn_none", Some("AUTHN"), None),
        ("authz_high", Some("AUTHZ"), Some(50)),
        ("authn_10", Some("AUTHN"), Some(10)),
        ("authn_20", Some("AUTHN"), Some(20)),
        ("authn_10b", Some("AUTHN"), Some(10)),
        ("unset2", None, None),
        ("authz_none", Some("AUTHZ"), None),
    ] {
        yaml.push_str(&format!("    - name: {name}\n      url: hello.wasm\n"));
        if let Some(phase) = phase {
            yaml.push_str(&format!("      phase: {phase}\n"));
        }
        if let Some(priority) = priority {
            yaml.push_str(&format!("      priority: {priority}\n"));
        }
    }
    let spec = dir.load(&yaml).unwrap().spec;
    let order: Vec<&str> = spec.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        order,
        [
            "authn_20",
            "authn_10",
            "authn_10b",
            "authn_none",
            "authz_high",
            "authz_low",
            "authz_none",
            "stats",
            "unspecified",
            "unset1",
            "unset2",
        ]
    );
    let unspecified = spec
        .plugins
        .iter()
        .find(|p| p.name == "unspecified")
        .unwrap();
    assert_eq!(unspecified.phase, None);
    assert_eq!(unspecified.priority, Some(100));
}

// ----- paths -----

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let dir = Dir::new();
    dir.write("conf/certs/c.pem", b"cert");
    dir.write("conf/certs/k.pem", b"key");
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

// ----- quick -----

#[test]
fn quick_with_upstream() {
    let dir = Dir::new();
    let p1 = dir.path().join("hello.wasm");
    let p2 = dir.path().join("other.wasm");
    let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let loaded = quick(
        listen,
        Some("127.0.0.1:9000"),
        &[p1.clone(), p2],
        Some("cfg"),
    )
    .unwrap();
    let spec = &loaded.spec;
    assert_eq!(loaded.source, PathBuf::new());
    assert_eq!(spec.admin, None);
    assert_eq!(
        spec.workers,
        std::thread::available_parallelism().unwrap().get()
    );
    assert_eq!(spec.listeners.len(), 1);
    let l = &spec.listeners[0];
    assert_eq!(
        (l.name.as_str(), l.address, l.direction),
        ("main", listen, TrafficDirection::Inbound)
    );
    assert_eq!(l.routes.len(), 1);
    assert!(matches!(&l.routes[0].path, PathMatch::Prefix(p) if p == "/"));
    assert!(matches!(&l.routes[0].action, RouteAction::Cluster { name, .. } if name == "upstream"));
    assert_eq!(spec.clusters.len(), 1);
    assert_eq!(spec.clusters[0].name, "upstream");
    assert_eq!(spec.clusters[0].endpoints, ["127.0.0.1:9000"]);
    assert_eq!(spec.clusters[0].protocol, UpstreamProtocol::Http1);
    let names: Vec<&str> = spec.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["hello", "other"]);
    let hello = &spec.plugins[0];
    let hello_wasm = hello.wasm().unwrap();
    assert_eq!(hello.root_id(), "hello");
    assert_eq!(hello_wasm.vm_id, "");
    assert_eq!(hello.fail_strategy, FailStrategy::FailClose);
    assert_eq!(hello_wasm.configuration, b"cfg");
    assert_eq!(&*hello_wasm.module, MODULE);
    assert_eq!(hello.url, format!("file://{}", p1.display()));
}

#[test]
fn quick_without_upstream() {
    let dir = Dir::new();
    let listen: SocketAddr = "[::1]:0".parse().unwrap();
    let spec = quick(listen, None, &[dir.path().join("hello.wasm")], None)
        .unwrap()
        .spec;
    assert!(spec.clusters.is_empty());
    assert!(matches!(
        &spec.listeners[0].routes[0].action,
        RouteAction::Direct { status: 200, body } if body == "hello from wasp\n"
    ));
    assert!(spec.plugins[0].wasm().unwrap().configuration.is_empty());
    let spec = quick(listen, None, &[], None).unwrap().spec;
    assert!(spec.plugins.is_empty());
}

#[test]
fn quick_errors() {
    let dir = Dir::new();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let e = quick(listen, Some("http://127.0.0.1:9000"), &[], None).unwrap_err();
    assert!(
        e.to_string().starts_with("--upstream: invalid endpoint"),
        "{e}"
    );
    let missing = dir.path().join("missing.wasm");
    let e = quick(listen, None, std::slice::from_ref(&missing), None).unwrap_err();
    assert_eq!(e.file(), None);
    assert!(
        e.to_string().starts_with(&format!(
            "--plugin: cannot read {}: No such file",
            missing.display()
        )),
        "{e}"
    );
    let p = dir.path().join("hello.wasm");
    let e = quick(listen, None, &[p.clone(), p], None).unwrap_err();
    assert!(
        e.to_string().contains("two plugins are named `hello`"),
        "{e}"
    );
}

// ----- robustness -----

#[test]
fn error_accessors() {
    let dir = Dir::new();
    let file = dir.path().join("wasp.yaml");
    let e = parse(&BASE.replace("cluster: backend", "cluster: nope"), &file).unwrap_err();
    assert_eq!(e.file(), Some(file.as_path()));
    assert_eq!(e.line(), Some(6));
    assert_eq!(e.column(), Some(18));
    assert_eq!(e.path(), "listeners[0].routes[0].cluster");
    assert_eq!(e.message(), "unknown cluster `nope` (clusters: backend)");
}

#[test]
fn never_panics_on_truncated_or_mangled_input() {
    let dir = Dir::new();
    let file = dir.path().join("wasp.yaml");
    let doc = format!(
        "{BASE}    tls: {{ sni: x }}\nplugins:\n  inline:\n    - name: p\n      url: hello.wasm\n      pluginConfig: {{ a: [1, {{ b: c }}] }}\n      env: {{ A: b }}\n"
    );
    assert!(parse(&doc, &file).is_ok());
    let cuts: Vec<usize> = doc.char_indices().map(|(i, _)| i).collect();
    for &cut in &cuts {
        let _ = parse(&doc[..cut], &file);
        let mut mangled = doc.clone();
        mangled.insert_str(cut, ": [{\"'&*!|>-\t");
        let _ = parse(&mangled, &file);
    }
    for text in [
        "\u{feff}listeners: []",
        "&a [*a]",
        "a: &a {b: *a}",
        "listeners: !!binary AAAA",
        "? [complex]\n: key",
        "---\n---\n",
        "listeners:\n  - name: é\n    address: \"\\uD800\"\n",
        &"[".repeat(10_000),
        &"- ".repeat(10_000),
        "listeners:\n  - <<: {name: a}\n    address: 127.0.0.1:1\n",
    ] {
        let _ = parse(text, &file);
    }
}
