//! A configuration generation as one worker serves it: its listeners (routes resolved against
//! the generation's clusters, plugin chains cached) and its own pools to those clusters.

use std::rc::Rc;
use std::sync::Arc;

use crate::generation::{BoundSocket, Generation};
use crate::routes::Listener;
use crate::upstream::Upstreams;

pub(crate) struct LocalGeneration {
    pub shared: Arc<Generation>,
    /// In the spec's order.
    pub listeners: Vec<Rc<Listener>>,
    pub upstreams: Rc<Upstreams>,
}

impl LocalGeneration {
    /// `shared` on worker `worker`, keeping the pools of `previous`'s unchanged clusters.
    pub fn build(
        shared: Arc<Generation>,
        previous: Option<&LocalGeneration>,
        worker: usize,
    ) -> LocalGeneration {
        // The generation's clusters were built once when it was, so this only fails if a CA
        // file vanished since; the worker then serves without clusters and says why.
        let upstreams = Upstreams::after(
            &shared.spec.clusters,
            &shared.clusters,
            previous.map(|p| &*p.upstreams),
        )
        .unwrap_or_else(|e| {
            tracing::error!(worker, "{e}");
            Upstreams::default()
        });
        let listeners = shared
            .spec
            .listeners
            .iter()
            .zip(&shared.listeners)
            .map(|(spec, s)| {
                Rc::new(Listener::new(
                    spec.clone(),
                    s.clone(),
                    &shared.spec.clusters,
                ))
            })
            .collect();
        LocalGeneration {
            shared,
            listeners,
            upstreams: Rc::new(upstreams),
        }
    }

    /// The listener that accepts on `socket`.
    pub fn accepting_on(&self, socket: &Arc<BoundSocket>) -> Option<&Rc<Listener>> {
        self.listeners
            .iter()
            .find(|l| Arc::ptr_eq(&l.shared.socket, socket))
    }

    /// The listener that carries on the connections of `listener` (of an older generation):
    /// the one with the same connection epoch, if the reloads since left those settings be.
    pub fn successor(&self, listener: &Listener) -> Option<&Rc<Listener>> {
        self.listeners
            .iter()
            .find(|l| Arc::ptr_eq(&l.shared.epoch, &listener.shared.epoch))
    }
}
