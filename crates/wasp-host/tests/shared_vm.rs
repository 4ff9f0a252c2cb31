//! Several plugins in one VM (Envoy shares a VM between plugins with the same vm_id), and one
//! module shared by many VMs.

mod support;

use support::*;
use wasp_host::{PluginConfig, Vm, VmConfig};

#[test]
fn two_plugins_share_one_vm_each_with_its_own_root_context() {
    let recorder = Recorder::default();
    let module = host()
        .load_module(&wasp_test_plugins::bytes("hostcalls"))
        .unwrap();
    let mut vm = Vm::new(
        &module,
        VmConfig {
            vm_id: "shared".into(),
            ..VmConfig::default()
        },
        Box::new(recorder.clone()),
    )
    .unwrap();
    let first = vm
        .start_plugin(&PluginConfig {
            name: "first".into(),
            root_id: "first".into(),
            configuration: b"one".to_vec(),
            ..Default::default()
        })
        .unwrap();
    let second = vm
        .start_plugin(&PluginConfig {
            name: "second".into(),
            root_id: "second".into(),
            configuration: b"two".to_vec(),
            ..Default::default()
        })
        .unwrap();
    assert_ne!(first, second);
    assert!(recorder.logged("configure config=one"));
    assert!(recorder.logged("configure config=two"));

    // Each stream sees the identity of the plugin it belongs to.
    for (root, name) in [(first, "first"), (second, "second")] {
        let stream = request(&[
            ("x-scenario", "properties"),
            ("x-properties", "plugin_root_id,plugin_name,plugin_vm_id"),
        ]);
        let ctx = vm.create_http_stream(root, stream.clone()).unwrap();
        vm.on_request_headers(ctx, true).unwrap();
        assert_eq!(
            header(&stream, "x-prop-plugin_root_id"),
            Some(format!("hex:{}", hex(name)))
        );
        assert_eq!(
            header(&stream, "x-prop-plugin_name"),
            Some(format!("hex:{}", hex(name)))
        );
        assert_eq!(
            header(&stream, "x-prop-plugin_vm_id"),
            Some(format!("hex:{}", hex("shared")))
        );
        vm.finish_stream(ctx).unwrap();
    }
}

#[test]
fn one_module_serves_many_vms_with_independent_state() {
    let module = host()
        .load_module(&wasp_test_plugins::bytes("hostcalls"))
        .unwrap();
    let mut vms: Vec<Vm> = (0..4)
        .map(|_| {
            let mut vm =
                Vm::new(&module, VmConfig::default(), Box::new(Recorder::default())).unwrap();
            vm.start_plugin(&PluginConfig {
                root_id: "hostcalls".into(),
                ..Default::default()
            })
            .unwrap();
            vm
        })
        .collect();
    // A trap in one VM leaves the others serving.
    let stream = request(&[("x-scenario", "panic-request-headers")]);
    let ctx = vms[0].create_http_stream(1, stream).unwrap();
    assert!(vms[0].on_request_headers(ctx, true).is_err());
    assert!(vms[0].failure().is_some());
    for vm in &mut vms[1..] {
        let stream = request(&[("x-scenario", "headers")]);
        let ctx = vm.create_http_stream(1, stream.clone()).unwrap();
        vm.on_request_headers(ctx, true).unwrap();
        assert_eq!(header(&stream, "x-added").as_deref(), Some("yes"));
        vm.finish_stream(ctx).unwrap();
    }
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}
