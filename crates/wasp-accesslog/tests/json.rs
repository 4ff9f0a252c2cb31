//! JSON formats: types kept for single operators, strings for mixed values, keys sorted,
//! nesting, escaping, one line each.

mod common;

use common::{empty, full};
use serde_json::{Value, json};
use wasp_accesslog::{Entry, Format};

fn format(value: &Value) -> Format {
    Format::json(value.as_object().expect("an object")).expect("parses")
}

/// Renders and checks the line is one JSON object and a newline.
fn render(value: &Value, entry: &Entry<'_>) -> (String, Value) {
    let line = format(value).render(entry);
    let body = line.strip_suffix('\n').expect("ends with a newline");
    assert!(!body.contains('\n'), "one line: {line:?}");
    let parsed = serde_json::from_str(body).expect("valid JSON");
    (line, parsed)
}

fn all_operators() -> Value {
    json!({
        "method": "%REQ(:METHOD)%",
        "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
        "agent": "%REQ(USER-AGENT):4%",
        "service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
        "grpc": "%TRAILER(GRPC-STATUS)%",
        "start": "%START_TIME%",
        "epoch": "%START_TIME(%s)%",
        "protocol": "%PROTOCOL%",
        "code": "%RESPONSE_CODE%",
        "details": "%RESPONSE_CODE_DETAILS%",
        "termination": "%CONNECTION_TERMINATION_DETAILS%",
        "flags": "%RESPONSE_FLAGS%",
        "received": "%BYTES_RECEIVED%",
        "sent": "%BYTES_SENT%",
        "duration": "%DURATION%",
        "request_duration": "%REQUEST_DURATION%",
        "response_duration": "%RESPONSE_DURATION%",
        "upstream_host": "%UPSTREAM_HOST%",
        "cluster": "%UPSTREAM_CLUSTER%",
        "upstream_local": "%UPSTREAM_LOCAL_ADDRESS%",
        "upstream_local_port": "%UPSTREAM_LOCAL_PORT%",
        "transport_failure": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
        "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
        "local": "%DOWNSTREAM_LOCAL_ADDRESS%",
        "local_port": "%DOWNSTREAM_LOCAL_PORT%",
        "remote": "%DOWNSTREAM_REMOTE_ADDRESS%",
        "remote_ip": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
        "remote_port": "%DOWNSTREAM_REMOTE_PORT%",
        "sni": "%REQUESTED_SERVER_NAME%",
        "route": "%ROUTE_NAME%",
        "hostname": "%HOSTNAME%",
        "connection": "%CONNECTION_ID%",
        "peer_san": "%DOWNSTREAM_PEER_URI_SAN%",
        "local_san": "%DOWNSTREAM_LOCAL_URI_SAN%",
        "subject": "%DOWNSTREAM_PEER_SUBJECT%",
        "tls": "%DOWNSTREAM_TLS_VERSION%",
        "env": "%ENVIRONMENT(WASP_ACCESSLOG_TEST_SURELY_UNSET)%",
    })
}

#[test]
fn a_single_operator_keeps_its_type() {
    let (_, got) = render(&all_operators(), &full());
    assert_eq!(
        got,
        json!({
            "method": "GET",
            "path": "/api/v1/items?page=2",
            "agent": "curl",
            // A header is a string even when it holds digits.
            "service_time": "41",
            "grpc": "0",
            "start": "2026-12-06T23:37:12.345Z",
            // START_TIME is always a string.
            "epoch": "1796600232",
            "protocol": "HTTP/2",
            "code": 201,
            "details": "via_upstream",
            "termination": "idle_timeout",
            "flags": "UF,URX",
            "received": 1234,
            "sent": 5678,
            "duration": 45,
            "request_duration": 3,
            "response_duration": 40,
            "upstream_host": "10.1.2.3:8080",
            "cluster": "shop-backend",
            "upstream_local": "10.1.0.5:41000",
            "upstream_local_port": 41000,
            "transport_failure": "TLS_error:_268435581_CERTIFICATE_VERIFY_FAILED",
            "attempts": 2,
            "local": "10.0.0.1:443",
            "local_port": 443,
            "remote": "[2001:db8::7]:52000",
            "remote_ip": "2001:db8::7",
            "remote_port": 52000,
            "sni": "shop.example.com",
            "route": "shop-route",
            "hostname": "wasp-7f9c",
            "connection": 17,
            "peer_san": "spiffe://cluster.local/ns/shop/sa/client",
            "local_san": "spiffe://cluster.local/ns/shop/sa/gateway",
            "subject": "CN=client,O=Shop",
            "tls": "TLSv1.3",
            "env": "-",
        })
    );
}

