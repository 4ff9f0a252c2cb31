//! The HTTP stream callbacks, driven in Envoy's order.

use super::callbacks::HeadersFn;
use super::{CallError, Vm};
use crate::abi::{DataAction, HeadersAction, TrailersAction};
use crate::embedder::Effect;
use crate::headers::HeaderMap;
use crate::state::{Context, ContextKind, Phase};
use crate::stream::SharedHttpStream;

impl Vm {
    /// Creates an HTTP stream context under `root` (`on_context_create(id, root)`).
    pub fn create_http_stream(
        &mut self,
        root: u32,
        stream: SharedHttpStream,
    ) -> Result<u32, CallError> {
        self.check_root(root)?;
        let id = self.new_context_id();
        self.store.data_mut().contexts.insert(
            id,
            Context {
                root,
                kind: ContextKind::Http(stream),
            },
        );
        if let Some(f) = self.callbacks.context_create.clone() {
            self.call("proxy_on_context_create", id, Phase::Other, |s| {
                f.call(s, (id, root))
            })?;
        }
        Ok(id)
    }

    /// `proxy_on_request_headers`: the stream's request headers are in place.
    pub fn on_request_headers(
        &mut self,
        context: u32,
        end_of_stream: bool,
    ) -> Result<HeadersAction, CallError> {
        self.headers_callback(context, end_of_stream, true)
    }

    /// `proxy_on_response_headers`.
    pub fn on_response_headers(
        &mut self,
        context: u32,
        end_of_stream: bool,
    ) -> Result<HeadersAction, CallError> {
        self.headers_callback(context, end_of_stream, false)
    }

    /// `proxy_on_request_body`: `request_body` holds what the plugin should see.
    pub fn on_request_body(
        &mut self,
        context: u32,
        end_of_stream: bool,
    ) -> Result<DataAction, CallError> {
        self.body_callback(context, end_of_stream, true)
    }

    /// `proxy_on_response_body`.
    pub fn on_response_body(
        &mut self,
        context: u32,
        end_of_stream: bool,
    ) -> Result<DataAction, CallError> {
        self.body_callback(context, end_of_stream, false)
    }

    /// `proxy_on_request_trailers`.
    pub fn on_request_trailers(&mut self, context: u32) -> Result<TrailersAction, CallError> {
        self.trailers_callback(context, true)
    }

    /// `proxy_on_response_trailers`.
    pub fn on_response_trailers(&mut self, context: u32) -> Result<TrailersAction, CallError> {
        self.trailers_callback(context, false)
    }

    /// Ends a stream the way Envoy does for HTTP: `on_log`, `on_done`, `on_delete`, then
    /// forgets the context. Call it exactly once per stream, also when the client or the
    /// upstream went away. On a failed VM the context is just forgotten.
    pub fn finish_stream(&mut self, context: u32) -> Result<(), CallError> {
        if !self.store.data().contexts.contains_key(&context) {
            return Err(CallError::UnknownContext(context));
        }
        let result = self.end_context(context, true);
        self.store.data_mut().contexts.remove(&context);
        result
    }

    fn headers_callback(
        &mut self,
        context: u32,
        end_of_stream: bool,
        request: bool,
    ) -> Result<HeadersAction, CallError> {
        let (stream, allow) = self.stream_of(context)?;
        let f = if request {
            &self.callbacks.request_headers
        } else {
            &self.callbacks.response_headers
        };
        let Some(f) = f.clone() else {
            return Ok(HeadersAction::Continue);
        };
        let count = {
            let stream = stream
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let map = if request {
                &stream.request_headers
            } else {
                &stream.response_headers
            };
            map.as_ref().map_or(0, HeaderMap::len) as u32
        };
        let (name, phase) = if request {
            ("proxy_on_request_headers", Phase::RequestHeaders)
        } else {
            ("proxy_on_response_headers", Phase::ResponseHeaders)
        };
        let eos = u32::from(end_of_stream);
        let value = self.call(name, context, phase, |s| match &f {
            HeadersFn::V1(f) => f.call(s, (context, count)),
            HeadersFn::V2(f) => f.call(s, (context, count, eos)),
        })?;
        if self.replied_locally(context) {
            // As cpp-host: stop everything, so no body chunk reaches a replied stream.
            return Ok(HeadersAction::StopAllIterationAndWatermark);
        }
        Ok(HeadersAction::from_guest(value, allow))
    }

