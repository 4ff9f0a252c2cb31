//! What each fuzz target checks, for every input: nothing panics, nothing hangs, and where a
//! parser has an inverse, what it reads is written back the same. The libFuzzer binaries
//! (`libfuzzer/`) call these with coverage-guided inputs; `tests/replay.rs` calls them with
//! every file of `corpus/<target>/` (seeds, and each finding kept as a regression test).
//!
//! Targets, by what a stranger can send:
//! - a plugin (guest memory read by hostcalls): [`pairs`], [`property`];
//! - an operator's or a cluster's YAML: [`wasp_yaml`], [`wasmplugin`];
//! - a registry: [`oci_manifest`], [`oci_layer`];
//! - a Lua script's API calls: [`lua_api`];
//! - an HTTP client: [`http_head`].

mod http_head;
mod lua;

pub use http_head::http_head;
pub use lua::lua_api;

use std::path::Path;

use wasp_host::codec::{pairs, property, protobuf};

/// What a target does with one input.
pub type Check = fn(&[u8]);

/// Every target, by the name of its corpus folder.
pub const TARGETS: [(&str, Check); 8] = [
    ("pairs", pairs),
    ("property", property),
    ("wasp_yaml", wasp_yaml),
    ("wasmplugin", wasmplugin),
    ("oci_manifest", oci_manifest),
    ("oci_layer", oci_layer),
    ("lua_api", lua_api),
    ("http_head", http_head),
];

/// A header or trailer map as `proxy_set_header_map_pairs` and friends receive it from a
/// guest: decoded, and when it decodes, encoded back to the same bytes.
pub fn pairs(data: &[u8]) {
    let Ok(decoded) = pairs::decode(data) else {
        return;
    };
    if data.is_empty() {
        assert!(decoded.is_empty());
        return;
    }
    assert_eq!(
        pairs::encode(&decoded),
        data,
        "a decoded map encodes back to its bytes"
    );
}

/// A property path as `proxy_get_property` receives it (NUL-separated segments), and the
/// protobuf argument messages of foreign functions (`declare_property`, filter state).
pub fn property(data: &[u8]) {
    let segments = property::split_path(data);
    assert_eq!(
        property::join_path(&segments),
        data,
        "a path joins back to its bytes"
    );
    if let Ok(fields) = protobuf::fields(data) {
        let mut out = Vec::new();
        for field in &fields {
            if let protobuf::Field::Bytes(number, bytes) = field {
                protobuf::encode_bytes(*number, bytes, &mut out);
            }
        }
        // What the encoder writes reads back as the same length-delimited fields.
        let again = protobuf::fields(&out).expect("encoded fields read back");
        assert_eq!(
            again.len(),
            fields
                .iter()
                .filter(|f| matches!(f, protobuf::Field::Bytes(..)))
                .count()
        );
    }
}

/// A wasp.yaml: loaded or refused with an error that names the file.
pub fn wasp_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("/nonexistent/fuzz/wasp.yaml");
    if let Err(e) = wasp_config::parse(text, file) {
        let message = e.to_string();
        assert!(
            message.contains("wasp.yaml"),
            "the error names the file: {message}"
        );
    }
}

/// WasmPlugin (and EnvoyFilter, TrafficExtension, Higress) documents from a resource file.
pub fn wasmplugin(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let files = [(
        Path::new("fuzz/plugins.yaml").to_path_buf(),
        text.to_string(),
    )];
    if let Err(e) = wasp_config::wasmplugin::parse_resources(&files) {
        let message = e.to_string();
        assert!(
            message.contains("plugins.yaml"),
            "the error names the file: {message}"
        );
    }
}

/// A manifest, an index or a `WWW-Authenticate` challenge from a registry.
pub fn oci_manifest(data: &[u8]) {
    wasp_delivery::fuzzing::manifest(data);
    if let Ok(text) = std::str::from_utf8(data) {
        wasp_delivery::fuzzing::challenge(text);
    }
}

/// A layer's bytes (a module, gzip, tar, nested), unboxed under a 1 MiB limit: a module
/// found is within the limit and starts with the Wasm magic.
pub fn oci_layer(data: &[u8]) {
    const LIMIT: u64 = 1 << 20;
    if let Ok(len) = wasp_delivery::fuzzing::layer(data, LIMIT) {
        assert!(len as u64 <= LIMIT.max(data.len() as u64));
    }
}
