//! Plugins built for the older ABIs (0.1.0, 0.2.0), written against the raw ABI.

mod support;

use support::*;
use wasp_host::{AbiVersion, Effect, HeadersAction, StreamType, VmConfig};

fn start_raw(plugin: &str) -> Fixture {
    start_with(
        plugin,
        "plugin-cfg",
        VmConfig {
            configuration: b"vm-cfg".to_vec(),
            ..VmConfig::default()
        },
        Recorder::default(),
    )
}

#[test]
fn modules_report_their_abi() {
    assert_eq!(module("abi_v0_1_0").abi(), AbiVersion::V0_1_0);
    assert_eq!(module("abi_v0_2_0").abi(), AbiVersion::V0_2_0);
    assert_eq!(module("hostcalls").abi(), AbiVersion::V0_2_1);
    assert_eq!(module("abi_v0_1_0").abi().to_string(), "0.1.0");
}

#[test]
fn abi_0_1_0() {
    let mut f = start_raw("abi_v0_1_0");
    // proxy_get_configuration: the VM configuration in on_vm_start, the plugin's in
    // on_configure.
    assert_eq!(
        f.recorder.logs(),
        [
            "v010 vm_start config=vm-cfg",
            "v010 configure config=plugin-cfg"
        ]
    );
    let (ctx, stream) = f.stream(&[]);
    // Two-argument headers callback.
    assert_eq!(
        f.vm.on_request_headers(ctx, true).unwrap(),
        HeadersAction::Continue
    );
    assert_eq!(
        f.recorder.logs()[2..],
        [
            // A missing header is OK with an empty value in 0.1.0.
            "v010 missing status=0 len=0",
            "v010 continue_request=0",
            "v010 request_headers n=4",
        ]
    );
    assert_eq!(header(&stream, "x-abi").as_deref(), Some("0.1.0"));
    assert_eq!(
        f.vm.take_effects(),
        vec![Effect::Continue {
            context: ctx,
            stream: StreamType::HttpRequest,
        }]
    );
    set_response(&stream, "200");
    assert_eq!(
        f.vm.on_response_headers(ctx, true).unwrap(),
        HeadersAction::Continue
    );
    f.vm.finish_stream(ctx).unwrap();
    assert!(f.vm.failure().is_none());
}

#[test]
fn abi_0_2_0() {
    let mut f = start_raw("abi_v0_2_0");
    // The configurations come through proxy_get_buffer_bytes (buffers 6 and 7).
    assert_eq!(
        f.recorder.logs(),
        [
            "v020 vm_start config=vm-cfg",
            "v020 configure config=plugin-cfg"
        ]
    );
    let (ctx, stream) = f.stream(&[("x-one", "1")]);
    assert_eq!(
        f.vm.on_request_headers(ctx, false).unwrap(),
        HeadersAction::Continue
    );
    assert_eq!(
        f.recorder.logs()[2..],
        [
            // NOT_FOUND since 0.2.0.
            "v020 missing status=1",
            "v020 request_headers n=5 eos=false",
        ]
    );
    assert_eq!(header(&stream, "x-abi").as_deref(), Some("0.2.0"));
    let (ctx2, _) = f.stream(&[]);
    f.vm.on_request_headers(ctx2, true).unwrap();
    f.recorder
        .assert_logged("v020 request_headers n=4 eos=true");
    assert!(f.vm.take_effects().is_empty());
    f.vm.finish_stream(ctx).unwrap();
    f.vm.finish_stream(ctx2).unwrap();
}

#[test]
fn an_empty_configuration_reads_as_empty() {
    let f = start_with("abi_v0_1_0", "", VmConfig::default(), Recorder::default());
    assert_eq!(
        f.recorder.logs(),
        ["v010 vm_start config=", "v010 configure config="]
    );
}
