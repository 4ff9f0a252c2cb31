//! Resolving a reference to an image manifest (through an index if there is one) and pulling the
//! module out of it.

use super::client::Session;
use super::{Descriptor, Manifest, layouts};
use crate::error::FetchError;

pub(crate) struct Resolved {
    /// The digest the reference resolves to (the index's when it is an index): what `@sha256:`
    /// pins, what a HEAD returns, and what `crane digest` prints.
    pub manifest_digest: String,
    /// The image manifest's own digest (differs from `manifest_digest` only for an index).
    pub image_digest: String,
    pub manifest: Manifest,
    pub media_type: String,
}

pub(crate) async fn resolve(
    session: &mut Session<'_>,
    reference: &str,
) -> Result<Resolved, FetchError> {
    let top = session.get_manifest(reference).await?;
    if !top.manifest.is_index() {
        return Ok(Resolved {
            manifest_digest: top.digest.clone(),
            image_digest: top.digest,
            manifest: top.manifest,
            media_type: top.media_type,
        });
    }
    let child = pick_platform(&top.manifest.manifests).map_err(|reason| FetchError::Manifest {
        at: session.at.clone(),
        reason: format!("index {}: {reason}", top.digest),
    })?;
    let image = session.get_manifest(&child.digest).await?;
    if image.manifest.is_index() {
        return Err(FetchError::Manifest {
            at: session.at.clone(),
            reason: format!(
                "index {} points at another index {}",
                top.digest, child.digest
            ),
        });
    }
    Ok(Resolved {
        manifest_digest: top.digest,
        image_digest: image.digest,
        manifest: image.manifest,
        media_type: image.media_type,
    })
}

/// From an index: a Wasm platform (`wasip1`/`wasi` + `wasm`) first, then `linux/amd64` (what
/// go-containerregistry, hence Istio, picks), then the only entry.
pub(crate) fn pick_platform(entries: &[Descriptor]) -> Result<&Descriptor, String> {
    let has = |os: &[&str], arch: &str| {
        entries.iter().find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| os.contains(&p.os.as_str()) && p.architecture == arch)
        })
    };
    if let Some(d) = has(&["wasip1", "wasi", "wasip2"], "wasm").or_else(|| has(&["linux"], "amd64"))
    {
        return Ok(d);
    }
    match entries {
        [one] => Ok(one),
        _ => Err(format!(
            "no wasm or linux/amd64 entry among the platforms {:?}",
            entries
                .iter()
                .map(|d| d
                    .platform
                    .as_ref()
                    .map_or("?".to_string(), |p| format!("{}/{}", p.os, p.architecture)))
                .collect::<Vec<_>>()
        )),
    }
}

/// Downloads the module from a resolved image.
pub(crate) async fn module(
    session: &mut Session<'_>,
    resolved: &Resolved,
    limit: u64,
) -> Result<Vec<u8>, FetchError> {
    let layout = layouts::choose(&resolved.manifest, &resolved.media_type).map_err(|reason| {
        FetchError::UnsupportedLayout {
            at: session.at.clone(),
            reason,
            manifest_media_type: resolved.media_type.clone(),
            layers: resolved
                .manifest
                .layers
                .iter()
                .map(|l| l.media_type.clone())
                .collect(),
        }
    })?;
    layouts::extract(session, &layout, limit).await
}
