//! A worker: one thread, one event loop, its own VMs of every plugin, its own upstream pools.
//! Streams never leave the worker that accepted their connection.
//!
//! The VMs themselves live in `vms::WorkerVms`, one per plugin set: the worker keeps the
//! current one for new streams, switches when a new set is published, and routes the work
//! plugins ask for (callouts, queue wakeups) back to the set and VM that asked.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::{Rc, Weak};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use wasp_host::{
    CalloutError, Embedder, GrpcCallRequest, HttpCallRequest, HttpCallResponse, LogRecord,
    PropertyValue, QueueNotifier,
};

use crate::body::ChannelBody;
use crate::plugins::{PluginSet, PluginShared};
use crate::runtime::Shared;
use crate::upstream::Upstreams;
use crate::vms::WorkerVms;

/// Work a plugin asked for from inside a hostcall, carried out on the worker's loop. `set`
/// and `vm` say which plugin set and which of its VMs asked.
pub(crate) enum Command {
    HttpCall {
        set: u64,
        vm: usize,
        generation: u64,
        request: HttpCallRequest,
    },
    GrpcCall {
        set: u64,
        vm: usize,
        generation: u64,
        request: GrpcCallRequest,
    },
    GrpcSend {
        set: u64,
        vm: usize,
        token: u32,
        message: Vec<u8>,
        end_stream: bool,
    },
    /// Cancel (`true`) or half-close (`false`) a gRPC call or stream.
    GrpcEnd {
        set: u64,
        vm: usize,
        token: u32,
        cancel: bool,
    },
    QueueReady {
        set: u64,
        vm: usize,
        root: u32,
        queue_id: u32,
    },
}

/// Open gRPC callouts by (set, VM, token): the sender of a stream's messages, and the task.
type GrpcCallouts =
    HashMap<(u64, usize, u32), (Option<crate::body::BodySender>, tokio::task::JoinHandle<()>)>;

pub(crate) struct Worker {
    pub id: usize,
    pub shared: Arc<Shared>,
    pub upstreams: Upstreams,
    /// The VMs new streams use; `None` only while the worker starts.
    current: RefCell<Option<Rc<WorkerVms>>>,
    /// Every set still alive on this worker (the current one, and older ones that streams
    /// still hold), by version, so that callout answers find the VM that asked.
    sets: RefCell<Vec<(u64, Weak<WorkerVms>)>>,
    commands: mpsc::UnboundedSender<Command>,
    /// Open gRPC callouts: where a stream's next message goes, and the task to cancel.
    grpc: RefCell<GrpcCallouts>,
}

impl Worker {
    /// Builds the worker's VMs and starts its command loop and its watch for new plugin
    /// sets. Runs on the worker thread.
    pub fn start(id: usize, shared: Arc<Shared>) -> Rc<Worker> {
        let (commands, rx) = mpsc::unbounded_channel();
        let worker = Rc::new(Worker {
            id,
            // Proxy::start already built every cluster once, so this only fails if a CA file
            // vanished since; the worker then serves without clusters and says why.
            upstreams: Upstreams::new(&shared.spec.clusters).unwrap_or_else(|e| {
                tracing::error!(worker = id, "{e}");
                Upstreams::default()
            }),
            shared,
            current: RefCell::new(None),
            sets: RefCell::default(),
            commands,
            grpc: RefCell::default(),
        });
        tokio::task::spawn_local(command_loop(Rc::downgrade(&worker), rx));
        worker.switch_to(worker.shared.plugins.current());
        tokio::task::spawn_local(follow_plugin_sets(Rc::downgrade(&worker)));
        worker
    }

    /// The VMs a new stream uses.
    pub fn vms(&self) -> Rc<WorkerVms> {
        self.current
            .borrow()
            .clone()
            .expect("a worker's VMs exist once it has started")
    }

    pub fn commands(&self) -> mpsc::UnboundedSender<Command> {
        self.commands.clone()
    }

    /// Instantiates `set` on this worker and makes it the one new streams use.
    fn switch_to(self: &Rc<Self>, set: Arc<PluginSet>) {
        let version = set.version;
        let vms = WorkerVms::start(self, set);
        let mut sets = self.sets.borrow_mut();
        sets.retain(|(_, weak)| weak.strong_count() > 0);
        sets.push((version, Rc::downgrade(&vms)));
        drop(sets);
        // The old set stays alive while streams hold it.
        *self.current.borrow_mut() = Some(vms);
    }

    /// The live set with this version.
    fn set(&self, version: u64) -> Option<Rc<WorkerVms>> {
        self.sets
            .borrow()
            .iter()
            .find(|(v, _)| *v == version)
            .and_then(|(_, weak)| weak.upgrade())
    }
}

