//! One stream through its filter chain, as Envoy's HTTP filter manager runs it.
//!
//! Requests pass the filters first to last, responses last to first. Each phase (headers,
//! body chunks, trailers) calls every filter in turn; a filter that stops the phase holds
//! the stream there until it resumes it, answers it locally, or resets it. A filter that
//! buffers a body phase before the end of the stream gets the following chunks appended and
//! is called again with everything buffered so far, up to the buffer limit (then 413 for
//! requests, 500 for responses, as Envoy). Filters' stream state is created lazily and
//! always ended when the stream goes away, also when the client or the upstream leaves
//! mid-stream.

use std::cell::{Cell, RefCell};

use bytes::Bytes;
use wasp_host::HeaderMap;

use crate::filter::signals::Direction;
use crate::filter::{DataFlow, Filter, HeadersFlow, Stop, StreamCx, StreamFilter};
use crate::spec::PluginSetting;

/// The chain state of one stream.
pub(crate) struct Chain {
    pub cx: StreamCx,
    filters: Vec<Filter>,
    /// Body bytes each filter holds because it buffered a body phase, per direction.
    held: [RefCell<Vec<Option<Vec<u8>>>>; 2],
    /// Per direction: a filter holds the headers until the whole body has passed it, so they
    /// must not leave before the body did.
    wants_body: [Cell<bool>; 2],
    /// Per direction: a filter stopped the headers and the stream waited for it to resume.
    /// Envoy buffers the body meanwhile and hands it on in one callback.
    headers_waited: [Cell<bool>; 2],
}

impl Drop for Chain {
    fn drop(&mut self) {
        for (pos, filter) in self.filters.iter().enumerate() {
            filter.end(&self.cx, pos);
        }
    }
}

fn index(direction: Direction) -> usize {
    match direction {
        Direction::Request => 0,
        Direction::Response => 1,
    }
}

