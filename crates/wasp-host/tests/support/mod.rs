//! Drives plugins through the host with an in-memory stream and an embedder that records
//! everything plugins ask of the outside world.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use wasp_host::{
    CallError, CalloutError, Effect, Embedder, GrpcCallRequest, HeaderMap, Host, HostConfig,
    HttpCallRequest, HttpStream, LogLevel, LogRecord, PluginConfig, PluginModule, PropertyValue,
    QueueNotifier, SharedHttpStream, Vm, VmConfig,
};

/// One host for the whole test binary, with short deadlines and a small memory cap so the
/// limit tests finish quickly.
pub fn host() -> Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| {
        Host::new(HostConfig {
            max_memory_bytes: 64 << 20,
            callback_deadline: Duration::from_millis(200),
            start_deadline: Duration::from_secs(20),
            pooling_instances: Some(64),
            ..HostConfig::default()
        })
        .expect("host")
    })
    .clone()
}

/// One log line with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub level: LogLevel,
    pub vm_id: String,
    pub plugin: String,
    pub message: String,
}

/// What the embedder saw.
#[derive(Default)]
pub struct Record {
    pub logs: Vec<LogEntry>,
    pub http_calls: Vec<HttpCallRequest>,
    pub grpc_calls: Vec<GrpcCallRequest>,
    pub grpc_sent: Vec<(u32, Vec<u8>, bool)>,
    pub grpc_cancelled: Vec<u32>,
}

#[derive(Clone)]
pub struct Recorder {
    pub record: Arc<Mutex<Record>>,
    pub clusters: Vec<String>,
    pub properties: HashMap<String, PropertyValue>,
    pub level: LogLevel,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            record: Arc::default(),
            clusters: vec!["callout".into(), "grpc".into()],
            properties: HashMap::new(),
            level: LogLevel::Trace,
        }
    }
}

impl Recorder {
    pub fn logs(&self) -> Vec<String> {
        self.record
            .lock()
            .unwrap()
            .logs
            .iter()
            .map(|e| e.message.clone())
            .collect()
    }

    /// Every log line with its level, VM and plugin.
    pub fn entries(&self) -> Vec<LogEntry> {
        self.record.lock().unwrap().logs.clone()
    }

    /// The first line equal to `message`; panics with every line if there is none.
    pub fn entry(&self, message: &str) -> LogEntry {
        let entries = self.entries();
        entries
            .iter()
            .find(|e| e.message == message)
            .cloned()
            .unwrap_or_else(|| panic!("no log line {message:?} in {:#?}", self.logs()))
    }

    /// Panics unless some line contains `needle`.
    pub fn assert_logged(&self, needle: &str) {
        assert!(
            self.logged(needle),
            "no log line containing {needle:?} in {:#?}",
            self.logs()
        );
    }

    pub fn logged(&self, needle: &str) -> bool {
        self.logs().iter().any(|l| l.contains(needle))
    }

    pub fn http_calls(&self) -> Vec<HttpCallRequest> {
        self.record.lock().unwrap().http_calls.clone()
    }

    pub fn grpc_calls(&self) -> Vec<GrpcCallRequest> {
        self.record.lock().unwrap().grpc_calls.clone()
    }
}

impl Embedder for Recorder {
    fn http_call(&mut self, request: HttpCallRequest) -> Result<(), CalloutError> {
        if !self.clusters.contains(&request.cluster) {
            return Err(CalloutError::UnknownCluster(request.cluster));
        }
        self.record.lock().unwrap().http_calls.push(request);
        Ok(())
    }

    fn grpc_call(&mut self, request: GrpcCallRequest) -> Result<(), CalloutError> {
        match &request.target {
            wasp_host::GrpcTarget::Cluster(c) if self.clusters.contains(c) => {
                self.record.lock().unwrap().grpc_calls.push(request);
                Ok(())
            }
            wasp_host::GrpcTarget::Cluster(c) => Err(CalloutError::UnknownCluster(c.clone())),
            _ => Err(CalloutError::BadTarget),
        }
    }

    fn grpc_send(&mut self, token: u32, message: Vec<u8>, end_stream: bool) {
        self.record
            .lock()
            .unwrap()
            .grpc_sent
            .push((token, message, end_stream));
    }

    fn grpc_cancel(&mut self, token: u32) {
        self.record.lock().unwrap().grpc_cancelled.push(token);
    }

