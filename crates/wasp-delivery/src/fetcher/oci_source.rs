//! `oci://` references: resolve the manifest, choose the layer, download it digest-checked.
//!
//! The cache is keyed by the canonical reference; a pinned manifest digest (the `sha256` field
//! or `@sha256:` in the URL) finds any entry that resolved to it.

use tokio::time::Instant;

use super::{Fetched, Fetcher, PullPolicy, cached_module, note_hit, store};
use crate::error::{ErrorContext, FetchError};
use crate::oci::client::Session;
use crate::oci::pull;
use crate::secret::Credentials;
use crate::url::OciReference;

pub(super) async fn fetch(
    fetcher: &Fetcher,
    reference: &OciReference,
    pin: Option<String>,
    policy: PullPolicy,
    secret: Option<Credentials>,
    deadline: Instant,
    at: ErrorContext,
) -> Result<Fetched, FetchError> {
    let key = reference.to_string();
    let cache = fetcher.cache();

    // Both the field and the URL pin a digest: they must agree (Istio fails the fetch too).
    let url_pin = reference.digest.clone();
    let pinned = match (pin.map(|h| format!("sha256:{h}")), url_pin) {
        (Some(field), Some(url)) if field != url => {
            return Err(FetchError::ChecksumMismatch {
                at,
                expected: field,
                got: url,
                what: "sha256 field vs the @sha256: digest in the URL",
            });
        }
        (field, url) => field.or(url),
    };

    if let Some(digest) = &pinned {
        if let Some(entry) = cache.entry_by_manifest(digest)
            && let Some(hit) = cached_module(fetcher, &key, &entry, &at).await?
        {
            note_hit(fetcher, &key, &entry, &at).await?;
            return Ok(with_key(hit, &key));
        }
    } else {
        let always = match policy {
            PullPolicy::Always => true,
            PullPolicy::IfNotPresent => false,
            PullPolicy::Unspecified => reference.default_pull_policy() == PullPolicy::Always,
        };
        if !always
            && let Some(entry) = cache.entry(&key)
            && let Some(hit) = cached_module(fetcher, &key, &entry, &at).await?
        {
            note_hit(fetcher, &key, &entry, &at).await?;
            return Ok(hit);
        }
    }

    let auth = secret
        .as_ref()
        .map(|c| c.for_registry(&reference.registry))
        .transpose()
        .map_err(|reason| FetchError::Credentials {
            at: at.clone(),
            reason,
        })?;
    let mut session = Session::new(fetcher.http(), reference, auth, false, deadline, at.clone());

    // `Always` with a cached module: a HEAD tells whether the tag still points at the same
    // manifest, without downloading it.
    if pinned.is_none()
        && let Some(entry) = cache.entry(&key)
        && let Some(cached_digest) = &entry.manifest_digest
        && session
            .head_manifest(reference.manifest_reference())
            .await?
            .as_deref()
            == Some(cached_digest.as_str())
        && let Some(hit) = cached_module(fetcher, &key, &entry, &at).await?
    {
        note_hit(fetcher, &key, &entry, &at).await?;
        return Ok(hit);
    }

    let resolved = pull::resolve(&mut session, reference.manifest_reference()).await?;
    if let Some(expected) = &pinned
        && *expected != resolved.manifest_digest
        && *expected != resolved.image_digest
    {
        return Err(FetchError::ChecksumMismatch {
            at,
            expected: expected.clone(),
            got: resolved.manifest_digest,
            what: "manifest digest",
        });
    }
    // Another tag, or an earlier pull, may already have brought this manifest's module.
    if let Some(entry) = cache.entry_by_manifest(&resolved.manifest_digest)
        && let Some(hit) = cached_module(fetcher, &key, &entry, &at).await?
    {
        note_hit(fetcher, &key, &entry, &at).await?;
        return Ok(with_key(hit, &key));
    }
    let module = pull::module(&mut session, &resolved, fetcher.max_bytes()).await?;
    store(fetcher, &key, module, Some(resolved.manifest_digest), &at).await
}

fn with_key(mut f: Fetched, key: &str) -> Fetched {
    f.source_url = key.to_string();
    f
}
