//! Request and response bodies: buffering across chunks and the edits
//! `proxy_set_buffer_bytes` supports (replace, append, prepend, splice).

mod support;

use support::*;
use wasp_host::{DataAction, HeadersAction, SharedHttpStream};

fn request_body(stream: &SharedHttpStream) -> String {
    String::from_utf8(stream.lock().unwrap().request_body.clone()).unwrap()
}

fn response_body(stream: &SharedHttpStream) -> String {
    String::from_utf8(stream.lock().unwrap().response_body.clone()).unwrap()
}

/// Starts a request of `scenario` whose headers do not end the stream.
fn body_request(f: &mut Fixture, scenario: &str) -> (u32, SharedHttpStream) {
    let (ctx, stream) = f.stream(&[("x-scenario", scenario)]);
    assert_eq!(
        f.vm.on_request_headers(ctx, false).unwrap(),
        HeadersAction::Continue
    );
    (ctx, stream)
}

#[test]
fn buffer_request_holds_chunks_then_edits_the_whole_body() {
    let mut f = start("hostcalls", "");
    let (ctx, stream) = body_request(&mut f, "buffer-request");
    stream.lock().unwrap().request_body = b"hello ".to_vec();
    assert_eq!(
        f.vm.on_request_body(ctx, false).unwrap(),
        DataAction::StopIterationAndBuffer
    );
    assert_eq!(request_body(&stream), "hello ", "untouched while buffering");
    // The embedder buffered: the plugin now sees everything, with end of stream.
    stream.lock().unwrap().request_body = b"hello world".to_vec();
    assert_eq!(
        f.vm.on_request_body(ctx, true).unwrap(),
        DataAction::Continue
    );
    assert_eq!(request_body(&stream), "HELLO WORLD");
    f.recorder.assert_logged("request_body size=6 eos=false");
    f.recorder.assert_logged("request_body size=11 eos=true");
    assert!(f.vm.take_effects().is_empty());
}

#[test]
fn buffer_response_uppercases_the_buffered_response() {
    let mut f = start("hostcalls", "");
    let (ctx, stream) = body_request(&mut f, "buffer-response");
    set_response(&stream, "200");
    assert_eq!(
        f.vm.on_response_headers(ctx, false).unwrap(),
        HeadersAction::Continue
    );
    stream.lock().unwrap().response_body = b"abc".to_vec();
    assert_eq!(
        f.vm.on_response_body(ctx, false).unwrap(),
        DataAction::StopIterationAndBuffer
    );
    assert_eq!(response_body(&stream), "abc");
    stream.lock().unwrap().response_body = b"abcdef".to_vec();
    assert_eq!(
        f.vm.on_response_body(ctx, true).unwrap(),
        DataAction::Continue
    );
    assert_eq!(response_body(&stream), "ABCDEF");
    // The request body of the same stream is not the response body.
    assert_eq!(request_body(&stream), "");
    f.recorder.assert_logged("response_body size=6 eos=true");
}

#[test]
fn a_body_scenario_leaves_the_other_direction_alone() {
    let mut f = start("hostcalls", "");
    let (ctx, stream) = body_request(&mut f, "buffer-response");
    stream.lock().unwrap().request_body = b"request".to_vec();
    assert_eq!(
        f.vm.on_request_body(ctx, true).unwrap(),
        DataAction::Continue
    );
    assert_eq!(request_body(&stream), "request");
}

fn edited(scenario: &str, body: &str) -> String {
    let mut f = start("hostcalls", "");
    let (ctx, stream) = body_request(&mut f, scenario);
    stream.lock().unwrap().request_body = body.as_bytes().to_vec();
    assert_eq!(
        f.vm.on_request_body(ctx, true).unwrap(),
        DataAction::Continue,
        "{scenario}"
    );
    request_body(&stream)
}

#[test]
fn body_append() {
    assert_eq!(edited("body-append", "hello"), "hello-appended");
}

#[test]
fn body_prepend() {
    assert_eq!(edited("body-prepend", "hello"), "prepended-hello");
}

#[test]
fn body_splice_replaces_bytes_in_the_middle() {
    // set_buffer_bytes(start 1, size 2, "XY"): Envoy refuses this (and the SDK would panic);
    // wasp splices.
    assert_eq!(edited("body-splice", "hello"), "hXYlo");
}

#[test]
fn edits_of_an_empty_body() {
    assert_eq!(edited("body-append", ""), "-appended");
    assert_eq!(edited("body-prepend", ""), "prepended-");
    assert_eq!(edited("body-splice", ""), "XY");
    assert_eq!(edited("buffer-request", ""), "");
}
