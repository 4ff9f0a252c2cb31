//! What a misbehaving plugin can do to the host: spin, hoard memory, hand out bad pointers,
//! panic, trap at start, or not be a plugin at all. Each ends in a clean error; the VM is
//! marked failed where the guest trapped, and a fresh VM from the same module works.

mod support;

use std::time::{Duration, Instant};

use support::*;
use wasp_host::{
    CallError, HeadersAction, ImportInfo, LoadError, LogLevel, PluginConfig, Vm, VmConfig,
};

#[test]
fn a_spinning_plugin_is_stopped_at_its_cpu_deadline() {
    let mut f = start("spin", "");
    let (ctx, _) = f.stream(&[]);
    let started = Instant::now();
    let (callback, message) = trap(f.vm.on_request_headers(ctx, true));
    let took = started.elapsed();
    assert_eq!(callback, "proxy_on_request_headers");
    assert!(
        message.contains("exceeded its CPU time limit of 200ms"),
        "{message}"
    );
    // The deadline is 200 ms; allow for a slow machine, not for a hang.
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert!(took >= Duration::from_millis(150), "took {took:?}");
    assert_eq!(f.vm.failure(), Some(message.as_str()));
    let failed = f
        .recorder
        .entries()
        .into_iter()
        .find(|e| {
            e.message
                .starts_with("VM failed in proxy_on_request_headers")
        })
        .expect("the failure is logged");
    assert_eq!(failed.level, LogLevel::Critical);
    assert_eq!(failed.plugin, "spin");

    // Every later call is refused without entering the guest.
    let started = Instant::now();
    assert!(matches!(
        f.vm.on_request_headers(ctx, true),
        Err(CallError::Failed(reason)) if *reason == *message
    ));
    assert!(matches!(
        f.vm.create_http_stream(f.root, request(&[])),
        Err(CallError::Failed(_))
    ));
    assert!(started.elapsed() < Duration::from_millis(100));
    // Forgetting a stream of a failed VM still works (the embedder cleans up).
    f.vm.finish_stream(ctx).unwrap();

    // The embedder replaces the VM: a fresh one from the same module works.
    let recorder = Recorder::default();
    let mut fresh = Vm::new(f.vm.module(), VmConfig::default(), Box::new(recorder)).unwrap();
    let root = fresh
        .start_plugin(&PluginConfig {
            root_id: "spin".into(),
            ..PluginConfig::default()
        })
        .unwrap();
    let stream = request(&[]);
    let ctx = fresh.create_http_stream(root, stream.clone()).unwrap();
    set_response(&stream, "200");
    assert_eq!(
        fresh.on_response_headers(ctx, true).unwrap(),
        HeadersAction::Continue
    );
    fresh.finish_stream(ctx).unwrap();
    assert!(fresh.failure().is_none());
}

#[test]
fn a_plugin_that_hoards_memory_hits_the_memory_limit() {
    let mut f = start("membomb", "");
    let (ctx, _) = f.stream(&[]);
    let started = Instant::now();
    let (callback, message) = trap(f.vm.on_request_headers(ctx, true));
    assert_eq!(callback, "proxy_on_request_headers");
    assert!(
        message.contains("reached its memory limit of 64 MiB"),
        "{message}"
    );
    // Stopped at the cap, not by the CPU deadline or not at all. Generous: the machine may be
    // busy (a 2-core CI box building in parallel).
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(f.vm.memory_bytes() <= 64 << 20, "{}", f.vm.memory_bytes());
    assert!(f.vm.failure().is_some());
}

const BADPTR_LINES: [&str; 7] = [
    "badptr log=6",
    "badptr get_pairs=6",
    // The plugin configuration exists only during on_configure (as in Envoy): NOT_FOUND
    // comes before the return slots are looked at, as in cpp-host.
    "badptr get_buffer=1",
    "badptr get_property=6",
    "badptr set_pairs=6",
    "badptr set_pairs_wrap=6",
    "badptr add_value=6",
];

#[test]
fn bad_pointers_get_invalid_memory_access_and_the_vm_keeps_working() {
    let mut f = start("badptr", "config");
    for round in 0..2 {
        let (ctx, stream) = f.stream(&[("x-keep", "1")]);
        let before = request_headers(&stream);
        assert_eq!(
            f.vm.on_request_headers(ctx, true).unwrap(),
            HeadersAction::Continue,
            "round {round}"
        );
        let logs: Vec<String> = f
            .recorder
            .logs()
            .into_iter()
            .filter(|l| l.starts_with("badptr"))
            .collect();
        let expected: Vec<String> = BADPTR_LINES
            .iter()
            .cycle()
            .take(BADPTR_LINES.len() * (round + 1))
            .map(std::string::ToString::to_string)
            .collect();
        assert_eq!(logs, expected);
        assert_eq!(request_headers(&stream), before, "no map was touched");
        f.vm.finish_stream(ctx).unwrap();
    }
    assert!(f.vm.failure().is_none());
}

