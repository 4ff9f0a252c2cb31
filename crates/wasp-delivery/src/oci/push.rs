//! Publishing a module as an image, in each layout the fetcher reads (`wasp plugin push`, and the
//! tests, which publish every layout to a real registry).
//!
//! Blobs are uploaded monolithically (POST an upload, PUT it with `?digest=`), skipped when the
//! registry already has them, then the manifest is PUT under the tag.

use std::io::Write;

use http::Method;
use http::header::CONTENT_TYPE;
use serde_json::json;

use super::client::Session;
use super::{
    CNCF_CONFIG, CNCF_LAYER, DOCKER_CONFIG, DOCKER_LAYER_TAR_GZIP, DOCKER_MANIFEST, Descriptor,
    OCI_CONFIG, OCI_LAYER_TAR_GZIP, OCI_MANIFEST, SOLO_CONFIG, SOLO_LAYER, WASM_TO_OCI_CONFIG,
    WASM_TO_OCI_LAYER, sha256_digest,
};
use crate::error::FetchError;
use crate::http::{Req, resolve};

/// The image layout `push` produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushFormat {
    /// Solo's / Istio's "oci" artifact: OCI manifest, config
    /// `application/vnd.module.wasm.config.v1+json`, and two layers (that config and the raw
    /// module as `application/vnd.module.wasm.content.layer.v1+wasm`), since istio-agent insists
    /// on exactly two.
    Oci,
    /// Docker v2 schema 2 image whose single layer is a tar.gz holding `plugin.wasm` (what
    /// `FROM scratch` + `COPY plugin.wasm ./` builds).
    Docker,
    /// OCI image ("compat" variant): like `Docker` with OCI media types and the
    /// `module.wasm.image/variant=compat` annotation.
    OciImage,
    /// wasm-to-oci / ORAS: one raw `application/vnd.wasm.content.layer.v1+wasm` layer.
    WasmToOci,
    /// CNCF TAG-Runtime layout: config `application/vnd.wasm.config.v0+json`, one
    /// `application/wasm` layer.
    Cncf,
}

impl std::str::FromStr for PushFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "oci" => PushFormat::Oci,
            "docker" => PushFormat::Docker,
            "oci-image" => PushFormat::OciImage,
            "wasm-to-oci" => PushFormat::WasmToOci,
            "cncf" => PushFormat::Cncf,
            _ => {
                return Err(format!(
                    "unknown format {s:?} (oci, docker, oci-image, wasm-to-oci, cncf)"
                ));
            }
        })
    }
}

pub(crate) struct Blob {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

impl Blob {
    fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.into(),
            digest: sha256_digest(&self.bytes),
            size: self.bytes.len() as u64,
            platform: None,
            annotations: Default::default(),
        }
    }
}

pub(crate) struct Image {
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub manifest_media_type: &'static str,
    pub manifest: Vec<u8>,
}

/// A tar.gz with one entry `plugin.wasm`, byte-for-byte reproducible (zero mtime, fixed mode).
pub(crate) fn plugin_tar_gz(wasm: &[u8]) -> (Vec<u8>, String) {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(wasm.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, "plugin.wasm", wasm)
        .expect("writing to a Vec cannot fail");
    let tar = builder.into_inner().expect("writing to a Vec cannot fail");
    let diff_id = sha256_digest(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).expect("writing to a Vec cannot fail");
    (gz.finish().expect("writing to a Vec cannot fail"), diff_id)
}

