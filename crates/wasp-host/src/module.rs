//! Loading a plugin module: recognise it, compile it (or take it from the cache), check its
//! exports, and link it once for every VM that will run it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmparser::{Parser, Payload};
use wasmtime::{ExternType, FuncType, InstancePre, Linker, Module, ValType};

use crate::abi::{AbiVersion, Status};
use crate::engine::Host;
use crate::state::VmState;

/// Why a module cannot be used as a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a WebAssembly binary (bad magic or an unreadable section).
    #[error("not a WebAssembly module: {0}")]
    NotWasm(String),
    /// The module has no `proxy_abi_version_*` marker export, so it is no Proxy-Wasm plugin.
    #[error(
        "not a Proxy-Wasm plugin: it exports no proxy_abi_version_* marker (its exports: {exports})"
    )]
    NotProxyWasm {
        /// Up to 12 of the module's exports, comma-separated (or `none`), as a hint to what it is.
        exports: String,
    },
    /// The module's marker names an ABI version wasp does not support (the export's name).
    #[error("unsupported Proxy-Wasm ABI {0:?}: wasp supports 0.1.0, 0.2.0 and 0.2.1")]
    UnknownAbi(String),
    /// No `malloc` or `proxy_on_memory_allocate` export: the host could not hand the guest data.
    #[error("the module exports no allocator (proxy_on_memory_allocate or malloc)")]
    NoAllocator,
    /// No exported linear memory called `memory`.
    #[error("the module exports no linear memory named \"memory\"")]
    NoMemory,
    /// A known callback is exported with the wrong wasm type, so calling it would trap.
    #[error("export {name} has type {found}, expected {expected}")]
    BadSignature {
        /// The export's name.
        name: String,
        /// The type the ABI requires, e.g. `(i32, i32) -> (i32)`.
        expected: String,
        /// The type the module declares.
        found: String,
    },
    /// An import that is neither a hostcall, a WASI function nor a stubbable `proxy_*` function.
    #[error("the module imports {module}.{name}, which wasp does not provide")]
    UnsatisfiedImport {
        /// The import's module namespace.
        module: String,
        /// The imported item's name.
        name: String,
    },
    /// wasmtime could not compile or link the module (its message).
    #[error("compilation failed: {0}")]
    Compile(String),
}

/// How the compiled code was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeSource {
    /// Compiled from the bytes now, in this long.
    Compiled(Duration),
    /// Loaded from the compiled-module cache, in this long.
    Cache(Duration),
}

/// One import of a module and whether the host satisfies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportInfo {
    /// The import's module namespace, e.g. `env` or `wasi_snapshot_preview1`.
    pub module: String,
    /// The imported item's name.
    pub name: String,
    /// False for `proxy_*` functions wasp does not know: they are linked to a stub that
    /// returns `UNIMPLEMENTED` (proxy-wasm/spec#91) instead of refusing the module.
    pub provided: bool,
}

/// What `wasp plugin inspect` reports.
#[derive(Debug, Clone)]
pub struct ModuleInfo {
    /// The ABI version the module's marker export names.
    pub abi: AbiVersion,
    /// Hex-encoded sha256 of the module bytes (also the compiled-module cache key).
    pub sha256: String,
    /// Size of the module in bytes.
    pub size: usize,
    /// Every exported function, in export order.
    pub exports: Vec<String>,
    /// The Proxy-Wasm callbacks among them.
    pub callbacks: Vec<String>,
    /// Every import of the module, in import order.
    pub imports: Vec<ImportInfo>,
    /// Whether the code was compiled now or came from the cache, and how long that took.
    pub code: CodeSource,
}

/// A compiled, linked plugin module, shared by every VM (on every worker) that runs it.
pub struct PluginModule {
    pub(crate) host: Host,
    pub(crate) pre: InstancePre<VmState>,
    pub(crate) info: ModuleInfo,
}

impl PluginModule {
    /// What was learnt about the module while loading it.
    pub fn info(&self) -> &ModuleInfo {
        &self.info
    }

    /// The ABI version the module was built for.
    pub fn abi(&self) -> AbiVersion {
        self.info.abi
    }

    /// The host the module was compiled by; its VMs share that host's engine and shared state.
    pub fn host(&self) -> &Host {
        &self.host
    }
}