#[test]
fn bad_return_slots_of_get_buffer_bytes() {
    // get_buffer_bytes with a buffer that exists (the VM configuration) and return slots
    // past the end of memory; then with slots that wrap around 4 GiB.
    let module = load_wat(&wat_plugin(
        r#"(import "env" "proxy_get_buffer_bytes"
             (func $get (param i32 i32 i32 i32 i32) (result i32)))"#,
        r#"
  (data (i32.const 200) "past-end=00")
  (data (i32.const 300) "wrapping=00")
  (data (i32.const 400) "good=00")
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (call $log_number (i32.const 200) (i32.const 11) (i32.const 209)
      (call $get (i32.const 6) (i32.const 0) (i32.const 100)
        (i32.const 131072) (i32.const 131076)))
    (call $log_number (i32.const 300) (i32.const 11) (i32.const 309)
      (call $get (i32.const 6) (i32.const 0) (i32.const 100)
        (i32.const 0xfffffffe) (i32.const 16)))
    (call $log_number (i32.const 400) (i32.const 7) (i32.const 405)
      (call $get (i32.const 6) (i32.const 0) (i32.const 100)
        (i32.const 16) (i32.const 20)))
    (i32.const 1))"#,
    ))
    .unwrap();
    let recorder = Recorder::default();
    let _f = start_module_with(
        &module,
        VmConfig {
            configuration: b"vm-config".to_vec(),
            ..VmConfig::default()
        },
        &recorder,
    );
    assert_eq!(recorder.logs(), ["past-end=06", "wrapping=06", "good=00"]);
}

fn panic_scenario(scenario: &str) -> (Fixture, &'static str, String) {
    let mut f = start("hostcalls", "");
    let (ctx, stream) = f.stream(&[("x-scenario", scenario)]);
    let result = (|| -> Result<(), CallError> {
        f.vm.on_request_headers(ctx, false)?;
        stream.lock().unwrap().request_body = b"body".to_vec();
        f.vm.on_request_body(ctx, true)?;
        set_response(&stream, "200");
        f.vm.on_response_headers(ctx, false)?;
        stream.lock().unwrap().response_body = b"body".to_vec();
        f.vm.on_response_body(ctx, true)?;
        f.vm.finish_stream(ctx)
    })();
    let (callback, message) = trap(result);
    (f, callback, message)
}

#[test]
fn panics_trap_in_the_callback_that_panicked() {
    for (scenario, callback, text) in [
        (
            "panic-request-headers",
            "proxy_on_request_headers",
            "boom in request headers",
        ),
        (
            "panic-request-body",
            "proxy_on_request_body",
            "boom in request body",
        ),
        (
            "panic-response-headers",
            "proxy_on_response_headers",
            "boom in response headers",
        ),
        (
            "panic-response-body",
            "proxy_on_response_body",
            "boom in response body",
        ),
        ("panic-log", "proxy_on_log", "boom in log"),
    ] {
        let (f, got, message) = panic_scenario(scenario);
        assert_eq!(got, callback, "{scenario}");
        // The SDK's panic hook logs the message at critical before the trap.
        let panic = f
            .recorder
            .entries()
            .into_iter()
            .find(|e| e.message.contains(text))
            .unwrap_or_else(|| panic!("{scenario}: no {text:?} in {:#?}", f.recorder.logs()));
        assert_eq!(panic.level, LogLevel::Critical, "{scenario}");
        assert!(panic.message.contains("panicked at"), "{}", panic.message);
        // The trap carries the wasm backtrace, down to the callback that panicked.
        assert!(message.contains("wasm backtrace"), "{scenario}: {message}");
        assert!(
            message.contains(&format!("hostcalls.wasm!{callback}")),
            "{scenario}: {message}"
        );
        assert!(f.vm.failure().is_some(), "{scenario}");
    }
}

#[test]
fn a_trap_in_initialize_fails_vm_creation() {
    let recorder = Recorder::default();
    let result = Vm::new(
        &module("start_trap"),
        VmConfig::default(),
        Box::new(recorder.clone()),
    );
    let Err(CallError::Trap {
        callback, message, ..
    }) = result
    else {
        panic!("expected a trap, got {:?}", result.err());
    };
    assert_eq!(callback, "_initialize");
    assert!(message.contains("wasm backtrace"), "{message}");
    // No log level was set, so the panic went to stderr, which the host logs at error.
    let panic = recorder
        .entries()
        .into_iter()
        .find(|e| e.message.contains("start trap"))
        .unwrap_or_else(|| panic!("{:#?}", recorder.logs()));
    assert_eq!(panic.level, LogLevel::Error);
}

