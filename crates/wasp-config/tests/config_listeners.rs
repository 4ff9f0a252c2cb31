//! Listeners, routes and clusters in a wasp.yaml: addresses, durations, route matches and
//! actions, tcp listeners, duplicate names and TLS files, each error at its field.

mod common;

use common::{BASE, Dir};

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

/// A wasp.yaml with one TCP listener (`fields` under it) and clusters `db`, `a`, and `tls`
/// (which originates TLS).
fn tcp(fields: &str) -> String {
    format!(
        "listeners:
  - name: db
    address: 127.0.0.1:5432
    protocol: tcp
{fields}clusters:
  - name: db
    endpoints: [127.0.0.1:15432]
  - name: a
    endpoints: [127.0.0.1:15433]
  - name: tls
    endpoints: [db.example.com:443]
    tls: {{}}
"
    )
}

#[test]
fn tcp_listeners() {
    let dir = Dir::new();
    let spec = dir.load(&tcp("    cluster: db\n")).unwrap().spec;
    let relay = spec.listeners[0].tcp.as_ref().expect("a tcp listener");
    assert_eq!(relay.cluster.as_deref(), Some("db"));
    assert_eq!(
        relay.idle_timeout,
        Some(std::time::Duration::from_secs(3600)),
        "Envoy's default"
    );
    assert!(spec.listeners[0].routes.is_empty());

    let spec = dir
        .load(&tcp(concat!(
            "    idle_timeout: 0s\n",
            "    sni:\n",
            "      - server_names: [A.example.com, \"*.b.example\"]\n",
            "        cluster: a\n",
        )))
        .unwrap()
        .spec;
    let relay = spec.listeners[0].tcp.as_ref().unwrap();
    assert_eq!(relay.cluster, None);
    assert_eq!(relay.idle_timeout, None, "0s: never");
    assert_eq!(
        relay.sni_routes[0].server_names,
        ["a.example.com", "*.b.example"]
    );
    assert_eq!(relay.sni_routes[0].cluster, "a");
}

