//! Formats Envoy rejects are rejected, with the operator and its position in the message.

use serde_json::json;
use wasp_accesslog::{Format, FormatError};

fn error(format: &str) -> FormatError {
    match Format::text(format) {
        Ok(parsed) => panic!("{format:?} should be rejected, parsed as {parsed:?}"),
        Err(error) => error,
    }
}

fn message(format: &str) -> String {
    error(format).to_string()
}

#[test]
fn unknown_operators() {
    assert_eq!(
        message("[%START_TIME%] %FOO% x"),
        "unknown access log operator %FOO% at 15"
    );
    assert_eq!(
        error("%REQUEST_TIME%"),
        FormatError::Unknown {
            name: "REQUEST_TIME".into(),
            position: 0
        }
    );
    // Positions are byte offsets: "é" takes two.
    assert_eq!(message("é %FOO%"), "unknown access log operator %FOO% at 3");
}

#[test]
fn envoy_operators_wasp_does_not_render() {
    assert_eq!(
        message("x %DYNAMIC_METADATA(envoy.lb:canary)%"),
        "access log operator %DYNAMIC_METADATA% at 2 is not supported by wasp"
    );
    for name in [
        "FILTER_STATE(key)",
        "CEL(request.path)",
        "UPSTREAM_METADATA(a:b)",
        "GRPC_STATUS",
        "UNIQUE_ID",
        "RESPONSE_FLAGS_LONG",
        "START_TIME_LOCAL",
        "LOCAL_REPLY_BODY",
    ] {
        assert!(
            matches!(error(&format!("%{name}%")), FormatError::Unsupported { .. }),
            "{name}"
        );
    }
}

#[test]
fn malformed_operators() {
    for (format, position) in [
        ("100%", 3),
        ("%REQ(:PATH", 0),
        ("%REQ(:PATH)", 0),
        ("%RESPONSE_CODE", 0),
        ("ab %req(:path)%", 3),
        ("%REQ(X):abc%", 0),
        ("%REQ(X):%", 0),
        ("%%%", 2),
        ("%REQ(a\nb)%", 0),
        ("% PROTOCOL%", 0),
    ] {
        assert_eq!(
            error(format),
            FormatError::Malformed { position },
            "{format:?}"
        );
    }
    assert_eq!(
        message("100%"),
        "invalid access log operator at 3: expected %NAME%, %NAME(ARG)% or %NAME(ARG):LENGTH% \
         (write %% for a literal %)"
    );
}

#[test]
fn missing_arguments() {
    assert_eq!(message("%REQ%"), "%REQ% at 0 needs a header name: %REQ(X)%");
    assert_eq!(
        message("ab %RESP()%"),
        "%RESP% at 3 needs a header name: %RESP(X)%"
    );
    assert_eq!(
        message("%TRAILER%"),
        "%TRAILER% at 0 needs a header name: %TRAILER(X)%"
    );
    assert_eq!(
        message("%ENVIRONMENT%"),
        "%ENVIRONMENT% at 0 needs a variable name: %ENVIRONMENT(NAME)%"
    );
}

#[test]
fn arguments_and_lengths_an_operator_does_not_take() {
    assert_eq!(
        message("%PROTOCOL(x)%"),
        "%PROTOCOL% at 0 takes no argument: write %PROTOCOL%"
    );
    assert_eq!(
        message("%DURATION:3%"),
        "%DURATION% at 0 takes no length limit (:N)"
    );
    assert_eq!(
        message("%START_TIME(%s):3%"),
        "%START_TIME% at 0 takes no length limit (:N)"
    );
    assert!(matches!(
        error("%RESPONSE_CODE():5%"),
        FormatError::UnexpectedLength { .. }
    ));
}

#[test]
fn invalid_arguments() {
    assert_eq!(
        message("%REQ(A?B?C)%"),
        "%REQ(A?B?C)% at 0: only one alternative header is allowed (X?Y)"
    );
    assert_eq!(
        message("%REQ(bad header)%"),
        "%REQ(bad header)% at 0: \"bad header\" is not a valid header name"
    );
    assert!(matches!(
        error("%REQ(?x)%"),
        FormatError::InvalidArgument { .. }
    ));
    // Envoy's lazy argument makes `a)b` the header name, which is not one.
    assert!(matches!(
        error("%REQ(a)b)%"),
        FormatError::InvalidArgument { .. }
    ));
    assert_eq!(
        message("%START_TIME(%Y%n)%"),
        "%START_TIME(%Y%n)% at 0: a START_TIME format cannot contain a newline (%n)"
    );
    assert!(matches!(
        error("%START_TIME(%-2En)%"),
        FormatError::InvalidArgument { .. }
    ));
}

#[test]
fn json_errors_name_the_value() {
    let format = json!({"a": {"b": "ok %FOO%"}, "c": "%PROTOCOL%"});
    let error = Format::json(format.as_object().expect("an object")).expect_err("rejected");
    assert_eq!(
        error.to_string(),
        "json_format value at a.b: unknown access log operator %FOO% at 3"
    );
    let format = json!({"list": ["%PROTOCOL%", "100%"]});
    let error = Format::json(format.as_object().expect("an object")).expect_err("rejected");
    assert_eq!(
        error,
        FormatError::Json {
            path: "list.1".into(),
            error: Box::new(FormatError::Malformed { position: 3 })
        }
    );
}
