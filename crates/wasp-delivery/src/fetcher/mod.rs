//! The public face: [`Fetcher`] turns a module URL (plus the WasmPlugin's `sha256`,
//! `imagePullPolicy` and `imagePullSecret`) into module bytes, through the cache.
//!
//! Pull policy, as istio-agent applies it (see `policy`):
//! * a checksum (`sha256`, or `@sha256:` in an OCI URL) pins the content: a cached module with
//!   that digest is served without the network, whatever the policy says;
//! * `IfNotPresent`: a cached module for the same URL is served without the network;
//! * `Always`: the URL is resolved again on every call (a manifest HEAD for OCI, a GET for
//!   HTTP) and the cached module reused when the digest has not changed;
//! * `Unspecified`: `Always` for an OCI URL whose tag is literally `latest`, else
//!   `IfNotPresent` (an untagged reference is *not* `latest` for this rule).
//!
//! istio-agent re-resolves an `Always` module only when the WasmPlugin's resourceVersion
//! changes; this crate has no resource versions, so the caller decides when to call `fetch`.

mod file;
mod http_source;
mod oci_source;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::cache::{Cache, CacheEntry, from_ms};
use crate::error::{ErrorContext, FetchError};
use crate::http::{HttpClient, HttpConfig, InsecureHosts};
use crate::oci::client::Session;
use crate::oci::push::{self, PushFormat};
use crate::secret::Credentials;
use crate::stats::{Counters, FetchStats};
use crate::unbox;
use crate::url::{ModuleSource, OciReference, PullPolicy, normalize_sha256};

/// How the fetcher is set up; one per process (or per cache directory).
#[derive(Debug, Clone)]
pub struct FetcherConfig {
    /// Where modules and the index live (istio-agent: `/var/lib/istio/data`).
    pub cache_dir: PathBuf,
    /// `host[:port]` entries (or `*`): OCI registries reached over plain HTTP, and HTTPS hosts
    /// whose certificate is not verified. An entry without a port matches any port. Nothing is
    /// insecure unless listed — `localhost` and `127.0.0.1` included.
    pub insecure_registries: Vec<String>,
    /// Largest module accepted, after unpacking (Istio: 256 MiB).
    pub max_module_bytes: u64,
    /// Cache entries unused for this long are removed (Istio: 24 h).
    pub expiry: Duration,
    /// Retries and timeouts.
    pub http: HttpConfig,
}

impl FetcherConfig {
    /// Istio's defaults, with the cache in `cache_dir`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        FetcherConfig {
            cache_dir: cache_dir.into(),
            insecure_registries: Vec::new(),
            max_module_bytes: 256 << 20,
            expiry: Duration::from_secs(24 * 3600),
            http: HttpConfig::default(),
        }
    }
}

/// One module to fetch.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// Where the module is.
    pub source: ModuleSource,
    /// Hex SHA-256 (`sha256:` prefix tolerated). For http(s) and files: of the module after
    /// unpacking. For OCI: of the image manifest (Istio's meaning since 1.14).
    pub sha256: Option<String>,
    /// The WasmPlugin's `imagePullPolicy`; a pinned checksum overrides it (see the module docs).
    pub pull_policy: PullPolicy,
    /// For OCI registries. A pull secret without an entry for the image's registry is an error.
    /// Not sent to http(s) URLs (istio-agent sends no credentials there either).
    pub pull_secret: Option<Credentials>,
    /// Who asks, for error messages and logs, e.g. `WasmPlugin istio-system/auth`.
    pub resource: String,
}

impl FetchRequest {
    /// A request for `source` with no checksum, no secret and the unspecified pull policy.
    pub fn new(source: ModuleSource) -> Self {
        FetchRequest {
            source,
            sha256: None,
            pull_policy: PullPolicy::Unspecified,
            pull_secret: None,
            resource: String::new(),
        }
    }

    /// A request for a URL given as text (a command line's): parsed here, once.
    pub fn parse(url: impl AsRef<str>) -> Result<Self, FetchError> {
        let url = url.as_ref();
        ModuleSource::parse(url)
            .map(FetchRequest::new)
            .map_err(|e| FetchError::InvalidRequest {
                at: ErrorContext {
                    resource: String::new(),
                    url: url.to_string(),
                },
                reason: e.to_string(),
            })
    }
}

