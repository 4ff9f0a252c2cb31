//! An Envoy-style Lua script as a filter of one stream: its run of the script (a coroutine
//! per direction in the worker's Lua state), created at the first phase that reaches it.
//! Callouts the script awaits are made inside the phase and the script resumed with their
//! answers.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use wasp_host::{HeaderMap, LocalResponse};
use wasp_lua::{LuaStream, Outcome};

use crate::filter::lua_access::{self, LuaAccess};
use crate::filter::signals::Direction;
use crate::filter::{DataFlow, HeadersFlow, Stop, StreamCx, StreamFilter};
use crate::plugins::vms::Step;
use crate::upstream::callout::http_callout;

/// A phase of the script.
#[derive(Clone, Copy)]
enum ScriptPhase {
    Headers(bool),
    Body(bool),
    Trailers,
}

/// How a phase ended when the stream goes on.
enum Flow {
    Continue,
    /// The script waits for the whole body of this direction.
    Hold,
}

pub(crate) struct LuaFilter {
    /// The plugin's index in the stream's plugin set.
    pub(super) plugin: usize,
    /// The script the request's route runs instead of the filter's (`LuaPerRoute`).
    script: Option<Arc<str>>,
    run: RefCell<Option<LuaStream>>,
}

impl LuaFilter {
    pub fn new(plugin: usize, script: Option<Arc<str>>) -> LuaFilter {
        LuaFilter {
            plugin,
            script,
            run: RefCell::new(None),
        }
    }

    /// Runs one phase until the script continues, holds, answers or fails.
    async fn step(
        &self,
        cx: &StreamCx,
        pos: usize,
        direction: Direction,
        phase: ScriptPhase,
    ) -> Result<Flow, Stop> {
        if self.run.borrow().is_none() {
            let Some(worker) = cx.vms.lua(self.plugin, self.script.as_ref()) else {
                return match cx.vms.unavailable::<()>(self.plugin) {
                    Step::Fail(code) => Err(cx.fail(code)),
                    _ => Ok(Flow::Continue),
                };
            };
            let access = LuaAccess::new(
                cx.exchange.clone(),
                cx.cluster_names.clone(),
                cx.metadata.clone(),
            );
            let run = worker.new_stream(lua_access::stream_info(&cx.info), Box::new(access));
            *self.run.borrow_mut() = Some(run);
        }
        let dir = match direction {
            Direction::Request => wasp_lua::Direction::Request,
            Direction::Response => wasp_lua::Direction::Response,
        };
        let stats = &cx.vms.plugin(self.plugin).stats;
        // Each call into the script is short: the borrow never lives across an await.
        let call = |f: &mut dyn FnMut(&mut LuaStream) -> Outcome| {
            let started = Instant::now();
            let mut run = self.run.borrow_mut();
            let run = run.as_mut().expect("created above");
            let outcome = f(run);
            let calls = run.take_async_calls();
            stats.calls.fetch_add(1, Relaxed);
            stats
                .call_time_us
                .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
            (outcome, calls)
        };
        let (mut outcome, mut fire) = call(&mut |s| match (phase, direction) {
            (ScriptPhase::Headers(eos), Direction::Request) => s.on_request_headers(eos),
            (ScriptPhase::Headers(eos), Direction::Response) => s.on_response_headers(eos),
            (ScriptPhase::Body(eos), Direction::Request) => s.on_request_body(eos),
            (ScriptPhase::Body(eos), Direction::Response) => s.on_response_body(eos),
            (ScriptPhase::Trailers, Direction::Request) => s.on_request_trailers(),
            (ScriptPhase::Trailers, Direction::Response) => s.on_response_trailers(),
        });
        let downstream = cx.info.conn.peer.ip().to_string();
        loop {
            // Fire-and-forget calls (`asynchronous = true`): sent, answers dropped.
            for request in fire.drain(..) {
                let request = lua_access::callout(request, &downstream);
                let upstreams = cx.upstreams.clone();
                tokio::task::spawn_local(async move {
                    let _ = http_callout(&upstreams, request).await;
                });
            }
            match outcome {
                Outcome::Continue => return Ok(Flow::Continue),
                Outcome::StopAndBuffer => return Ok(Flow::Hold),
                Outcome::HttpCall(request) => {
                    let request = lua_access::callout(request, &downstream);
                    let response = http_callout(&cx.upstreams, request)
                        .await
                        .map(lua_access::call_response);
                    let mut response = Some(response);
                    (outcome, fire) =
                        call(&mut |s| s.on_http_call_response(dir, response.take().flatten()));
                }
                Outcome::LocalReply(reply) => {
                    let mut headers = HeaderMap::new();
                    for (k, v) in reply.headers.entries() {
                        headers.add(k, v);
                    }
                    return Err(Stop::Reply {
                        response: LocalResponse {
                            status: u32::from(reply.status),
                            details: "lua_response".into(),
                            body: reply.body,
                            headers,
                            grpc_status: None,
                        },
                        position: pos,
                    });
                }
                // As Envoy 1.40: the error is logged (by the script's log sink, with its name
                // and line) and the stream goes on without the rest of the script.
                Outcome::Error(_) => return Ok(Flow::Continue),
            }
        }
    }
}

impl StreamFilter for LuaFilter {
    async fn headers(
        &self,
        cx: &StreamCx,
        pos: usize,
        direction: Direction,
        end_of_stream: bool,
    ) -> Result<HeadersFlow, Stop> {
        Ok(
            match self
                .step(cx, pos, direction, ScriptPhase::Headers(end_of_stream))
                .await?
            {
                Flow::Continue => HeadersFlow::Continue,
                Flow::Hold => HeadersFlow::WholeBody,
            },
        )
    }

    async fn data(
        &self,
        cx: &StreamCx,
        pos: usize,
        direction: Direction,
        end_of_stream: bool,
    ) -> Result<DataFlow, Stop> {
        Ok(
            match self
                .step(cx, pos, direction, ScriptPhase::Body(end_of_stream))
                .await?
            {
                Flow::Hold if !end_of_stream => DataFlow::Buffer,
                _ => DataFlow::Continue,
            },
        )
    }

    async fn trailers(
        &self,
        cx: &StreamCx,
        pos: usize,
        direction: Direction,
        held: Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, Stop> {
        // The script sees the body it held (it is resumed with it), then the trailers; the
        // body as it left it goes on.
        if let Some(held) = held {
            cx.exchange.set_body(direction, held);
        }
        self.step(cx, pos, direction, ScriptPhase::Trailers).await?;
        let body = cx.exchange.take_body(direction);
        Ok((!body.is_empty()).then_some(body))
    }

    fn local_reply(&self, _cx: &StreamCx, _pos: usize, has_body: bool) {
        // The script sees the reply's headers; what it asks for is ignored.
        if let Some(run) = self.run.borrow_mut().as_mut() {
            let _ = run.on_response_headers(!has_body);
        }
    }

    fn saw_stream(&self) -> bool {
        self.run.borrow().is_some()
    }

    /// The script's run ends with the stream (Lua filters have no context to end).
    fn end(&self, _cx: &StreamCx, _pos: usize) {}
}
