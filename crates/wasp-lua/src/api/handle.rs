//! The stream handle passed to `envoy_on_request` / `envoy_on_response`.
//!
//! Methods that wait (`body`, `bodyChunks`, `trailers`, `httpCall`, `respond`) are small Lua
//! functions around Rust primitives: the primitive either answers now or records what the
//! coroutine waits for, and the Lua side then `coroutine.yield()`s and retries when resumed.
//! Yielding from Lua rather than from Rust keeps this portable to LuaJIT, where a Rust
//! (C) function cannot yield.

use std::rc::Rc;

use mlua::{Function, Lua, Table, UserDataFields, UserDataMethods, Value};

use super::body::BufferObject;
use super::headers::HeaderObject;
use super::http_call;
use super::log::METHODS as LOG_METHODS;
use super::metadata::{MetadataObject, map_to_table};
use super::misc;
use super::stream_info::{ConnectionObject, StreamInfoObject};
use crate::access::{Direction, HeaderBlock};
use crate::state::{Pending, StreamShared, Wait};

pub(crate) struct StreamHandle {
    pub shared: Rc<StreamShared>,
    pub direction: Direction,
}

const WAITING_METHODS_LUA: &str = r#"
local yield = coroutine.yield
local W = {}
-- Errors raised by the Rust side reach scripts as Envoy raises them: a plain message, without
-- mlua's "runtime error: " prefix and traceback.
local function clean(e)
  if type(e) ~= "string" then e = tostring(e) end
  e = e:gsub("^runtime error: ", "")
  local cut = e:find("\nstack traceback:", 1, true)
  if cut then e = e:sub(1, cut - 1) end
  return e
end
local function checked(ok, ...)
  if ok then return ... end
  error(clean((...)), 0)
end
function W.body(h, always_wrap)
  while true do
    local ready, buffer = h:_body(always_wrap)
    if ready then return buffer end
    yield()
  end
end
function W.bodyChunks(h)
  return function()
    while true do
      local ready, chunk = h:_bodyChunk()
      if ready then return chunk end
      yield()
    end
  end
end
function W.trailers(h)
  while true do
    local ready, trailers = h:_trailers()
    if ready then return trailers end
    yield()
  end
end
function W.httpCall(h, cluster, headers, body, timeout, asynchronous)
  if checked(pcall(h._httpCall, h, cluster, headers, body, timeout, asynchronous)) then return end
  yield()
  return checked(pcall(h._httpCallResult, h))
end
function W.respond(h, headers, body)
  -- Envoy raises respond()'s errors at the script's line (httpCall's without a position).
  local ok, e = pcall(h._respond, h, headers, body)
  if not ok then error(clean(e), 2) end
  yield()
  error("respond() resumed")
end
return W
"#;

impl StreamHandle {
    fn headers_object(&self, block: HeaderBlock) -> HeaderObject {
        HeaderObject {
            shared: self.shared.clone(),
            block,
        }
    }

    fn buffer(&self) -> BufferObject {
        BufferObject {
            shared: self.shared.clone(),
            direction: self.direction,
        }
    }

    /// `body()`: the whole body at the end of the stream, else wait (Envoy's `luaBody`).
    fn body_now(&self, always_wrap: bool) -> mlua::Result<(bool, Option<BufferObject>)> {
        let mut dir = self.shared.dir(self.direction);
        if dir.end_stream {
            if !dir.buffered_body && dir.saw_body {
                return Err(mlua::Error::runtime(
                    "cannot call body() after body has been streamed",
                ));
            }
            drop(dir);
            let empty = self.shared.with_body(self.direction, |b| b.is_empty())?;
            return Ok((true, (!empty || always_wrap).then(|| self.buffer())));
        }
        if dir.saw_body {
            return Err(mlua::Error::runtime(
                "cannot call body() after body streaming has started",
            ));
        }
        dir.wait = Wait::Body;
        dir.buffered_body = true;
        Ok((false, None))
    }

    /// `bodyChunks()` iterator step: the delivered chunk, nil at the end, else wait.
    fn next_chunk(&self) -> mlua::Result<(bool, Option<BufferObject>)> {
        let mut dir = self.shared.dir(self.direction);
        if dir.chunk_ready {
            dir.chunk_ready = false;
            return Ok((true, Some(self.buffer())));
        }
        if dir.end_stream {
            return Ok((true, None));
        }
        dir.wait = Wait::BodyChunk;
        Ok((false, None))
    }

    /// `trailers()`: the trailers, nil when the stream ended without, else wait.
    fn trailers_now(&self) -> mlua::Result<(bool, Option<HeaderObject>)> {
        let mut dir = self.shared.dir(self.direction);
        if dir.trailers_seen {
            return Ok((
                true,
                Some(self.headers_object(HeaderBlock::trailers(self.direction))),
            ));
        }
        if dir.end_stream {
            return Ok((true, None));
        }
        dir.wait = Wait::Trailers;
        Ok((false, None))
    }
}

/// Registers the handle type in `lua`.
pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let waiting: Table = lua.load(WAITING_METHODS_LUA).set_name("=wasp").eval()?;
    let waiting = waiting
        .pairs::<String, Function>()
        .collect::<mlua::Result<Vec<_>>>()?;
    lua.register_userdata_type::<StreamHandle>(|reg| {
        for (name, f) in waiting {
            reg.add_field(name, f);
        }
        add_methods(reg);
    })
}

