//! Access logs compared: both proxies log each case's requests with Istio's default fields
//! (as a JSON format, so fields compare one by one), and the harness masks what differs by
//! nature — times, durations, ports, request ids — before comparing.

use std::path::Path;

use serde_json::{Map, Value, json};

/// Istio's default access log fields (meshConfig `accessLogFormat` unset), by name.
pub fn istio_fields() -> Map<String, Value> {
    let fields = json!({
        "start_time": "%START_TIME%",
        "method": "%REQ(:METHOD)%",
        "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
        "protocol": "%PROTOCOL%",
        "response_code": "%RESPONSE_CODE%",
        "response_flags": "%RESPONSE_FLAGS%",
        "response_code_details": "%RESPONSE_CODE_DETAILS%",
        "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%",
        "upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
        "bytes_received": "%BYTES_RECEIVED%",
        "bytes_sent": "%BYTES_SENT%",
        "duration": "%DURATION%",
        "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
        "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
        "user_agent": "%REQ(USER-AGENT)%",
        "request_id": "%REQ(X-REQUEST-ID)%",
        "authority": "%REQ(:AUTHORITY)%",
        "upstream_host": "%UPSTREAM_HOST%",
        "upstream_cluster": "%UPSTREAM_CLUSTER%",
        "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
        "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
        "requested_server_name": "%REQUESTED_SERVER_NAME%",
        "route_name": "%ROUTE_NAME%"
    });
    match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A case's log as comparable lines: one `key: value` line per field per request, masked.
pub fn read(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(line) else {
            out.push(format!("#{n} not JSON: {line}"));
            continue;
        };
        for (key, value) in fields {
            out.push(format!("#{n} {key}: {}", mask(&key, &value)));
        }
    }
    out
}

fn mask(key: &str, value: &Value) -> String {
    match (key, value) {
        (_, Value::Null) => "null".into(),
        ("start_time" | "request_id", Value::String(_)) => "<present>".into(),
        ("duration", Value::Number(_)) => "<ms>".into(),
        (_, Value::String(s)) if s.starts_with("127.0.0.1:") => "127.0.0.1:<port>".into(),
        (_, other) => other.to_string(),
    }
}
