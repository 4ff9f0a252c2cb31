//! Envoy's and Istio's default formats, for the requests their docs show.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::addr;
use wasp_accesslog::{ENVOY_DEFAULT_FORMAT, Entry, Format, ISTIO_DEFAULT_FORMAT};

#[test]
fn the_default_formats_are_envoys_and_istios() {
    // The docs' default format, its lines joined by the spaces the line breaks stand for.
    let envoy = [
        "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\"",
        "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION%",
        "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\"",
        "\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n",
    ]
    .join(" ");
    assert_eq!(ENVOY_DEFAULT_FORMAT, envoy);
    let istio = [
        "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\"",
        "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%",
        "\"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION%",
        "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\"",
        "\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER%",
        "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%",
        "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n",
    ]
    .join(" ");
    assert_eq!(ISTIO_DEFAULT_FORMAT, istio);
    assert_eq!(
        Format::envoy_default(),
        Format::text(&envoy).expect("parses")
    );
    assert_eq!(
        Format::istio_default(),
        Format::text(&istio).expect("parses")
    );
}

#[test]
fn envoy_default_renders_the_docs_example() {
    let request = [
        (":method", "POST"),
        (":path", "/api/v1/locations"),
        (":authority", "locations"),
        ("x-forwarded-for", "10.0.35.28"),
        ("user-agent", "nsq2http"),
        ("x-request-id", "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2"),
    ];
    let response = [("x-envoy-upstream-service-time", "100")];
    let entry = Entry {
        request_headers: &request,
        response_headers: &response,
        protocol: Some("HTTP/2"),
        response_code: Some(204),
        bytes_received: 154,
        bytes_sent: 0,
        duration: Some(Duration::from_millis(226)),
        upstream_host: Some("tcp://10.0.2.1:80"),
        // 2016-04-15T20:17:00.310Z.
        ..Entry::new(UNIX_EPOCH + Duration::from_millis(1_460_751_420_310))
    };
    // Envoy's docs, "Default Format String", joined onto one line.
    assert_eq!(
        Format::envoy_default().render(&entry),
        "[2016-04-15T20:17:00.310Z] \"POST /api/v1/locations HTTP/2\" 204 - 154 0 226 100 \
         \"10.0.35.28\" \"nsq2http\" \"cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2\" \"locations\" \
         \"tcp://10.0.2.1:80\"\n"
    );
}

#[test]
fn istio_default_renders_the_docs_example() {
    let request = [
        (":method", "GET"),
        (":path", "/status/418"),
        (":authority", "httpbin:8000"),
        ("user-agent", "curl/7.73.0-DEV"),
        ("x-request-id", "84961386-6d84-929d-98bd-c5aee93b5c88"),
    ];
    let response = [("x-envoy-upstream-service-time", "4")];
    let entry = Entry {
        request_headers: &request,
        response_headers: &response,
        protocol: Some("HTTP/1.1"),
        response_code: Some(418),
        response_code_details: Some("via_upstream"),
        bytes_received: 0,
        bytes_sent: 135,
        duration: Some(Duration::from_millis(4)),
        upstream_host: Some("10.44.1.27:80"),
        upstream_cluster: Some("outbound|8000||httpbin.foo.svc.cluster.local"),
        upstream_local_address: Some("10.44.1.23:37652"),
        downstream_local_address: Some(addr("10.0.45.184:8000")),
        downstream_remote_address: Some(addr("10.44.1.23:46520")),
        route_name: Some("default"),
        // 2020-11-25T21:26:18.409Z.
        ..Entry::new(UNIX_EPOCH + Duration::from_millis(1_606_339_578_409))
    };
    // Istio's docs, "Envoy Access Logs", the curl sidecar's line.
    assert_eq!(
        Format::istio_default().render(&entry),
        "[2020-11-25T21:26:18.409Z] \"GET /status/418 HTTP/1.1\" 418 - via_upstream - \"-\" \
         0 135 4 4 \"-\" \"curl/7.73.0-DEV\" \"84961386-6d84-929d-98bd-c5aee93b5c88\" \
         \"httpbin:8000\" \"10.44.1.27:80\" outbound|8000||httpbin.foo.svc.cluster.local \
         10.44.1.23:37652 10.0.45.184:8000 10.44.1.23:46520 - default\n"
    );
}

#[test]
fn defaults_for_a_connection_that_saw_nothing() {
    let entry = Entry::default();
    assert_eq!(
        Format::envoy_default().render(&entry),
        "[1970-01-01T00:00:00.000Z] \"- - -\" 0 - 0 0 - - \"-\" \"-\" \"-\" \"-\" \"-\"\n"
    );
    assert_eq!(
        Format::istio_default().render(&entry),
        "[1970-01-01T00:00:00.000Z] \"- - -\" 0 - - - \"-\" 0 0 - - \"-\" \"-\" \"-\" \"-\" \
         \"-\" - - - - - -\n"
    );
}