fn add_methods<M: UserDataMethods<StreamHandle>>(m: &mut M) {
    m.add_method("headers", |_, this, ()| {
        Ok(this.headers_object(HeaderBlock::headers(this.direction)))
    });
    m.add_method("_body", |_, this, always_wrap: Option<bool>| {
        this.body_now(always_wrap.unwrap_or(false))
    });
    m.add_method("_bodyChunk", |_, this, ()| this.next_chunk());
    m.add_method("_trailers", |_, this, ()| this.trailers_now());
    m.add_method(
        "_httpCall",
        |_,
         this,
         (cluster, headers, body, timeout, asynchronous): (
            String,
            Table,
            Option<mlua::LuaString>,
            Value,
            Option<bool>,
        )| {
            if !this.shared.with_access(|a| a.has_cluster(&cluster))? {
                return Err(mlua::Error::runtime(
                    "http call cluster invalid. Must be configured",
                ));
            }
            let (request, duplicates) =
                http_call::parse_call(cluster, headers, body, timeout, asynchronous)?;
            if request.asynchronous {
                this.shared.async_calls.borrow_mut().push(request);
                return Ok(true);
            }
            let mut dir = this.shared.dir(this.direction);
            dir.wait = Wait::HttpCall;
            dir.call_duplicates = duplicates;
            dir.call_result = None;
            *this.shared.pending.borrow_mut() = Some(Pending::HttpCall(request));
            Ok(false)
        },
    );
    m.add_method("_httpCallResult", |lua, this, ()| {
        let (result, duplicates) = {
            let mut dir = this.shared.dir(this.direction);
            let result = dir
                .call_result
                .take()
                .ok_or_else(|| mlua::Error::runtime("httpCall resumed without an answer"))?;
            (result, dir.call_duplicates)
        };
        http_call::call_result(lua, result, duplicates)
    });
    m.add_method(
        "_respond",
        |_, this, (headers, body): (Table, Option<mlua::LuaString>)| {
            // Envoy 1.40 answers only from the request path.
            if this.direction == Direction::Response {
                return Err(mlua::Error::runtime(
                    "respond not currently supported in the response path",
                ));
            }
            if this.shared.dir(this.direction).headers_continued {
                return Err(mlua::Error::runtime(
                    "respond() cannot be called if headers have been continued",
                ));
            }
            let reply = http_call::parse_respond(headers, body)?;
            this.shared.dir(this.direction).wait = Wait::Responded;
            *this.shared.pending.borrow_mut() = Some(Pending::Respond(reply));
            Ok(())
        },
    );
    m.add_method("metadata", |_, this, ()| {
        Ok(MetadataObject {
            map: this.shared.info.route_metadata.clone(),
        })
    });
    m.add_method("filterContext", |lua, this, ()| {
        map_to_table(lua, &this.shared.info.filter_context)
    });
    m.add_method("streamInfo", |_, this, ()| {
        Ok(StreamInfoObject {
            shared: this.shared.clone(),
        })
    });
    m.add_method("connection", |_, this, ()| {
        Ok(ConnectionObject {
            shared: this.shared.clone(),
        })
    });
    // wasp has no route cache to clear: routes are matched once per stream.
    m.add_method("clearRouteCache", |_, _, ()| Ok(()));
    m.add_method("base64Escape", |_, _, s: mlua::LuaString| {
        Ok(misc::base64_escape(&s.as_bytes()))
    });
    m.add_method("timestamp", |_, _, resolution: Option<i64>| {
        misc::timestamp(resolution)
    });
    m.add_method("timestampString", |_, _, resolution: Option<i64>| {
        misc::timestamp_string(resolution)
    });
    for (name, level) in LOG_METHODS {
        m.add_method(name, move |_, this, message: mlua::LuaString| {
            let sink = this.shared.worker.log.borrow().clone();
            sink(
                level,
                &this.shared.worker.script,
                &message.to_string_lossy(),
            );
            Ok(())
        });
    }
}
