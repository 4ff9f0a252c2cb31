//! Per-stream state shared by the [`crate::LuaStream`] that drives the coroutines and the Lua
//! objects (handle, header maps, buffers) the script holds.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::access::{Direction, HeaderAccess, HeaderBlock, StreamAccess, StreamInfo};
use crate::api::log::LogSink;
use crate::outcome::{CallRequest, CallResponse, LocalReply};

/// What one worker's state knows about its script, shared with every stream.
pub(crate) struct WorkerShared {
    /// The script's name as configured (`ns.name`).
    pub script: String,
    /// How Lua names the script in error positions (`[string "function envoy_on_request..."]`),
    /// see [`crate::error::chunk_id`].
    pub chunk_id: String,
    pub log: RefCell<LogSink>,
}

/// What a direction's coroutine is suspended on (Envoy's `StreamHandleWrapper::State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Not started, running, or yielded for no reason the API knows.
    Nothing,
    /// `body()`: the whole body, at the end of the stream.
    Body,
    /// `bodyChunks()`: the next chunk.
    BodyChunk,
    /// `trailers()`: trailers or the end of the stream.
    Trailers,
    /// `httpCall()`: the callout's answer.
    HttpCall,
    /// `respond()`: never resumed.
    Responded,
    /// The function returned or failed.
    Done,
}

/// Per-direction bookkeeping, mirroring Envoy's flags of the same names.
#[derive(Debug)]
pub(crate) struct DirState {
    pub wait: Wait,
    /// Headers were passed on: no more edits, no `respond()`.
    pub headers_continued: bool,
    /// The direction ended (a phase with end_of_stream, or trailers).
    pub end_stream: bool,
    /// A body phase was called at least once.
    pub saw_body: bool,
    /// `body()` was used: the chain buffers, so the body is whole at the end of the stream.
    pub buffered_body: bool,
    /// A chunk was delivered and not yet handed to the `bodyChunks()` iterator.
    pub chunk_ready: bool,
    pub trailers_seen: bool,
    /// The answer of the callout this direction awaits (`None` inside = the call failed).
    pub call_result: Option<Option<CallResponse>>,
    /// `return_duplicate_headers` of the pending callout.
    pub call_duplicates: bool,
}

impl DirState {
    fn new() -> DirState {
        DirState {
            wait: Wait::Nothing,
            headers_continued: false,
            end_stream: false,
            saw_body: false,
            buffered_body: false,
            chunk_ready: false,
            trailers_seen: false,
            call_result: None,
            call_duplicates: false,
        }
    }
}

/// What a yielding API call asks the driver to hand to the data plane.
#[derive(Debug)]
pub(crate) enum Pending {
    HttpCall(CallRequest),
    Respond(LocalReply),
}

pub(crate) struct StreamShared {
    pub worker: Rc<WorkerShared>,
    pub info: StreamInfo,
    /// `None` once the stream is gone: objects a script kept past their stream fail.
    access: RefCell<Option<Box<dyn StreamAccess>>>,
    dirs: [RefCell<DirState>; 2],
    pub pending: RefCell<Option<Pending>>,
    pub async_calls: RefCell<Vec<CallRequest>>,
    pub alive: Cell<bool>,
}

fn index(direction: Direction) -> usize {
    match direction {
        Direction::Request => 0,
        Direction::Response => 1,
    }
}

impl StreamShared {
    pub fn new(
        worker: Rc<WorkerShared>,
        info: StreamInfo,
        access: Box<dyn StreamAccess>,
    ) -> StreamShared {
        StreamShared {
            worker,
            info,
            access: RefCell::new(Some(access)),
            dirs: [RefCell::new(DirState::new()), RefCell::new(DirState::new())],
            pending: RefCell::new(None),
            async_calls: RefCell::new(Vec::new()),
            alive: Cell::new(true),
        }
    }

    pub fn dir(&self, direction: Direction) -> std::cell::RefMut<'_, DirState> {
        self.dirs[index(direction)].borrow_mut()
    }

    /// Ends the stream: the data plane's object is released now, not when Lua's GC collects
    /// the last handle a script may have kept.
    pub fn close(&self) {
        self.alive.set(false);
        self.access.borrow_mut().take();
    }

    /// Runs `f` on the data plane's stream.
    pub fn with_access<R>(&self, f: impl FnOnce(&mut dyn StreamAccess) -> R) -> mlua::Result<R> {
        let mut access = self
            .access
            .try_borrow_mut()
            .map_err(|_| mlua::Error::runtime("stream accessed re-entrantly"))?;
        match access.as_deref_mut() {
            Some(a) => Ok(f(a)),
            None => Err(mlua::Error::runtime("object used outside of proper scope")),
        }
    }

    /// Runs `f` on a header map (`None` when it does not exist).
    pub fn with_headers<R>(
        &self,
        block: HeaderBlock,
        f: impl FnOnce(Option<&mut dyn HeaderAccess>) -> R,
    ) -> mlua::Result<R> {
        self.with_access(|a| {
            let mut f = Some(f);
            let mut out = None;
            a.headers(block, &mut |h| {
                if let Some(f) = f.take() {
                    out = Some(f(h));
                }
            });
            out.ok_or_else(|| mlua::Error::runtime("header map not provided by the data plane"))
        })?
    }

    /// Runs `f` on the body bytes of `direction`.
    pub fn with_body<R>(
        &self,
        direction: Direction,
        f: impl FnOnce(&mut Vec<u8>) -> R,
    ) -> mlua::Result<R> {
        self.with_access(|a| {
            let mut f = Some(f);
            let mut out = None;
            a.body(direction, &mut |b| {
                if let Some(f) = f.take() {
                    out = Some(f(b));
                }
            });
            out.ok_or_else(|| mlua::Error::runtime("body not provided by the data plane"))
        })?
    }
}