/// Switches the worker to each newly published plugin set.
async fn follow_plugin_sets(worker: Weak<Worker>) {
    let mut changes = match worker.upgrade() {
        Some(w) => w.shared.plugins.subscribe(),
        None => return,
    };
    while changes.changed().await.is_ok() {
        let Some(w) = worker.upgrade() else { return };
        let set = w.shared.plugins.current();
        if set.version != w.vms().set.version {
            let started = std::time::Instant::now();
            let version = set.version;
            w.switch_to(set);
            tracing::info!(
                worker = w.id,
                version,
                took_ms = started.elapsed().as_millis() as u64,
                "plugins updated"
            );
        }
    }
}

async fn command_loop(worker: Weak<Worker>, mut rx: mpsc::UnboundedReceiver<Command>) {
    while let Some(command) = rx.recv().await {
        let Some(w) = worker.upgrade() else { return };
        match command {
            Command::HttpCall {
                set,
                vm,
                generation,
                request,
            } => {
                let Some(vms) = w.set(set) else { continue };
                let Some(plugin) = vms.owner(vm, request.root_context) else {
                    continue;
                };
                let weak = worker.clone();
                tokio::task::spawn_local(async move {
                    let Some(w) = weak.upgrade() else { return };
                    let token = request.token;
                    let response = http_callout(&w, request).await;
                    vms.call(plugin, generation, |vm| {
                        vm.on_http_call_response(token, response)
                    });
                });
            }
            Command::GrpcCall {
                set,
                vm,
                generation,
                request,
            } => {
                let Some(vms) = w.set(set) else { continue };
                let Some(plugin) = vms.owner(vm, request.root_context) else {
                    continue;
                };
                let key = (set, vm, request.token);
                let (sender, body) = match &request.message {
                    Some(message) => (None, ChannelBody::full(crate::grpc::frame(message))),
                    None => {
                        let (tx, body) = ChannelBody::channel();
                        (Some(tx), body)
                    }
                };
                let task = tokio::task::spawn_local(crate::grpc::exchange(
                    w.clone(),
                    vms,
                    plugin,
                    generation,
                    request,
                    body,
                ));
                w.grpc.borrow_mut().insert(key, (sender, task));
            }
            Command::GrpcSend {
                set,
                vm,
                token,
                message,
                end_stream,
            } => {
                let sender = w
                    .grpc
                    .borrow_mut()
                    .get_mut(&(set, vm, token))
                    .and_then(|(tx, _)| if end_stream { tx.take() } else { tx.clone() });
                if let Some(tx) = sender {
                    let _ = tx
                        .send(Ok(http_body::Frame::data(crate::grpc::frame(&message))))
                        .await;
                }
            }
            Command::GrpcEnd {
                set,
                vm,
                token,
                cancel,
            } => {
                let mut grpc = w.grpc.borrow_mut();
                if cancel {
                    if let Some((_, task)) = grpc.remove(&(set, vm, token)) {
                        task.abort();
                    }
                } else if let Some((tx, _)) = grpc.get_mut(&(set, vm, token)) {
                    // Half-close: the request body ends; answers still arrive.
                    tx.take();
                }
            }
            Command::QueueReady {
                set,
                vm,
                root,
                queue_id,
            } => {
                if let Some(vms) = w.set(set) {
                    vms.root_call(vm, root, |vm| vm.on_queue_ready(root, queue_id));
                }
            }
        }
    }
}

/// Callout bodies are buffered whole; this caps them (Envoy's default buffer limit).
const CALLOUT_BODY_LIMIT: usize = 1 << 20;

pub(crate) async fn http_callout(
    worker: &Worker,
    request: HttpCallRequest,
) -> Option<HttpCallResponse> {
    let (endpoint, scheme) = worker.upstreams.pick(&request.cluster).ok()?;
    let mut body = ChannelBody::full(Bytes::from(request.body));
    // Sent as Envoy's async client does (an HTTP/1 upstream drops them, as Envoy's codec).
    if !request.trailers.is_empty() {
        body = body.with_trailers(crate::convert::to_http_headers(&request.trailers, false).ok()?);
    }
    let req =
        crate::convert::upstream_request(&request.headers, body, scheme, Some(&endpoint)).ok()?;
    let started = std::time::Instant::now();
    let response = match worker
        .upstreams
        .send(&request.cluster, req, request.timeout)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(cluster = %request.cluster, "http callout failed: {e}");
            return Some(failed_callout(&e));
        }
    };
    let mut headers = crate::convert::response_headers(&response);
    // Envoy's async client runs its router, which adds this header (suppress_envoy_headers is
    // off there): plugins that count or list a callout's headers see it in Envoy.
    headers.add(
        b"x-envoy-upstream-service-time",
        started.elapsed().as_millis().to_string().as_bytes(),
    );
    let collected = http_body_util::Limited::new(response.into_body(), CALLOUT_BODY_LIMIT)
        .collect()
        .await
        .ok()?;
    let trailers = collected
        .trailers()
        .map(crate::convert::trailers)
        .unwrap_or_default();
    Some(HttpCallResponse {
        headers,
        body: collected.to_bytes().to_vec(),
        trailers,
    })
}

