//! Header and trailer maps: reads, edits, whole-map replacement, repeated keys, and the
//! rules for when a map may still be written.

mod support;

use support::*;
use wasp_host::{CallError, HeaderMap, HeadersAction, LogLevel, TrailersAction};

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn headers_scenario_adds_replaces_removes_and_reads() {
    let mut f = start("hostcalls", "");
    let (ctx, stream, action) = f.scenario(
        "headers",
        &[
            ("x-replace", "original"),
            ("x-remove", "bye"),
            ("x-new-path", "/new"),
        ],
    );
    assert_eq!(action, HeadersAction::Continue);
    // x-seen-headers is taken after add/replace/remove: pseudo-headers first, in order, the
    // removed one gone, the added one and then the replaced one last (replacing removes and
    // appends, as Envoy's setCopy).
    let seen = ":method,:path,:authority,:scheme,x-scenario,x-new-path,x-added,x-replace";
    // x-pairs is `get_http_request_headers_bytes().len()`: the number of entries the host
    // returned when it was taken (the 8 above plus x-seen-headers and x-missing).
    assert_eq!(
        request_headers(&stream),
        owned(&[
            (":method", "GET"),
            (":authority", "example.com"),
            (":scheme", "http"),
            // Replaced, so removed and added again: after the other pseudo-headers, which
            // stay first (Envoy's order).
            (":path", "/new"),
            ("x-scenario", "headers"),
            ("x-new-path", "/new"),
            ("x-added", "yes"),
            ("x-replace", "replaced"),
            ("x-seen-headers", seen),
            ("x-missing", "none"),
            ("x-pairs", "10"),
        ])
    );
    f.vm.finish_stream(ctx).unwrap();
}

#[test]
fn get_pairs_returns_every_entry_of_a_repeated_header() {
    let mut f = start("hostcalls", "");
    let (_, stream, _) = f.scenario(
        "headers",
        &[
            ("x-dup", "a"),
            ("X-Dup", "b"),
            ("x-other", "c"),
            ("x-dup", "d"),
        ],
    );
    // x-replace was missing, so setting it appended it after x-added.
    assert_eq!(
        present(&stream, "x-seen-headers"),
        ":method,:path,:authority,:scheme,x-scenario,x-dup,x-dup,x-other,x-dup,x-added,x-replace"
    );
    assert_eq!(header_values(&stream, "x-dup"), ["a", "b", "d"]);
    // 11 entries seen, plus x-seen-headers and x-missing.
    assert_eq!(present(&stream, "x-pairs"), "13");
}

/// The value of a request header that must be there.
fn present(stream: &wasp_host::SharedHttpStream, name: &str) -> String {
    header(stream, name).unwrap_or_else(|| panic!("no {name} header"))
}

#[test]
fn set_headers_replaces_the_whole_map() {
    let mut f = start("hostcalls", "");
    let (_, stream, action) = f.scenario("set-headers", &[("x-gone", "1")]);
    assert_eq!(action, HeadersAction::Continue);
    assert_eq!(
        request_headers(&stream),
        owned(&[
            (":method", "GET"),
            (":path", "/replaced"),
            (":authority", "replaced.local"),
            (":scheme", "http"),
            ("x-only", "1"),
        ])
    );
}

#[test]
fn request_headers_that_were_sent_are_read_only() {
    let mut f = start("hostcalls", "");
    let (ctx, stream) = f.stream(&[("x-scenario", "headers")]);
    stream.lock().unwrap().request_headers_sent = true;
    let before = request_headers(&stream);
    // The host answers BAD_ARGUMENT, on which the Rust SDK panics: the VM traps.
    let (callback, message) = trap(f.vm.on_request_headers(ctx, true));
    assert_eq!(callback, "proxy_on_request_headers");
    assert!(message.contains("unreachable"), "{message}");
    assert_eq!(request_headers(&stream), before, "nothing was written");
    let panic = f
        .recorder
        .entries()
        .into_iter()
        .find(|e| e.message.contains("unexpected status: 2"))
        .expect("the SDK's panic message is logged");
    assert_eq!(panic.level, LogLevel::Critical);
    assert!(f.vm.failure().is_some());
    assert!(matches!(
        f.vm.on_response_headers(ctx, true),
        Err(CallError::Failed(_))
    ));
}

#[test]
fn response_headers_are_edited_in_on_response_headers() {
    let mut f = start("hostcalls", "");
    let (ctx, stream, _) = f.scenario("", &[]);
    {
        let mut s = stream.lock().unwrap();
        s.request_headers_sent = true;
        s.response_headers = Some(HeaderMap::from_pairs([
            (":status", "404"),
            ("server", "up"),
        ]));
    }
    assert_eq!(
        f.vm.on_response_headers(ctx, false).unwrap(),
        HeadersAction::Continue
    );
    assert_eq!(
        pairs_of(stream.lock().unwrap().response_headers.as_ref()),
        owned(&[
            (":status", "404"),
            ("server", "up"),
            ("x-hostcalls-response", "1")
        ])
    );
    f.recorder.assert_logged("response_headers n=2 eos=false");
}

#[test]
fn response_headers_that_were_sent_are_read_only() {
    let mut f = start("hostcalls", "");
    let (ctx, stream, _) = f.scenario("", &[]);
    set_response(&stream, "200");
    stream.lock().unwrap().response_headers_sent = true;
    let (callback, _) = trap(f.vm.on_response_headers(ctx, true));
    assert_eq!(callback, "proxy_on_response_headers");
    assert_eq!(response_header(&stream, "x-hostcalls-response"), None);
}

