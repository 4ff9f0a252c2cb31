//! Local replies and resets: what the plugin asks for becomes an effect, and the callback's
//! answer becomes "stop" whatever the plugin returned.

mod support;

use support::*;
use wasp_host::{DataAction, Effect, HeaderMap, HeadersAction, LocalResponse, StreamType};

#[test]
fn local_reply_becomes_an_effect_and_stops_the_chain() {
    let mut f = start("hostcalls", "");
    let (ctx, _, action) = f.scenario("local-reply", &[]);
    // cpp-host: after a local reply, a headers callback stops everything (no body chunks
    // are delivered any more), whatever the plugin returned.
    assert_eq!(action, HeadersAction::StopAllIterationAndWatermark);
    assert_eq!(
        f.vm.take_effects(),
        vec![Effect::LocalResponse {
            context: ctx,
            response: LocalResponse {
                status: 418,
                details: String::new(),
                body: b"teapot".to_vec(),
                headers: HeaderMap::from_pairs([("x-local", "1")]),
                grpc_status: None,
            },
        }]
    );
    // Taken once: the effects list is empty again.
    assert!(f.vm.take_effects().is_empty());
}

#[test]
fn local_reply_stops_even_if_the_plugin_returned_continue() {
    let mut f = start("hostcalls", "");
    let (ctx, _, action) = f.scenario("local-reply-continue", &[]);
    assert_eq!(action, HeadersAction::StopAllIterationAndWatermark);
    let effects = f.vm.take_effects();
    assert_eq!(effects.len(), 1, "{effects:?}");
    let response = local_response(&effects).expect("a local response");
    assert_eq!(response.status, 418);
    assert_eq!(response.body, b"teapot");
    assert!(matches!(effects[0], Effect::LocalResponse { context, .. } if context == ctx));
}

#[test]
fn the_stop_applies_to_the_context_that_replied_only() {
    let mut f = start("hostcalls", "");
    let (_, _, action) = f.scenario("local-reply-continue", &[]);
    assert_eq!(action, HeadersAction::StopAllIterationAndWatermark);
    // Another stream of the same plugin, before the embedder took the effects.
    let (_, _, action) = f.scenario("", &[]);
    assert_eq!(action, HeadersAction::Continue);
}

#[test]
fn a_body_callback_that_replies_locally_stops() {
    // buffer-request returns Continue at end of stream; a local reply queued for the same
    // context before the body callback (here: by the headers callback, not yet taken) turns
    // that answer into a stop, as Envoy does for every callback after sendLocalResponse.
    let mut f = start("hostcalls", "");
    let (ctx, stream, action) = f.scenario("local-reply-continue", &[]);
    assert_eq!(action, HeadersAction::StopAllIterationAndWatermark);
    stream.lock().unwrap().request_body = b"x".to_vec();
    assert_eq!(
        f.vm.on_request_body(ctx, true).unwrap(),
        DataAction::StopIterationNoBuffer
    );
}

#[test]
fn grpc_local_reply_carries_the_grpc_status() {
    let mut f = start("hostcalls", "");
    let (ctx, _, action) = f.scenario("local-reply-grpc", &[]);
    assert_eq!(action, HeadersAction::StopAllIterationAndWatermark);
    // The SDK's send_grpc_response: HTTP 200, the status message as the body.
    assert_eq!(
        f.vm.take_effects(),
        vec![Effect::LocalResponse {
            context: ctx,
            response: LocalResponse {
                status: 200,
                details: String::new(),
                body: b"nope".to_vec(),
                headers: HeaderMap::new(),
                grpc_status: Some(7),
            },
        }]
    );
}

#[test]
fn reset_closes_the_request_stream() {
    let mut f = start("hostcalls", "");
    let (ctx, _, action) = f.scenario("reset", &[]);
    // Pause (1) without allow_headers_stop_iteration stops everything.
    assert_eq!(action, HeadersAction::StopAllIterationAndWatermark);
    assert_eq!(
        f.vm.take_effects(),
        vec![Effect::Close {
            context: ctx,
            stream: StreamType::HttpRequest,
        }]
    );
}

#[test]
fn pause_without_reply_produces_no_effect() {
    let mut f = start("hostcalls", "");
    let (_, _, action) = f.scenario("pause-headers", &[]);
    assert_eq!(action, HeadersAction::StopAllIterationAndWatermark);
    assert!(f.vm.take_effects().is_empty());
}

#[test]
fn a_local_reply_stops_everything_even_with_allow_headers_stop_iteration() {
    // With allow_headers_stop_iteration, Pause means "hold headers, keep delivering body";
    // after a local reply nothing more may be delivered.
    let module = support::module("hostcalls");
    let recorder = Recorder::default();
    let mut vm = wasp_host::Vm::new(
        &module,
        wasp_host::VmConfig::default(),
        Box::new(recorder.clone()),
    )
    .unwrap();
    let root = vm
        .start_plugin(&wasp_host::PluginConfig {
            root_id: "hostcalls".into(),
            allow_headers_stop_iteration: true,
            ..Default::default()
        })
        .unwrap();
    let stream = request(&[("x-scenario", "pause-headers")]);
    let ctx = vm.create_http_stream(root, stream).unwrap();
    assert_eq!(
        vm.on_request_headers(ctx, false).unwrap(),
        HeadersAction::StopIteration
    );
    let stream = request(&[("x-scenario", "local-reply")]);
    let ctx = vm.create_http_stream(root, stream).unwrap();
    assert_eq!(
        vm.on_request_headers(ctx, false).unwrap(),
        HeadersAction::StopAllIterationAndWatermark
    );
}
