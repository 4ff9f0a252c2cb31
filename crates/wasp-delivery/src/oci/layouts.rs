//! Which layer of an image holds the module, in the layouts found in the wild:
//!
//! | layout | recognised by | module is |
//! |---|---|---|
//! | Solo/Istio "oci" artifact | a layer `application/vnd.module.wasm.content.layer.v1+wasm` | that layer, raw |
//! | wasm-to-oci / ORAS | a layer `application/vnd.wasm.content.layer.v1+wasm` | that layer, raw |
//! | CNCF TAG-Runtime | a layer `application/wasm` | that layer, raw |
//! | Docker image | Docker manifest, last layer `…rootfs.diff.tar.gzip` | `plugin.wasm` in the tar.gz |
//! | OCI image ("compat") | last layer `…layer.v1.tar+gzip` (or `.tar`) | `plugin.wasm` in the tar(.gz) |
//!
//! Istio reads the first two image kinds and the Solo artifact (which it requires to have exactly
//! two layers); the wasm-to-oci and CNCF layouts are read here as well since tools publish them
//! (istio#39990). A raw layer is taken only when there is exactly one, so an image carrying
//! several modules is an error rather than a guess.

use super::client::Session;
use super::{
    CNCF_LAYER, DOCKER_LAYER_TAR_GZIP, DOCKER_MANIFEST, Descriptor, Manifest, OCI_LAYER_TAR,
    OCI_LAYER_TAR_GZIP, SOLO_LAYER, WASM_TO_OCI_LAYER,
};
use crate::error::FetchError;
use crate::unbox::{self, UnboxError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Layout {
    /// The layer's bytes are the module.
    Raw(Descriptor),
    /// The module is `plugin.wasm` inside a (gzipped) tar layer.
    Tar { layer: Descriptor, gzip: bool },
}

pub(crate) fn choose(manifest: &Manifest, media_type: &str) -> Result<Layout, String> {
    for raw_type in [SOLO_LAYER, WASM_TO_OCI_LAYER, CNCF_LAYER] {
        let raw: Vec<&Descriptor> = manifest
            .layers
            .iter()
            .filter(|l| l.media_type == raw_type)
            .collect();
        match raw.as_slice() {
            [] => {}
            [one] => return Ok(Layout::Raw((*one).clone())),
            many => {
                return Err(format!(
                    "{} layers of type {raw_type}; expected one",
                    many.len()
                ));
            }
        }
    }
    let Some(last) = manifest.layers.last() else {
        return Err("the image has no layers".into());
    };
    if media_type == DOCKER_MANIFEST && last.media_type != DOCKER_LAYER_TAR_GZIP {
        return Err(format!(
            "the last layer of a Docker image must be {DOCKER_LAYER_TAR_GZIP}"
        ));
    }
    match last.media_type.as_str() {
        DOCKER_LAYER_TAR_GZIP | OCI_LAYER_TAR_GZIP => Ok(Layout::Tar {
            layer: last.clone(),
            gzip: true,
        }),
        OCI_LAYER_TAR => Ok(Layout::Tar {
            layer: last.clone(),
            gzip: false,
        }),
        _ => Err("no Wasm layer and the last layer is not a tar(.gz) image layer".into()),
    }
}

/// Downloads the chosen layer (digest-checked) and returns the module bytes.
pub(crate) async fn extract(
    session: &mut Session<'_>,
    layout: &Layout,
    limit: u64,
) -> Result<Vec<u8>, FetchError> {
    let at = session.at.clone();
    let (layer, result) = match layout {
        Layout::Raw(layer) => {
            let bytes = session.get_blob(layer, limit).await?;
            let checked = unbox::check_wasm(&bytes)
                .map(|_| bytes)
                .map_err(UnboxError::NotWasm);
            (layer, checked)
        }
        Layout::Tar { layer, gzip } => {
            // A compressed layer may be far smaller than the module; cap the download by the
            // module limit too, the gunzip below enforces it on the real size.
            let bytes = session.get_blob(layer, limit).await?;
            let tar = if *gzip {
                unbox::gunzip(&bytes, limit.saturating_add(1 << 20))
            } else {
                Ok(bytes)
            };
            let module = tar
                .and_then(|t| unbox::module_from_tar(&t, limit))
                .and_then(|m| {
                    unbox::check_wasm(&m)
                        .map(|_| m)
                        .map_err(UnboxError::NotWasm)
                });
            (layer, module)
        }
    };
    let what = format!("layer {} ({})", layer.digest, layer.media_type);
    result.map_err(|e| e.into_fetch_error(&at, limit, &what))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(t: &str) -> Descriptor {
        Descriptor {
            media_type: t.into(),
            digest: format!("sha256:{}", "0".repeat(64)),
            size: 1,
            platform: None,
            annotations: Default::default(),
        }
    }

    fn manifest(mt: &str, layers: &[&str]) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: mt.into(),
            layers: layers.iter().map(|t| layer(t)).collect(),
            manifests: vec![],
        }
    }

    #[test]
    fn layouts() {
        use super::super::{OCI_MANIFEST, SOLO_CONFIG};
        let m = manifest(OCI_MANIFEST, &[SOLO_CONFIG, SOLO_LAYER]);
        assert_eq!(
            choose(&m, OCI_MANIFEST).unwrap(),
            Layout::Raw(layer(SOLO_LAYER))
        );
        let m = manifest(OCI_MANIFEST, &[CNCF_LAYER]);
        assert_eq!(
            choose(&m, OCI_MANIFEST).unwrap(),
            Layout::Raw(layer(CNCF_LAYER))
        );
        let m = manifest(
            DOCKER_MANIFEST,
            &[DOCKER_LAYER_TAR_GZIP, DOCKER_LAYER_TAR_GZIP],
        );
        assert!(matches!(
            choose(&m, DOCKER_MANIFEST).unwrap(),
            Layout::Tar { gzip: true, .. }
        ));
        let m = manifest(DOCKER_MANIFEST, &[OCI_LAYER_TAR_GZIP]);
        assert!(choose(&m, DOCKER_MANIFEST).is_err());
        let m = manifest(
            OCI_MANIFEST,
            &["application/vnd.oci.image.layer.v1.tar+zstd"],
        );
        assert!(choose(&m, OCI_MANIFEST).is_err());
        let m = manifest(OCI_MANIFEST, &[WASM_TO_OCI_LAYER, WASM_TO_OCI_LAYER]);
        assert!(choose(&m, OCI_MANIFEST).unwrap_err().contains("2 layers"));
        assert!(choose(&manifest(OCI_MANIFEST, &[]), OCI_MANIFEST).is_err());
    }
}