impl Chain {
    /// The chain of the stream's plugins (indices in its plugin set, in chain order, each with
    /// its setting for the request); sets `cx.len`.
    pub fn new(
        mut cx: StreamCx,
        plugins: impl IntoIterator<Item = (usize, PluginSetting)>,
    ) -> Chain {
        let filters: Vec<Filter> = plugins
            .into_iter()
            .map(|(plugin, setting)| Filter::new(&cx.vms, plugin, &setting))
            .collect();
        cx.len = filters.len();
        let n = filters.len();
        let none = || RefCell::new(vec![None; n]);
        Chain {
            cx,
            filters,
            held: [none(), none()],
            wants_body: Default::default(),
            headers_waited: Default::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.filters.len()
    }

    /// Chain positions in the order `direction` passes them, from step `from` on.
    fn order(&self, direction: Direction, from: usize) -> impl Iterator<Item = usize> + use<> {
        let n = self.len();
        (from..n).map(move |step| match direction {
            Direction::Request => step,
            Direction::Response => n - 1 - step,
        })
    }

    /// Marks a plugin's phase on the stream's span (tracing): `plugin <name> <phase>`.
    fn trace(&self, pos: usize, direction: Direction, phase: &str) {
        self.cx.info.trace_event(|| {
            let name = &self.cx.vms.plugin(self.filters[pos].plugin()).spec.name;
            let side = match direction {
                Direction::Request => "request",
                Direction::Response => "response",
            };
            format!("plugin {name} {side}_{phase}")
        });
    }

    /// The headers phase of `direction`.
    pub async fn headers(&self, direction: Direction, end_of_stream: bool) -> Result<(), Stop> {
        let d = index(direction);
        for pos in self.order(direction, 0) {
            self.cx.signals.clear_resume(pos, direction);
            self.trace(pos, direction, "headers");
            match self.filters[pos]
                .headers(&self.cx, pos, direction, end_of_stream)
                .await?
            {
                HeadersFlow::Continue => {}
                HeadersFlow::Resumed => self.headers_waited[d].set(true),
                HeadersFlow::WholeBody => self.wants_body[d].set(true),
            }
        }
        Ok(())
    }

    /// One body chunk of `direction`, entering the chain at step `from` of its order.
    /// Returns what leaves the chain now (`None` when a filter holds it).
    pub async fn data(
        &self,
        direction: Direction,
        from: usize,
        mut data: Bytes,
        end_of_stream: bool,
    ) -> Result<Option<Bytes>, Stop> {
        let limit = self.cx.buffer_limit();
        let d = index(direction);
        for pos in self.order(direction, from) {
            self.cx.signals.clear_resume(pos, direction);
            let held = self.held[d].borrow_mut()[pos].take();
            let input = match held {
                Some(mut held) => {
                    held.extend_from_slice(&data);
                    // The filter buffers: the limit applies to what it would see, as Envoy
                    // checks its buffer when a chunk is added, also the last one.
                    if held.len() > limit {
                        return Err(self.cx.too_large(direction));
                    }
                    held
                }
                // Plugins edit the chunk in place: this copies only when the chunk's buffer is
                // shared (hyper's read buffer); one the chain made is taken as it is.
                None => Vec::from(data),
            };
            self.cx.exchange.set_body(direction, input);
            if end_of_stream {
                self.trace(pos, direction, "body");
            }
            let flow = self.filters[pos]
                .data(&self.cx, pos, direction, end_of_stream)
                .await?;
            let output = self.cx.exchange.take_body(direction);
            if flow == DataFlow::Buffer && !end_of_stream {
                if output.len() > limit {
                    return Err(self.cx.too_large(direction));
                }
                self.held[d].borrow_mut()[pos] = Some(output);
                return Ok(None);
            }
            data = Bytes::from(output);
        }
        Ok(Some(data))
    }

    /// Trailers of `direction`. Each filter sees them after the ones before it released the
    /// body bytes they held; what leaves the chain is returned for forwarding before the
    /// trailers themselves.
    pub async fn trailers(
        &self,
        direction: Direction,
        trailers: HeaderMap,
    ) -> Result<Vec<u8>, Stop> {
        self.cx.exchange.set_trailers(direction, trailers);
        let d = index(direction);
        let mut out = Vec::new();
        for (step, pos) in self.order(direction, 0).enumerate() {
            self.cx.signals.clear_resume(pos, direction);
            let held = self.held[d].borrow_mut()[pos].take();
            let released = self.filters[pos]
                .trailers(&self.cx, pos, direction, held)
                .await?;
            if let Some(body) = released
                && let Some(passed) =
                    Box::pin(self.data(direction, step + 1, Bytes::from(body), false)).await?
            {
                out.extend_from_slice(&passed);
            }
        }
        Ok(out)
    }

    /// Filters that buffered without the stream ending hold bytes: at the end of the stream
    /// (no trailers), they are passed on.
    pub async fn finish_body(&self, direction: Direction) -> Result<Bytes, Stop> {
        // An empty final chunk: every filter that buffered sees end_of_stream with its data.
        Ok(self
            .data(direction, 0, Bytes::new(), true)
            .await?
            .unwrap_or_default())
    }

    /// Whether a filter stopped `direction`'s headers and the stream waited for it.
    pub fn headers_waited(&self, direction: Direction) -> bool {
        self.headers_waited[index(direction)].get()
    }

    /// Whether a filter holds `direction`'s headers until its whole body has passed.
    pub fn wants_whole_body(&self, direction: Direction) -> bool {
        self.wants_body[index(direction)].get()
    }

    /// Lets the filters up to `position` (last to first) see a locally generated response,
    /// as Envoy encodes local replies through the filters that saw the request. What they
    /// ask for meanwhile is ignored: the answer is already decided.
    pub fn encode_local_reply(&self, position: usize, has_body: bool) {
        // An empty chain has no filter to tell (`0..=0` would name one).
        for pos in (0..self.len().min(position.saturating_add(1))).rev() {
            let filter = &self.filters[pos];
            if filter.saw_stream() {
                filter.local_reply(&self.cx, pos, has_body);
            }
        }
        let _ = self.cx.signals.interrupt();
    }
}
