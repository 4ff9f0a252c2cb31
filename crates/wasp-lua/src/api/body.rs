//! Envoy's buffer object: `length()`, `getBytes(index, length)`, `setBytes(string)`.
//!
//! The object is a live view of the body the chain placed in the stream for this phase: the
//! whole buffered body after `body()`, the current chunk inside `bodyChunks()`.

use std::rc::Rc;

use mlua::{UserData, UserDataMethods};

use crate::access::{Direction, HeaderBlock};
use crate::state::StreamShared;

pub(crate) struct BufferObject {
    pub shared: Rc<StreamShared>,
    pub direction: Direction,
}

impl UserData for BufferObject {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("length", |_, this, ()| {
            this.shared.with_body(this.direction, |b| b.len())
        });
        methods.add_method("getBytes", |lua, this, (index, length): (i64, i64)| {
            let bytes = this.shared.with_body(this.direction, |b| {
                let start = usize::try_from(index).ok()?;
                let len = usize::try_from(length).ok()?;
                let end = start.checked_add(len)?;
                b.get(start..end).map(<[u8]>::to_vec)
            })?;
            match bytes {
                Some(bytes) => lua.create_string(bytes),
                None => Err(mlua::Error::runtime(
                    "index/length must be >= 0 and (index + length) must be <= buffer size",
                )),
            }
        });
        // Replaces the content and, as Envoy, sets content-length while the headers can still
        // change. Returns the new length.
        methods.add_method("setBytes", |_, this, bytes: mlua::LuaString| {
            let bytes = bytes.as_bytes();
            let len = bytes.len();
            this.shared.with_body(this.direction, |b| {
                b.clear();
                b.extend_from_slice(&bytes);
            })?;
            if !this.shared.dir(this.direction).headers_continued {
                this.shared
                    .with_headers(HeaderBlock::headers(this.direction), |h| {
                        if let Some(h) = h {
                            h.replace(b"content-length", len.to_string().as_bytes());
                        }
                    })?;
            }
            Ok(len)
        });
    }
}
