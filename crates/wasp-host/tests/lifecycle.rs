//! Start-up, the stream callback order, and configuration delivery.

mod support;

use support::*;
use wasp_host::{HeadersAction, VmConfig};

#[test]
fn starts_with_vm_and_plugin_configuration() {
    let recorder = Recorder::default();
    let fixture = start_with(
        "hostcalls",
        "plugin-config-1",
        VmConfig {
            configuration: b"vm-config-1".to_vec(),
            ..VmConfig::default()
        },
        recorder,
    );
    let logs = fixture.recorder.logs();
    let vm_start = logs
        .iter()
        .position(|l| l == "vm_start config=vm-config-1")
        .expect("vm_start logged");
    let configure = logs
        .iter()
        .position(|l| l == "configure config=plugin-config-1")
        .expect("configure logged");
    assert!(vm_start < configure);
}

#[test]
fn stream_callbacks_run_in_envoys_order() {
    let mut f = start("hostcalls", "");
    let stream = request(&[]);
    let ctx = f.vm.create_http_stream(f.root, stream.clone()).unwrap();
    assert_eq!(
        f.vm.on_request_headers(ctx, true).unwrap(),
        HeadersAction::Continue
    );
    set_response(&stream, "200");
    assert_eq!(
        f.vm.on_response_headers(ctx, true).unwrap(),
        HeadersAction::Continue
    );
    assert_eq!(
        response_header(&stream, "x-hostcalls-response").as_deref(),
        Some("1")
    );
    f.vm.finish_stream(ctx).unwrap();
    let logs = f.recorder.logs();
    let at = |needle: &str| {
        logs.iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in {logs:?}"))
    };
    assert!(at("request_headers n=4 eos=true") < at(&format!("on_log ctx={ctx}")));
    assert!(at(&format!("on_log ctx={ctx}")) < at(&format!("on_done ctx={ctx}")));
}

#[test]
fn a_plugin_that_refuses_its_configuration_does_not_start() {
    let module = host()
        .load_module(&wasp_test_plugins::bytes("hostcalls"))
        .unwrap();
    let mut vm =
        wasp_host::Vm::new(&module, VmConfig::default(), Box::new(Recorder::default())).unwrap();
    let err = vm
        .start_plugin(&wasp_host::PluginConfig {
            root_id: "hostcalls".into(),
            configuration: b"fail-configure".to_vec(),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("proxy_on_configure returned false"),
        "{err}"
    );
}
