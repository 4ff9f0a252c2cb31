//! Entries the tests render: one with every field filled, one with nothing but a start time.

#![allow(dead_code)] // Each test file uses a part of this.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasp_accesslog::{Entry, Format};

/// 2026-12-06T23:37:12.345678901Z.
pub fn start() -> SystemTime {
    UNIX_EPOCH + Duration::new(1_796_600_232, 345_678_901)
}

pub static REQUEST: [(&str, &str); 10] = [
    (":method", "GET"),
    (":path", "/api/v1/items?page=2"),
    (":authority", "shop.example.com"),
    (":scheme", "https"),
    ("user-agent", "curl/8.5.0"),
    ("x-request-id", "7b1c2d3e-0000-4000-8000-000000000001"),
    ("x-forwarded-for", "203.0.113.7"),
    // Stored in mixed case: the lookup ignores case.
    ("X-Custom", "Mixed-Case"),
    ("x-multi", "first"),
    ("x-multi", "second"),
];

pub static RESPONSE: [(&str, &str); 2] = [
    ("x-envoy-upstream-service-time", "41"),
    ("content-type", "application/json"),
];

pub static TRAILERS: [(&str, &str); 1] = [("grpc-status", "0")];

/// Every field set.
pub fn full() -> Entry<'static> {
    Entry {
        start_time: start(),
        request_headers: &REQUEST,
        response_headers: &RESPONSE,
        response_trailers: &TRAILERS,
        protocol: Some("HTTP/2"),
        response_code: Some(201),
        response_flags: "UF,URX",
        response_code_details: Some("via upstream"),
        connection_termination_details: Some("idle_timeout"),
        upstream_transport_failure_reason: Some("TLS error: 268435581 CERTIFICATE_VERIFY_FAILED"),
        bytes_received: 1234,
        bytes_sent: 5678,
        duration: Some(Duration::from_micros(45_900)),
        request_duration: Some(Duration::from_millis(3)),
        response_duration: Some(Duration::from_millis(40)),
        upstream_host: Some("10.1.2.3:8080"),
        upstream_cluster: Some("shop-backend"),
        upstream_local_address: Some("10.1.0.5:41000"),
        upstream_request_attempt_count: Some(2),
        downstream_local_address: Some(addr("10.0.0.1:443")),
        downstream_remote_address: Some(addr("[2001:db8::7]:52000")),
        requested_server_name: Some("shop.example.com"),
        route_name: Some("shop-route"),
        connection_id: Some(17),
        downstream_peer_uri_san: Some("spiffe://cluster.local/ns/shop/sa/client"),
        downstream_local_uri_san: Some("spiffe://cluster.local/ns/shop/sa/gateway"),
        downstream_peer_subject: Some("CN=client,O=Shop"),
        downstream_tls_version: Some("TLSv1.3"),
        hostname: "wasp-7f9c",
    }
}

/// Nothing but the start time.
pub fn empty() -> Entry<'static> {
    Entry::new(start())
}

pub fn addr(text: &str) -> SocketAddr {
    text.parse().expect("a socket address")
}

/// `format` as a text format, rendered for `entry`.
pub fn text(format: &str, entry: &Entry<'_>) -> String {
    Format::text(format)
        .unwrap_or_else(|error| panic!("{format:?} should parse: {error}"))
        .render(entry)
}