#[test]
fn tcp_listener_errors() {
    let dir = Dir::new();
    let cases = [
        (
            tcp(""),
            "wasp.yaml:2:11: listeners[0]: a tcp listener needs `cluster:` or `sni:` routes: where its connections go",
        ),
        (
            tcp("    cluster: nope\n"),
            "wasp.yaml:5:14: listeners[0].cluster: unknown cluster `nope` (clusters: db, a, tls)",
        ),
        (
            tcp("    cluster: tls\n"),
            "wasp.yaml:5:14: listeners[0].cluster: cluster `tls` originates TLS, which tcp listeners do not do yet: relay to a cluster without `tls:` (TLS from the client passes through untouched)",
        ),
        (
            tcp(
                "    cluster: db\n    routes:\n      - match: { prefix: / }\n        cluster: db\n",
            ),
            "wasp.yaml:7:9: listeners[0].routes: a tcp listener has no HTTP routes: give it `cluster:` (and `sni:` to choose by server name)",
        ),
        (
            tcp("    sni:\n      - server_names: []\n        cluster: a\n"),
            "wasp.yaml:6:23: listeners[0].sni[0].server_names: at least one server name is required",
        ),
        (
            tcp("    sni:\n      - server_names: [\"bad name\"]\n        cluster: a\n"),
            "wasp.yaml:6:24: listeners[0].sni[0].server_names[0]: `bad name` is not a server name (`db.example.com` or `*.example.com`)",
        ),
        (
            tcp("    idle_timeout: soon\n    cluster: db\n"),
            "wasp.yaml:5:19: listeners[0].idle_timeout:",
        ),
    ];
    for (yaml, want) in cases {
        let e = dir.error(&yaml);
        assert!(e.starts_with(want), "got:  {e}\nwant: {want}");
    }
    // The TCP fields on an HTTP listener: a forgotten `protocol: tcp`.
    let e = dir.error(&BASE.replace(
        "    address: 127.0.0.1:8080",
        "    address: 127.0.0.1:8080\n    cluster: backend",
    ));
    assert_eq!(
        e,
        "wasp.yaml:4:14: listeners[0].cluster: `cluster` is for tcp listeners: add `protocol: tcp`, or route HTTP with `routes:`"
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

#[test]
fn mtls_settings_are_checked() {
    let dir = Dir::new();
    dir.write("junk.pem", b"not a certificate");
    let other = common::certificate().1;
    dir.write("other.key", other.as_bytes());
    let listener_tls = |fields: &str| {
        BASE.replace(
            "    routes:",
            &format!("    tls: {{ {fields} }}\n    routes:"),
        )
    };
    let cluster_tls = |fields: &str| format!("{BASE}    tls: {{ {fields} }}\n");

    let e = dir.error(&listener_tls(
        "cert_file: c.pem, key_file: k.pem, require_client_certificate: true",
    ));
    assert!(
        e.starts_with(
            "wasp.yaml:4:75: listeners[0].tls.require_client_certificate: needs `ca_file`"
        ),
        "{e}"
    );
    let e = dir.error(&listener_tls("cert_file: junk.pem, key_file: k.pem"));
    assert!(e.contains("listeners[0].tls: no certificate in"), "{e}");
    let e = dir.error(&listener_tls("cert_file: c.pem, key_file: other.key"));
    assert!(
        e.contains("listeners[0].tls: certificate") && e.contains("cannot be used together"),
        "{e}"
    );
    let e = dir.error(&listener_tls(
        "cert_file: c.pem, key_file: k.pem, ca_file: junk.pem",
    ));
    assert!(
        e.contains("listeners[0].tls: no certificate in") && e.contains("junk.pem"),
        "{e}"
    );

    let e = dir.error(&cluster_tls("cert_file: c.pem"));
    assert!(
        e.starts_with("wasp.yaml:10:23: clusters[0].tls.cert_file: a client certificate needs both `cert_file` and `key_file`: `key_file` is missing"),
        "{e}"
    );
    let e = dir.error(&cluster_tls("ca_file: ca.pem, subject_alt_names: [\"\"]"));
    assert!(
        e.contains("clusters[0].tls.subject_alt_names[0]: must not be empty"),
        "{e}"
    );
    let e = dir.error(&cluster_tls("cert_file: c.pem, key_file: other.key"));
    assert!(
        e.contains("clusters[0].tls: certificate") && e.contains("cannot be used together"),
        "{e}"
    );

    // The whole of it, both ways.
    let loaded = dir
        .load(&format!(
            "{}    tls: {{ ca_file: ca.pem, cert_file: c.pem, key_file: k.pem, subject_alt_names: [spiffe://cluster.local/ns/default/sa/backend] }}\n",
            listener_tls("cert_file: c.pem, key_file: k.pem, ca_file: ca.pem")
        ))
        .unwrap();
    let server = loaded.spec.listeners[0].tls.as_ref().unwrap();
    assert!(
        server.require_client_certificate,
        "required by default once a CA is set"
    );
    assert_eq!(
        server.ca_file.as_deref(),
        Some(dir.path().join("ca.pem").as_path())
    );
    let client = loaded.spec.clusters[0].tls.as_ref().unwrap();
    assert_eq!(
        client.subject_alt_names,
        ["spiffe://cluster.local/ns/default/sa/backend"]
    );
    assert_eq!(
        client.client_certificate.as_ref().unwrap().key_file,
        dir.path().join("k.pem")
    );
}

#[test]
fn resilience_settings() {
    use std::time::Duration;
    use wasp_spec::{LbPolicy, RouteAction};
    let dir = Dir::new();
    let route = |fields: &str| {
        BASE.replace(
            "        cluster: backend\n",
            &format!("        cluster: backend\n        {fields}\n"),
        )
    };
    let cluster = |fields: &str| format!("{BASE}    {fields}\n");

    let loaded = dir
        .load(&format!(
            "{}    lb_policy: LEAST_REQUEST\n    outlier_detection: {{ consecutive_5xx: 3, base_ejection_time: 10s }}\n    health_check: {{ path: /healthz, interval: 2s, expected_statuses: [{{ start: 200, end: 300 }}] }}\n    circuit_breakers: {{ max_requests: 10 }}\n",
            route("retry_policy: { retry_on: \"5xx,reset\", num_retries: 3, per_try_timeout: 100ms, retry_back_off: { base_interval: 10ms } }\n        hash_policy: { header: X-User }")
        ))
        .unwrap();
    let RouteAction::Cluster {
        retry, hash_header, ..
    } = &loaded.spec.listeners[0].routes[0].action
    else {
        panic!("a cluster route");
    };
    let retry = retry.as_ref().unwrap();
    assert!(retry.retry_on.five_xx && retry.retry_on.reset && !retry.retry_on.gateway_error);
    assert_eq!(retry.num_retries, 3);
    assert_eq!(retry.per_try_timeout, Some(Duration::from_millis(100)));
    assert_eq!(
        (retry.base_interval, retry.max_interval),
        (Duration::from_millis(10), Duration::from_millis(100))
    );
    assert_eq!(hash_header.as_deref(), Some("x-user"));
    let c = &loaded.spec.clusters[0];
    assert_eq!(c.lb_policy, LbPolicy::LeastRequest);
    let outlier = c.outlier_detection.as_ref().unwrap();
    assert_eq!(
        (outlier.consecutive_5xx, outlier.base_ejection_time),
        (3, Duration::from_secs(10))
    );
    assert_eq!(outlier.max_ejection_percent, 10, "Envoy's default");
    let check = c.health_check.as_ref().unwrap();
    assert_eq!((check.unhealthy_threshold, check.healthy_threshold), (3, 2));
    assert_eq!(check.expected_statuses, [(200, 300)]);
    assert_eq!(c.circuit_breakers.max_requests, 10);
    assert_eq!(c.circuit_breakers.max_retries, 3, "Envoy's default");

    let e = dir.error(&route("retry_policy: { retry_on: \"5xx,retriable-4xx\" }"));
    assert!(e.contains("routes[0].retry_policy.retry_on: `retriable-4xx` is an Envoy retry condition wasp does not implement"), "{e}");
    let e = dir.error(&route("retry_policy: { retry_on: sometimes }"));
    assert!(e.contains("unknown retry condition `sometimes`"), "{e}");
    let e = dir.error(&route(
        "retry_policy: { retry_on: 5xx, per_try_timeout: 0s }",
    ));
    assert!(
        e.contains("retry_policy.per_try_timeout: must be greater than 0s"),
        "{e}"
    );
    let e = dir.error(&cluster("lb_policy: MAGLEV"));
    assert!(
        e.contains("clusters[0].lb_policy: maglev is not implemented by wasp"),
        "{e}"
    );
    let e = dir.error(&cluster("health_check: { path: healthz }"));
    assert!(
        e.contains("clusters[0].health_check.path: must start with `/`"),
        "{e}"
    );
    let e = dir.error(&cluster(
        "health_check: { path: /h, expected_statuses: [{ start: 300, end: 200 }] }",
    ));
    assert!(
        e.contains("clusters[0].health_check.expected_statuses[0]"),
        "{e}"
    );
    let e = dir.error(&cluster("outlier_detection: { max_ejection_percent: 150 }"));
    assert!(
        e.contains("outlier_detection.max_ejection_percent: a percentage is 0..=100"),
        "{e}"
    );
}

#[test]
fn access_logs() {
    use wasp_spec::AccessLogFormat;
    let dir = Dir::new();
    let with = |logs: &str| {
        BASE.replace(
            "    routes:",
            &format!("    access_log:\n{logs}    routes:"),
        )
    };
    let loaded = dir
        .load(&with("      - {}\n      - { path: logs/a.log, format: istio }\n      - { path: /dev/stderr, format: \"%REQ(:PATH)% %RESPONSE_CODE%\\n\" }\n      - { json_format: { code: \"%RESPONSE_CODE%\" } }\n"))
        .unwrap();
    let logs = &loaded.spec.listeners[0].access_log;
    assert_eq!(logs[0].path, std::path::Path::new("/dev/stdout"));
    assert_eq!(logs[0].format, AccessLogFormat::EnvoyDefault);
    assert_eq!(logs[1].path, dir.path().join("logs/a.log"));
    assert_eq!(logs[1].format, AccessLogFormat::IstioDefault);
    assert_eq!(
        logs[2].format,
        AccessLogFormat::Text("%REQ(:PATH)% %RESPONSE_CODE%\n".into())
    );
    assert!(matches!(&logs[3].format, AccessLogFormat::Json(m) if m["code"] == "%RESPONSE_CODE%"));

    let e = dir.error(&with("      - { format: \"%NOPE%\" }\n"));
    assert!(
        e.contains("listeners[0].access_log[0].format: unknown access log operator %NOPE%"),
        "{e}"
    );
    let e = dir.error(&with("      - { format: istio, json_format: {} }\n"));
    assert!(
        e.contains("access_log[0].json_format: give `format` or `json_format`, not both"),
        "{e}"
    );
    let e = dir.error(&with(
        "      - { json_format: { a: \"%DYNAMIC_METADATA(x)%\" } }\n",
    ));
    assert!(
        e.contains("access_log[0].json_format") && e.contains("not supported by wasp"),
        "{e}"
    );
}

#[test]
fn tracing_settings() {
    let dir = Dir::new();
    let loaded = dir
        .load(&format!("{BASE}tracing: {{ otlp_endpoint: \"http://otel:4318/v1/traces\", sampling: 25, propagate_b3: true }}\n"))
        .unwrap();
    let t = loaded.spec.tracing.unwrap();
    assert_eq!(t.otlp_endpoint, "http://otel:4318/v1/traces");
    assert_eq!(
        (t.sampling_percent, t.propagate_b3, t.service_name.as_str()),
        (25.0, true, "wasp")
    );
    let e = dir.error(&format!(
        "{BASE}tracing: {{ otlp_endpoint: \"otel:4318\" }}\n"
    ));
    assert!(
        e.contains("tracing.otlp_endpoint: `otel:4318` is not an http(s) URL"),
        "{e}"
    );
    let e = dir.error(&format!(
        "{BASE}tracing: {{ otlp_endpoint: \"http://o\", sampling: 101 }}\n"
    ));
    assert!(
        e.contains("tracing.sampling: a percentage is 0..=100"),
        "{e}"
    );
    assert!(dir.load(BASE).unwrap().spec.tracing.is_none());
}

#[test]
fn http_timeouts_and_limits() {
    use std::time::Duration;
    let dir = Dir::new();
    // Defaults: Envoy's, with its edge guidance where Envoy has none.
    let spec = dir.load(BASE).unwrap().spec;
    let http = spec.listeners[0].http;
    assert_eq!(http, wasp_spec::HttpOptions::default());
    assert_eq!(http.request_headers_timeout, Some(Duration::from_secs(10)));
    assert_eq!(http.idle_timeout, Some(Duration::from_secs(3600)));
    assert_eq!(http.max_headers_count, 100);
    assert_eq!(spec.max_connections, None);

    let yaml = BASE.replace(
        "    address: 127.0.0.1:8080\n",
        "    address: 127.0.0.1:8080
    request_headers_timeout: 5s
    idle_timeout: 0s
    stream_idle_timeout: 30s
    request_timeout: 2m
    max_request_headers_kb: 96
    max_headers_count: 50
    max_concurrent_streams: 20
",
    );
    let spec = dir
        .load(&format!("max_connections: 1000\n{yaml}"))
        .unwrap()
        .spec;
    let http = spec.listeners[0].http;
    assert_eq!(http.request_headers_timeout, Some(Duration::from_secs(5)));
    assert_eq!(http.idle_timeout, None, "0s: never");
    assert_eq!(http.stream_idle_timeout, Some(Duration::from_secs(30)));
    assert_eq!(http.request_timeout, Some(Duration::from_secs(120)));
    assert_eq!(http.max_request_headers_bytes, 96 * 1024);
    assert_eq!(http.max_headers_count, 50);
    assert_eq!(http.max_concurrent_streams, 20);
    assert_eq!(spec.max_connections, Some(1000));

    let cases = [
        (
            BASE.replace(
                "    address: 127.0.0.1:8080\n",
                "    address: 127.0.0.1:8080\n    max_headers_count: 0\n",
            ),
            "wasp.yaml:4:24: listeners[0].max_headers_count: must be between 1 and 65535",
        ),
        (
            BASE.replace(
                "    address: 127.0.0.1:8080\n",
                "    address: 127.0.0.1:8080\n    max_request_headers_kb: 9000\n",
            ),
            "wasp.yaml:4:29: listeners[0].max_request_headers_kb: must be between 1 and 8192",
        ),
        (
            BASE.replace(
                "    address: 127.0.0.1:8080\n",
                "    address: 127.0.0.1:8080\n    request_headers_timeout: soon\n",
            ),
            "wasp.yaml:4:30: listeners[0].request_headers_timeout: invalid duration `soon`",
        ),
        (
            format!("max_connections: 0\n{BASE}"),
            "wasp.yaml:1:18: max_connections: must be at least 1 (leave it out for no limit)",
        ),
        (
            tcp("    cluster: db\n    max_concurrent_streams: 10\n"),
            "wasp.yaml:6:29: listeners[0].max_concurrent_streams: `max_concurrent_streams` is for HTTP listeners; a `protocol: tcp` listener relays bytes",
        ),
    ];
    for (yaml, want) in cases {
        let e = dir.error(&yaml);
        assert!(e.starts_with(want), "got:  {e}\nwant: {want}");
    }
}

#[test]
fn admin_on_loopback_by_port_and_read_only() {
    let dir = Dir::new();
    for written in ["15000", "\":15000\""] {
        let spec = dir
            .load(&format!("admin: {{ address: {written} }}\n{BASE}"))
            .unwrap()
            .spec;
        assert_eq!(
            spec.admin,
            Some("127.0.0.1:15000".parse().unwrap()),
            "{written}"
        );
        assert!(!spec.admin_read_only);
    }
    let spec = dir
        .load(&format!(
            "admin: {{ address: 0.0.0.0:15000, read_only: true }}\n{BASE}"
        ))
        .unwrap()
        .spec;
    assert_eq!(spec.admin, Some("0.0.0.0:15000".parse().unwrap()));
    assert!(spec.admin_read_only);
}