/// A fetched module.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The module itself, unpacked from any gzip/tar wrapping and checked to be core Wasm.
    pub bytes: Arc<[u8]>,
    /// Hex SHA-256 of `bytes`.
    pub digest: String,
    /// For OCI: `sha256:<hex>` of the manifest the reference resolved to (the index's, for a
    /// multi-platform image).
    pub manifest_digest: Option<String>,
    /// True when the module bytes came from the cache (possibly after an `Always` manifest check).
    pub cache_hit: bool,
    /// When the module was downloaded (for a cache hit: originally).
    pub fetched_at: SystemTime,
    /// The URL in canonical form (`oci://registry/repo:tag`, the http URL, the file path): the
    /// cache key.
    pub source_url: String,
}

type Outcome = Result<Fetched, FetchError>;

/// Fetches and caches modules. Cheap to clone; clones share the cache and the counters.
#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

struct Inner {
    config: FetcherConfig,
    http: HttpClient,
    cache: Arc<Cache>,
    inflight: Mutex<HashMap<String, watch::Receiver<Option<Outcome>>>>,
    counters: Counters,
    last_purge: Mutex<Instant>,
}

/// How often `fetch` sweeps expired entries on its own (istio-agent: every hour).
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

impl Fetcher {
    /// Opens (or creates) the cache and drops entries that expired while the process was down.
    pub fn new(config: FetcherConfig) -> Result<Self, FetchError> {
        let at = ErrorContext {
            resource: String::new(),
            url: config.cache_dir.display().to_string(),
        };
        let cache =
            Cache::open(&config.cache_dir, config.expiry).map_err(|e| FetchError::Cache {
                at: at.clone(),
                reason: format!("cannot open: {e}"),
            })?;
        cache.purge_expired().map_err(|e| FetchError::Cache {
            at,
            reason: format!("purging expired entries: {e}"),
        })?;
        let http = HttpClient::new(
            config.http.clone(),
            InsecureHosts::new(&config.insecure_registries),
        );
        Ok(Fetcher {
            inner: Arc::new(Inner {
                config,
                http,
                cache: Arc::new(cache),
                inflight: Mutex::new(HashMap::new()),
                counters: Counters::default(),
                last_purge: Mutex::new(Instant::now()),
            }),
        })
    }

    /// The configuration the fetcher was created with.
    pub fn config(&self) -> &FetcherConfig {
        &self.inner.config
    }

    /// Fetches a module, from the cache when the pull policy allows.
    pub async fn fetch(&self, req: &FetchRequest) -> Result<Fetched, FetchError> {
        self.maybe_purge();
        let result = self.fetch_counted(req).await;
        match &result {
            Ok((f, remote)) => self.inner.counters.success(remote.then_some(f.cache_hit)),
            Err(e) => {
                self.inner.counters.failure(e);
                tracing::warn!(resource = %req.resource, url = %req.source, error = %e, "module fetch failed");
            }
        }
        result.map(|(f, _)| f)
    }

    /// The fetch, and whether it was a remote one (hits and misses are only counted for those).
    async fn fetch_counted(&self, req: &FetchRequest) -> Result<(Fetched, bool), FetchError> {
        let at = ErrorContext {
            resource: req.resource.clone(),
            url: req.source.to_string(),
        };
        let invalid = |reason: String| FetchError::InvalidRequest {
            at: at.clone(),
            reason,
        };
        let pin = req
            .sha256
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(normalize_sha256)
            .transpose()
            .map_err(invalid)?;
        let (key, work): (String, _) = match &req.source {
            ModuleSource::File(path) => {
                return file::fetch(self, path.clone(), pin, at)
                    .await
                    .map(|f| (f, false));
            }
            ModuleSource::Http(url) => (url.clone(), Work::Http),
            ModuleSource::Oci(r) => (r.to_string(), Work::Oci(r.clone())),
        };
        let coalesce_key = format!(
            "{key}\n{}\n{:?}\n{}",
            pin.as_deref().unwrap_or(""),
            req.pull_policy,
            req.pull_secret
                .as_ref()
                .map(Credentials::fingerprint)
                .unwrap_or_default()
        );
        let policy = req.pull_policy;
        let secret = req.pull_secret.clone();
        let this = self.clone();
        let fetched = self
            .coalesced(coalesce_key, move || async move {
                let deadline = Instant::now() + this.inner.config.http.overall_timeout;
                match work {
                    Work::Http => http_source::fetch(&this, &key, pin, policy, deadline, at).await,
                    Work::Oci(r) => {
                        oci_source::fetch(&this, &r, pin, policy, secret, deadline, at).await
                    }
                }
            })
            .await?;
        Ok((fetched, true))
    }

