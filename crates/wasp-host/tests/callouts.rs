//! HTTP and gRPC callouts: what the embedder is asked to do, and how answers are delivered
//! back to the context that made the call.

mod support;

use std::time::Duration;

use support::*;
use wasp_host::{
    CallError, Effect, GrpcTarget, HeaderMap, HeadersAction, HttpCallResponse, LogLevel, StreamType,
};

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    HeaderMap::from_pairs(pairs.iter().copied())
}

/// Starts the `http-call` scenario and returns the context, stream and call token.
fn http_call(f: &mut Fixture) -> (u32, wasp_host::SharedHttpStream, u32) {
    let (ctx, stream, action) = f.scenario("http-call", &[]);
    assert_eq!(action, HeadersAction::StopAllIterationAndWatermark);
    let calls = f.recorder.http_calls();
    assert_eq!(calls.len(), 1);
    let token = calls[0].token;
    (ctx, stream, token)
}

#[test]
fn http_call_reaches_the_embedder_with_everything_the_plugin_sent() {
    let mut f = start("hostcalls", "");
    let (_, _, token) = http_call(&mut f);
    let call = &f.recorder.http_calls()[0];
    assert_eq!(call.cluster, "callout");
    assert_eq!(call.root_context, f.root);
    assert_eq!(token % 4, 0, "HTTP call tokens are 0 mod 4, as cpp-host's");
    assert_eq!(
        call.headers,
        map(&[
            (":method", "POST"),
            (":path", "/callout"),
            (":authority", "callout.local"),
            ("x-from", "hostcalls"),
        ])
    );
    assert_eq!(call.body, b"ping");
    assert_eq!(call.trailers, map(&[("x-call-trailer", "t")]));
    assert_eq!(call.timeout, Some(Duration::from_secs(5)));
    assert!(f.vm.take_effects().is_empty());
}

#[test]
fn http_call_response_is_delivered_to_the_calling_stream() {
    let mut f = start("hostcalls", "");
    let (ctx, stream, token) = http_call(&mut f);
    f.vm.on_http_call_response(
        token,
        Some(HttpCallResponse {
            headers: map(&[(":status", "200"), ("x-echo", "e")]),
            body: b"pong".to_vec(),
            trailers: map(&[("t", "1")]),
        }),
    )
    .unwrap();
    assert_eq!(header(&stream, "x-callout-status").as_deref(), Some("200"));
    assert_eq!(header(&stream, "x-callout-body").as_deref(), Some("pong"));
    assert_eq!(
        header(&stream, "x-callout-header-count").as_deref(),
        Some("2")
    );
    assert_eq!(
        header(&stream, "x-callout-trailer-count").as_deref(),
        Some("1")
    );
    assert_eq!(header(&stream, "x-callout-echo").as_deref(), Some("e"));
    assert_eq!(
        f.vm.take_effects(),
        vec![Effect::Continue {
            context: ctx,
            stream: StreamType::HttpRequest,
        }]
    );
    f.recorder.assert_logged(&format!(
        "http_call_response token={token} headers=2 body_size=4 trailers=1"
    ));
    // Delivered once: the token is gone.
    assert!(matches!(
        f.vm.on_http_call_response(token, None),
        Err(CallError::UnknownContext(t)) if t == token
    ));
    assert!(!f.recorder.logged("unexpected token"));
}

#[test]
fn a_failed_http_call_is_delivered_as_zero_headers() {
    let mut f = start("hostcalls", "");
    let (ctx, stream, token) = http_call(&mut f);
    f.vm.on_http_call_response(token, None).unwrap();
    let effects = f.vm.take_effects();
    assert_eq!(effects.len(), 1, "{effects:?}");
    let Effect::LocalResponse { context, response } = &effects[0] else {
        panic!("{effects:?}")
    };
    assert_eq!(*context, ctx);
    assert_eq!(response.status, 503);
    assert_eq!(response.headers, map(&[("x-callout-failed", "1")]));
    assert_eq!(header(&stream, "x-callout-status"), None);
    f.recorder.assert_logged(&format!(
        "http_call_response token={token} headers=0 body_size=0 trailers=0"
    ));
}

