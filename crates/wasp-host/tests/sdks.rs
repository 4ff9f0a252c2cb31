//! Modules that no Rust SDK produced: an AssemblyScript plugin (`as_hostcalls`, built on
//! @gcoredev/proxy-wasm-sdk-as, `malloc` allocator) and a Go plugin (`go_hostcalls`, Go's
//! wasip1 reactor with its own runtime and GC).

mod support;

use support::*;
use wasp_host::{AbiVersion, Effect, HeaderMap, HeadersAction, LogLevel, VmConfig};

#[test]
fn assemblyscript_plugin_starts_and_edits_headers() {
    let mut f = start("as_hostcalls", "as-cfg");
    assert_eq!(f.vm.abi(), AbiVersion::V0_2_1);
    f.recorder.entry("as vm_start");
    f.recorder.entry("as configure config=as-cfg");
    let (ctx, stream, action) = f.scenario("", &[]);
    assert_eq!(action, HeadersAction::Continue);
    assert_eq!(header(&stream, "x-as-plugin").as_deref(), Some("yes"));
    f.recorder.entry("as request_headers n=5");
    set_response(&stream, "200");
    assert_eq!(
        f.vm.on_response_headers(ctx, true).unwrap(),
        HeadersAction::Continue
    );
    assert_eq!(
        response_header(&stream, "x-as-response").as_deref(),
        Some("1")
    );
    f.vm.finish_stream(ctx).unwrap();
    assert_eq!(
        f.recorder.logs().last().map(String::as_str),
        Some("as on_log")
    );
    assert!(f.vm.take_effects().is_empty());
    // The root context shuts down cleanly (index.ts works around the SDK here).
    assert!(f.vm.shutdown_plugin(f.root).unwrap());
    assert!(f.vm.failure().is_none());
}

#[test]
fn assemblyscript_local_reply() {
    let mut f = start("as_hostcalls", "");
    let (ctx, _, action) = f.scenario("local-reply", &[]);
    assert_eq!(action, HeadersAction::StopAllIterationAndWatermark);
    let effects = f.vm.take_effects();
    assert_eq!(effects.len(), 1, "{effects:?}");
    let Effect::LocalResponse { context, response } = &effects[0] else {
        panic!("{effects:?}")
    };
    assert_eq!(*context, ctx);
    assert_eq!(response.status, 403);
    assert_eq!(response.body, b"as denied");
    assert_eq!(response.details, "as_local_reply");
    assert_eq!(
        response.headers,
        HeaderMap::from_pairs([("x-as-local", "1")])
    );
    assert_eq!(response.grpc_status, None);
}

#[test]
fn assemblyscript_log_levels() {
    let mut f = start("as_hostcalls", "");
    f.scenario("log-levels", &[]);
    for (level, text) in [
        (LogLevel::Trace, "as level trace"),
        (LogLevel::Debug, "as level debug"),
        (LogLevel::Info, "as level info"),
        (LogLevel::Warn, "as level warn"),
        (LogLevel::Error, "as level error"),
        (LogLevel::Critical, "as level critical"),
    ] {
        let entry = f.recorder.entry(text);
        assert_eq!(entry.level, level, "{text}");
        assert_eq!(entry.plugin, "as_hostcalls");
    }
}

#[test]
fn assemblyscript_refuses_its_configuration() {
    let module = module("as_hostcalls");
    let mut vm =
        wasp_host::Vm::new(&module, VmConfig::default(), Box::new(Recorder::default())).unwrap();
    let err = vm
        .start_plugin(&wasp_host::PluginConfig {
            root_id: "as_hostcalls".into(),
            configuration: b"fail-configure".to_vec(),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            wasp_host::CallError::Refused {
                callback: "proxy_on_configure"
            }
        ),
        "{err}"
    );
}

fn go_plugin(env: Vec<(String, String)>) -> Fixture {
    start_with(
        "go_hostcalls",
        "go-cfg",
        VmConfig {
            vm_id: "go-vm".into(),
            env,
            ..VmConfig::default()
        },
        Recorder::default(),
    )
}

#[test]
fn go_plugin_starts_with_its_configuration() {
    let mut f = go_plugin(Vec::new());
    assert_eq!(f.vm.abi(), AbiVersion::V0_2_0);
    assert_eq!(
        f.recorder.logs(),
        ["go vm_start", "go configure config=go-cfg"]
    );
    let (ctx, stream, action) = f.scenario("", &[]);
    assert_eq!(action, HeadersAction::Continue);
    assert_eq!(header(&stream, "x-go-plugin").as_deref(), Some("yes"));
    assert_eq!(header(&stream, "x-go-env"), None);
    f.recorder.entry("go request_headers n=5");
    f.vm.finish_stream(ctx).unwrap();
}

#[test]
fn go_plugin_sees_the_vm_environment() {
    let mut f = go_plugin(vec![("GO_PLUGIN_ENV".into(), "hello".into())]);
    let (_, stream, _) = f.scenario("", &[]);
    assert_eq!(header(&stream, "x-go-env").as_deref(), Some("hello"));
}

#[test]
fn go_plugin_serves_many_requests_on_one_vm() {
    // Enough requests for the Go runtime to collect garbage and grow its heap while the host
    // calls into it (and back into its allocator).
    let mut f = go_plugin(vec![("GO_PLUGIN_ENV".into(), "hello".into())]);
    for i in 0..200 {
        let (ctx, stream, action) = f.scenario("", &[("x-request", &i.to_string())]);
        assert_eq!(action, HeadersAction::Continue, "request {i}");
        assert_eq!(
            header(&stream, "x-go-plugin").as_deref(),
            Some("yes"),
            "request {i}"
        );
        assert_eq!(
            header(&stream, "x-go-env").as_deref(),
            Some("hello"),
            "request {i}"
        );
        f.vm.finish_stream(ctx).unwrap();
    }
    let lines = f
        .recorder
        .logs()
        .iter()
        .filter(|l| *l == "go request_headers n=6")
        .count();
    assert_eq!(lines, 200);
    assert!(f.vm.failure().is_none());
}
