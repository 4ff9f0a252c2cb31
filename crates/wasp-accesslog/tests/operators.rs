//! Every operator, rendered as text from a fully filled entry and from an empty one.

mod common;

use common::{empty, full, text};

/// (operator, with every field set, with nothing set).
const CASES: &[(&str, &str, &str)] = &[
    ("%REQ(:METHOD)%", "GET", "-"),
    ("%REQ(:PATH)%", "/api/v1/items?page=2", "-"),
    ("%REQ(:AUTHORITY)%", "shop.example.com", "-"),
    ("%REQ(:SCHEME)%", "https", "-"),
    ("%REQ(USER-AGENT)%", "curl/8.5.0", "-"),
    ("%REQ(user-agent)%", "curl/8.5.0", "-"),
    ("%REQ(x-custom)%", "Mixed-Case", "-"),
    // A repeated header: its first value, as Envoy logs it.
    ("%REQ(X-MULTI)%", "first", "-"),
    (
        "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
        "/api/v1/items?page=2",
        "-",
    ),
    ("%REQ(X-ABSENT?USER-AGENT)%", "curl/8.5.0", "-"),
    ("%REQ(X-ABSENT)%", "-", "-"),
    // An empty alternative is none, as in Envoy.
    ("%REQ(USER-AGENT?)%", "curl/8.5.0", "-"),
    ("%REQ(USER-AGENT):4%", "curl", "-"),
    ("%REQ(USER-AGENT):400%", "curl/8.5.0", "-"),
    ("%REQ(USER-AGENT):0%", "", "-"),
    ("%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%", "41", "-"),
    ("%RESP(CONTENT-TYPE):11%", "application", "-"),
    ("%RESP(:METHOD)%", "-", "-"),
    ("%TRAILER(GRPC-STATUS)%", "0", "-"),
    ("%TRAILER(GRPC-MESSAGE?GRPC-STATUS)%", "0", "-"),
    (
        "%START_TIME%",
        "2026-12-06T23:37:12.345Z",
        "2026-12-06T23:37:12.345Z",
    ),
    ("%PROTOCOL%", "HTTP/2", "-"),
    ("%PROTOCOL()%", "HTTP/2", "-"),
    ("%RESPONSE_CODE%", "201", "0"),
    ("%RESPONSE_CODE_DETAILS%", "via_upstream", "-"),
    (
        "%RESPONSE_CODE_DETAILS(ALLOW_WHITESPACES)%",
        "via upstream",
        "-",
    ),
    ("%CONNECTION_TERMINATION_DETAILS%", "idle_timeout", "-"),
    ("%RESPONSE_FLAGS%", "UF,URX", "-"),
    ("%BYTES_RECEIVED%", "1234", "0"),
    ("%BYTES_SENT%", "5678", "0"),
    // 45.9 ms: whole milliseconds, truncated.
    ("%DURATION%", "45", "-"),
    ("%REQUEST_DURATION%", "3", "-"),
    ("%RESPONSE_DURATION%", "40", "-"),
    ("%UPSTREAM_HOST%", "10.1.2.3:8080", "-"),
    ("%UPSTREAM_CLUSTER%", "shop-backend", "-"),
    ("%UPSTREAM_CLUSTER_RAW%", "shop-backend", "-"),
    ("%UPSTREAM_LOCAL_ADDRESS%", "10.1.0.5:41000", "-"),
    ("%UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%", "10.1.0.5", "-"),
    ("%UPSTREAM_LOCAL_PORT%", "41000", "-"),
    (
        "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
        "TLS_error:_268435581_CERTIFICATE_VERIFY_FAILED",
        "-",
    ),
    ("%UPSTREAM_REQUEST_ATTEMPT_COUNT%", "2", "0"),
    ("%DOWNSTREAM_LOCAL_ADDRESS%", "10.0.0.1:443", "-"),
    ("%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%", "10.0.0.1", "-"),
    ("%DOWNSTREAM_LOCAL_PORT%", "443", "-"),
    ("%DOWNSTREAM_DIRECT_LOCAL_ADDRESS%", "10.0.0.1:443", "-"),
    (
        "%DOWNSTREAM_DIRECT_LOCAL_ADDRESS_WITHOUT_PORT%",
        "10.0.0.1",
        "-",
    ),
    ("%DOWNSTREAM_DIRECT_LOCAL_PORT%", "443", "-"),
    ("%DOWNSTREAM_REMOTE_ADDRESS%", "[2001:db8::7]:52000", "-"),
    (
        "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
        "2001:db8::7",
        "-",
    ),
    ("%DOWNSTREAM_REMOTE_PORT%", "52000", "-"),
    (
        "%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%",
        "[2001:db8::7]:52000",
        "-",
    ),
    (
        "%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%",
        "2001:db8::7",
        "-",
    ),
    ("%DOWNSTREAM_DIRECT_REMOTE_PORT%", "52000", "-"),
    ("%REQUESTED_SERVER_NAME%", "shop.example.com", "-"),
    ("%ROUTE_NAME%", "shop-route", "-"),
    ("%HOSTNAME%", "wasp-7f9c", "-"),
    ("%CONNECTION_ID%", "17", "0"),
    (
        "%DOWNSTREAM_PEER_URI_SAN%",
        "spiffe://cluster.local/ns/shop/sa/client",
        "-",
    ),
    (
        "%DOWNSTREAM_LOCAL_URI_SAN%",
        "spiffe://cluster.local/ns/shop/sa/gateway",
        "-",
    ),
    ("%DOWNSTREAM_PEER_SUBJECT%", "CN=client,O=Shop", "-"),
    ("%DOWNSTREAM_TLS_VERSION%", "TLSv1.3", "-"),
    ("%ENVIRONMENT(WASP_ACCESSLOG_TEST_SURELY_UNSET)%", "-", "-"),
];

