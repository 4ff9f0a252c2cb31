//! The worker's command loop: carries out the work plugins asked for from inside hostcalls
//! (callouts, gRPC streams, queue wake-ups) and delivers the answers to the VM that asked.

use std::rc::Weak;

use tokio::sync::mpsc;

use crate::body::ChannelBody;
use crate::plugins::embedder::Command;
use crate::upstream::callout::http_callout;
use crate::worker::Worker;

pub(super) async fn command_loop(worker: Weak<Worker>, mut rx: mpsc::UnboundedReceiver<Command>) {
    while let Some(command) = rx.recv().await {
        let Some(w) = worker.upgrade() else { return };
        match command {
            Command::HttpCall {
                set,
                vm,
                generation,
                request,
            } => {
                let Some((vms, plugin)) = w.caller(set, vm, request.root_context) else {
                    continue;
                };
                let weak = worker.clone();
                tokio::task::spawn_local(async move {
                    let Some(w) = weak.upgrade() else { return };
                    let token = request.token;
                    let upstreams = w.generation().upstreams.clone();
                    let response = http_callout(&upstreams, request).await;
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
                let Some((vms, plugin)) = w.caller(set, vm, request.root_context) else {
                    continue;
                };
                let key = (set, vm, request.token);
                let (sender, body) = match &request.message {
                    Some(message) => (
                        None,
                        ChannelBody::full(crate::upstream::grpc::frame(message)),
                    ),
                    None => {
                        let (tx, body) = ChannelBody::channel();
                        (Some(tx), body)
                    }
                };
                let task = tokio::task::spawn_local(crate::worker::grpc::exchange(
                    w.generation().upstreams.clone(),
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
                        .send(Ok(http_body::Frame::data(crate::upstream::grpc::frame(
                            &message,
                        ))))
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
