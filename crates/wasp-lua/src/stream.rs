//! Driving `envoy_on_request` / `envoy_on_response` coroutines through a stream's phases.
//!
//! Each direction's function runs as a coroutine started by its headers phase. When it yields
//! (inside `body()`, `bodyChunks()`, `trailers()`, `httpCall()` or `respond()`), the wait it
//! recorded decides the phase's [`Outcome`]; later phases resume it when what it waits for has
//! arrived, exactly where Envoy's `StreamHandleWrapper` resumes its coroutine.

use std::rc::Rc;

use mlua::thread::ThreadStatus;
use mlua::{IntoLuaMulti, Thread};

use crate::access::Direction;
use crate::api::StreamHandle;
use crate::api::log::LogLevel;
use crate::error::describe;
use crate::loaded::LoadedState;
use crate::outcome::{CallRequest, CallResponse, Outcome};
use crate::state::{Pending, StreamShared, Wait};

/// The Lua filter of one stream. Dropping it ends the stream: objects a script kept from it
/// fail from then on ("object used outside of proper scope").
pub struct LuaStream {
    worker: Rc<LoadedState>,
    shared: Rc<StreamShared>,
    threads: [Option<Thread>; 2],
}

fn index(direction: Direction) -> usize {
    match direction {
        Direction::Request => 0,
        Direction::Response => 1,
    }
}