/// The callbacks the host may call, with their wasm types (every value is an i32).
/// `proxy_on_request_headers`/`proxy_on_response_headers` take two parameters in 0.1.0.
const CALLBACKS: &[(&str, usize, usize)] = &[
    ("_initialize", 0, 0),
    ("_start", 0, 0),
    ("main", 2, 1),
    ("__main_void", 0, 1),
    ("malloc", 1, 1),
    ("proxy_on_memory_allocate", 1, 1),
    ("proxy_on_context_create", 2, 0),
    ("proxy_on_vm_start", 2, 1),
    ("proxy_validate_configuration", 2, 1),
    ("proxy_on_configure", 2, 1),
    ("proxy_on_tick", 1, 0),
    ("proxy_on_queue_ready", 2, 0),
    ("proxy_on_foreign_function", 3, 0),
    ("proxy_on_new_connection", 1, 1),
    ("proxy_on_downstream_data", 3, 1),
    ("proxy_on_downstream_connection_close", 2, 0),
    ("proxy_on_upstream_data", 3, 1),
    ("proxy_on_upstream_connection_close", 2, 0),
    ("proxy_on_request_headers", 3, 1),
    ("proxy_on_request_body", 3, 1),
    ("proxy_on_request_trailers", 2, 1),
    ("proxy_on_request_metadata", 2, 1),
    ("proxy_on_response_headers", 3, 1),
    ("proxy_on_response_body", 3, 1),
    ("proxy_on_response_trailers", 2, 1),
    ("proxy_on_response_metadata", 2, 1),
    ("proxy_on_http_call_response", 5, 0),
    ("proxy_on_grpc_receive_initial_metadata", 3, 0),
    ("proxy_on_grpc_receive", 3, 0),
    ("proxy_on_grpc_receive_trailing_metadata", 3, 0),
    ("proxy_on_grpc_close", 3, 0),
    ("proxy_on_done", 1, 1),
    ("proxy_on_log", 1, 0),
    ("proxy_on_delete", 1, 0),
];

pub(crate) fn callback_arity(name: &str, abi: AbiVersion) -> Option<(usize, usize)> {
    let (_, params, results) = CALLBACKS.iter().find(|(n, _, _)| *n == name)?;
    let headers = matches!(
        name,
        "proxy_on_request_headers" | "proxy_on_response_headers"
    );
    Some((if headers && abi.is_v0_1() { 2 } else { *params }, *results))
}

struct Scan {
    abi: AbiVersion,
    exports: Vec<String>,
}

/// Reads the export section without compiling: rejects what is not a plugin in
/// microseconds, before spending seconds compiling it.
fn scan(bytes: &[u8]) -> Result<Scan, LoadError> {
    if !bytes.starts_with(b"\0asm") {
        let head: String = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        return Err(LoadError::NotWasm(format!(
            "it does not start with the WebAssembly magic bytes 0061736d (found {head:?})"
        )));
    }
    let mut exports = Vec::new();
    let mut memory = false;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| LoadError::NotWasm(e.to_string()))?;
        if let Payload::ExportSection(section) = payload {
            for export in section {
                let export = export.map_err(|e| LoadError::NotWasm(e.to_string()))?;
                match export.kind {
                    wasmparser::ExternalKind::Func => exports.push(export.name.to_owned()),
                    wasmparser::ExternalKind::Memory if export.name == "memory" => memory = true,
                    _ => {}
                }
            }
        }
    }
    let marker = exports
        .iter()
        .find(|name| name.starts_with("proxy_abi_version_"));
    let abi = match marker {
        Some(name) => {
            AbiVersion::from_marker(name).ok_or_else(|| LoadError::UnknownAbi(name.clone()))?
        }
        None => {
            let mut listed: Vec<&str> = exports.iter().map(String::as_str).take(12).collect();
            if memory {
                listed.push("memory");
            }
            return Err(LoadError::NotProxyWasm {
                exports: if listed.is_empty() {
                    "none".into()
                } else {
                    listed.join(", ")
                },
            });
        }
    };
    if !memory {
        return Err(LoadError::NoMemory);
    }
    if !exports
        .iter()
        .any(|e| e == "malloc" || e == "proxy_on_memory_allocate")
    {
        return Err(LoadError::NoAllocator);
    }
    Ok(Scan { abi, exports })
}

fn describe(ty: &FuncType) -> String {
    let list = |types: &mut dyn Iterator<Item = ValType>| {
        types.map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
    };
    format!(
        "({}) -> ({})",
        list(&mut ty.params()),
        list(&mut ty.results())
    )
}

