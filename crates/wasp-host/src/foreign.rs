//! Foreign functions (`proxy_call_foreign_function`): the ones Envoy registers that make
//! sense outside Envoy.
//!
//! - `compress` / `uncompress`: zlib, as Envoy's `foreign.cc`.
//! - `declare_property`: gives a later `proxy_set_property` a lifespan and read-only flag.
//! - `set_envoy_filter_state`: stores a value in the stream's filter state.
//! - `clear_route_cache`: asks the embedder to re-run route selection.
//!
//! Unknown names answer `NOT_FOUND`, as in Envoy.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;

use crate::abi::Status;
use crate::codec::protobuf::{self, Field};
use crate::embedder::Effect;
use crate::state::{Declared, VmState};

/// Decompressed output is capped so a small zlib bomb cannot exhaust the proxy.
pub const MAX_UNCOMPRESSED: u64 = 64 << 20;

/// Names of the foreign functions the host provides.
pub const NAMES: &[&str] = &[
    "compress",
    "uncompress",
    "declare_property",
    "set_envoy_filter_state",
    "clear_route_cache",
];

pub(crate) fn call(state: &mut VmState, name: &str, args: &[u8]) -> Result<Vec<u8>, Status> {
    match name {
        "compress" => compress(args),
        "uncompress" => uncompress(args),
        "declare_property" => declare_property(state, args).map(|()| Vec::new()),
        "set_envoy_filter_state" => set_filter_state(state, args).map(|()| Vec::new()),
        "clear_route_cache" => {
            let context = state.active_context();
            state.effects.push(Effect::ClearRouteCache { context });
            Ok(Vec::new())
        }
        _ => Err(Status::NotFound),
    }
}

fn compress(args: &[u8]) -> Result<Vec<u8>, Status> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    encoder
        .write_all(args)
        .map_err(|_| Status::SerializationFailure)?;
    encoder.finish().map_err(|_| Status::SerializationFailure)
}

fn uncompress(args: &[u8]) -> Result<Vec<u8>, Status> {
    let mut out = Vec::new();
    ZlibDecoder::new(args)
        .take(MAX_UNCOMPRESSED + 1)
        .read_to_end(&mut out)
        .map_err(|_| Status::SerializationFailure)?;
    if out.len() as u64 > MAX_UNCOMPRESSED {
        return Err(Status::SerializationFailure);
    }
    Ok(out)
}

/// `DeclarePropertyArguments { string name = 1; bool readonly = 2; WasmType type = 3;
/// bytes schema = 4; LifeSpan span = 5; }`. Declaring a name twice is `BAD_ARGUMENT`.
fn declare_property(state: &mut VmState, args: &[u8]) -> Result<(), Status> {
    let mut name = None;
    let mut readonly = false;
    for field in protobuf::fields(args).map_err(|_| Status::BadArgument)? {
        match field {
            Field::Bytes(1, bytes) => name = Some(String::from_utf8_lossy(bytes).into_owned()),
            Field::Varint(2, value) => readonly = value != 0,
            _ => {}
        }
    }
    let name = name.filter(|n| !n.is_empty()).ok_or(Status::BadArgument)?;
    if state.declared_properties.contains_key(&name) {
        return Err(Status::BadArgument);
    }
    state
        .declared_properties
        .insert(name, Declared { readonly });
    Ok(())
}

/// `SetEnvoyFilterStateArguments { string path = 1; string value = 2; LifeSpan span = 3; }`.
fn set_filter_state(state: &mut VmState, args: &[u8]) -> Result<(), Status> {
    let mut path = None;
    let mut value = Vec::new();
    for field in protobuf::fields(args).map_err(|_| Status::BadArgument)? {
        match field {
            Field::Bytes(1, bytes) => path = Some(bytes.to_vec()),
            Field::Bytes(2, bytes) => value = bytes.to_vec(),
            _ => {}
        }
    }
    let path = path.ok_or(Status::BadArgument)?;
    state
        .with_filter_state(|filter_state| {
            filter_state.insert(path, value);
        })
        .ok_or(Status::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zlib_round_trip_and_garbage() {
        let compressed = compress(b"hello hello hello").unwrap();
        assert_eq!(uncompress(&compressed).unwrap(), b"hello hello hello");
        assert_eq!(uncompress(b"not zlib"), Err(Status::SerializationFailure));
    }

    #[test]
    fn refuses_zlib_bombs() {
        let zeros = vec![0u8; (MAX_UNCOMPRESSED + 1) as usize];
        let bomb = compress(&zeros).unwrap();
        assert!(bomb.len() < 1 << 20);
        assert_eq!(uncompress(&bomb), Err(Status::SerializationFailure));
    }
}
