//! Access logs over real sockets: Istio's default format and a JSON format, a line per
//! request with the upstream, the status, Envoy's response flags and the bytes; local replies
//! logged too.

mod support;

use std::time::Duration;

use support::*;
use wasp_proxy::spec::{AccessLogFormat, AccessLogSpec};

fn lines(path: &std::path::Path, want: usize) -> Vec<String> {
    for _ in 0..100 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= want {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("fewer than {want} lines in {}", path.display());
}

#[test]
fn a_line_per_request_in_istio_and_json_formats() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream();
    let istio = dir.path().join("istio.log");
    let json = dir.path().join("json.log");
    let mut spec = spec(up.address, vec![]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    spec.clusters[1].endpoints = vec![closed.to_string()];
    spec.listeners[0]
        .routes
        .insert(0, route_to("/dead", "callout"));
    let format: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
        r#"{"code": "%RESPONSE_CODE%", "method": "%REQ(:METHOD)%", "flags": "%RESPONSE_FLAGS%",
            "sent": "%BYTES_SENT%", "upstream": "%UPSTREAM_HOST%", "ua": "%REQ(USER-AGENT)%"}"#,
    )
    .unwrap();
    spec.listeners[0].access_log = vec![
        AccessLogSpec {
            path: istio.clone(),
            format: AccessLogFormat::IstioDefault,
        },
        AccessLogSpec {
            path: json.clone(),
            format: AccessLogFormat::Json(format),
        },
    ];
    let proxy = start(spec);
    let addr = proxy.address("main").unwrap();
    let a = send(
        addr,
        "POST",
        "/hello?x=1",
        &[("user-agent", "curl/8"), ("x-request-id", "rid-1")],
        "12345",
    );
    assert_eq!(a.status, 200);
    assert_eq!(get(addr, "/dead", &[]).status, 503);
    assert_eq!(get(addr, "/direct", &[]).status, 200);

    let istio_lines = lines(&istio, 3);
    let first = &istio_lines[0];
    let expected_middle = format!(
        "\"POST /hello?x=1 HTTP/1.1\" 200 - via_upstream - \"-\" 5 {} ",
        a.body_bytes.len()
    );
    assert!(
        first.starts_with('[') && first.contains(&expected_middle),
        "{first}"
    );
    assert!(
        first.contains(&format!(
            "\"-\" \"curl/8\" \"rid-1\" \"{addr}\" \"{}\" backend ",
            up.address
        )),
        "{first}"
    );
    assert!(
        istio_lines[1].contains("\"GET /dead HTTP/1.1\" 503 UF "),
        "{}",
        istio_lines[1]
    );
    assert!(
        istio_lines[2].contains("\"GET /direct HTTP/1.1\" 200 - direct_response "),
        "{}",
        istio_lines[2]
    );

    let json_lines = lines(&json, 3);
    let first: serde_json::Value = serde_json::from_str(&json_lines[0]).unwrap();
    assert_eq!(first["code"], 200);
    assert_eq!(first["method"], "POST");
    assert_eq!(first["flags"], "-");
    assert_eq!(first["ua"], "curl/8");
    assert_eq!(first["upstream"], up.address.to_string());
    assert_eq!(first["sent"], a.body_bytes.len());
    let second: serde_json::Value = serde_json::from_str(&json_lines[1]).unwrap();
    assert_eq!(second["flags"], "UF");
    assert!(
        second["upstream"]
            .as_str()
            .unwrap()
            .ends_with(&closed.port().to_string())
    );
    proxy.shutdown();
}