#[test]
fn a_module_without_the_abi_marker_is_not_a_plugin() {
    let err = host()
        .load_module(&wasp_test_plugins::bytes("not_proxy_wasm"))
        .err()
        .expect("refused");
    let LoadError::NotProxyWasm { exports } = &err else {
        panic!("{err}")
    };
    assert!(exports.split(", ").any(|e| e == "add"), "{exports}");
    assert!(err.to_string().contains("add"), "{err}");
}

#[test]
fn bytes_that_are_not_wasm() {
    let mut noise = [0u8; 64];
    getrandom_free_noise(&mut noise);
    assert!(matches!(
        host().load_module(&noise),
        Err(LoadError::NotWasm(_))
    ));
    // Magic and version, then garbage.
    let mut truncated = b"\0asm\x01\0\0\0".to_vec();
    truncated.extend_from_slice(&[0x01, 0xff, 0xff]);
    assert!(matches!(
        host().load_module(&truncated),
        Err(LoadError::NotWasm(_))
    ));
    assert!(matches!(
        host().load_module(&[]),
        Err(LoadError::NotWasm(_))
    ));
}

/// Deterministic noise that cannot start with the wasm magic.
fn getrandom_free_noise(buf: &mut [u8]) {
    let mut x: u32 = 0x9e37_79b9;
    for b in buf.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    buf[0] = 0xff;
}

#[test]
fn an_unknown_abi_version_is_refused() {
    let err = load_wat(
        r#"(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_3_0"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 0)))"#,
    )
    .err()
    .expect("refused");
    assert!(
        matches!(&err, LoadError::UnknownAbi(marker) if marker == "proxy_abi_version_0_3_0"),
        "{err}"
    );
}

#[test]
fn a_wrongly_typed_callback_is_refused() {
    let err = load_wat(&wat_plugin(
        "",
        r#"(func (export "proxy_on_configure") (param i32) (result i32) (i32.const 1))"#,
    ))
    .err()
    .expect("refused");
    let LoadError::BadSignature {
        name,
        expected,
        found,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(name, "proxy_on_configure");
    assert_eq!(expected, "(i32, i32) -> (i32)");
    assert_eq!(found, "(i32) -> (i32)");
}

#[test]
fn unknown_proxy_imports_are_stubbed_with_unimplemented() {
    let module = load_wat(&wat_plugin(
        r#"(import "env" "proxy_future_thing" (func $future (param i32) (result i32)))"#,
        r#"
  (data (i32.const 200) "stub=00")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $log_number (i32.const 200) (i32.const 7) (i32.const 205)
      (call $future (i32.const 42)))
    (i32.const 0))"#,
    ))
    .expect("loads");
    let imports = &module.info().imports;
    assert!(imports.contains(&ImportInfo {
        module: "env".into(),
        name: "proxy_future_thing".into(),
        provided: false,
    }));
    assert!(imports.contains(&ImportInfo {
        module: "env".into(),
        name: "proxy_log".into(),
        provided: true,
    }));
    let recorder = Recorder::default();
    let mut f = start_module(&module, &recorder);
    let (ctx, _) = f.stream(&[]);
    assert_eq!(
        f.vm.on_request_headers(ctx, true).unwrap(),
        HeadersAction::Continue
    );
    assert_eq!(recorder.logs(), ["stub=12"]);
}

#[test]
fn other_unknown_imports_are_refused_by_name() {
    let err = load_wat(&wat_plugin(
        r#"(import "env" "something_else" (func (param i32) (result i32)))"#,
        "",
    ))
    .err()
    .expect("refused");
    assert!(
        matches!(&err, LoadError::UnsatisfiedImport { module, name }
            if module == "env" && name == "something_else"),
        "{err}"
    );
    assert!(err.to_string().contains("env.something_else"), "{err}");
    // A proxy_* import that cannot answer with a status is not stubbed either.
    let err = load_wat(&wat_plugin(
        r#"(import "env" "proxy_future_void" (func))"#,
        "",
    ))
    .err()
    .expect("refused");
    assert!(
        matches!(&err, LoadError::UnsatisfiedImport { name, .. } if name == "proxy_future_void"),
        "{err}"
    );
}

#[test]
fn a_failed_vm_does_not_affect_other_vms_of_the_module() {
    let mut bad = start("hostcalls", "");
    let mut good = start("hostcalls", "");
    let (ctx, _) = bad.stream(&[("x-scenario", "panic-request-headers")]);
    trap(bad.vm.on_request_headers(ctx, true));
    let (_, stream, action) = good.scenario("headers", &[]);
    assert_eq!(action, HeadersAction::Continue);
    assert_eq!(header(&stream, "x-added").as_deref(), Some("yes"));
    assert!(good.vm.failure().is_none());
}
