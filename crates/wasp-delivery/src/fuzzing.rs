//! Entry points for the fuzz targets (`tests/fuzz`): the parsers that read what a registry
//! sends — manifests and indexes, `WWW-Authenticate` challenges, layer archives — reached
//! without a registry. Not part of the API.

use crate::oci::{self, Manifest};

/// Reads `bytes` as the client reads a manifest or an index, then does with it what a pull
/// does: pick a platform from an index, or choose the module's layer for each media type an
/// image may be announced with. Errors are fine; panics are bugs.
pub fn manifest(bytes: &[u8]) {
    let Ok(manifest) = serde_json::from_slice::<Manifest>(bytes) else {
        return;
    };
    if manifest.is_index() {
        let _ = oci::pull::pick_platform(&manifest.manifests);
        return;
    }
    for media_type in [
        oci::OCI_MANIFEST,
        oci::DOCKER_MANIFEST,
        manifest.media_type.as_str(),
        "",
    ] {
        let _ = oci::layouts::choose(&manifest, media_type);
    }
}

/// Parses one `WWW-Authenticate` value.
pub fn challenge(value: &str) {
    let _ = oci::auth::parse_challenge(value);
}

/// Unboxes a layer (gzip, tar, nested) to a module of at most `limit` bytes: its length, or
/// why not.
pub fn layer(bytes: &[u8], limit: u64) -> Result<usize, String> {
    crate::unbox::unbox(bytes.to_vec(), limit)
        .map(|module| module.len())
        .map_err(|e| format!("{e:?}"))
}
