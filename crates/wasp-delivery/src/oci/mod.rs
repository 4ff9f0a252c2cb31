//! OCI/Docker registries, spoken directly over the Distribution API (`/v2/...`).
//!
//! * `client` — a session with one repository: requests with auth, manifests, verified blobs.
//! * `auth` — `WWW-Authenticate` challenges and the bearer-token exchange.
//! * `layouts` — which layer of an image holds the module, and getting it out.
//! * `push` — building and uploading images in each layout.

pub(crate) mod auth;
pub(crate) mod client;
pub(crate) mod layouts;
pub(crate) mod pull;
pub(crate) mod push;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";

pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub(crate) const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub(crate) const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Solo's / Istio's "oci" artifact variant.
pub(crate) const SOLO_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
pub(crate) const SOLO_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// wasm-to-oci / ORAS (Istio does not read these; istio#39990).
pub(crate) const WASM_TO_OCI_CONFIG: &str = "application/vnd.wasm.config.v1+json";
pub(crate) const WASM_TO_OCI_LAYER: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// CNCF TAG-Runtime Wasm artifact layout (not read by Istio either).
pub(crate) const CNCF_CONFIG: &str = "application/vnd.wasm.config.v0+json";
pub(crate) const CNCF_LAYER: &str = "application/wasm";

/// Manifests are small; anything bigger is not a manifest.
pub(crate) const MANIFEST_LIMIT: u64 = 4 << 20;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
}

/// An image manifest or an index (manifest list); which one is told by `media_type` and by
/// which of `layers` / `manifests` is present.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Manifest {
    #[serde(rename = "schemaVersion", default)]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

impl Manifest {
    pub(crate) fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX
            || self.media_type == DOCKER_MANIFEST_LIST
            || (self.layers.is_empty() && !self.manifests.is_empty())
    }
}

pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}
