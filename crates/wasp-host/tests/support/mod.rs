//! Drives plugins through the host with an in-memory stream and an embedder that records
//! everything plugins ask of the outside world.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use wasp_host::{
    CalloutError, Effect, Embedder, GrpcCallRequest, HeaderMap, Host, HostConfig, HttpCallRequest,
    HttpStream, LogLevel, LogRecord, PluginConfig, PropertyValue, SharedHttpStream, Vm, VmConfig,
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

/// What the embedder saw.
#[derive(Default)]
pub struct Record {
    pub logs: Vec<(LogLevel, String)>,
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
            .map(|(_, m)| m.clone())
            .collect()
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
        self.record
            .lock()
            .unwrap()
            .logs
            .push((record.level, record.message.to_owned()));
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

pub fn start_with(
    plugin: &str,
    configuration: &str,
    vm_config: VmConfig,
    recorder: Recorder,
) -> Fixture {
    let module = host()
        .load_module(&wasp_test_plugins::bytes(plugin))
        .expect("load");
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
