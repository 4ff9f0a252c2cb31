//! What a VM reaches outside itself through, on one worker: the work plugins ask for from
//! inside a hostcall (callouts, queue wake-ups) goes to the worker's loop as [`Command`]s,
//! node properties and log lines are answered here.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use wasp_host::{
    CalloutError, Embedder, GrpcCallRequest, HttpCallRequest, LogRecord, PropertyValue,
    QueueNotifier,
};

use crate::generation::Generations;
use crate::plugins::set::PluginShared;

/// What a worker's VMs need of their worker, passed down instead of the worker itself: its
/// id (for logs), where the work plugins ask for goes, and what hostcalls answer from.
#[derive(Clone)]
pub(crate) struct WorkerLink {
    pub id: usize,
    pub commands: mpsc::UnboundedSender<Command>,
    /// The clusters callouts may name: the current generation's, whatever it was when the
    /// VM started.
    pub clusters: Arc<Generations>,
    /// `xds.node.*` properties.
    pub node: Arc<HashMap<String, PropertyValue>>,
    /// Counts of live VMs and root contexts, for /stats.
    pub gauges: Arc<crate::stats::VmGauges>,
    /// How failed VMs are replaced.
    pub recovery: crate::spec::RecoveryPolicy,
}

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

/// The embedder of one VM on one worker.
pub(crate) struct WorkerEmbedder {
    set: u64,
    vm: usize,
    generation: u64,
    name: String,
    commands: mpsc::UnboundedSender<Command>,
    clusters: Arc<Generations>,
    node: Arc<HashMap<String, PropertyValue>>,
}

impl WorkerEmbedder {
    /// For VM `vm` of plugin set `set`; `first` is its first plugin (named in start-up logs).
    pub fn new(
        link: &WorkerLink,
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
            commands: link.commands.clone(),
            clusters: link.clusters.clone(),
            node: link.node.clone(),
        }
    }
}

impl Embedder for WorkerEmbedder {
    fn http_call(&mut self, request: HttpCallRequest) -> Result<(), CalloutError> {
        if !self.clusters.has_cluster(&request.cluster) {
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
            wasp_host::GrpcTarget::Cluster(c) if self.clusters.has_cluster(c) => {}
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
    pub fn new(link: &WorkerLink, set: u64, vm: usize) -> WorkerQueues {
        WorkerQueues {
            set,
            vm,
            commands: link.commands.clone(),
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
