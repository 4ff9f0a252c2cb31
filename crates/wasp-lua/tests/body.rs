//! `body()`, `bodyChunks()`, `trailers()` and the buffer object: the coroutine waits for the
//! body and the chain buffers meanwhile.

mod common;

use common::{Harness, request, request_header, response_header, set_response};
use wasp_lua::{Headers, Outcome};

#[test]
fn body_waits_for_the_whole_body_then_resumes() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          handle:headers():add("x-before", "1")
          local body = handle:body()
          -- Headers are still held: they can change after the body arrived.
          handle:headers():add("x-length", tostring(body:length()))
          handle:headers():add("x-bytes", body:getBytes(0, 5))
          handle:headers():add("x-tail", body:getBytes(6, 5))
        end
        "#,
    );
    let (mut s, m) = h.stream(&request());
    assert_eq!(s.on_request_headers(false), Outcome::StopAndBuffer);
    assert_eq!(request_header(&m, "x-before").as_deref(), Some("1"));
    // The chain buffers chunk by chunk and calls with everything so far.
    m.borrow_mut().request_body = b"hello".to_vec();
    assert_eq!(s.on_request_body(false), Outcome::StopAndBuffer);
    m.borrow_mut().request_body = b"hello world".to_vec();
    assert_eq!(s.on_request_body(true), Outcome::Continue);
    assert_eq!(request_header(&m, "x-length").as_deref(), Some("11"));
    assert_eq!(request_header(&m, "x-bytes").as_deref(), Some("hello"));
    assert_eq!(request_header(&m, "x-tail").as_deref(), Some("world"));
}

#[test]
fn body_is_nil_without_a_body_unless_always_wrapped() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          handle:headers():add("x-nil", tostring(handle:body() == nil))
          handle:headers():add("x-wrapped", tostring(handle:body(true):length()))
        end
        "#,
    );
    let (mut s, m) = h.stream(&request());
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
    assert_eq!(request_header(&m, "x-nil").as_deref(), Some("true"));
    assert_eq!(request_header(&m, "x-wrapped").as_deref(), Some("0"));
}

#[test]
fn set_bytes_replaces_the_body_and_content_length() {
    let h = Harness::new(
        r#"
        function envoy_on_response(handle)
          local body = handle:body()
          local n = body:setBytes(string.upper(body:getBytes(0, body:length())) .. "!")
          handle:headers():add("x-new-length", tostring(n))
        end
        "#,
    );
    let (mut s, m) = h.stream(&request());
    assert_eq!(s.on_request_headers(true), Outcome::Continue);
    set_response(&m, &[(":status", "200"), ("content-length", "5")]);
    assert_eq!(s.on_response_headers(false), Outcome::StopAndBuffer);
    m.borrow_mut().response_body = b"hello".to_vec();
    assert_eq!(s.on_response_body(true), Outcome::Continue);
    assert_eq!(m.borrow().response_body, b"HELLO!");
    assert_eq!(response_header(&m, "content-length").as_deref(), Some("6"));
    assert_eq!(response_header(&m, "x-new-length").as_deref(), Some("6"));
}

#[test]
fn get_bytes_out_of_range_is_a_script_error() {
    let h = Harness::new(
        r"
        function envoy_on_request(handle)
          local body = handle:body()
          body:getBytes(2, 10)
        end
        ",
    );
    let (mut s, m) = h.stream(&request());
    assert_eq!(s.on_request_headers(false), Outcome::StopAndBuffer);
    m.borrow_mut().request_body = b"abc".to_vec();
    assert_eq!(
        s.on_request_body(true),
        Outcome::Error(
            "[string \"...\"]:4: index/length must be >= 0 and (index + length) must be <= buffer size"
                .into()
        )
    );
}

#[test]
fn body_chunks_streams_each_chunk_without_buffering() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          local n = 0
          for chunk in handle:bodyChunks() do
            n = n + 1
            chunk:setBytes("[" .. n .. ":" .. chunk:getBytes(0, chunk:length()) .. "]")
          end
          handle:logInfo("chunks " .. n)
        end
        "#,
    );
    let (mut s, m) = h.stream(&request());
    // Headers go on at once: the script only streams.
    assert_eq!(s.on_request_headers(false), Outcome::Continue);
    for (chunk, eos, expected) in [
        (&b"ab"[..], false, &b"[1:ab]"[..]),
        (b"cd", false, b"[2:cd]"),
        (b"", true, b"[3:]"),
    ] {
        m.borrow_mut().request_body = chunk.to_vec();
        assert_eq!(s.on_request_body(eos), Outcome::Continue);
        assert_eq!(m.borrow().request_body, expected);
    }
    assert_eq!(h.messages(), ["chunks 3"]);
}

#[test]
fn body_after_streaming_started_is_an_error() {
    let h = Harness::new(
        r"
        function envoy_on_request(handle)
          local next_chunk = handle:bodyChunks()
          next_chunk()
          handle:body()
        end
        ",
    );
    let (mut s, m) = h.stream(&request());
    assert_eq!(s.on_request_headers(false), Outcome::Continue);
    m.borrow_mut().request_body = b"x".to_vec();
    match s.on_request_body(false) {
        Outcome::Error(e) => assert_eq!(
            e,
            "[string \"...\"]:5: cannot call body() after body streaming has started"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn trailers_wait_for_the_trailers() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          local trailers = handle:trailers()
          trailers:add("x-trailer-seen", trailers:get("grpc-status"))
        end
        "#,
    );
    let (mut s, m) = h.stream(&request());
    assert_eq!(s.on_request_headers(false), Outcome::Continue);
    m.borrow_mut().request_body = b"data".to_vec();
    // Waiting for trailers does not hold the body.
    assert_eq!(s.on_request_body(false), Outcome::Continue);
    m.borrow_mut().request_trailers = Some(Headers::from_pairs([("grpc-status", "0")]));
    assert_eq!(s.on_request_trailers(), Outcome::Continue);
    let trailers = m.borrow().request_trailers.clone().unwrap();
    assert_eq!(trailers.get("x-trailer-seen"), Some("0"));
}

#[test]
fn trailers_are_nil_when_the_stream_ends_without() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          handle:logInfo("trailers " .. tostring(handle:trailers()))
        end
        "#,
    );
    let (mut s, m) = h.stream(&request());
    assert_eq!(s.on_request_headers(false), Outcome::Continue);
    m.borrow_mut().request_body = b"data".to_vec();
    assert_eq!(s.on_request_body(true), Outcome::Continue);
    assert_eq!(h.messages(), ["trailers nil"]);
}

#[test]
fn body_then_trailers_when_the_body_ends_with_trailers() {
    let h = Harness::new(
        r#"
        function envoy_on_request(handle)
          local body = handle:body()
          local trailers = handle:trailers()
          handle:logInfo(body:getBytes(0, body:length()) .. " " .. trailers:get("t"))
        end
        "#,
    );
    let (mut s, m) = h.stream(&request());
    assert_eq!(s.on_request_headers(false), Outcome::StopAndBuffer);
    m.borrow_mut().request_body = b"buffered".to_vec();
    assert_eq!(s.on_request_body(false), Outcome::StopAndBuffer);
    m.borrow_mut().request_trailers = Some(Headers::from_pairs([("t", "v")]));
    assert_eq!(s.on_request_trailers(), Outcome::Continue);
    assert_eq!(h.messages(), ["buffered v"]);
}