#[test]
fn every_operator_from_a_full_and_an_empty_entry() {
    let (full, empty) = (full(), empty());
    let mut failures = Vec::new();
    for &(operator, when_full, when_empty) in CASES {
        for (entry, expected, which) in [(&full, when_full, "full"), (&empty, when_empty, "empty")]
        {
            let got = text(operator, entry);
            if got != expected {
                failures.push(format!(
                    "{operator} ({which}): {got:?}, expected {expected:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn environment_is_read_when_parsed_and_truncated() {
    // Cargo sets CARGO_PKG_NAME for the test process; read it the same way to compare.
    let expected = std::env::var("CARGO_PKG_NAME").unwrap_or_else(|_| "-".to_owned());
    assert_eq!(text("%ENVIRONMENT(CARGO_PKG_NAME)%", &empty()), expected);
    if expected == "wasp-accesslog" {
        assert_eq!(text("%ENVIRONMENT(CARGO_PKG_NAME):4%", &empty()), "wasp");
    }
}

#[test]
fn empty_strings_count_as_unset_where_envoy_says_so() {
    let entry = wasp_accesslog::Entry {
        upstream_cluster: Some(""),
        route_name: Some(""),
        requested_server_name: Some(""),
        upstream_transport_failure_reason: Some(""),
        downstream_peer_uri_san: Some(""),
        ..empty()
    };
    assert_eq!(
        text(
            "%UPSTREAM_CLUSTER% %ROUTE_NAME% %REQUESTED_SERVER_NAME% \
             %UPSTREAM_TRANSPORT_FAILURE_REASON% %DOWNSTREAM_PEER_URI_SAN% %HOSTNAME%",
            &entry
        ),
        "- - - - - -"
    );
}

#[test]
fn response_code_details_replace_every_kind_of_whitespace() {
    let entry = wasp_accesslog::Entry {
        response_code_details: Some("upstream reset:\tconnection\ntermination"),
        ..empty()
    };
    assert_eq!(
        text("%RESPONSE_CODE_DETAILS%", &entry),
        "upstream_reset:_connection_termination"
    );
}

#[test]
fn an_upstream_local_address_that_is_not_ip_port_is_kept_whole() {
    let entry = wasp_accesslog::Entry {
        upstream_local_address: Some("/run/wasp/upstream.sock"),
        ..empty()
    };
    assert_eq!(
        text(
            "%UPSTREAM_LOCAL_ADDRESS% %UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT% %UPSTREAM_LOCAL_PORT%",
            &entry
        ),
        "/run/wasp/upstream.sock /run/wasp/upstream.sock -"
    );
}

#[test]
fn the_original_path_wins_over_the_path() {
    let headers = [
        (":path", "/rewritten"),
        ("x-envoy-original-path", "/original"),
    ];
    let entry = wasp_accesslog::Entry {
        request_headers: &headers,
        ..empty()
    };
    assert_eq!(
        text("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", &entry),
        "/original"
    );
}