    fn property(&self, path: &[&[u8]]) -> Option<PropertyValue> {
        let key = path
            .iter()
            .map(|s| String::from_utf8_lossy(s))
            .collect::<Vec<_>>()
            .join(".");
        self.properties.get(&key).cloned()
    }

    fn log(&self, record: LogRecord<'_>) {
        self.record.lock().unwrap().logs.push(LogEntry {
            level: record.level,
            vm_id: record.vm_id.to_owned(),
            plugin: record.plugin.to_owned(),
            message: record.message.to_owned(),
        });
    }

    fn log_level(&self) -> LogLevel {
        self.level
    }
}

/// A VM running one plugin.
pub struct Fixture {
    pub vm: Vm,
    pub root: u32,
    pub recorder: Recorder,
}

pub fn start(plugin: &str, configuration: &str) -> Fixture {
    start_with(
        plugin,
        configuration,
        VmConfig::default(),
        Recorder::default(),
    )
}

/// The module of a test plugin, compiled once per test binary.
pub fn module(plugin: &str) -> Arc<PluginModule> {
    static MODULES: OnceLock<Mutex<HashMap<String, Arc<PluginModule>>>> = OnceLock::new();
    let modules = MODULES.get_or_init(Mutex::default);
    if let Some(module) = modules.lock().unwrap().get(plugin) {
        return module.clone();
    }
    let module = host()
        .load_module(&wasp_test_plugins::bytes(plugin))
        .unwrap_or_else(|e| panic!("cannot load {plugin}: {e}"));
    modules
        .lock()
        .unwrap()
        .insert(plugin.to_owned(), module.clone());
    module
}

pub fn start_with(
    plugin: &str,
    configuration: &str,
    vm_config: VmConfig,
    recorder: Recorder,
) -> Fixture {
    let module = module(plugin);
    let mut vm = Vm::new(&module, vm_config, Box::new(recorder.clone())).expect("instantiate");
    let root = vm
        .start_plugin(&PluginConfig {
            name: format!("{plugin}-plugin"),
            root_id: plugin.into(),
            configuration: configuration.as_bytes().to_vec(),
            allow_headers_stop_iteration: false,
        })
        .expect("start plugin");
    Fixture { vm, root, recorder }
}

/// A GET request with the given extra headers.
pub fn request(extra: &[(&str, &str)]) -> SharedHttpStream {
    let mut headers = HeaderMap::from_pairs([
        (":method", "GET"),
        (":path", "/test?q=1"),
        (":authority", "example.com"),
        (":scheme", "http"),
    ]);
    for (k, v) in extra {
        headers.add(k.as_bytes(), v.as_bytes());
    }
    HttpStream::shared(headers)
}

pub fn header(stream: &SharedHttpStream, name: &str) -> Option<String> {
    let s = stream.lock().unwrap();
    s.request_headers.as_ref()?.get_str(name).map(str::to_owned)
}

pub fn response_header(stream: &SharedHttpStream, name: &str) -> Option<String> {
    let s = stream.lock().unwrap();
    s.response_headers
        .as_ref()?
        .get_str(name)
        .map(str::to_owned)
}

pub fn set_response(stream: &SharedHttpStream, status: &str) {
    stream.lock().unwrap().response_headers = Some(HeaderMap::from_pairs([(":status", status)]));
}

pub fn local_response(effects: &[Effect]) -> Option<wasp_host::LocalResponse> {
    effects.iter().find_map(|e| match e {
        Effect::LocalResponse { response, .. } => Some(response.clone()),
        _ => None,
    })
}

impl Fixture {
    /// A new stream with the given extra request headers (see [`request`]).
    pub fn stream(&mut self, extra: &[(&str, &str)]) -> (u32, SharedHttpStream) {
        let stream = request(extra);
        let ctx = self
            .vm
            .create_http_stream(self.root, stream.clone())
            .expect("create stream");
        (ctx, stream)
    }

    /// Runs `on_request_headers` (end of stream) for a request of `scenario` and returns
    /// the context, the stream and the action.
    pub fn scenario(
        &mut self,
        scenario: &str,
        extra: &[(&str, &str)],
    ) -> (u32, SharedHttpStream, wasp_host::HeadersAction) {
        let mut headers = vec![("x-scenario", scenario)];
        headers.extend_from_slice(extra);
        let (ctx, stream) = self.stream(&headers);
        let action = self
            .vm
            .on_request_headers(ctx, true)
            .unwrap_or_else(|e| panic!("scenario {scenario}: {e}"));
        (ctx, stream, action)
    }
}

