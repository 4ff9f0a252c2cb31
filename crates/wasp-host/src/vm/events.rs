//! Events delivered to root contexts: timers, queues, callout answers, and new connections.

use super::callbacks::F3;
use super::{CallError, Vm};
use crate::embedder::HttpCallResponse;
use crate::headers::HeaderMap;
use crate::state::{Delivery, Phase};

impl Vm {
    /// `proxy_on_tick` for a root context whose timer fired.
    pub fn on_tick(&mut self, root: u32) -> Result<(), CallError> {
        self.check_root(root)?;
        match self.callbacks.tick.clone() {
            Some(f) => self.call("proxy_on_tick", root, Phase::Root, |s| f.call(s, root)),
            None => Ok(()),
        }
    }

    /// `proxy_on_queue_ready` for a queue `root` registered.
    pub fn on_queue_ready(&mut self, root: u32, queue_id: u32) -> Result<(), CallError> {
        self.check_root(root)?;
        match self.callbacks.queue_ready.clone() {
            Some(f) => self.call("proxy_on_queue_ready", root, Phase::Root, |s| {
                f.call(s, (root, queue_id))
            }),
            None => Ok(()),
        }
    }

    /// Delivers the answer to an HTTP callout; `None` = the call failed (reset, timeout, no
    /// upstream), which the plugin sees as zero headers and, through `proxy_get_status`,
    /// Envoy's (BrokenConnection, "reset").
    pub fn on_http_call_response(
        &mut self,
        token: u32,
        response: Option<HttpCallResponse>,
    ) -> Result<(), CallError> {
        let Some(call) = self.store.data_mut().pending_calls.remove(&token) else {
            return Err(CallError::UnknownContext(token));
        };
        let Some(f) = self.callbacks.http_call_response.clone() else {
            return Ok(());
        };
        if !self.store.data().contexts.contains_key(&call.root) {
            return Ok(());
        }
        let (headers, body_len, trailers) = match &response {
            Some(r) => (
                r.headers.len() as u32,
                r.body.len() as u32,
                r.trailers.len() as u32,
            ),
            None => (0, 0, 0),
        };
        self.store.data_mut().delivery = match response {
            Some(r) => Delivery {
                headers: Some(r.headers),
                body: Some(r.body),
                trailers: Some(r.trailers),
                ..Delivery::default()
            },
            None => Delivery {
                status: Some((
                    crate::abi::Status::BrokenConnection.code(),
                    b"reset".to_vec(),
                )),
                ..Delivery::default()
            },
        };
        let root = call.root;
        let result = self.call("proxy_on_http_call_response", root, Phase::Root, |s| {
            f.call(s, (root, token, headers, body_len, trailers))
        });
        self.store.data_mut().delivery = Delivery::default();
        result
    }

    /// Delivers gRPC initial metadata.
    pub fn on_grpc_initial_metadata(
        &mut self,
        token: u32,
        metadata: HeaderMap,
    ) -> Result<(), CallError> {
        let f = self.callbacks.grpc_initial_metadata.clone();
        let n = metadata.len() as u32;
        let delivery = Delivery {
            headers: Some(metadata),
            ..Delivery::default()
        };
        self.grpc_event(
            "proxy_on_grpc_receive_initial_metadata",
            token,
            f,
            n,
            delivery,
            false,
        )
    }

    /// Delivers one gRPC message (buffer `GRPC_RECEIVE_BUFFER`).
    pub fn on_grpc_message(&mut self, token: u32, message: Vec<u8>) -> Result<(), CallError> {
        let f = self.callbacks.grpc_receive.clone();
        let n = message.len() as u32;
        let delivery = Delivery {
            body: Some(message),
            ..Delivery::default()
        };
        self.grpc_event("proxy_on_grpc_receive", token, f, n, delivery, false)
    }

    /// Delivers gRPC trailing metadata.
    pub fn on_grpc_trailing_metadata(
        &mut self,
        token: u32,
        metadata: HeaderMap,
    ) -> Result<(), CallError> {
        let f = self.callbacks.grpc_trailing_metadata.clone();
        let n = metadata.len() as u32;
        let delivery = Delivery {
            trailers: Some(metadata),
            ..Delivery::default()
        };
        self.grpc_event(
            "proxy_on_grpc_receive_trailing_metadata",
            token,
            f,
            n,
            delivery,
            false,
        )
    }

    /// Ends a gRPC call or stream with its status; the message is read with `proxy_get_status`.
    pub fn on_grpc_close(
        &mut self,
        token: u32,
        status: u32,
        message: &str,
    ) -> Result<(), CallError> {
        let f = self.callbacks.grpc_close.clone();
        let delivery = Delivery {
            status: Some((status, message.as_bytes().to_vec())),
            ..Delivery::default()
        };
        self.grpc_event("proxy_on_grpc_close", token, f, status, delivery, true)
    }

    fn grpc_event(
        &mut self,
        callback: &'static str,
        token: u32,
        f: Option<F3>,
        arg: u32,
        delivery: Delivery,
        last: bool,
    ) -> Result<(), CallError> {
        let call = if last {
            self.store.data_mut().pending_calls.remove(&token)
        } else {
            self.store.data().pending_calls.get(&token).copied()
        };
        let Some(call) = call else {
            return Err(CallError::UnknownContext(token));
        };
        let Some(f) = f else { return Ok(()) };
        self.store.data_mut().delivery = delivery;
        let root = call.root;
        let result = self.call(callback, root, Phase::Root, |s| {
            f.call(s, (root, token, arg))
        });
        self.store.data_mut().delivery = Delivery::default();
        result
    }
}
