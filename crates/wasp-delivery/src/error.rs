//! The one error type of the crate. Every message names the resource and the URL it was fetching
//! and says what went wrong in terms an operator can act on (status code, the registry's own error
//! text, expected and actual digests, the layer media types found, ...).
//!
//! It is `Clone` because one download can serve several callers (coalesced fetches), and each of
//! them gets the same error.

use std::fmt;

/// Who asked for a module and from where: the prefix of every error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorContext {
    /// e.g. `WasmPlugin default/auth` (may be empty).
    pub resource: String,
    /// The module URL as the request gave it.
    pub url: String,
}

impl fmt::Display for ErrorContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.resource.is_empty() {
            write!(f, "{}", self.url)
        } else {
            write!(f, "{} ({})", self.resource, self.url)
        }
    }
}

/// A fetch or push failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// The URL cannot be understood (unknown scheme, malformed OCI reference, bad sha256 field).
    #[error("{at}: invalid module URL: {reason}")]
    InvalidRequest {
        /// The resource and URL being fetched (the message's prefix).
        at: ErrorContext,
        /// What is wrong with the URL or the `sha256` field.
        reason: String,
    },

    /// The server could not be reached, timed out, or the transfer broke off.
    #[error("{at}: download failed: {reason}")]
    Download {
        /// The resource and URL being fetched (the message's prefix).
        at: ErrorContext,
        /// The transport error (connect, TLS, timeout, broken transfer) or the file read error.
        reason: String,
    },

    /// The server answered with an unexpected status code.
    #[error("{at}: {what} answered HTTP {status}{}", detail_suffix(.detail))]
    Status {
        /// The resource and URL being fetched (the message's prefix).
        at: ErrorContext,
        /// What was being requested, e.g. `GET https://host/v2/repo/manifests/1.0`.
        what: String,
        /// The HTTP status code of the final answer (after retries).
        status: u16,
        /// The registry's error JSON (`CODE: message`) or the start of the body.
        detail: String,
    },

    /// 401/403, or credentials that do not apply to the registry.
    #[error("{at}: not authorized: {reason}")]
    Unauthorized {
        /// The resource and URL being fetched (the message's prefix).
        at: ErrorContext,
        /// What the registry or its token endpoint answered.
        reason: String,
    },

    /// The pull secret is unusable (no entry for the registry, undecodable).
    #[error("{at}: pull secret: {reason}")]
    Credentials {
        /// The resource and URL being fetched (the message's prefix).
        at: ErrorContext,
        /// Why the secret cannot be used for this registry.
        reason: String,
    },

    /// The manifest could not be used (unparsable, wrong media type, no matching platform).
    #[error("{at}: manifest: {reason}")]
    Manifest {
        /// The resource and URL being fetched (the message's prefix).
        at: ErrorContext,
        /// What is wrong with the manifest (or the index that led to it).
        reason: String,
    },

    /// The image holds no layer this crate knows how to turn into a module.
    #[error(
        "{at}: no Wasm module in the image: {reason} (manifest {manifest_media_type:?}, layer media types {layers:?})"
    )]
    UnsupportedLayout {
        /// The resource and URL being fetched (the message's prefix).
        at: ErrorContext,
        /// Why none of the layers was usable.
        reason: String,
        /// The media type of the resolved image manifest.
        manifest_media_type: String,
        /// The media types of the manifest's layers, in manifest order.
        layers: Vec<String>,
    },

    /// A blob's content does not hash to the digest the manifest names.
    #[error("{at}: layer {what} is corrupted: expected {expected}, got {got}")]
    BlobDigest {
        /// The resource and URL being fetched (the message's prefix).
        at: ErrorContext,
        /// e.g. `sha256:ab12… (application/vnd.oci.image.layer.v1.tar+gzip)`.
        what: String,
        /// The digest the manifest names for the blob (`sha256:<hex>`).
        expected: String,
        /// The digest of the bytes received, with their size and the size the manifest gives.
        got: String,
    },

    /// The `sha256` the request pinned does not match what was fetched.
    #[error("{at}: checksum mismatch: expected {expected}, got {got} ({what})")]
    ChecksumMismatch {
        /// The resource and URL being fetched (the message's prefix).
        at: ErrorContext,
        /// The pinned digest (bare hex for a module, `sha256:<hex>` for a manifest).
        expected: String,
        /// The digest actually found, in the same form as `expected`.
        got: String,
        /// Which digest was compared: the module's or the manifest's.
        what: &'static str,
    },

    /// The module (or the archive around it, once unpacked) is larger than the configured cap.
    #[error("{at}: module larger than the {limit}-byte limit ({what})")]
    TooLarge {
        /// The resource and URL being fetched (the message's prefix).
        at: ErrorContext,
        /// The cap that was exceeded, in bytes: `FetcherConfig::max_module_bytes`, or the fixed
        /// cap for manifests (4 MiB) or token answers (1 MiB).
        limit: u64,
        /// What exceeded it: the file, a URL's body, a manifest, a layer, or an archive entry.
        what: String,
    },

    /// A gzip/tar archive that cannot be unpacked safely.
    #[error("{at}: archive: {reason}")]
    Archive {
        /// The resource and URL being fetched (the message's prefix).
        at: ErrorContext,
        /// Which archive or entry, and why it was refused.
        reason: String,
    },

    /// The bytes are not a WebAssembly binary.
    #[error("{at}: not a WebAssembly module: {reason}")]
    InvalidModule {
        /// The resource and URL being fetched (the message's prefix).
        at: ErrorContext,
        /// Which bytes (a file, a URL's body, a layer), their size and first bytes, or why the
        /// Wasm version is not a core module's.
        reason: String,
    },

    /// The local cache could not be read or written.
    #[error("{at}: module cache: {reason}")]
    Cache {
        /// The resource and URL being fetched; the cache directory instead of a URL when
        /// opening or purging the cache failed.
        at: ErrorContext,
        /// The I/O error, prefixed with the operation when it is not a plain file access.
        reason: String,
    },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