#[test]
fn a_missing_single_operator_is_null() {
    let (_, got) = render(&all_operators(), &empty());
    assert_eq!(
        got,
        json!({
            "method": null,
            "path": null,
            "agent": null,
            "service_time": null,
            "grpc": null,
            "start": "2026-12-06T23:37:12.345Z",
            "epoch": "1796600232",
            "protocol": null,
            // Envoy's value_or(0) counters, and the flags' own "-".
            "code": 0,
            "details": null,
            "termination": null,
            "flags": "-",
            "received": 0,
            "sent": 0,
            "duration": null,
            "request_duration": null,
            "response_duration": null,
            "upstream_host": null,
            "cluster": null,
            "upstream_local": null,
            "upstream_local_port": null,
            "transport_failure": null,
            "attempts": 0,
            "local": null,
            "local_port": null,
            "remote": null,
            "remote_ip": null,
            "remote_port": null,
            "sni": null,
            "route": null,
            "hostname": null,
            "connection": 0,
            "peer_san": null,
            "local_san": null,
            "subject": null,
            "tls": null,
            // ENVIRONMENT is resolved to "-" when parsed, a string even here.
            "env": "-",
        })
    );
}

#[test]
fn mixed_values_are_strings_with_dashes_for_missing() {
    let value = json!({
        "request": "%REQ(:METHOD)% %REQ(:PATH)%",
        "took": "%DURATION%ms",
        "percent": "100%%",
    });
    let (_, got) = render(&value, &full());
    assert_eq!(
        got,
        json!({"request": "GET /api/v1/items?page=2", "took": "45ms", "percent": "100%"})
    );
    let (_, got) = render(&value, &empty());
    assert_eq!(
        got,
        json!({"request": "- -", "took": "-ms", "percent": "100%"})
    );
}

#[test]
fn keys_are_sorted_at_every_level_and_literals_kept() {
    let value = json!({
        "z": 1,
        "a": {
            "y": "%PROTOCOL%",
            "b": ["%RESPONSE_CODE%", true, null, 2.5, "plain", "x%%", {"k": "%BYTES_SENT%"}],
        },
        "B": false,
        "_": "constant",
        "empty": {},
        "list": [],
    });
    let (line, _) = render(&value, &full());
    assert_eq!(
        line,
        "{\"B\":false,\"_\":\"constant\",\"a\":{\"b\":[201,true,null,2.5,\"plain\",\"x%\",\
         {\"k\":5678}],\"y\":\"HTTP/2\"},\"empty\":{},\"list\":[],\"z\":1}\n"
    );
    let (line, _) = render(&value, &empty());
    assert_eq!(
        line,
        "{\"B\":false,\"_\":\"constant\",\"a\":{\"b\":[0,true,null,2.5,\"plain\",\"x%\",\
         {\"k\":0}],\"y\":null},\"empty\":{},\"list\":[],\"z\":1}\n"
    );
}

#[test]
fn an_empty_format_is_an_empty_object() {
    assert_eq!(format(&json!({})).render(&full()), "{}\n");
    assert!(format(&json!({})).is_json());
}

#[test]
fn values_and_keys_are_escaped_as_serde_json_escapes_them() {
    let mut nasty: String = (0u8..0x80).map(char::from).collect();
    nasty.push_str("é日本\u{2028}🦀\u{7f}");
    let headers = [("x-nasty", nasty.as_str())];
    let entry = Entry {
        request_headers: &headers,
        ..empty()
    };
    let value = json!({"v": "%REQ(X-NASTY)%", "mixed": "<%REQ(X-NASTY)%>", "k\"\\\n": "c\"\t"});
    let (line, parsed) = render(&value, &entry);
    let expected = format!(
        "{{\"k\\\"\\\\\\n\":\"c\\\"\\t\",\"mixed\":{},\"v\":{}}}\n",
        serde_json::to_string(&format!("<{nasty}>")).expect("serializes"),
        serde_json::to_string(&nasty).expect("serializes"),
    );
    assert_eq!(line, expected);
    assert_eq!(parsed["v"], Value::String(nasty.clone()));
    assert_eq!(parsed["mixed"], Value::String(format!("<{nasty}>")));
}