fn check_signatures(module: &Module, abi: AbiVersion) -> Result<(), LoadError> {
    for export in module.exports() {
        let ExternType::Func(ty) = export.ty() else {
            continue;
        };
        let Some((params, results)) = callback_arity(export.name(), abi) else {
            continue;
        };
        let all_i32 = ty
            .params()
            .chain(ty.results())
            .all(|t| matches!(t, ValType::I32));
        if ty.params().len() != params || ty.results().len() != results || !all_i32 {
            let i32s = |n| vec!["i32"; n].join(", ");
            return Err(LoadError::BadSignature {
                name: export.name().to_owned(),
                expected: format!("({}) -> ({})", i32s(params), i32s(results)),
                found: describe(&ty),
            });
        }
    }
    Ok(())
}

impl Host {
    /// Loads a plugin module from its bytes: recognises it, compiles it (or takes it from
    /// the cache), and links it.
    ///
    /// A module this host has loaded already and that is still in use (by another plugin, or
    /// by the configuration a reload is replacing) is shared, not loaded again: its compiled
    /// code and linking are per module, only VMs are per plugin.
    pub fn load_module(&self, bytes: &[u8]) -> Result<Arc<PluginModule>, LoadError> {
        let scan = scan(bytes)?;
        let sha256 = hex::encode(Sha256::digest(bytes));
        // Held while loading, so that plugins of the same module loaded at once share one
        // compilation; modules load one after another anyway (compilation itself is parallel).
        let mut loaded = self
            .inner
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loaded.retain(|_, module| module.strong_count() > 0);
        if let Some(module) = loaded
            .get(&sha256)
            .and_then(std::sync::Weak::upgrade)
            .and_then(|any| any.downcast::<PluginModule>().ok())
        {
            return Ok(module);
        }
        let module = self.load_new_module(bytes, scan, sha256.clone())?;
        let erased: Arc<dyn std::any::Any + Send + Sync> = module.clone();
        loaded.insert(sha256, Arc::downgrade(&erased));
        Ok(module)
    }

    fn load_new_module(
        &self,
        bytes: &[u8],
        scan: Scan,
        sha256: String,
    ) -> Result<Arc<PluginModule>, LoadError> {
        let (module, code) = self.compile(bytes, &sha256)?;
        check_signatures(&module, scan.abi)?;
        let (pre, imports) = self.link(&module)?;
        let callbacks = scan
            .exports
            .iter()
            .filter(|name| callback_arity(name, scan.abi).is_some())
            .cloned()
            .collect();
        Ok(Arc::new(PluginModule {
            host: self.clone(),
            pre,
            info: ModuleInfo {
                abi: scan.abi,
                sha256,
                size: bytes.len(),
                exports: scan.exports,
                callbacks,
                imports,
                code,
            },
        }))
    }

    fn compile(&self, bytes: &[u8], sha256: &str) -> Result<(Module, CodeSource), LoadError> {
        let engine = &self.inner.engine;
        let started = Instant::now();
        if let Some(cache) = &self.inner.cache
            && let Some(module) = cache.load(engine, sha256)
        {
            return Ok((module, CodeSource::Cache(started.elapsed())));
        }
        let failed = |e: wasmtime::Error| LoadError::Compile(format!("{e:#}"));
        let Some(compile_config) = &self.inner.compile_config else {
            let module = on_compile_threads(|| Module::new(engine, bytes)).map_err(failed)?;
            if let Some(cache) = &self.inner.cache {
                match module.serialize() {
                    Ok(serialized) => self.store(cache, &serialized, sha256),
                    Err(e) => tracing::warn!("cannot serialize a compiled module: {e}"),
                }
            }
            return Ok((module, CodeSource::Compiled(started.elapsed())));
        };
        // A compiler of its own, dropped with its working memory once the code is made.
        let serialized =
            on_compile_threads(|| wasmtime::Engine::new(compile_config)?.precompile_module(bytes))
                .map_err(failed)?;
        let took = started.elapsed();
        // Run the code from the entry just written, as a restart would: mapped from its file,
        // so that only the pages the plugin executes become resident.
        if let Some(cache) = &self.inner.cache {
            self.store(cache, &serialized, sha256);
            if let Some(module) = cache.load(engine, sha256) {
                return Ok((module, CodeSource::Compiled(took)));
            }
        }
        // SAFETY: `serialized` was made just now by an engine with the same code settings as
        // `engine` (`compile_config` is checked against it when the host is built).
        #[allow(unsafe_code)]
        let module = unsafe { Module::deserialize(engine, &serialized) }.map_err(failed)?;
        Ok((module, CodeSource::Compiled(took)))
    }