impl FetchError {
    /// A short label for metrics, in the spirit of istio-agent's
    /// `wasm_remote_fetch_count{result=...}`.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::InvalidRequest { .. } => "invalid_request",
            FetchError::Download { .. } | FetchError::Status { .. } => "download_failure",
            FetchError::Unauthorized { .. } | FetchError::Credentials { .. } => "unauthorized",
            FetchError::Manifest { .. } | FetchError::UnsupportedLayout { .. } => {
                "manifest_failure"
            }
            FetchError::ChecksumMismatch { .. } => "checksum_mismatched",
            FetchError::BlobDigest { .. } => "corrupted_blob",
            FetchError::TooLarge { .. }
            | FetchError::Archive { .. }
            | FetchError::InvalidModule { .. } => "invalid_module",
            FetchError::Cache { .. } => "cache_failure",
        }
    }

    /// The context (resource and URL) of the failure.
    pub fn context(&self) -> &ErrorContext {
        match self {
            FetchError::InvalidRequest { at, .. }
            | FetchError::Download { at, .. }
            | FetchError::Status { at, .. }
            | FetchError::Unauthorized { at, .. }
            | FetchError::Credentials { at, .. }
            | FetchError::Manifest { at, .. }
            | FetchError::UnsupportedLayout { at, .. }
            | FetchError::BlobDigest { at, .. }
            | FetchError::ChecksumMismatch { at, .. }
            | FetchError::TooLarge { at, .. }
            | FetchError::Archive { at, .. }
            | FetchError::InvalidModule { at, .. }
            | FetchError::Cache { at, .. } => at,
        }
    }
}

/// Turns a registry's error body (`{"errors":[{"code":..,"message":..,"detail":..}]}`) or any
/// other body into one line for an error message.
pub(crate) fn describe_body(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        detail: serde_json::Value,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body)
        && !e.errors.is_empty()
    {
        return e
            .errors
            .iter()
            .map(|e| {
                let mut s = format!("{}: {}", e.code, e.message);
                if !e.detail.is_null() {
                    s.push_str(&format!(" ({})", e.detail));
                }
                s
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
