//! `file://` URLs and bare paths: read, unpacked like an HTTP body, checked against `sha256` when
//! one is given (istio ignores `sha256` for files; checking it costs nothing and catches a
//! stale file), never cached.

use std::io::Read;
use std::path::PathBuf;
use std::time::SystemTime;

use super::Fetched;
use crate::error::{ErrorContext, FetchError};
use crate::unbox;

pub(super) async fn fetch(
    fetcher: &super::Fetcher,
    path: PathBuf,
    pin: Option<String>,
    at: ErrorContext,
) -> Result<Fetched, FetchError> {
    let limit = fetcher.max_bytes();
    let shown = path.display().to_string();
    let read_path = path.clone();
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        std::fs::File::open(&read_path)?
            .take(limit + 1)
            .read_to_end(&mut bytes)?;
        Ok(bytes)
    })
    .await;
    let bytes = match read {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            return Err(FetchError::Download {
                at,
                reason: format!("cannot read {shown}: {e}"),
            });
        }
        Err(e) => {
            return Err(FetchError::Download {
                at,
                reason: format!("reading {shown}: {e}"),
            });
        }
    };
    if bytes.len() as u64 > limit {
        return Err(FetchError::TooLarge {
            at,
            limit,
            what: shown,
        });
    }
    let module = unbox::unbox(bytes, limit).map_err(|e| e.into_fetch_error(&at, limit, &shown))?;
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&module))
    };
    if let Some(expected) = pin
        && expected != digest
    {
        return Err(FetchError::ChecksumMismatch {
            at,
            expected,
            got: digest,
            what: "sha256 of the module file",
        });
    }
    Ok(Fetched {
        bytes: module.into(),
        digest,
        manifest_digest: None,
        cache_hit: false,
        fetched_at: SystemTime::now(),
        source_url: shown,
    })
}
