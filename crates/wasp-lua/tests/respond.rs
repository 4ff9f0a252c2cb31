//! `respond()`: local replies from the request and the response path.

mod common;

use common::{Harness, request, set_response};
use wasp_lua::{CallResponse, Direction, LocalReply, Outcome};

#[test]
fn respond_from_the_request_path() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          if handle:headers():get("x-deny") then
            handle:respond({[":status"] = "403", ["x-why"] = "denied"}, "nope")
            error("not reached")
          end
        end
        "#,
    );
    let (mut s, _m) = h.stream(&[(":path", "/"), ("x-deny", "1")]);
    match s.on_request_headers(true) {
        Outcome::LocalReply(LocalReply {
            status,
            headers,
            body,
        }) => {
            assert_eq!(status, 403);
            assert_eq!(headers.get("x-why"), Some("denied"));
            assert_eq!(headers.get(":status"), None);
            assert_eq!(body, b"nope");
        }
        other => panic!("{other:?}"),
    }
    // The script is not resumed: later phases pass.
    assert_eq!(s.on_request_body(true), Outcome::Continue);
    let (mut s, _m) = h.stream(&request());
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
}

#[test]
fn respond_after_a_callout_and_after_the_body() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          local body = handle:body()
          local headers = handle:httpCall("authz", {[":method"] = "POST", [":path"] = "/",
            [":authority"] = "authz"}, body:getBytes(0, body:length()), 100)
          if headers[":status"] ~= "200" then
            handle:respond({[":status"] = headers[":status"]}, "denied by authz")
          end
        end
        "#,
    );
    let (mut s, m) = h.stream(&request());
    assert_eq!(s.on_request_headers(false), Outcome::StopAndBuffer);
    m.borrow_mut().request_body = b"payload".to_vec();
    let Outcome::HttpCall(call) = s.on_request_body(true) else {
        panic!("expected a callout")
    };
    assert_eq!(call.body, b"payload");
    let outcome = s.on_http_call_response(
        Direction::Request,
        Some(CallResponse {
            headers: wasp_lua::Headers::from_pairs([(":status", "401")]),
            body: Vec::new(),
        }),
    );
    assert_eq!(
        outcome,
        Outcome::LocalReply(LocalReply {
            status: 401,
            headers: wasp_lua::Headers::new(),
            body: b"denied by authz".to_vec(),
        })
    );
}

/// Envoy 1.40 refuses `respond()` in the response path: a script error there.
#[test]
fn respond_from_the_response_path_is_an_error() {
    let h = Harness::new(
        r#"
        function envoy_on_response(handle)
          if handle:headers():get(":status") == "500" then
            handle:respond({[":status"] = "503", ["retry-after"] = "1"})
          end
        end
        "#,
    );
    let (mut s, m) = h.stream(&request());
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
    set_response(&m, &[(":status", "500")]);
    match s.on_response_headers(false) {
        Outcome::Error(e) => assert!(
            e.contains("respond not currently supported in the response path"),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn status_must_be_valid_and_headers_not_yet_continued() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          if handle:headers():get("x-case") == "status" then
            handle:respond({[":status"] = "abc"}, "")
          end
          for chunk in handle:bodyChunks() do
            handle:respond({[":status"] = "400"}, "too late")
          end
        end
        "#,
    );
    let (mut s, _m) = h.stream(&[(":path", "/"), ("x-case", "status")]);
    assert_eq!(
        s.on_request_headers(true),
        Outcome::Error("[string \"...\"]:4: :status must be between 200-599".into())
    );
    let (mut s, _m) = h.stream(&request());
    assert_eq!(s.on_request_headers(false), Outcome::Continue);
    assert_eq!(
        s.on_request_body(true),
        Outcome::Error(
            "[string \"...\"]:7: respond() cannot be called if headers have been continued".into()
        )
    );
}
