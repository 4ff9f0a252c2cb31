//! `httpCall()`: the coroutine pauses on the callout and resumes with its answer.

mod common;

use std::time::Duration;

use common::{Harness, request, request_header};
use wasp_lua::{CallResponse, Direction, Headers, Outcome};

const AUTH_SCRIPT: &str = r#"
function envoy_on_request(handle)
  local headers, body = handle:httpCall("auth", {
    [":method"] = "POST",
    [":path"] = "/check",
    [":authority"] = "auth.local",
    ["x-multi"] = {"a", "b"},
  }, "who am i", 250)
  handle:headers():add("x-auth-status", headers[":status"])
  handle:headers():add("x-auth-body", tostring(body))
  handle:headers():add("x-auth-user", tostring(headers["x-user"]))
end
"#;

fn call(outcome: Outcome) -> wasp_lua::CallRequest {
    match outcome {
        Outcome::HttpCall(request) => request,
        other => panic!("expected a callout, got {other:?}"),
    }
}

#[test]
fn pauses_on_the_call_and_resumes_with_the_answer() {
    let h = Harness::new(AUTH_SCRIPT);
    let (mut s, m) = h.stream(&request());
    let request = call(s.on_request_headers(true));
    assert_eq!(request.cluster, "auth");
    assert_eq!(request.headers.get(":method"), Some("POST"));
    assert_eq!(request.headers.get(":path"), Some("/check"));
    let multi: Vec<_> = request
        .headers
        .entries()
        .iter()
        .filter(|(k, _)| k == b"x-multi")
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(multi, [b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(request.body, b"who am i");
    assert_eq!(request.timeout, Some(Duration::from_millis(250)));
    assert!(!request.asynchronous);
    assert!(request.send_xff);

    let answer = CallResponse {
        headers: Headers::from_pairs([(":status", "200"), ("x-user", "alice")]),
        body: b"ok".to_vec(),
    };
    assert_eq!(
        s.on_http_call_response(Direction::Request, Some(answer)),
        Outcome::Continue
    );
    assert_eq!(request_header(&m, "x-auth-status").as_deref(), Some("200"));
    assert_eq!(request_header(&m, "x-auth-body").as_deref(), Some("ok"));
    assert_eq!(request_header(&m, "x-auth-user").as_deref(), Some("alice"));
}

#[test]
fn body_chunks_arriving_during_the_call_are_buffered() {
    let h = Harness::new(AUTH_SCRIPT);
    let (mut s, m) = h.stream(&request());
    call(s.on_request_headers(false));
    m.borrow_mut().request_body = b"part".to_vec();
    assert_eq!(s.on_request_body(false), Outcome::StopAndBuffer);
    assert_eq!(s.on_request_body(true), Outcome::StopAndBuffer);
    let answer = CallResponse {
        headers: Headers::from_pairs([(":status", "204")]),
        body: Vec::new(),
    };
    assert_eq!(
        s.on_http_call_response(Direction::Request, Some(answer)),
        Outcome::Continue
    );
    // An empty answer body is nil.
    assert_eq!(request_header(&m, "x-auth-body").as_deref(), Some("nil"));
}

#[test]
fn a_failed_call_looks_like_a_503_from_upstream() {
    let h = Harness::new(AUTH_SCRIPT);
    let (mut s, m) = h.stream(&request());
    call(s.on_request_headers(true));
    assert_eq!(
        s.on_http_call_response(Direction::Request, None),
        Outcome::Continue
    );
    assert_eq!(request_header(&m, "x-auth-status").as_deref(), Some("503"));
    assert_eq!(
        request_header(&m, "x-auth-body").as_deref(),
        Some("upstream failure")
    );
}

#[test]
fn options_table_and_duplicate_headers() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          local headers = handle:httpCall("c", {
            [":method"] = "GET", [":path"] = "/", [":authority"] = "a",
          }, nil, { timeout_ms = 0, return_duplicate_headers = true, send_xff = false,
                    trace_sampled = true })
          handle:headers():add("x-cookies", table.concat(headers["set-cookie"], ","))
        end
        "#,
    );
    let (mut s, m) = h.stream(&request());
    let request = call(s.on_request_headers(true));
    assert_eq!(request.timeout, None);
    assert!(request.body.is_empty());
    assert!(!request.send_xff);
    assert_eq!(request.trace_sampled, Some(true));
    let answer = CallResponse {
        headers: Headers::from_pairs([
            (":status", "200"),
            ("set-cookie", "a"),
            ("set-cookie", "b"),
        ]),
        body: Vec::new(),
    };
    assert_eq!(
        s.on_http_call_response(Direction::Request, Some(answer)),
        Outcome::Continue
    );
    assert_eq!(request_header(&m, "x-cookies").as_deref(), Some("a,b"));
}

#[test]
fn asynchronous_calls_do_not_pause() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          local hs = {[":method"] = "POST", [":path"] = "/log", [":authority"] = "log"}
          local r = handle:httpCall("log", hs, "one", 100, true)
          handle:httpCall("log", hs, "two", { asynchronous = true, timeout_ms = 5 })
          handle:headers():add("x-returned", tostring(r))
        end
        "#,
    );
    let (mut s, m) = h.stream(&request());
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
    let calls = s.take_async_calls();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c.asynchronous && c.cluster == "log"));
    assert_eq!(calls[0].body, b"one");
    assert_eq!(calls[1].timeout, Some(Duration::from_millis(5)));
    assert!(s.take_async_calls().is_empty());
    assert_eq!(request_header(&m, "x-returned").as_deref(), Some("nil"));
}

#[test]
fn calls_need_method_path_authority_and_a_known_cluster() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          local which = handle:headers():get("x-case")
          if which == "headers" then
            handle:httpCall("c", {[":method"] = "GET"}, nil, 10)
          else
            handle:httpCall("nowhere", {[":method"] = "GET", [":path"] = "/",
                                        [":authority"] = "a"}, nil, 10)
          end
        end
        "#,
    );
    let (mut s, _m) = h.stream(&[(":path", "/"), ("x-case", "headers")]);
    // API errors carry Envoy's plain message (it raises them from C, without a position).
    assert_eq!(
        s.on_request_headers(true),
        Outcome::Error(
            "http call headers must include ':path', ':method', and ':authority'".into()
        )
    );
    let (mut s, m) = h.stream(&[(":path", "/"), ("x-case", "cluster")]);
    m.borrow_mut().clusters = vec!["c".into()];
    assert_eq!(
        s.on_request_headers(true),
        Outcome::Error("http call cluster invalid. Must be configured".into())
    );
}

#[test]
fn calls_from_the_response_path() {
    let h = Harness::new(
        r#"
        function envoy_on_response(handle)
          local headers = handle:httpCall("c", {[":method"] = "GET", [":path"] = "/",
                                                [":authority"] = "a"}, "", 10)
          handle:headers():add("x-from-call", headers[":status"])
        end
        "#,
    );
    let (mut s, m) = h.stream(&request());
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
    common::set_response(&m, &[(":status", "200")]);
    call(s.on_response_headers(true));
    let answer = CallResponse {
        headers: Headers::from_pairs([(":status", "418")]),
        body: Vec::new(),
    };
    assert_eq!(
        s.on_http_call_response(Direction::Response, Some(answer)),
        Outcome::Continue
    );
    assert_eq!(
        common::response_header(&m, "x-from-call").as_deref(),
        Some("418")
    );
}