#[test]
fn tokens_are_unique_per_vm() {
    let mut f = start("hostcalls", "");
    let (_, _, first) = http_call(&mut f);
    let (_, _, action) = f.scenario("http-call", &[]);
    assert!(action.is_stop());
    let calls = f.recorder.http_calls();
    assert_eq!(calls.len(), 2);
    assert_ne!(calls[1].token, first);
    // Answers can come in any order.
    f.vm.on_http_call_response(calls[1].token, None).unwrap();
    f.vm.on_http_call_response(first, None).unwrap();
    assert_eq!(f.vm.take_effects().len(), 2);
}

#[test]
fn http_call_to_an_unknown_cluster_is_bad_argument() {
    let mut f = start("hostcalls", "");
    let (_, stream, action) = f.scenario("http-call-bad-cluster", &[]);
    assert_eq!(action, HeadersAction::Continue);
    assert_eq!(
        header(&stream, "x-call-error").as_deref(),
        Some("BadArgument")
    );
    assert!(f.recorder.http_calls().is_empty());
    let why = f
        .recorder
        .entry("http call to \"no-such-cluster\" refused: unknown cluster \"no-such-cluster\"");
    assert_eq!(why.level, LogLevel::Warn);
    assert_eq!(why.plugin, "hostcalls");
}

#[test]
fn http_call_without_path_is_bad_argument() {
    let mut f = start("hostcalls", "");
    let (_, stream, action) = f.scenario("http-call-no-path", &[]);
    assert_eq!(action, HeadersAction::Continue);
    assert_eq!(
        header(&stream, "x-call-error").as_deref(),
        Some("BadArgument")
    );
    assert!(f.recorder.http_calls().is_empty());
    f.recorder
        .entry("http call to \"callout\" refused: no :path header");
}

#[test]
fn grpc_unary_call() {
    let mut f = start("hostcalls", "");
    let (ctx, stream, action) = f.scenario("grpc-call", &[]);
    assert_eq!(action, HeadersAction::StopAllIterationAndWatermark);
    let calls = f.recorder.grpc_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.target, GrpcTarget::Cluster("grpc".into()));
    assert_eq!(call.service, "wasp.Echo");
    assert_eq!(call.method, "Say");
    assert_eq!(call.initial_metadata, map(&[("x-md", "1")]));
    assert_eq!(call.message.as_deref(), Some(&b"hello-grpc"[..]));
    assert_eq!(call.timeout, Some(Duration::from_secs(5)));
    assert_eq!(call.root_context, f.root);
    assert_eq!(call.token % 4, 1, "gRPC call tokens are 1 mod 4");
    let token = call.token;

    // The Rust SDK answers a unary call from proxy_on_grpc_receive (status 0) and forgets
    // the token; the close that follows is then ignored by the SDK.
    f.vm.on_grpc_message(token, b"pong".to_vec()).unwrap();
    f.vm.on_grpc_close(token, 0, "").unwrap();
    assert_eq!(header_values(&stream, "x-grpc-status"), ["0"]);
    assert_eq!(header_values(&stream, "x-grpc-body"), ["pong"]);
    assert_eq!(
        f.vm.take_effects(),
        vec![Effect::Continue {
            context: ctx,
            stream: StreamType::HttpRequest,
        }]
    );
    f.recorder
        .assert_logged(&format!("grpc_call_response token={token} status=0 size=4"));
    // Closed: the token is gone.
    assert!(matches!(
        f.vm.on_grpc_message(token, vec![]),
        Err(CallError::UnknownContext(_))
    ));
}

#[test]
fn a_failed_grpc_call_is_delivered_by_close() {
    let mut f = start("hostcalls", "");
    let (_, stream, _) = f.scenario("grpc-call", &[]);
    let token = f.recorder.grpc_calls()[0].token;
    f.vm.on_grpc_close(token, 14, "unavailable").unwrap();
    assert_eq!(header_values(&stream, "x-grpc-status"), ["14"]);
    // No message: the receive buffer is absent, which the SDK reads as empty.
    assert_eq!(header_values(&stream, "x-grpc-body"), [""]);
}