    fn store(&self, cache: &crate::cache::ModuleCache, serialized: &[u8], sha256: &str) {
        if let Err(e) = cache.store(serialized, sha256) {
            tracing::warn!(dir = %cache.dir().display(), "cannot write the compiled-module cache: {e}");
        }
    }

    /// Links `module` against the hostcalls. Unknown `proxy_*` functions get a stub that
    /// answers `UNIMPLEMENTED`; any other unknown import refuses the module with its name.
    fn link(&self, module: &Module) -> Result<(InstancePre<VmState>, Vec<ImportInfo>), LoadError> {
        let provided = self.provided_imports();
        let mut linker: Option<Linker<VmState>> = None;
        let mut imports = Vec::new();
        for import in module.imports() {
            let known = provided.contains(&(import.module().to_owned(), import.name().to_owned()));
            imports.push(ImportInfo {
                module: import.module().to_owned(),
                name: import.name().to_owned(),
                provided: known,
            });
            if known {
                continue;
            }
            let stubbable = import.module() == "env" && import.name().starts_with("proxy_");
            let ExternType::Func(ty) = import.ty() else {
                return Err(unsatisfied(&import));
            };
            let returns_status = ty
                .params()
                .all(|t| matches!(t, ValType::I32 | ValType::I64))
                && ty.results().len() == 1
                && matches!(ty.results().next(), Some(ValType::I32));
            if !stubbable || !returns_status {
                return Err(unsatisfied(&import));
            }
            let linker = linker.get_or_insert_with(|| self.inner.linker.clone());
            let name = import.name().to_owned();
            linker
                .func_new("env", import.name(), ty, move |_caller, _params, results| {
                    tracing::warn!(target: "wasp::plugin", "plugin called {name}, which wasp does not implement");
                    results[0] = wasmtime::Val::I32(Status::Unimplemented.code() as i32);
                    Ok(())
                })
                .map_err(|e| LoadError::Compile(e.to_string()))?;
        }
        let linker = linker.as_ref().unwrap_or(&self.inner.linker);
        let pre = linker
            .instantiate_pre(module)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        Ok((pre, imports))
    }

    /// Every (module, name) the linker defines.
    fn provided_imports(&self) -> HashSet<(String, String)> {
        let mut store = wasmtime::Store::new(&self.inner.engine, VmState::detached(self.parts()));
        self.inner
            .linker
            .iter(&mut store)
            .map(|(module, name, _)| (module.to_owned(), name.to_owned()))
            .collect()
    }
}

fn unsatisfied(import: &wasmtime::ImportType<'_>) -> LoadError {
    LoadError::UnsatisfiedImport {
        module: import.module().to_owned(),
        name: import.name().to_owned(),
    }
}

/// Runs `compile` on threads made for it and gone after it. Compiling allocates tens of MiB
/// (cranelift's IR, per function, on every thread of the pool); the allocator keeps freed
/// pages with the thread that used them until that thread allocates again, so on a pool that
/// lives on (rayon's global one) they would stay resident for good. A thread that exits gives
/// them back. Starting the threads costs well under a millisecond against compilations of
/// 50 ms and more; if they cannot be started, the global pool does the work.
fn on_compile_threads<T: Send>(compile: impl FnOnce() -> T + Send) -> T {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("wasp-compile-{i}"))
        .build()
    {
        Ok(pool) => pool.install(compile),
        Err(e) => {
            tracing::debug!("compiling on the global pool: {e}");
            compile()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_callbacks_take_two_params_in_0_1_0() {
        assert_eq!(
            callback_arity("proxy_on_request_headers", AbiVersion::V0_1_0),
            Some((2, 1))
        );
        assert_eq!(
            callback_arity("proxy_on_request_headers", AbiVersion::V0_2_1),
            Some((3, 1))
        );
        assert_eq!(
            callback_arity("proxy_on_request_body", AbiVersion::V0_1_0),
            Some((3, 1))
        );
        assert_eq!(callback_arity("add", AbiVersion::V0_2_1), None);
    }

    #[test]
    fn scan_rejects_what_is_not_a_plugin() {
        assert!(matches!(scan(b"hello"), Err(LoadError::NotWasm(_))));
        // An empty but valid module: magic + version.
        let empty = [0, b'a', b's', b'm', 1, 0, 0, 0];
        assert!(matches!(scan(&empty), Err(LoadError::NotProxyWasm { .. })));
    }
}
