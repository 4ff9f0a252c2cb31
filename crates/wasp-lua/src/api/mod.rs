//! The objects a script sees, one file per object family, registered once per Lua state.

mod body;
mod handle;
mod headers;
pub(crate) mod http_call;
pub(crate) mod log;
mod metadata;
mod misc;
mod stream_info;

use mlua::Lua;

pub(crate) use handle::StreamHandle;

/// Registers the API types and globals (`EnvoyTimestampResolution`) in `lua`.
pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    handle::register(lua)?;
    lua.load(misc::RESOLUTION_LUA).set_name("=wasp").exec()
}