#[test]
fn grpc_stream() {
    let mut f = start("hostcalls", "");
    let (ctx, stream, action) = f.scenario("grpc-stream", &[]);
    assert!(action.is_stop());
    assert_eq!(header(&stream, "x-grpc-send-error"), None);
    let calls = f.recorder.grpc_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.target, GrpcTarget::Cluster("grpc".into()));
    assert_eq!(
        (call.service.as_str(), call.method.as_str()),
        ("wasp.Echo", "Chat")
    );
    assert_eq!(call.message, None, "a stream, not a unary call");
    assert_eq!(call.token % 4, 2, "gRPC stream tokens are 2 mod 4");
    let token = call.token;
    assert_eq!(
        f.recorder.record.lock().unwrap().grpc_sent,
        vec![(token, b"m1".to_vec(), false)]
    );

    f.vm.on_grpc_initial_metadata(token, map(&[("a", "1"), ("b", "2")]))
        .unwrap();
    f.vm.on_grpc_message(token, b"r1".to_vec()).unwrap();
    f.vm.on_grpc_message(token, b"r2".to_vec()).unwrap();
    f.vm.on_grpc_trailing_metadata(token, map(&[("grpc-status", "0")]))
        .unwrap();
    assert!(f.vm.take_effects().is_empty(), "not resumed before close");
    f.vm.on_grpc_close(token, 0, "").unwrap();
    assert_eq!(
        header(&stream, "x-grpc-stream").as_deref(),
        Some("r1,r2;status=0")
    );
    assert_eq!(
        f.vm.take_effects(),
        vec![Effect::Continue {
            context: ctx,
            stream: StreamType::HttpRequest,
        }]
    );
    let logs = f.recorder.logs();
    let at = |needle: &str| {
        logs.iter()
            .position(|l| l == needle)
            .unwrap_or_else(|| panic!("{needle:?} not in {logs:#?}"))
    };
    assert!(at("grpc initial metadata n=2") < at("grpc message r1"));
    assert!(at("grpc message r1") < at("grpc message r2"));
    assert!(at("grpc message r2") < at("grpc trailing metadata n=1"));
    assert!(matches!(
        f.vm.on_grpc_close(token, 0, ""),
        Err(CallError::UnknownContext(_))
    ));
}

#[test]
fn grpc_call_to_an_unknown_cluster_is_parse_failure() {
    // Envoy's grpcCall: a target that is neither a GrpcService nor a known cluster is
    // PARSE_FAILURE (the Rust SDK panics on BAD_ARGUMENT here).
    let recorder = Recorder {
        clusters: vec!["callout".into()],
        ..Recorder::default()
    };
    let mut f = start_with("hostcalls", "", wasp_host::VmConfig::default(), recorder);
    for scenario in ["grpc-call", "grpc-stream"] {
        let (_, stream, action) = f.scenario(scenario, &[]);
        assert_eq!(action, HeadersAction::Continue, "{scenario}");
        assert_eq!(
            header(&stream, "x-call-error").as_deref(),
            Some("ParseFailure"),
            "{scenario}"
        );
    }
    assert!(f.recorder.grpc_calls().is_empty());
    f.recorder
        .assert_logged("grpc call refused: unknown cluster \"grpc\"");
}

#[test]
fn callout_answers_for_a_finished_stream_do_not_reach_the_plugin() {
    // The stream ended (client went away) before the answer: the SDK has forgotten the
    // context, the host must not fail the VM over it.
    let mut f = start("hostcalls", "");
    let (ctx, _, token) = http_call(&mut f);
    f.vm.finish_stream(ctx).unwrap();
    let result = f.vm.on_http_call_response(token, None);
    assert!(result.is_ok(), "{result:?}");
    assert!(f.vm.failure().is_none());
    // And the VM still serves requests.
    let (_, _, action) = f.scenario("", &[]);
    assert_eq!(action, HeadersAction::Continue);
}