    /// Runs `work` unless an identical fetch is in flight, in which case its result is shared.
    async fn coalesced<F, Fut>(&self, key: String, work: F) -> Outcome
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let mut work = Some(work);
        loop {
            let follower = {
                let mut map = self
                    .inner
                    .inflight
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match map.get(&key) {
                    Some(rx) => Ok(rx.clone()),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        map.insert(key.clone(), rx);
                        Err(tx)
                    }
                }
            };
            match follower {
                Ok(mut rx) => {
                    // The leader may be cancelled (its caller dropped the future): then the
                    // channel closes without a value and this caller takes over.
                    if let Ok(v) = rx.wait_for(Option::is_some).await
                        && let Some(outcome) = v.clone()
                    {
                        self.inner.counters.coalesced();
                        return outcome;
                    }
                }
                Err(tx) => {
                    let _guard = InflightGuard {
                        inner: &self.inner,
                        key: &key,
                    };
                    let Some(work) = work.take() else {
                        // Unreachable: only one turn as leader per call.
                        continue;
                    };
                    let outcome = work().await;
                    let _ = tx.send(Some(outcome.clone()));
                    return outcome;
                }
            }
        }
    }

    /// Publishes a module as an image at `reference` (`oci://host/repo:tag` or scheme-less) in
    /// the given layout. Returns the manifest digest (`sha256:<hex>`).
    pub async fn push(
        &self,
        wasm: &[u8],
        reference: &str,
        format: PushFormat,
        creds: Option<&Credentials>,
    ) -> Result<String, FetchError> {
        let at = ErrorContext {
            resource: String::new(),
            url: reference.to_string(),
        };
        let invalid = |reason: String| FetchError::InvalidRequest {
            at: at.clone(),
            reason,
        };
        let ModuleSource::Oci(r) =
            ModuleSource::parse(reference).map_err(|e| invalid(e.to_string()))?
        else {
            return Err(invalid("push needs an oci:// reference".into()));
        };
        unbox::check_wasm(wasm).map_err(|reason| FetchError::InvalidModule {
            at: at.clone(),
            reason,
        })?;
        let auth = creds
            .map(|c| c.for_registry(&r.registry))
            .transpose()
            .map_err(|reason| FetchError::Credentials {
                at: at.clone(),
                reason,
            })?;
        let image = push::build(wasm, format);
        let deadline = Instant::now() + self.inner.config.http.overall_timeout;
        let mut session = Session::new(&self.inner.http, &r, auth, true, deadline, at.clone());
        let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
        let digest = push::upload(&mut session, &image, &tag).await?;
        if let Some(pinned) = &r.digest
            && *pinned != digest
        {
            return Err(FetchError::ChecksumMismatch {
                at,
                expected: pinned.clone(),
                got: digest,
                what: "manifest digest of the pushed image",
            });
        }
        Ok(digest)
    }

    /// Drops cache entries unused for longer than the expiry; returns how many. `fetch` also
    /// does this once an hour.
    pub fn purge_expired(&self) -> Result<usize, FetchError> {
        self.inner
            .cache
            .purge_expired()
            .map_err(|e| FetchError::Cache {
                at: ErrorContext {
                    resource: String::new(),
                    url: self.inner.cache.dir().display().to_string(),
                },
                reason: format!("purging expired entries: {e}"),
            })
    }

    fn maybe_purge(&self) {
        let due = {
            let mut last = self
                .inner
                .last_purge
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.elapsed() >= PURGE_INTERVAL {
                *last = Instant::now();
                true
            } else {
                false
            }
        };
        if due && let Err(e) = self.purge_expired() {
            tracing::warn!(error = %e, "cache purge failed");
        }
    }

    /// Counters for the proxy's metrics.
    pub fn stats(&self) -> FetchStats {
        self.inner.counters.snapshot(self.inner.cache.len())
    }

    /// What the cache holds: canonical URL → entry (for an admin endpoint).
    pub fn cached(&self) -> Vec<(String, CacheEntry)> {
        self.inner.cache.entries()
    }

    pub(crate) fn http(&self) -> &HttpClient {
        &self.inner.http
    }

    pub(crate) fn cache(&self) -> &Arc<Cache> {
        &self.inner.cache
    }

    pub(crate) fn max_bytes(&self) -> u64 {
        self.inner.config.max_module_bytes
    }
}

