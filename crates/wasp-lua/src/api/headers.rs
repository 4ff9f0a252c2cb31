//! Envoy's header map object: `get`, `getAtIndex`, `getNumValues`, `add`, `replace`, `remove`,
//! `setHttp1ReasonPhrase`, and iteration with `pairs()`.

use std::rc::Rc;

use mlua::{Lua, UserData, UserDataMethods, Value};

use crate::access::{Direction, HeaderAccess, HeaderBlock};
use crate::state::StreamShared;

/// A live view of one header map of the stream.
pub(crate) struct HeaderObject {
    pub shared: Rc<StreamShared>,
    pub block: HeaderBlock,
}

impl HeaderObject {
    /// Request/response headers are read-only once passed on (Envoy: "header map can no
    /// longer be modified"); trailers stay writable until the stream ends.
    fn check_modifiable(&self) -> mlua::Result<()> {
        let direction = match self.block {
            HeaderBlock::RequestHeaders => Direction::Request,
            HeaderBlock::ResponseHeaders => Direction::Response,
            HeaderBlock::RequestTrailers | HeaderBlock::ResponseTrailers => return Ok(()),
        };
        if self.shared.dir(direction).headers_continued {
            return Err(mlua::Error::runtime("header map can no longer be modified"));
        }
        Ok(())
    }

    fn read<R>(&self, f: impl FnOnce(&dyn HeaderAccess) -> R) -> mlua::Result<R> {
        self.shared.with_headers(self.block, |h| match h {
            Some(h) => Ok(f(h)),
            None => Err(mlua::Error::runtime("header map is not available")),
        })?
    }

    fn write(&self, f: impl FnOnce(&mut dyn HeaderAccess)) -> mlua::Result<()> {
        self.check_modifiable()?;
        self.shared.with_headers(self.block, |h| match h {
            Some(h) => {
                f(h);
                Ok(())
            }
            None => Err(mlua::Error::runtime("header map is not available")),
        })?
    }
}

/// The values of `key` in order.
fn values<'a>(h: &'a dyn HeaderAccess, key: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    (0..h.len())
        .filter_map(move |i| h.entry(i))
        .filter(move |(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn lower(key: &mlua::LuaString) -> Vec<u8> {
    key.as_bytes().to_ascii_lowercase()
}

impl UserData for HeaderObject {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // Several values are joined with "," (Envoy's `get`).
        methods.add_method("get", |lua, this, key: mlua::LuaString| {
            let key = lower(&key);
            let joined = this.read(|h| {
                let mut out: Option<Vec<u8>> = None;
                for v in values(h, &key) {
                    match &mut out {
                        None => out = Some(v.to_vec()),
                        Some(o) => {
                            o.push(b',');
                            o.extend_from_slice(v);
                        }
                    }
                }
                out
            })?;
            // A missing header is no value at all (Envoy pushes nothing), not one nil.
            let mut out = mlua::Variadic::new();
            if let Some(v) = joined {
                out.push(lua.create_string(v)?);
            }
            Ok(out)
        });
        methods.add_method(
            "getAtIndex",
            |lua, this, (key, index): (mlua::LuaString, i64)| {
                let key = lower(&key);
                let value = this.read(|h| {
                    usize::try_from(index)
                        .ok()
                        .and_then(|i| values(h, &key).nth(i).map(<[u8]>::to_vec))
                })?;
                value.map(|v| lua.create_string(v)).transpose()
            },
        );
        methods.add_method("getNumValues", |_, this, key: mlua::LuaString| {
            let key = lower(&key);
            this.read(|h| values(h, &key).count())
        });
        methods.add_method(
            "add",
            |_, this, (key, value): (mlua::LuaString, mlua::LuaString)| {
                this.write(|h| h.add(&lower(&key), &value.as_bytes()))
            },
        );
        methods.add_method(
            "replace",
            |_, this, (key, value): (mlua::LuaString, mlua::LuaString)| {
                this.write(|h| h.replace(&lower(&key), &value.as_bytes()))
            },
        );
        methods.add_method("remove", |_, this, key: mlua::LuaString| {
            this.write(|h| h.remove(&lower(&key)))
        });
        // HTTP/1 reason phrases are not kept by wasp's codec: accepted and ignored.
        methods.add_method(
            "setHttp1ReasonPhrase",
            |_, this, _phrase: mlua::LuaString| this.check_modifiable(),
        );
        // Iterates a snapshot, so edits during the loop cannot confuse it.
        methods.add_meta_method("__pairs", |lua, this, ()| {
            let entries = this.read(|h| {
                (0..h.len())
                    .filter_map(|i| h.entry(i))
                    .map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .collect::<Vec<_>>()
            })?;
            pairs_iterator(lua, entries)
        });
    }
}

/// `pairs()` over a list of byte pairs: a stateful `next` function (the control value is
/// ignored, as the order is the list's).
pub(crate) fn pairs_iterator(
    lua: &Lua,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
) -> mlua::Result<(mlua::Function, Value, Value)> {
    let mut iter = entries.into_iter();
    let next = lua.create_function_mut(move |lua, _: mlua::MultiValue| match iter.next() {
        Some((k, v)) => Ok((
            Value::String(lua.create_string(k)?),
            Value::String(lua.create_string(v)?),
        )),
        None => Ok((Value::Nil, Value::Nil)),
    })?;
    Ok((next, Value::Nil, Value::Nil))
}