impl Drop for LuaStream {
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl LuaStream {
    pub(crate) fn new(worker: Rc<LoadedState>, shared: Rc<StreamShared>) -> LuaStream {
        LuaStream {
            worker,
            shared,
            threads: [None, None],
        }
    }

    /// Request headers are in the stream: starts `envoy_on_request`.
    pub fn on_request_headers(&mut self, end_of_stream: bool) -> Outcome {
        self.on_headers(Direction::Request, end_of_stream)
    }

    /// A request chunk (or, after [`Outcome::StopAndBuffer`], everything buffered so far) is
    /// the stream's request body.
    pub fn on_request_body(&mut self, end_of_stream: bool) -> Outcome {
        self.on_body(Direction::Request, end_of_stream)
    }

    /// Request trailers are in the stream (the request ends here). A body the filter had
    /// buffered must be in the stream's request body.
    pub fn on_request_trailers(&mut self) -> Outcome {
        self.on_trailers(Direction::Request)
    }

    /// Response headers are in the stream: starts `envoy_on_response`.
    pub fn on_response_headers(&mut self, end_of_stream: bool) -> Outcome {
        self.on_headers(Direction::Response, end_of_stream)
    }

    /// A response chunk (or, after [`Outcome::StopAndBuffer`], everything buffered so far) is
    /// the stream's response body.
    pub fn on_response_body(&mut self, end_of_stream: bool) -> Outcome {
        self.on_body(Direction::Response, end_of_stream)
    }

    /// Response trailers are in the stream (the response ends here). A body the filter had
    /// buffered must be in the stream's response body.
    pub fn on_response_trailers(&mut self) -> Outcome {
        self.on_trailers(Direction::Response)
    }

    /// Delivers the answer to the callout `direction` awaits (`None`: the call failed; the
    /// script sees `:status` 503 and body "upstream failure", as in Envoy) and resumes the
    /// script. The returned outcome replaces the one of the phase that was paused. Body bytes
    /// the chain buffered meanwhile must be in the stream's body first.
    pub fn on_http_call_response(
        &mut self,
        direction: Direction,
        response: Option<CallResponse>,
    ) -> Outcome {
        {
            let mut dir = self.shared.dir(direction);
            if dir.wait != Wait::HttpCall {
                return Outcome::Continue;
            }
            dir.call_result = Some(response);
        }
        self.resume(direction, ())
    }

    /// Fire-and-forget callouts (`asynchronous = true`) the script started since the last
    /// call: perform them and drop their answers. Check after every phase.
    pub fn take_async_calls(&mut self) -> Vec<CallRequest> {
        std::mem::take(&mut *self.shared.async_calls.borrow_mut())
    }

    fn on_headers(&mut self, direction: Direction, end_of_stream: bool) -> Outcome {
        self.shared.dir(direction).end_stream = end_of_stream;
        let function = match direction {
            Direction::Request => self.worker.on_request.clone(),
            Direction::Response => self.worker.on_response.clone(),
        };
        let Some(function) = function else {
            return self.passed(direction, Outcome::Continue);
        };
        if self.threads[index(direction)].is_some() {
            // Headers twice (1xx responses): the script already runs for this direction.
            return Outcome::Continue;
        }
        let handle = StreamHandle {
            shared: self.shared.clone(),
            direction,
        };
        let started = self
            .worker
            .lua
            .create_thread(function)
            .and_then(|t| Ok((t, self.worker.lua.create_any_userdata(handle)?)));
        match started {
            Ok((thread, handle)) => {
                self.threads[index(direction)] = Some(thread);
                self.resume(direction, handle)
            }
            Err(e) => self.failed(direction, describe(&self.worker.shared.chunk_id, &e)),
        }
    }

    fn on_body(&mut self, direction: Direction, end_of_stream: bool) -> Outcome {
        let wait = {
            let mut dir = self.shared.dir(direction);
            dir.saw_body = true;
            dir.end_stream |= end_of_stream;
            match dir.wait {
                Wait::BodyChunk => dir.chunk_ready = true,
                // The chain buffers for us: the body is whole, not streamed, when resumed.
                Wait::Body | Wait::HttpCall => dir.buffered_body = true,
                _ => {}
            }
            dir.wait
        };
        match wait {
            Wait::BodyChunk => self.resume(direction, ()),
            Wait::Body | Wait::Trailers if end_of_stream => self.resume(direction, ()),
            Wait::Body | Wait::HttpCall => Outcome::StopAndBuffer,
            _ => self.passed(direction, Outcome::Continue),
        }
    }

    fn on_trailers(&mut self, direction: Direction) -> Outcome {
        let wait = {
            let mut dir = self.shared.dir(direction);
            dir.trailers_seen = true;
            dir.end_stream = true;
            dir.wait
        };
        match wait {
            Wait::Body | Wait::BodyChunk | Wait::Trailers => self.resume(direction, ()),
            Wait::HttpCall => Outcome::StopAndBuffer,
            _ => Outcome::Continue,
        }
    }

    /// Resumes the direction's coroutine and turns where it stopped into an outcome.
    fn resume(&mut self, direction: Direction, args: impl IntoLuaMulti) -> Outcome {
        let Some(thread) = self.threads[index(direction)].clone() else {
            return Outcome::Continue;
        };
        if thread.status() != ThreadStatus::Resumable {
            return Outcome::Continue;
        }
        self.shared.dir(direction).wait = Wait::Nothing;
        self.shared.pending.borrow_mut().take();
        self.worker.budget.reset();
        let result = thread.resume::<()>(args);
        if let Some(line) = self.worker.budget.exceeded() {
            let message = self.worker.budget_error(line);
            return self.failed(direction, message);
        }
        if let Err(e) = result {
            let message = describe(&self.worker.shared.chunk_id, &e);
            return self.failed(direction, message);
        }
        if thread.status() != ThreadStatus::Resumable {
            // The function returned.
            self.finish(direction);
            return self.passed(direction, Outcome::Continue);
        }
        match self.shared.pending.borrow_mut().take() {
            Some(Pending::HttpCall(request)) => return Outcome::HttpCall(request),
            Some(Pending::Respond(reply)) => {
                self.threads[index(direction)] = None;
                return Outcome::LocalReply(reply);
            }
            None => {}
        }
        let wait = self.shared.dir(direction).wait;
        match wait {
            Wait::Body => Outcome::StopAndBuffer,
            Wait::BodyChunk | Wait::Trailers => self.passed(direction, Outcome::Continue),
            _ => {
                let message = format!(
                    "{}: {} yielded outside of a handle call",
                    self.worker.shared.chunk_id,
                    entry_point(direction)
                );
                self.failed(direction, message)
            }
        }
    }

    /// The coroutine will not run again.
    fn finish(&mut self, direction: Direction) {
        self.threads[index(direction)] = None;
        self.shared.dir(direction).wait = Wait::Done;
    }

    fn failed(&mut self, direction: Direction, message: String) -> Outcome {
        self.finish(direction);
        self.worker.log(LogLevel::Error, &message);
        Outcome::Error(message)
    }

    /// Headers go on with a `Continue`: from then on they are read-only.
    fn passed(&mut self, direction: Direction, outcome: Outcome) -> Outcome {
        if outcome == Outcome::Continue {
            self.shared.dir(direction).headers_continued = true;
        }
        outcome
    }
}

fn entry_point(direction: Direction) -> &'static str {
    match direction {
        Direction::Request => "envoy_on_request",
        Direction::Response => "envoy_on_response",
    }
}