    fn body_callback(
        &mut self,
        context: u32,
        end_of_stream: bool,
        request: bool,
    ) -> Result<DataAction, CallError> {
        let (stream, _) = self.stream_of(context)?;
        let f = if request {
            &self.callbacks.request_body
        } else {
            &self.callbacks.response_body
        };
        let Some(f) = f.clone() else {
            return Ok(DataAction::Continue);
        };
        let size = {
            let stream = stream
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (if request {
                stream.request_body.len()
            } else {
                stream.response_body.len()
            }) as u32
        };
        let (name, phase) = if request {
            ("proxy_on_request_body", Phase::RequestBody)
        } else {
            ("proxy_on_response_body", Phase::ResponseBody)
        };
        self.store.data_mut().body_end_of_stream = end_of_stream;
        let value = self.call(name, context, phase, |s| {
            f.call(s, (context, size, u32::from(end_of_stream)))
        });
        self.store.data_mut().body_end_of_stream = false;
        let value = value?;
        if self.replied_locally(context) {
            return Ok(DataAction::StopIterationNoBuffer);
        }
        Ok(DataAction::from_guest(value))
    }

    fn trailers_callback(
        &mut self,
        context: u32,
        request: bool,
    ) -> Result<TrailersAction, CallError> {
        let (stream, _) = self.stream_of(context)?;
        let f = if request {
            &self.callbacks.request_trailers
        } else {
            &self.callbacks.response_trailers
        };
        let Some(f) = f.clone() else {
            return Ok(TrailersAction::Continue);
        };
        let count = {
            let stream = stream
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let map = if request {
                &stream.request_trailers
            } else {
                &stream.response_trailers
            };
            map.as_ref().map_or(0, HeaderMap::len) as u32
        };
        let (name, phase) = if request {
            ("proxy_on_request_trailers", Phase::RequestTrailers)
        } else {
            ("proxy_on_response_trailers", Phase::ResponseTrailers)
        };
        let value = self.call(name, context, phase, |s| f.call(s, (context, count)))?;
        if self.replied_locally(context) {
            return Ok(TrailersAction::StopIteration);
        }
        Ok(TrailersAction::from_guest(value))
    }

    /// Envoy turns the callback's answer into "stop" once it asked for a local reply.
    fn replied_locally(&self, context: u32) -> bool {
        self.store
            .data()
            .effects
            .iter()
            .any(|e| matches!(e, Effect::LocalResponse { context: c, .. } if *c == context))
    }

    /// on_log, on_done, on_delete in Envoy's HTTP order (log first since envoy#12850).
    pub(super) fn end_context(&mut self, context: u32, log_first: bool) -> Result<(), CallError> {
        if self.failed.is_some() {
            return Ok(());
        }
        let log = self.callbacks.log.clone();
        let done = self.callbacks.done.clone();
        let delete = self.callbacks.delete.clone();
        if log_first && let Some(f) = &log {
            self.call("proxy_on_log", context, Phase::Log, |s| f.call(s, context))?;
        }
        if let Some(f) = done {
            // A stream's on_done answer is ignored, as in Envoy.
            self.call("proxy_on_done", context, Phase::Log, |s| f.call(s, context))?;
        }
        if !log_first && let Some(f) = &log {
            self.call("proxy_on_log", context, Phase::Log, |s| f.call(s, context))?;
        }
        if let Some(f) = delete {
            self.call("proxy_on_delete", context, Phase::Log, |s| {
                f.call(s, context)
            })?;
        }
        Ok(())
    }

    fn stream_of(&self, context: u32) -> Result<(SharedHttpStream, bool), CallError> {
        let state = self.store.data();
        match state.contexts.get(&context) {
            Some(Context {
                kind: ContextKind::Http(stream),
                root,
            }) => {
                let allow = state
                    .root_of(*root)
                    .is_some_and(|r| r.allow_headers_stop_iteration);
                Ok((stream.clone(), allow))
            }
            _ => Err(CallError::UnknownContext(context)),
        }
    }
}
