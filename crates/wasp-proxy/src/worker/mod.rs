//! A worker: one thread, one event loop, its own VMs of every plugin, its own upstream pools.
//! Streams never leave the worker that accepted their connection.
//!
//! The VMs themselves live in `plugins::vms::WorkerVms`, one per plugin set: the worker keeps the
//! current one for new streams, switches when a new set is published, and routes the work
//! plugins ask for (callouts, queue wakeups) back to the set and VM that asked. Likewise the
//! worker serves the current configuration generation ([`local::LocalGeneration`]), switched to
//! when first needed after one is published.

mod commands;
pub(crate) mod grpc;
pub(crate) mod local;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::plugins::embedder::{Command, WorkerLink};
use crate::plugins::set::PluginSet;
use crate::plugins::vms::WorkerVms;
use crate::shared::Shared;

use self::local::LocalGeneration;

/// Open gRPC callouts by (set, VM, token): the sender of a stream's messages, and the task.
type GrpcCallouts =
    HashMap<(u64, usize, u32), (Option<crate::body::BodySender>, tokio::task::JoinHandle<()>)>;

pub(crate) struct Worker {
    pub id: usize,
    pub shared: Arc<Shared>,
    /// The configuration new connections and new requests use.
    generation: RefCell<Rc<LocalGeneration>>,
    /// The VMs new streams use; `None` only while the worker starts.
    current: RefCell<Option<Rc<WorkerVms>>>,
    /// Every set still alive on this worker (the current one, and older ones that streams
    /// still hold), by version, so that callout answers find the VM that asked.
    sets: RefCell<Vec<(u64, Weak<WorkerVms>)>>,
    commands: mpsc::UnboundedSender<Command>,
    /// Open gRPC callouts: where a stream's next message goes, and the task to cancel.
    pub(super) grpc: RefCell<GrpcCallouts>,
}

impl Worker {
    /// Builds the worker's VMs and its first generation, and starts its command loop and its
    /// watch for new plugin sets. Runs on the worker thread. (Accepting is `listener`'s.)
    pub fn start(id: usize, shared: Arc<Shared>) -> Rc<Worker> {
        let (commands, rx) = mpsc::unbounded_channel();
        let first = LocalGeneration::build(shared.generations.current(), None, id);
        let worker = Rc::new(Worker {
            id,
            generation: RefCell::new(Rc::new(first)),
            shared,
            current: RefCell::new(None),
            sets: RefCell::default(),
            commands,
            grpc: RefCell::default(),
        });
        tokio::task::spawn_local(commands::command_loop(Rc::downgrade(&worker), rx));
        worker.switch_to(worker.shared.plugins.current());
        tokio::task::spawn_local(follow_plugin_sets(Rc::downgrade(&worker)));
        worker
    }

    /// The configuration a new connection or request uses: the latest published, switched to
    /// on first need.
    pub fn generation(self: &Rc<Self>) -> Rc<LocalGeneration> {
        if self.generation.borrow().shared.version != self.shared.generations.version() {
            self.switch_generation();
        }
        self.generation.borrow().clone()
    }

    fn switch_generation(self: &Rc<Self>) {
        let next = self.shared.generations.current();
        let previous = self.generation.borrow().clone();
        if previous.shared.version == next.version {
            return;
        }
        let version = next.version;
        let local = LocalGeneration::build(next, Some(&previous), self.id);
        *self.generation.borrow_mut() = Rc::new(local);
        tracing::debug!(worker = self.id, version, "configuration updated");
    }

    /// The VMs a new stream uses.
    pub fn vms(&self) -> Rc<WorkerVms> {
        self.current
            .borrow()
            .clone()
            .expect("a worker's VMs exist once it has started")
    }

    /// What this worker's VMs are given of it.
    fn link(&self) -> WorkerLink {
        WorkerLink {
            id: self.id,
            commands: self.commands.clone(),
            clusters: self.shared.generations.clone(),
            gauges: self.shared.stats.vm_gauges.clone(),
            recovery: self.generation.borrow().shared.spec.plugin_recovery,
            node: self.shared.node_properties.clone(),
        }
    }

    /// Instantiates `set` on this worker and makes it the one new streams use.
    fn switch_to(self: &Rc<Self>, set: Arc<PluginSet>) {
        let version = set.version;
        let vms = WorkerVms::start(self.link(), set.clone());
        set.started_on
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let mut sets = self.sets.borrow_mut();
        sets.retain(|(_, weak)| weak.strong_count() > 0);
        sets.push((version, Rc::downgrade(&vms)));
        drop(sets);
        // The old set stays alive while streams hold it.
        *self.current.borrow_mut() = Some(vms);
    }

    /// The VMs and the plugin that own root context `root` of VM `vm` in set `set`: who a
    /// callout's answer goes to (`None` once the set or the plugin is gone).
    pub(super) fn caller(&self, set: u64, vm: usize, root: u32) -> Option<(Rc<WorkerVms>, usize)> {
        let vms = self.set(set)?;
        let plugin = vms.owner(vm, root)?;
        Some((vms, plugin))
    }

    /// The live set with this version.
    pub(super) fn set(&self, version: u64) -> Option<Rc<WorkerVms>> {
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
