//! The host: one wasmtime engine for the process, the linker with every hostcall, the
//! process-wide shared state, the epoch ticker that enforces CPU deadlines, and the
//! compiled-module cache.

use std::any::Any;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, Linker, OptLevel, PoolingAllocationConfig,
};

use crate::cache::ModuleCache;
use crate::shared::Shared;
use crate::state::{HostParts, VmState};

/// Settings of a [`Host`].
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Linear memory one VM may use (Envoy's default cap is 1 GiB).
    pub max_memory_bytes: usize,
    /// CPU time one callback may take before the VM is stopped and marked failed.
    pub callback_deadline: Duration,
    /// CPU time for start-up (`_initialize`, `on_vm_start`, `on_configure`): Go runtimes
    /// need far longer to start than a callback should take.
    pub start_deadline: Duration,
    /// How often the epoch advances; deadlines are rounded up to it.
    pub epoch_tick: Duration,
    /// Pre-allocated instance slots (pooling allocator with copy-on-write memory images);
    /// `None` allocates on demand.
    pub pooling_instances: Option<u32>,
    /// Where compiled modules are kept across restarts; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            max_memory_bytes: 256 << 20,
            callback_deadline: Duration::from_secs(1),
            start_deadline: Duration::from_secs(30),
            epoch_tick: Duration::from_millis(5),
            pooling_instances: Some(1000),
            cache_dir: None,
        }
    }
}

/// Why a host could not be created.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// wasmtime refused the engine configuration (the message it gave).
    #[error("cannot create the wasm engine: {0}")]
    Engine(String),
    /// Registering the hostcalls or WASI functions with the linker failed (the message).
    #[error("cannot register hostcalls: {0}")]
    Linker(String),
    /// The cache directory could not be created.
    #[error("cannot open the compiled-module cache at {dir}: {source}")]
    Cache {
        /// The configured [`HostConfig::cache_dir`].
        dir: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
}

/// A Proxy-Wasm host. Cheap to clone; every clone shares the engine and the shared state.
#[derive(Clone)]
pub struct Host {
    pub(crate) inner: Arc<HostInner>,
}

pub(crate) struct HostInner {
    pub engine: Engine,
    pub linker: Linker<VmState>,
    pub shared: Arc<Shared>,
    pub config: HostConfig,
    pub cache: Option<ModuleCache>,
    /// The modules loaded and still in use, by sha256: a plugin whose module another plugin
    /// runs already shares its code (`Host::load_module`). Type-erased (they are
    /// `PluginModule`s) so that the engine does not depend on the module layer above it.
    pub loaded: Mutex<HashMap<String, Weak<dyn Any + Send + Sync>>>,
    /// The settings of an engine that generates the same code as `engine`, for the short-lived
    /// engines modules are compiled by: the compiler keeps its working memory (cranelift's
    /// contexts, sized by the largest function) in its engine for reuse, and a plugin is
    /// compiled once per process, so that memory would be kept for nothing. `None` when such
    /// an engine cannot be made (then `engine` compiles).
    pub compile_config: Option<Config>,
    pub pooling: bool,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for HostInner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Host {
    /// Builds the engine (with the pooling allocator if configured and available), registers
    /// every hostcall, opens the module cache and starts the epoch ticker thread.
    pub fn new(config: HostConfig) -> Result<Host, HostError> {
        let (engine, pooling) = build_engine(&config)?;
        let compile_config = compile_config(&config, &engine);
        let mut linker = Linker::new(&engine);
        crate::hostcalls::add_to_linker(&mut linker)
            .map_err(|e| HostError::Linker(e.to_string()))?;
        let cache = match &config.cache_dir {
            Some(dir) => {
                Some(
                    ModuleCache::new(dir, &engine).map_err(|source| HostError::Cache {
                        dir: dir.clone(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), config.epoch_tick, ticker_stop.clone());
        Ok(Host {
            inner: Arc::new(HostInner {
                engine,
                linker,
                shared: Arc::new(Shared::default()),
                config,
                cache,
                loaded: Mutex::default(),
                compile_config,
                pooling,
                ticker_stop,
            }),
        })
    }

    /// The settings this host was built with.
    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    /// The key/value store, queues and metrics every VM of this host shares.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// What a new VM's state takes from this host.
    pub(crate) fn parts(&self) -> HostParts {
        HostParts {
            shared: self.inner.shared.clone(),
            max_memory_bytes: self.inner.config.max_memory_bytes,
        }
    }

    /// Whether instances come from the pooling allocator (false if the machine refused the
    /// address-space reservation and the host fell back to on-demand allocation).
    pub fn uses_pooling(&self) -> bool {
        self.inner.pooling
    }

    /// The wasmtime engine all of this host's modules are compiled for.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Epoch ticks for a deadline, rounded up, at least one.
    pub(crate) fn ticks(&self, deadline: Duration) -> u64 {
        let tick = self.inner.config.epoch_tick.as_nanos().max(1);
        (deadline.as_nanos().div_ceil(tick) as u64).max(1)
    }
}

fn base_config(config: &HostConfig) -> Config {
    let mut cfg = Config::new();
    cfg.epoch_interruption(true);
    // Enough frames to find the bug, as cpp-host logs up to 20.
    cfg.wasm_backtrace_max_frames(std::num::NonZeroUsize::new(20));
    cfg.memory_init_cow(true);
    cfg.cranelift_opt_level(OptLevel::Speed);
    cfg.parallel_compilation(true);
    cfg.max_wasm_stack(1 << 20);
    let _ = config;
    cfg
}

/// Settings for compile-only engines: the same as `engine`'s without the pooling allocator
/// (which reserves address space for every instance slot; a compiler instantiates nothing),
/// used only if they generate exactly the code `engine` would (wasmtime's compatibility hash
/// covers every setting that affects code).
fn compile_config(config: &HostConfig, engine: &Engine) -> Option<Config> {
    let cfg = base_config(config);
    let compiler = Engine::new(&cfg).ok()?;
    let fingerprint = |e: &Engine| {
        let mut hasher = DefaultHasher::new();
        e.precompile_compatibility_hash().hash(&mut hasher);
        hasher.finish()
    };
    if fingerprint(&compiler) == fingerprint(engine) {
        Some(cfg)
    } else {
        tracing::debug!(
            "a compile-only engine would generate other code; compiling with the host's"
        );
        None
    }
}

fn build_engine(config: &HostConfig) -> Result<(Engine, bool), HostError> {
    if let Some(instances) = config.pooling_instances {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(instances)
            .total_memories(instances)
            .total_tables(instances)
            .max_memory_size(config.max_memory_bytes)
            // Go modules have large function tables and instance metadata.
            .table_elements(100_000)
            .max_core_instance_size(8 << 20)
            .linear_memory_keep_resident(64 << 10)
            .table_keep_resident(64 << 10);
        let mut cfg = base_config(config);
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match Engine::new(&cfg) {
            Ok(engine) => return Ok((engine, true)),
            Err(e) => tracing::warn!(
                "pooling allocator unavailable ({e}); allocating instances on demand"
            ),
        }
    }
    let engine = Engine::new(&base_config(config)).map_err(|e| HostError::Engine(e.to_string()))?;
    Ok((engine, false))
}

/// Advances the engine's epoch every `tick` until the host is dropped. A guest call whose
/// deadline (in ticks) passes is interrupted at its next loop back-edge or function entry.
fn spawn_ticker(engine: Engine, tick: Duration, stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("wasp-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the epoch ticker, CPU deadlines are off: {e}");
    }
}
