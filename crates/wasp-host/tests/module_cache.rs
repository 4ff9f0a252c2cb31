//! The on-disk cache of compiled modules: a second host loads from it, and a damaged entry
//! is recompiled instead of being trusted.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use support::{Recorder, header, request};
use wasp_host::{
    CodeSource, HeadersAction, Host, HostConfig, PluginConfig, PluginModule, Vm, VmConfig,
};

fn cached_host(dir: &Path) -> Host {
    Host::new(HostConfig {
        cache_dir: Some(dir.to_path_buf()),
        // One small host per load: no pooled address space to reserve.
        pooling_instances: None,
        ..HostConfig::default()
    })
    .expect("host")
}

fn load(dir: &Path) -> Arc<PluginModule> {
    cached_host(dir)
        .load_module(&wasp_test_plugins::bytes("hostcalls"))
        .expect("load")
}

/// The cache's code files (each with its digest beside it; no temporary file may be left).
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let (code, other): (Vec<PathBuf>, Vec<PathBuf>) = files
        .into_iter()
        .partition(|p| p.extension().is_some_and(|e| e == "cwasm"));
    let sums: Vec<PathBuf> = code
        .iter()
        .map(|p| PathBuf::from(format!("{}.sum", p.display())))
        .collect();
    assert_eq!(other, sums, "one digest per entry and nothing else");
    code
}

/// Runs the `headers` scenario on a fresh VM of `module`.
fn runs(module: &Arc<PluginModule>) {
    let mut vm = Vm::new(module, VmConfig::default(), Box::new(Recorder::default())).unwrap();
    let root = vm
        .start_plugin(&PluginConfig {
            root_id: "hostcalls".into(),
            ..PluginConfig::default()
        })
        .unwrap();
    let stream = request(&[("x-scenario", "headers")]);
    let ctx = vm.create_http_stream(root, stream.clone()).unwrap();
    assert_eq!(
        vm.on_request_headers(ctx, true).unwrap(),
        HeadersAction::Continue
    );
    assert_eq!(header(&stream, "x-added").as_deref(), Some("yes"));
}

#[test]
fn a_second_host_loads_the_compiled_module_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let first = load(dir.path());
    assert!(
        matches!(first.info().code, CodeSource::Compiled(_)),
        "{:?}",
        first.info().code
    );
    let files = entries(dir.path());
    assert_eq!(files.len(), 1);
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with(&first.info().sha256), "{name}");

    let second = load(dir.path());
    assert!(
        matches!(second.info().code, CodeSource::Cache(_)),
        "{:?}",
        second.info().code
    );
    assert_eq!(second.info().sha256, first.info().sha256);
    assert_eq!(second.info().exports, first.info().exports);
    runs(&second);
    assert_eq!(entries(dir.path()), files);
}

#[test]
fn a_host_without_a_cache_always_compiles() {
    let host = Host::new(HostConfig {
        pooling_instances: None,
        ..HostConfig::default()
    })
    .unwrap();
    for _ in 0..2 {
        let module = host
            .load_module(&wasp_test_plugins::bytes("abi_v0_2_0"))
            .unwrap();
        assert!(matches!(module.info().code, CodeSource::Compiled(_)));
    }
}

/// Damages the cached entry with `damage`, then checks that the next host recompiles, runs
/// the module, and leaves a good entry for the host after it.
fn recovers_from(damage: impl FnOnce(&mut Vec<u8>)) {
    let dir = tempfile::tempdir().unwrap();
    load(dir.path());
    let files = entries(dir.path());
    let mut bytes = std::fs::read(&files[0]).unwrap();
    damage(&mut bytes);
    std::fs::write(&files[0], &bytes).unwrap();

    let recompiled = load(dir.path());
    assert!(
        matches!(recompiled.info().code, CodeSource::Compiled(_)),
        "{:?}",
        recompiled.info().code
    );
    runs(&recompiled);
    assert_eq!(entries(dir.path()), files, "the entry was rewritten");
    let cached = load(dir.path());
    assert!(matches!(cached.info().code, CodeSource::Cache(_)));
    runs(&cached);
}

#[test]
fn a_garbage_entry_is_recompiled() {
    recovers_from(|bytes| {
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
    });
}

#[test]
fn a_truncated_entry_is_recompiled() {
    recovers_from(|bytes| bytes.truncate(bytes.len() / 2));
}

#[test]
fn an_empty_entry_is_recompiled() {
    recovers_from(Vec::clear);
}

#[test]
fn an_entry_with_a_flipped_byte_is_recompiled() {
    // Damage that keeps the file well-formed: wasmtime cannot notice a changed byte of
    // machine code by itself, so the cache must.
    recovers_from(|bytes| {
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
    });
}

#[test]
fn a_module_in_use_is_shared_not_loaded_again() {
    let dir = tempfile::tempdir().unwrap();
    let host = cached_host(dir.path());
    let bytes = wasp_test_plugins::bytes("hostcalls");
    let first = host.load_module(&bytes).unwrap();
    let second = host.load_module(&bytes).unwrap();
    assert!(Arc::ptr_eq(&first, &second), "one compiled module for both");
    runs(&second);
    // Once nothing uses it, the next load reads it again (from the cache).
    drop((first, second));
    let again = host.load_module(&bytes).unwrap();
    assert!(
        matches!(again.info().code, CodeSource::Cache(_)),
        "{:?}",
        again.info().code
    );
    // Another module is another entry.
    let other = host
        .load_module(&wasp_test_plugins::bytes("abi_v0_2_0"))
        .unwrap();
    assert!(!Arc::ptr_eq(&again, &other));
}

#[test]
fn code_without_its_digest_is_a_miss_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    load(dir.path());
    let files = entries(dir.path());
    std::fs::remove_file(format!("{}.sum", files[0].display())).unwrap();
    let recompiled = load(dir.path());
    assert!(matches!(recompiled.info().code, CodeSource::Compiled(_)));
    runs(&recompiled);
    assert_eq!(entries(dir.path()), files);
    assert!(matches!(load(dir.path()).info().code, CodeSource::Cache(_)));
}
