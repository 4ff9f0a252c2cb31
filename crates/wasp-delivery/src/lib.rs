//! wasp's configuration-and-delivery layer: fetches Proxy-Wasm modules and caches them.
//!
//! It knows nothing of wasmtime or the data plane: a module goes in as a URL (a WasmPlugin's
//! `url`, `sha256`, `imagePullPolicy` and `imagePullSecret`) and comes out as bytes with their
//! digest. The rules follow istio-agent's (`pkg/wasm`): the same URL forms, the same meaning of
//! `sha256` (module hash for http and files, manifest digest for OCI), the same pull policies,
//! retries and size limit. It goes further where Istio is known to hurt: the cache index survives
//! restarts, wasm-to-oci and CNCF images are read, every blob is digest-checked, and errors say
//! what the registry answered.
//!
//! ```no_run
//! # async fn demo() -> Result<(), wasp_delivery::FetchError> {
//! use wasp_delivery::{FetchRequest, Fetcher, FetcherConfig, PullPolicy};
//! let fetcher = Fetcher::new(FetcherConfig::new("/var/lib/wasp/modules"))?;
//! let mut req = FetchRequest::parse("oci://ghcr.io/org/plugin:1.0")?;
//! req.pull_policy = PullPolicy::IfNotPresent;
//! req.resource = "WasmPlugin default/auth".into();
//! let module = fetcher.fetch(&req).await?;
//! println!("{} bytes, sha256 {}", module.bytes.len(), module.digest);
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod cache;
mod error;
mod fetcher;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod oci;
mod secret;
mod stats;
mod tls;
mod unbox;
mod url;

pub use cache::CacheEntry;
pub use error::{ErrorContext, FetchError};
pub use fetcher::{FetchRequest, Fetched, Fetcher, FetcherConfig};
pub use http::HttpConfig;
pub use oci::push::PushFormat;
pub use secret::{Credentials, SecretError};
pub use stats::FetchStats;
pub use url::{ModuleSource, OciReference, PullPolicy, UrlError, redact_url};