/// What Envoy's async client hands a plugin when its callout fails after dispatch: the
/// router's local reply (504 on timeout, 503 on a connection failure or reset), with headers
/// and body, not an empty answer.
fn failed_callout(error: &crate::upstream::UpstreamError) -> HttpCallResponse {
    use crate::upstream::UpstreamError;
    let (status, body) = match error {
        UpstreamError::Timeout => ("504", "upstream request timeout".to_string()),
        UpstreamError::Connect(_) => ("503", error.to_string()),
        UpstreamError::UnknownCluster(_) => ("503", "no healthy upstream".to_string()),
    };
    let length = body.len().to_string();
    HttpCallResponse {
        headers: wasp_host::HeaderMap::from_pairs([
            (":status", status),
            ("content-length", length.as_str()),
            ("content-type", "text/plain"),
        ]),
        body: body.into_bytes(),
        trailers: wasp_host::HeaderMap::new(),
    }
}

/// The embedder of one VM on one worker.
pub(crate) struct WorkerEmbedder {
    set: u64,
    vm: usize,
    generation: u64,
    name: String,
    commands: mpsc::UnboundedSender<Command>,
    clusters: Arc<HashSet<String>>,
    node: Arc<HashMap<String, PropertyValue>>,
}

impl WorkerEmbedder {
    /// For VM `vm` of plugin set `set`; `first` is its first plugin (named in start-up logs).
    pub fn new(
        worker: &Worker,
        set: u64,
        vm: usize,
        generation: u64,
        first: &PluginShared,
    ) -> WorkerEmbedder {
        WorkerEmbedder {
            set,
            vm,
            generation,
            name: first.spec.name.clone(),
            commands: worker.commands(),
            clusters: worker.shared.cluster_names.clone(),
            node: worker.shared.node_properties.clone(),
        }
    }
}

impl Embedder for WorkerEmbedder {
    fn http_call(&mut self, request: HttpCallRequest) -> Result<(), CalloutError> {
        if !self.clusters.contains(&request.cluster) {
            return Err(CalloutError::UnknownCluster(request.cluster));
        }
        self.commands
            .send(Command::HttpCall {
                set: self.set,
                vm: self.vm,
                generation: self.generation,
                request,
            })
            .map_err(|_| CalloutError::Failed("worker is shutting down".into()))
    }

    fn grpc_call(&mut self, request: GrpcCallRequest) -> Result<(), CalloutError> {
        match &request.target {
            wasp_host::GrpcTarget::Cluster(c) if self.clusters.contains(c) => {}
            wasp_host::GrpcTarget::Cluster(c) => {
                return Err(CalloutError::UnknownCluster(c.clone()));
            }
            // A serialized GrpcService naming something other than a cluster (Google gRPC).
            wasp_host::GrpcTarget::GrpcServiceProto(_) => return Err(CalloutError::BadTarget),
        }
        self.commands
            .send(Command::GrpcCall {
                set: self.set,
                vm: self.vm,
                generation: self.generation,
                request,
            })
            .map_err(|_| CalloutError::Failed("worker is shutting down".into()))
    }

    fn grpc_send(&mut self, token: u32, message: Vec<u8>, end_stream: bool) {
        let _ = self.commands.send(Command::GrpcSend {
            set: self.set,
            vm: self.vm,
            token,
            message,
            end_stream,
        });
    }

    fn grpc_cancel(&mut self, token: u32) {
        let _ = self.commands.send(Command::GrpcEnd {
            set: self.set,
            vm: self.vm,
            token,
            cancel: true,
        });
    }

    fn grpc_close(&mut self, token: u32) {
        let _ = self.commands.send(Command::GrpcEnd {
            set: self.set,
            vm: self.vm,
            token,
            cancel: false,
        });
    }

    fn property(&self, path: &[&[u8]]) -> Option<PropertyValue> {
        let key = path
            .iter()
            .map(|s| String::from_utf8_lossy(s))
            .collect::<Vec<_>>()
            .join(".");
        self.node.get(&key).cloned()
    }

    fn log(&self, record: LogRecord<'_>) {
        let plugin = if record.plugin.is_empty() {
            self.name.as_str()
        } else {
            record.plugin
        };
        wasp_host::log::to_tracing(LogRecord { plugin, ..record });
    }
}

pub(crate) struct WorkerQueues {
    set: u64,
    vm: usize,
    commands: mpsc::UnboundedSender<Command>,
}

impl WorkerQueues {
    pub fn new(worker: &Worker, set: u64, vm: usize) -> WorkerQueues {
        WorkerQueues {
            set,
            vm,
            commands: worker.commands(),
        }
    }
}

impl QueueNotifier for WorkerQueues {
    fn queue_ready(&self, root_context: u32, queue_id: u32) {
        let _ = self.commands.send(Command::QueueReady {
            set: self.set,
            vm: self.vm,
            root: root_context,
            queue_id,
        });
    }
}