#[test]
fn trailers_scenario_adds_request_and_response_trailers() {
    let mut f = start("hostcalls", "");
    let (ctx, stream, _) = f.scenario("trailers", &[]);
    stream.lock().unwrap().request_trailers = Some(HeaderMap::from_pairs([("grpc-x", "1")]));
    assert_eq!(
        f.vm.on_request_trailers(ctx).unwrap(),
        TrailersAction::Continue
    );
    set_response(&stream, "200");
    f.vm.on_response_headers(ctx, false).unwrap();
    stream.lock().unwrap().response_trailers = Some(HeaderMap::from_pairs([
        ("grpc-status", "0"),
        ("grpc-message", ""),
    ]));
    assert_eq!(
        f.vm.on_response_trailers(ctx).unwrap(),
        TrailersAction::Continue
    );
    let s = stream.lock().unwrap();
    assert_eq!(
        pairs_of(s.request_trailers.as_ref()),
        owned(&[("grpc-x", "1"), ("x-trailer-added", "1")])
    );
    assert_eq!(
        pairs_of(s.response_trailers.as_ref()),
        owned(&[
            ("grpc-status", "0"),
            ("grpc-message", ""),
            ("x-resp-trailer-added", "1")
        ])
    );
    drop(s);
    f.recorder.assert_logged("request_trailers n=1");
    f.recorder.assert_logged("response_trailers n=2");
}

/// A plugin that adds a trailer in every body callback and logs the status it got.
fn trailer_writer() -> String {
    wat_plugin(
        r#"(import "env" "proxy_add_header_map_value"
             (func $add (param i32 i32 i32 i32 i32) (result i32)))"#,
        r#"
  (data (i32.const 100) "x-body-trailer")
  (data (i32.const 120) "1")
  (data (i32.const 200) "request trailers=00")
  (data (i32.const 300) "response trailers=00")
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (call $log_number (i32.const 200) (i32.const 19) (i32.const 217)
      (call $add (i32.const 1) (i32.const 100) (i32.const 14) (i32.const 120) (i32.const 1)))
    (i32.const 0))
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32)
    (call $log_number (i32.const 300) (i32.const 20) (i32.const 318)
      (call $add (i32.const 3) (i32.const 100) (i32.const 14) (i32.const 120) (i32.const 1)))
    (i32.const 0))"#,
    )
}

#[test]
fn only_the_last_body_callback_may_create_trailers() {
    // Envoy's addDecodedTrailers/addEncodedTrailers: a body callback creates trailers only
    // at end of stream; before that a stream without trailers has none to write.
    let module = load_wat(&trailer_writer()).unwrap();
    let recorder = Recorder::default();
    let mut f = start_module(&module, &recorder);
    let (ctx, stream) = f.stream(&[]);
    let last_log = |f: &Fixture| f.recorder.logs().last().cloned().unwrap();

    stream.lock().unwrap().request_body = b"chunk".to_vec();
    f.vm.on_request_body(ctx, false).unwrap();
    assert_eq!(last_log(&f), "request trailers=02");
    assert!(stream.lock().unwrap().request_trailers.is_none());
    f.vm.on_request_body(ctx, true).unwrap();
    assert_eq!(last_log(&f), "request trailers=00");
    assert_eq!(
        pairs_of(stream.lock().unwrap().request_trailers.as_ref()),
        owned(&[("x-body-trailer", "1")])
    );

    set_response(&stream, "200");
    stream.lock().unwrap().response_body = b"chunk".to_vec();
    f.vm.on_response_body(ctx, false).unwrap();
    assert_eq!(last_log(&f), "response trailers=02");
    assert!(stream.lock().unwrap().response_trailers.is_none());
    f.vm.on_response_body(ctx, true).unwrap();
    assert_eq!(last_log(&f), "response trailers=00");
    assert_eq!(
        pairs_of(stream.lock().unwrap().response_trailers.as_ref()),
        owned(&[("x-body-trailer", "1")])
    );
}

#[test]
fn a_body_callback_may_edit_trailers_the_stream_already_has() {
    let module = load_wat(&trailer_writer()).unwrap();
    let recorder = Recorder::default();
    let mut f = start_module(&module, &recorder);
    let (ctx, stream) = f.stream(&[]);
    stream.lock().unwrap().request_trailers = Some(HeaderMap::from_pairs([("t", "0")]));
    f.vm.on_request_body(ctx, false).unwrap();
    assert_eq!(recorder.logs().last().unwrap(), "request trailers=00");
    assert_eq!(
        pairs_of(stream.lock().unwrap().request_trailers.as_ref()),
        owned(&[("t", "0"), ("x-body-trailer", "1")])
    );
}

#[test]
fn maps_are_read_only_in_on_log() {
    let module = load_wat(&wat_plugin(
        r#"(import "env" "proxy_add_header_map_value"
             (func $add (param i32 i32 i32 i32 i32) (result i32)))"#,
        r#"
  (data (i32.const 100) "x-late")
  (data (i32.const 200) "on_log add=00")
  (func (export "proxy_on_log") (param i32)
    (call $log_number (i32.const 200) (i32.const 13) (i32.const 211)
      (call $add (i32.const 0) (i32.const 100) (i32.const 6) (i32.const 100) (i32.const 1))))"#,
    ))
    .unwrap();
    let recorder = Recorder::default();
    let mut f = start_module(&module, &recorder);
    let (ctx, stream) = f.stream(&[]);
    let before = request_headers(&stream);
    f.vm.finish_stream(ctx).unwrap();
    assert_eq!(recorder.logs(), ["on_log add=02"]);
    assert_eq!(request_headers(&stream), before);
}
