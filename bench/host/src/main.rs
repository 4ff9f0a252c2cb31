//! Measures what a Proxy-Wasm host costs, for a small Rust module and a large Go one:
//!
//! - compile: wasm → machine code (cranelift), no cache;
//! - cached load: the same module from the on-disk compiled-module cache;
//! - instantiate: a fresh VM ready to serve (instance + `_initialize` + root context with
//!   `on_vm_start` and `on_configure`);
//! - round trip: one `on_request_headers` into a plugin that returns at once;
//! - stream: a whole stream's host work (create context, request headers, log/done/delete).
//!
//! Run with `cargo run --release -p wasp-bench-host` (see bench/README.md). Not a test: it
//! prints numbers and asserts nothing.

use std::time::{Duration, Instant};

use wasp_host::{
    HeaderMap, Host, HostConfig, HttpStream, NoopEmbedder, PluginConfig, Vm, VmConfig,
};

struct Case {
    label: &'static str,
    plugin: &'static str,
    config: &'static str,
    compiles: usize,
}

const CASES: &[Case] = &[
    Case {
        label: "Rust SDK, noop",
        plugin: "noop",
        config: "",
        compiles: 10,
    },
    Case {
        label: "Go 1.27 wasip1, noop",
        plugin: "go_hostcalls",
        config: "noop",
        compiles: 3,
    },
];

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time<R>(f: impl FnOnce() -> R) -> (Duration, R) {
    let started = Instant::now();
    let r = f();
    (started.elapsed(), r)
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns >= 1_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else if ns >= 1_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{ns} ns")
    }
}

fn plugin_config(case: &Case) -> PluginConfig {
    PluginConfig {
        name: case.plugin.into(),
        root_id: case.plugin.into(),
        configuration: case.config.as_bytes().to_vec(),
        allow_headers_stop_iteration: false,
    }
}

fn main() {
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let plain = Host::new(HostConfig {
        pooling_instances: Some(256),
        ..HostConfig::default()
    })
    .expect("host");
    let cached = Host::new(HostConfig {
        pooling_instances: Some(256),
        cache_dir: Some(cache_dir.path().to_owned()),
        ..HostConfig::default()
    })
    .expect("host");
    println!("pooling allocator: {}", plain.uses_pooling());
    println!();
    println!("| module | size | compile | cached load | instantiate | round trip | stream |");
    println!("|---|---|---|---|---|---|---|");
    for case in CASES {
        let bytes = wasp_test_plugins::bytes(case.plugin);
        let compile = median(
            (0..case.compiles)
                .map(|_| time(|| plain.load_module(&bytes).expect("load")).0)
                .collect(),
        );
        cached.load_module(&bytes).expect("fill cache");
        let cached_load = median(
            (0..20)
                .map(|_| time(|| cached.load_module(&bytes).expect("load")).0)
                .collect(),
        );

        let module = plain.load_module(&bytes).expect("load");
        let config = plugin_config(case);
        let instantiate = median(
            (0..50)
                .map(|_| {
                    time(|| {
                        let mut vm = Vm::new(&module, VmConfig::default(), Box::new(NoopEmbedder))
                            .expect("vm");
                        vm.start_plugin(&config).expect("start");
                        vm
                    })
                    .0
                })
                .collect(),
        );

        let mut vm = Vm::new(&module, VmConfig::default(), Box::new(NoopEmbedder)).expect("vm");
        let root = vm.start_plugin(&config).expect("start");
        let headers =
            HeaderMap::from_pairs([(":method", "GET"), (":path", "/"), (":authority", "bench")]);
        let stream = HttpStream::shared(headers.clone());
        let ctx = vm.create_http_stream(root, stream).expect("stream");
        let iterations = 200_000;
        for _ in 0..10_000 {
            vm.on_request_headers(ctx, true).expect("call");
        }
        let (elapsed, ()) = time(|| {
            for _ in 0..iterations {
                vm.on_request_headers(ctx, true).expect("call");
            }
        });
        let round_trip = elapsed / iterations;
        vm.finish_stream(ctx).expect("finish");

        let streams = 50_000;
        let (elapsed, ()) = time(|| {
            for _ in 0..streams {
                let stream = HttpStream::shared(headers.clone());
                let ctx = vm.create_http_stream(root, stream).expect("stream");
                vm.on_request_headers(ctx, true).expect("call");
                vm.finish_stream(ctx).expect("finish");
            }
        });
        let per_stream = elapsed / streams;

        println!(
            "| {} | {:.2} MB | {} | {} | {} | {} | {} |",
            case.label,
            bytes.len() as f64 / 1e6,
            fmt(compile),
            fmt(cached_load),
            fmt(instantiate),
            fmt(round_trip),
            fmt(per_stream),
        );
    }
}
