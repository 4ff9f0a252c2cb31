//! A Wasm plugin as a filter of one stream: its HTTP context in the plugin's VM, created at
//! the first phase that reaches it and always ended when the stream goes away.

use std::cell::Cell;
use std::sync::Arc;

use wasp_host::{CallError, DataAction, HeadersAction, TrailersAction, Vm};

use crate::filter::signals::Direction;
use crate::filter::{DataFlow, HeadersFlow, Stop, StreamCx, StreamFilter};
use crate::plugins::vms::Step;

#[derive(Clone, Copy)]
enum Ctx {
    NotYet,
    Open {
        ctx: u32,
        generation: u64,
        /// Failed open during this stream: the stream goes on without it.
        skipped: bool,
    },
    Skipped,
}

pub(crate) struct WasmFilter {
    /// The plugin's index in the stream's plugin set.
    pub(super) plugin: usize,
    /// The configuration of the request's route (its root context's); `None`: the plugin's.
    configuration: Option<Arc<[u8]>>,
    ctx: Cell<Ctx>,
}

impl WasmFilter {
    pub fn new(plugin: usize, configuration: Option<Arc<[u8]>>) -> WasmFilter {
        WasmFilter {
            plugin,
            configuration,
            ctx: Cell::new(Ctx::NotYet),
        }
    }

    /// Calls one stream callback, creating the context first if needed.
    fn callback<T>(
        &self,
        cx: &StreamCx,
        pos: usize,
        f: impl FnOnce(&mut Vm, u32) -> Result<T, CallError>,
    ) -> Step<T> {
        let (ctx, generation) = match self.ctx.get() {
            Ctx::Skipped | Ctx::Open { skipped: true, .. } => return Step::Skip,
            Ctx::Open {
                ctx, generation, ..
            } => (ctx, generation),
            Ctx::NotYet => {
                match cx.vms.open_stream(
                    self.plugin,
                    self.configuration.as_ref(),
                    cx.exchange.shared(),
                    &cx.signals,
                    pos,
                ) {
                    Step::Done((ctx, generation)) => {
                        self.ctx.set(Ctx::Open {
                            ctx,
                            generation,
                            skipped: false,
                        });
                        (ctx, generation)
                    }
                    Step::Skip => {
                        self.ctx.set(Ctx::Skipped);
                        return Step::Skip;
                    }
                    Step::Fail(code) => return Step::Fail(code),
                }
            }
        };
        let step = cx.vms.call(self.plugin, generation, |vm| f(vm, ctx));
        if matches!(step, Step::Skip) {
            // Fail open: this stream goes on without the plugin.
            self.ctx.set(Ctx::Open {
                ctx,
                generation,
                skipped: true,
            });
        }
        step
    }
}

impl StreamFilter for WasmFilter {
    async fn headers(
        &self,
        cx: &StreamCx,
        pos: usize,
        direction: Direction,
        end_of_stream: bool,
    ) -> Result<HeadersFlow, Stop> {
        let step = self.callback(cx, pos, |vm, ctx| match direction {
            Direction::Request => vm.on_request_headers(ctx, end_of_stream),
            Direction::Response => vm.on_response_headers(ctx, end_of_stream),
        });
        let action = match step {
            Step::Skip => return Ok(HeadersFlow::Continue),
            Step::Fail(code) => return Err(cx.fail(code)),
            Step::Done(action) => action,
        };
        cx.interrupted()?;
        if action == HeadersAction::Continue || action == HeadersAction::ContinueAndEndStream {
            return Ok(HeadersFlow::Continue);
        }
        cx.wait(pos, direction).await?;
        Ok(HeadersFlow::Resumed)
    }

    async fn data(
        &self,
        cx: &StreamCx,
        pos: usize,
        direction: Direction,
        end_of_stream: bool,
    ) -> Result<DataFlow, Stop> {
        let step = self.callback(cx, pos, |vm, ctx| match direction {
            Direction::Request => vm.on_request_body(ctx, end_of_stream),
            Direction::Response => vm.on_response_body(ctx, end_of_stream),
        });
        let action = match step {
            Step::Skip => return Ok(DataFlow::Continue),
            Step::Fail(code) => return Err(cx.fail(code)),
            Step::Done(action) => action,
        };
        cx.interrupted()?;
        if action == DataAction::Continue {
            return Ok(DataFlow::Continue);
        }
        if !end_of_stream {
            return Ok(DataFlow::Buffer);
        }
        // Stopped at the end of the stream: wait for the resume; edits the plugin makes
        // meanwhile (from a callout answer, say) land in the body buffer.
        let mut size = 0;
        cx.exchange.body_mut(direction, &mut |b| size = b.len());
        if size > cx.buffer_limit() {
            return Err(cx.too_large(direction));
        }
        cx.wait(pos, direction).await?;
        Ok(DataFlow::Continue)
    }

    async fn trailers(
        &self,
        cx: &StreamCx,
        pos: usize,
        direction: Direction,
        held: Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, Stop> {
        let step = self.callback(cx, pos, |vm, ctx| match direction {
            Direction::Request => vm.on_request_trailers(ctx),
            Direction::Response => vm.on_response_trailers(ctx),
        });
        match step {
            Step::Skip => {}
            Step::Fail(code) => return Err(cx.fail(code)),
            Step::Done(action) => {
                cx.interrupted()?;
                if action == TrailersAction::StopIteration {
                    cx.wait(pos, direction).await?;
                }
            }
        }
        // What the plugin buffered goes on as it was.
        Ok(held)
    }

    fn local_reply(&self, cx: &StreamCx, pos: usize, has_body: bool) {
        let _ = self.callback(cx, pos, |vm, ctx| vm.on_response_headers(ctx, !has_body));
        if has_body {
            let _ = self.callback(cx, pos, |vm, ctx| vm.on_response_body(ctx, true));
        }
    }

    fn saw_stream(&self) -> bool {
        matches!(self.ctx.get(), Ctx::Open { skipped: false, .. })
    }

    fn end(&self, cx: &StreamCx, pos: usize) {
        match self.ctx.replace(Ctx::Skipped) {
            Ctx::Open {
                ctx, generation, ..
            } => cx.vms.close_stream(self.plugin, ctx, generation),
            // A plugin the request never reached (an earlier one answered) still logs the
            // stream: Envoy creates its context at log time and calls on_log and on_done.
            Ctx::NotYet => {
                if let Step::Done((ctx, generation)) = cx.vms.open_stream(
                    self.plugin,
                    self.configuration.as_ref(),
                    cx.exchange.shared(),
                    &cx.signals,
                    pos,
                ) {
                    cx.vms.close_stream(self.plugin, ctx, generation);
                }
            }
            Ctx::Skipped => {}
        }
    }
}