pub(crate) fn build(wasm: &[u8], format: PushFormat) -> Image {
    let (config, layers, manifest_media_type, annotations) = match format {
        PushFormat::Oci => {
            let config = serde_json::to_vec(&json!({
                "type": "envoy_proxy",
                "abiVersions": [],
                "config": {"rootIds": []}
            }))
            .unwrap_or_default();
            let config_layer = Blob {
                media_type: SOLO_CONFIG,
                bytes: config.clone(),
            };
            let module = Blob {
                media_type: SOLO_LAYER,
                bytes: wasm.to_vec(),
            };
            (
                Blob {
                    media_type: SOLO_CONFIG,
                    bytes: config,
                },
                vec![config_layer, module],
                OCI_MANIFEST,
                None,
            )
        }
        PushFormat::Docker | PushFormat::OciImage => {
            let (layer, diff_id) = plugin_tar_gz(wasm);
            let config = serde_json::to_vec(&json!({
                "architecture": "amd64",
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "history": [{"created_by": "wasp plugin push"}]
            }))
            .unwrap_or_default();
            let docker = format == PushFormat::Docker;
            (
                Blob {
                    media_type: if docker { DOCKER_CONFIG } else { OCI_CONFIG },
                    bytes: config,
                },
                vec![Blob {
                    media_type: if docker {
                        DOCKER_LAYER_TAR_GZIP
                    } else {
                        OCI_LAYER_TAR_GZIP
                    },
                    bytes: layer,
                }],
                if docker {
                    DOCKER_MANIFEST
                } else {
                    OCI_MANIFEST
                },
                (!docker).then(|| json!({"module.wasm.image/variant": "compat"})),
            )
        }
        PushFormat::WasmToOci => (
            Blob {
                media_type: WASM_TO_OCI_CONFIG,
                bytes: b"{}".to_vec(),
            },
            vec![Blob {
                media_type: WASM_TO_OCI_LAYER,
                bytes: wasm.to_vec(),
            }],
            OCI_MANIFEST,
            None,
        ),
        PushFormat::Cncf => {
            let layer = Blob {
                media_type: CNCF_LAYER,
                bytes: wasm.to_vec(),
            };
            let config = serde_json::to_vec(&json!({
                "architecture": "wasm",
                "os": "wasip1",
                "layerDigests": [layer.descriptor().digest],
            }))
            .unwrap_or_default();
            (
                Blob {
                    media_type: CNCF_CONFIG,
                    bytes: config,
                },
                vec![layer],
                OCI_MANIFEST,
                None,
            )
        }
    };
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": manifest_media_type,
        "config": config.descriptor(),
        "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
    });
    if let Some(a) = annotations {
        manifest["annotations"] = a;
    }
    Image {
        manifest: serde_json::to_vec(&manifest).unwrap_or_default(),
        config,
        layers,
        manifest_media_type,
    }
}

/// Uploads every blob and the manifest; returns the manifest digest.
pub(crate) async fn upload(
    session: &mut Session<'_>,
    image: &Image,
    reference: &str,
) -> Result<String, FetchError> {
    for blob in std::iter::once(&image.config).chain(&image.layers) {
        upload_blob(session, blob).await?;
    }
    let digest = sha256_digest(&image.manifest);
    let mut req = Req::new(Method::PUT, session.url(&format!("manifests/{reference}")))
        .header(CONTENT_TYPE, image.manifest_media_type);
    req.body = image.manifest.clone().into();
    req.retry = false;
    let resp = session.send(req.clone(), 1 << 20).await?;
    if !resp.status.is_success() {
        return Err(session.status_error(&req, &resp));
    }
    if let Some(claimed) = resp.header("docker-content-digest")
        && claimed != digest
    {
        return Err(FetchError::Manifest {
            at: session.at.clone(),
            reason: format!("pushed manifest {digest}, the registry says it stored {claimed}"),
        });
    }
    Ok(digest)
}

async fn upload_blob(session: &mut Session<'_>, blob: &Blob) -> Result<(), FetchError> {
    let digest = sha256_digest(&blob.bytes);
    let head = Req::new(Method::HEAD, session.url(&format!("blobs/{digest}")));
    if session.send(head, 0).await?.status.is_success() {
        return Ok(());
    }
    let mut start = Req::new(Method::POST, session.url("blobs/uploads/"));
    start.retry = false;
    let resp = session.send(start.clone(), 1 << 20).await?;
    if resp.status.as_u16() != 202 {
        return Err(session.status_error(&start, &resp));
    }
    let location = resp
        .header("location")
        .ok_or_else(|| FetchError::Download {
            at: session.at.clone(),
            reason: format!("{} answered 202 without a Location", start.describe()),
        })?;
    let location = resolve(&resp.url, location).map_err(|reason| FetchError::Download {
        at: session.at.clone(),
        reason,
    })?;
    let sep = if location.contains('?') { '&' } else { '?' };
    let mut put = Req::new(Method::PUT, format!("{location}{sep}digest={digest}"))
        .header(CONTENT_TYPE, "application/octet-stream");
    put.body = blob.bytes.clone().into();
    put.retry = false;
    let resp = session.send(put.clone(), 1 << 20).await?;
    if !resp.status.is_success() {
        return Err(session.status_error(&put, &resp));
    }
    Ok(())
}
