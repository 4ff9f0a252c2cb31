//! Accepting: one loop per socket of the worker's current configuration generation, started
//! and stopped as generations come and go (an unchanged listener's socket keeps its loop).

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::generation::BoundSocket;
use crate::worker::Worker;
use crate::worker::local::LocalGeneration;

/// Accepts on every listener of the worker's current generation until shutdown, following
/// each generation published.
pub(crate) async fn accept_all(worker: Rc<Worker>, shutdown: watch::Receiver<bool>) {
    let mut changes = worker.shared.generations.subscribe();
    let mut stop = shutdown.clone();
    let mut loops: Vec<(Arc<BoundSocket>, JoinHandle<()>)> = Vec::new();
    loop {
        let generation = worker.generation();
        follow(&worker, &generation, &mut loops, &shutdown);
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}

/// Stops the loops on sockets `generation` does not listen on, and starts one on each socket
/// it does that has none yet.
fn follow(
    worker: &Rc<Worker>,
    generation: &LocalGeneration,
    loops: &mut Vec<(Arc<BoundSocket>, JoinHandle<()>)>,
    shutdown: &watch::Receiver<bool>,
) {
    loops.retain(|(socket, task)| {
        let kept = generation.accepting_on(socket).is_some();
        if !kept {
            task.abort();
        }
        kept
    });
    for listener in &generation.listeners {
        let socket = &listener.shared.socket;
        if loops.iter().any(|(s, _)| Arc::ptr_eq(s, socket)) {
            continue;
        }
        match socket.for_worker(worker.id) {
            Ok(accept) => {
                let task = tokio::task::spawn_local(accept_loop(
                    Rc::downgrade(worker),
                    socket.clone(),
                    accept,
                    shutdown.clone(),
                ));
                loops.push((socket.clone(), task));
            }
            Err(e) => {
                tracing::error!(worker = worker.id, listener = %listener.spec.name, "cannot accept on {}: {e}", socket.local);
            }
        }
    }
}

/// Accepts on one socket of the worker's current generation until the worker stops it (the
/// socket's listener was removed) or the proxy shuts down. Each connection is served by the
/// listener that has the socket in the generation current when it arrives.
async fn accept_loop(
    worker: std::rc::Weak<Worker>,
    socket: Arc<BoundSocket>,
    accept: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = accept.accept() => {
                let Some(worker) = worker.upgrade() else { return };
                match accepted {
                    Ok((tcp, peer)) => {
                        let generation = worker.generation();
                        let Some(listener) = generation.accepting_on(&socket).cloned() else {
                            // Removed by the generation just switched to.
                            continue;
                        };
                        if at_capacity(&worker, &generation) {
                            // Envoy's global connection limit: closed as it arrives.
                            drop(tcp);
                            continue;
                        }
                        let _ = tcp.set_nodelay(true);
                        let local = tcp.local_addr().unwrap_or(peer);
                        tokio::task::spawn_local(super::serve_connection(
                            worker.clone(), generation, listener, tcp, peer, local, shutdown.clone(),
                        ));
                    }
                    Err(e) => {
                        tracing::warn!(address = %socket.local, "accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// Whether `max_connections` client connections are open already (counted over all
/// workers and listeners); an overflow is counted.
fn at_capacity(worker: &Worker, generation: &LocalGeneration) -> bool {
    let Some(max) = generation.shared.spec.max_connections else {
        return false;
    };
    let stats = &worker.shared.stats;
    let full = stats.active_connections.load(Relaxed) >= max as u64;
    if full {
        stats.client_limits.overflows.fetch_add(1, Relaxed);
        tracing::debug!("max_connections ({max}) open: connection closed");
    }
    full
}