enum Work {
    Http,
    Oci(OciReference),
}

struct InflightGuard<'a> {
    inner: &'a Inner,
    key: &'a str,
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        let mut map = self
            .inner
            .inflight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(self.key);
    }
}

/// Runs blocking file work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    at: &ErrorContext,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, FetchError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(FetchError::Cache {
            at: at.clone(),
            reason: e.to_string(),
        }),
        Err(e) => Err(FetchError::Cache {
            at: at.clone(),
            reason: format!("cache task failed: {e}"),
        }),
    }
}

/// A cache hit for `entry`'s module, if the file is there and intact.
pub(crate) async fn cached_module(
    fetcher: &Fetcher,
    key: &str,
    entry: &CacheEntry,
    at: &ErrorContext,
) -> Result<Option<Fetched>, FetchError> {
    let cache = fetcher.cache().clone();
    let digest = entry.digest.clone();
    let Some(bytes) = blocking(at, move || cache.read_module(&digest)).await? else {
        return Ok(None);
    };
    Ok(Some(Fetched {
        bytes: bytes.into(),
        digest: entry.digest.clone(),
        manifest_digest: entry.manifest_digest.clone(),
        cache_hit: true,
        fetched_at: from_ms(entry.fetched_at_ms),
        source_url: key.to_string(),
    }))
}

/// Stores a downloaded module and records it for `key`.
pub(crate) async fn store(
    fetcher: &Fetcher,
    key: &str,
    bytes: Vec<u8>,
    manifest_digest: Option<String>,
    at: &ErrorContext,
) -> Result<Fetched, FetchError> {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(&bytes));
    let bytes: Arc<[u8]> = bytes.into();
    let now = crate::cache::now_ms();
    let entry = CacheEntry {
        digest: digest.clone(),
        manifest_digest: manifest_digest.clone(),
        fetched_at_ms: now,
        last_used_ms: now,
    };
    let cache = fetcher.cache().clone();
    let (b, d, k) = (bytes.clone(), digest.clone(), key.to_string());
    blocking(at, move || {
        cache.write_module(&d, &b)?;
        cache.record(&k, entry)
    })
    .await?;
    Ok(Fetched {
        bytes,
        digest,
        manifest_digest,
        cache_hit: false,
        fetched_at: from_ms(now),
        source_url: key.to_string(),
    })
}

/// Records that `key` was served from `entry` now (a new URL for known content gets its own
/// entry, so IfNotPresent finds it next time).
pub(crate) async fn note_hit(
    fetcher: &Fetcher,
    key: &str,
    entry: &CacheEntry,
    at: &ErrorContext,
) -> Result<(), FetchError> {
    let cache = fetcher.cache().clone();
    let k = key.to_string();
    let mut e = entry.clone();
    blocking(at, move || {
        if cache.entry(&k).is_some_and(|old| old.digest == e.digest) {
            cache.touch(&k)
        } else {
            e.last_used_ms = crate::cache::now_ms();
            cache.record(&k, e)
        }
    })
    .await
}