/// Every request header, in order.
pub fn request_headers(stream: &SharedHttpStream) -> Vec<(String, String)> {
    pairs_of(stream.lock().unwrap().request_headers.as_ref())
}

/// Every value of one request header, in order.
pub fn header_values(stream: &SharedHttpStream, name: &str) -> Vec<String> {
    request_headers(stream)
        .into_iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v)
        .collect()
}

pub fn pairs_of(map: Option<&HeaderMap>) -> Vec<(String, String)> {
    map.map(|m| {
        m.iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    })
    .unwrap_or_default()
}

/// The callback and message of a trap; panics on any other outcome.
pub fn trap<T: std::fmt::Debug>(result: Result<T, CallError>) -> (&'static str, String) {
    match result {
        Err(CallError::Trap {
            callback, message, ..
        }) => (callback, message),
        other => panic!("expected a trap, got {other:?}"),
    }
}

/// Records `on_queue_ready` notifications instead of scheduling them.
#[derive(Default)]
pub struct QueueRecorder {
    pub ready: Mutex<Vec<(u32, u32)>>,
}

impl QueueNotifier for QueueRecorder {
    fn queue_ready(&self, root_context: u32, queue_id: u32) {
        self.ready.lock().unwrap().push((root_context, queue_id));
    }
}

/// Loads a module written in the WebAssembly text format.
pub fn load_wat(text: &str) -> Result<Arc<PluginModule>, wasp_host::LoadError> {
    host().load_module(&wat::parse_str(text).expect("valid WAT"))
}

/// The skeleton of a hand-written 0.2.1 plugin: memory, a bump allocator, `proxy_log`
/// imported as `$log`, a `$log_number` helper, and the lifecycle callbacks; `body` adds
/// functions and data (a lifecycle callback it exports replaces the default one), `imports`
/// adds imports (they must come first in a module).
pub fn wat_plugin(imports: &str, body: &str) -> String {
    let defaults = [
        ("proxy_on_context_create", "(param i32 i32)"),
        (
            "proxy_on_vm_start",
            "(param i32 i32) (result i32) (i32.const 1)",
        ),
        (
            "proxy_on_configure",
            "(param i32 i32) (result i32) (i32.const 1)",
        ),
        ("proxy_on_done", "(param i32) (result i32) (i32.const 1)"),
        ("proxy_on_log", "(param i32)"),
        ("proxy_on_delete", "(param i32)"),
    ];
    let lifecycle: String = defaults
        .iter()
        .filter(|(name, _)| !body.contains(&format!("\"{name}\"")))
        .map(|(name, rest)| format!("  (func (export \"{name}\") {rest})\n"))
        .collect();
    format!(
        r#"(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  {imports}
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $size)))
    (local.get $ptr))
{lifecycle}  ;; Writes `value` (0..99) as two digits at `at` and logs `len` bytes from `msg` at info.
  (func $log_number (param $msg i32) (param $len i32) (param $at i32) (param $value i32)
    (i32.store8 (local.get $at)
      (i32.add (i32.const 48) (i32.div_u (local.get $value) (i32.const 10))))
    (i32.store8 (i32.add (local.get $at) (i32.const 1))
      (i32.add (i32.const 48) (i32.rem_u (local.get $value) (i32.const 10))))
    (drop (call $log (i32.const 2) (local.get $msg) (local.get $len))))
  {body}
)"#
    )
}

/// A VM running a module loaded by the caller.
pub fn start_module(module: &Arc<PluginModule>, recorder: &Recorder) -> Fixture {
    start_module_with(module, VmConfig::default(), recorder)
}

pub fn start_module_with(
    module: &Arc<PluginModule>,
    vm_config: VmConfig,
    recorder: &Recorder,
) -> Fixture {
    let mut vm = Vm::new(module, vm_config, Box::new(recorder.clone())).expect("vm");
    let root = vm
        .start_plugin(&PluginConfig {
            root_id: "wat".into(),
            ..PluginConfig::default()
        })
        .expect("start plugin");
    Fixture {
        vm,
        root,
        recorder: recorder.clone(),
    }
}
