//! `http://` and `https://` URLs: a GET with retries and redirects, the body unpacked
//! (gzip / tar / tar.gz), `sha256` compared with the unpacked module's hash.
//!
//! No credentials are sent (istio-agent sends none to http URLs either).

use http::Method;
use tokio::time::Instant;

use super::{Fetched, Fetcher, PullPolicy, cached_module, note_hit, store};
use crate::error::{ErrorContext, FetchError, describe_body};
use crate::http::{HttpError, Req};
use crate::unbox;

pub(super) async fn fetch(
    fetcher: &Fetcher,
    url: &str,
    pin: Option<String>,
    policy: PullPolicy,
    deadline: Instant,
    at: ErrorContext,
) -> Result<Fetched, FetchError> {
    let cache = fetcher.cache();
    if let Some(digest) = &pin {
        // The module's own hash names it: any cached copy will do, whichever URL brought it.
        let entry = cache
            .entry(url)
            .filter(|e| e.digest == *digest)
            .unwrap_or_else(|| crate::cache::CacheEntry {
                digest: digest.clone(),
                manifest_digest: None,
                fetched_at_ms: crate::cache::now_ms(),
                last_used_ms: crate::cache::now_ms(),
            });
        if let Some(hit) = cached_module(fetcher, url, &entry, &at).await? {
            note_hit(fetcher, url, &entry, &at).await?;
            return Ok(hit);
        }
    } else if policy != PullPolicy::Always
        && let Some(entry) = cache.entry(url)
        && let Some(hit) = cached_module(fetcher, url, &entry, &at).await?
    {
        note_hit(fetcher, url, &entry, &at).await?;
        return Ok(hit);
    }

    let limit = fetcher.max_bytes();
    let req = Req::new(Method::GET, url);
    let resp = fetcher
        .http()
        .send(&req, limit, deadline)
        .await
        .map_err(|e| match e {
            HttpError::TooLarge { limit } => FetchError::TooLarge {
                at: at.clone(),
                limit,
                what: format!("body of {}", crate::url::redact_url(url)),
            },
            HttpError::Transport(reason) | HttpError::BadUrl(reason) => FetchError::Download {
                at: at.clone(),
                reason,
            },
        })?;
    // Like istio-agent: 200 only; 3xx were followed already, anything else is a failure.
    if resp.status.as_u16() != 200 {
        return Err(FetchError::Status {
            at,
            what: if resp.attempts > 1 {
                format!("{} ({} attempts)", req.describe(), resp.attempts)
            } else {
                req.describe()
            },
            status: resp.status.as_u16(),
            detail: describe_body(&resp.body),
        });
    }
    let body = resp.body.to_vec();
    let module = tokio::task::spawn_blocking(move || unbox::unbox(body, limit))
        .await
        .map_err(|e| FetchError::InvalidModule {
            at: at.clone(),
            reason: format!("unpacking failed: {e}"),
        })?
        .map_err(|e| {
            e.into_fetch_error(
                &at,
                limit,
                &format!("body of {}", crate::url::redact_url(url)),
            )
        })?;
    if let Some(expected) = &pin {
        use sha2::Digest;
        let got = hex::encode(sha2::Sha256::digest(&module));
        if *expected != got {
            return Err(FetchError::ChecksumMismatch {
                at,
                expected: expected.clone(),
                got,
                what: "sha256 of the module after unpacking",
            });
        }
    }
    store(fetcher, url, module, None, &at).await
}
