//! Module URLs: what a WasmPlugin's `url` field (or a wasp configuration) may name.
//!
//! * `file:///abs/plugin.wasm`, and bare paths (`/abs`, `./rel`, `../rel`, or anything ending in
//!   `.wasm` that has no `:` or `@`) — read from disk, never cached.
//! * `http://…`, `https://…` — a plain GET.
//! * `oci://host[:port]/repo[:tag][@sha256:…]` and scheme-less references, which Istio treats as
//!   OCI (`ghcr.io/org/plugin:1.0`).
//!
//! One deliberate difference from Istio: a scheme-less `localhost:5000/plugin:v1` is an OCI
//! reference here. Go's URL parser reads `localhost` as its scheme and istio-agent then fails with
//! "unsupported scheme"; nothing useful is lost by understanding it.

use std::fmt;
use std::path::PathBuf;

/// The Docker Hub registry as written in references, and the host its API is served from.
pub(crate) const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// Where a module comes from, parsed from its URL: the one typed module reference, shared by
/// the configuration layer (which parses a resource's `url` into it once) and the fetcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleSource {
    /// A local file (`file://` or a bare path, which may be relative), read on every fetch and
    /// never cached.
    File(PathBuf),
    /// An `http://` or `https://` URL, kept as written.
    Http(String),
    /// An `oci://` or scheme-less image reference, pulled from its registry.
    Oci(OciReference),
}

/// A parsed OCI image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciReference {
    /// `host[:port]` as written, `docker.io` when the reference names no registry.
    pub registry: String,
    /// e.g. `org/plugin`; Docker Hub's one-component names get `library/`.
    pub repository: String,
    /// The tag as written; `None` when absent (the registry then serves `latest`).
    pub tag: Option<String>,
    /// `sha256:<hex>` when the reference is pinned with `@sha256:`.
    pub digest: Option<String>,
}

/// Why a module URL or an image reference cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UrlError(pub String);

impl OciReference {
    /// Parses a reference without its `oci://` prefix.
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        Self::parse_text(text).map_err(UrlError)
    }

    fn parse_text(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty OCI reference".into());
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                let hex = digest.strip_prefix("sha256:").ok_or_else(|| {
                    format!(
                        "digest {digest:?} is not sha256:<64 hex digits> (only sha256 is supported)"
                    )
                })?;
                if !is_sha256_hex(hex) {
                    return Err(format!(
                        "digest {digest:?} is not sha256:<64 lowercase hex digits>"
                    ));
                }
                (rest, Some(digest.to_string()))
            }
            None => (text, None),
        };
        // The first path component is a registry when it looks like a host: it has a dot or a
        // port, or is `localhost` (Docker's rule).
        let (registry, path) = match rest.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path)
            }
            _ => (DOCKER_HUB.to_string(), rest),
        };
        if registry.is_empty() || registry.contains(|c: char| c.is_whitespace() || c == '@') {
            return Err(format!("bad registry {registry:?}"));
        }
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag.to_string())),
            _ => (path, None),
        };
        if let Some(tag) = &tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                && !tag.starts_with(['.', '-']);
            if !ok {
                return Err(format!("bad tag {tag:?}"));
            }
        }
        if repository.is_empty()
            || repository.split('/').any(|part| {
                part.is_empty()
                    || !part.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                    })
            })
        {
            return Err(format!(
                "bad repository name {repository:?} (lowercase letters, digits, '.', '_', '-' and '/' only)"
            ));
        }
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
        Ok(OciReference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host (and port) the registry API is reached at.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB || self.registry == "index.docker.io" {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// What goes after `/manifests/`: the digest if pinned, else the tag, else `latest`.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// Istio's rule for an unspecified pull policy: `Always` only when the tag is literally
    /// `latest` (an untagged reference is `IfNotPresent`, unlike Kubernetes), and never for a
    /// reference pinned by digest.
    pub fn default_pull_policy(&self) -> PullPolicy {
        if self.digest.is_none() && self.tag.as_deref() == Some("latest") {
            PullPolicy::Always
        } else {
            PullPolicy::IfNotPresent
        }
    }
}

/// A WasmPlugin's `imagePullPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PullPolicy {
    /// `UNSPECIFIED_POLICY` or nothing: see [`PullPolicy::effective`].
    #[default]
    Unspecified,
    /// `IfNotPresent`: a module cached for the same URL is used without asking the server.
    IfNotPresent,
    /// `Always`: the URL is resolved again on every fetch; the cached module is reused only if
    /// the digest has not changed.
    Always,
}

impl PullPolicy {
    /// The policy as istio-agent applies it to `source`: a checksum (`sha256`, or an OCI
    /// `@sha256:` digest) makes the module content-addressed (`IfNotPresent`); an unspecified
    /// policy follows [`OciReference::default_pull_policy`] (`IfNotPresent` for http).
    /// Meaningless for files, which are always read.
    pub fn effective(self, source: &ModuleSource, sha256: Option<&str>) -> PullPolicy {
        let pinned = sha256.is_some_and(|s| !s.trim().is_empty())
            || matches!(source, ModuleSource::Oci(r) if r.digest.is_some());
        match (self, source) {
            _ if pinned => PullPolicy::IfNotPresent,
            (PullPolicy::Unspecified, ModuleSource::Oci(r)) => r.default_pull_policy(),
            (PullPolicy::Unspecified, _) => PullPolicy::IfNotPresent,
            (policy, _) => policy,
        }
    }
}

/// A module URL as it may be shown in logs, errors and `/plugins`: credentials in it hidden.
/// An `http(s)://` URL can carry them in its userinfo (`https://user:token@host/...`) and in
/// its query (a pre-signed object-store URL's `X-Amz-Signature=...`): the userinfo becomes
/// `***` and every query value `***` (names kept, to tell URLs apart). Anything else is
/// returned as it is.
pub fn redact_url(url: &str) -> String {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return url.to_string();
    }
    let (scheme, rest) = url.split_at(url.find("://").map_or(0, |i| i + 3));
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    match authority.rsplit_once('@') {
        Some((_, host)) => {
            out.push_str("***@");
            out.push_str(host);
        }
        None => out.push_str(authority),
    }
    let (path, query) = match tail.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (tail, None),
    };
    out.push_str(path);
    if let Some(query) = query {
        let (query, fragment) = match query.split_once('#') {
            Some((q, f)) => (q, Some(f)),
            None => (query, None),
        };
        let hidden: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) => format!("{name}=***"),
                None => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&hidden.join("&"));
        if let Some(fragment) = fragment {
            out.push('#');
            out.push_str(fragment);
        }
    }
    out
}

impl fmt::Display for ModuleSource {
    /// The URL in canonical form: the file's path, the http URL as written (credentials
    /// hidden, [`redact_url`]), `oci://` with the registry and tag spelled out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModuleSource::File(path) => write!(f, "{}", path.display()),
            ModuleSource::Http(url) => f.write_str(&redact_url(url)),
            ModuleSource::Oci(r) => write!(f, "{r}"),
        }
    }
}

impl fmt::Display for OciReference {
    /// The canonical `oci://` form, used as the cache key: an absent tag is written `latest`
    /// unless the reference is pinned by digest.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.repository)?;
        match (&self.tag, &self.digest) {
            (Some(tag), _) => write!(f, ":{tag}")?,
            (None, None) => write!(f, ":latest")?,
            (None, Some(_)) => {}
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl ModuleSource {
    /// Parses a module URL: `file://` or a path, `http(s)://`, `oci://` or a scheme-less image
    /// reference (Istio's default).
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        Self::parse_text(url).map_err(UrlError)
    }

    fn parse_text(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err("empty URL".into());
        }
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err("file:// URLs need an absolute path (file:///path/plugin.wasm)".into());
            }
            return Ok(ModuleSource::File(PathBuf::from(path)));
        }
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let uri: http::Uri = url.parse().map_err(|e| format!("{e}"))?;
            if uri.host().is_none_or(str::is_empty) {
                return Err("no host in the URL".into());
            }
            return Ok(ModuleSource::Http(url.to_string()));
        }
        if let Some(rest) = lower.strip_prefix("oci://") {
            let _ = rest;
            return Ok(ModuleSource::Oci(OciReference::parse_text(
                &url["oci://".len()..],
            )?));
        }
        if url.starts_with('/') || url.starts_with("./") || url.starts_with("../") {
            return Ok(ModuleSource::File(PathBuf::from(url)));
        }
        let wasm_file = std::path::Path::new(url)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("wasm"));
        if wasm_file && !url.contains([':', '@']) {
            return Ok(ModuleSource::File(PathBuf::from(url)));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(format!(
                "unsupported scheme {scheme:?} (use file://, http://, https:// or oci://)"
            ));
        }
        // No scheme: Istio's default is OCI.
        Ok(ModuleSource::Oci(OciReference::parse_text(url)?))
    }
}

pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Accepts a checksum as `<hex>` or `sha256:<hex>` (upper case tolerated), returns bare lower hex.
pub(crate) fn normalize_sha256(s: &str) -> Result<String, String> {
    let s = s.trim();
    let hex = s.strip_prefix("sha256:").unwrap_or(s).to_ascii_lowercase();
    if is_sha256_hex(&hex) {
        Ok(hex)
    } else {
        Err(format!("sha256 {s:?} is not 64 hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_urls_hide_credentials() {
        assert_eq!(
            redact_url("https://user:s3cret@example.com/p.wasm?X-Amz-Signature=abc&v=2#f"),
            "https://***@example.com/p.wasm?X-Amz-Signature=***&v=***#f"
        );
        assert_eq!(
            redact_url("HTTP://host:8080/plugin.wasm"),
            "HTTP://host:8080/plugin.wasm"
        );
        assert_eq!(redact_url("https://h?flag"), "https://h?flag");
        assert_eq!(redact_url("oci://r.io/a/b:1"), "oci://r.io/a/b:1");
        let source = ModuleSource::parse("https://u:tok@h.io/x.wasm?sig=1").unwrap();
        assert_eq!(source.to_string(), "https://***@h.io/x.wasm?sig=***");
    }

    fn oci(s: &str) -> OciReference {
        match ModuleSource::parse(s).unwrap() {
            ModuleSource::Oci(r) => r,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn schemes() {
        assert_eq!(
            ModuleSource::parse("file:///a/b.wasm").unwrap(),
            ModuleSource::File("/a/b.wasm".into())
        );
        assert_eq!(
            ModuleSource::parse("./b.wasm").unwrap(),
            ModuleSource::File("./b.wasm".into())
        );
        assert_eq!(
            ModuleSource::parse("plugin.wasm").unwrap(),
            ModuleSource::File("plugin.wasm".into())
        );
        assert!(matches!(
            ModuleSource::parse("https://x.io/p.wasm").unwrap(),
            ModuleSource::Http(_)
        ));
        assert!(ModuleSource::parse("ftp://x/y").is_err());
        assert!(ModuleSource::parse("file://rel/x.wasm").is_err());
    }

    #[test]
    fn oci_references() {
        let r = oci("ghcr.io/org/plugin:1.0");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("ghcr.io", "org/plugin", Some("1.0"))
        );
        let r = oci("oci://localhost:5000/plugin");
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.tag, None);
        assert_eq!(r.default_pull_policy(), PullPolicy::IfNotPresent);
        assert_eq!(r.to_string(), "oci://localhost:5000/plugin:latest");
        let r = oci("localhost:5000/plugin:v1");
        assert_eq!(
            (r.registry.as_str(), r.tag.as_deref()),
            ("localhost:5000", Some("v1"))
        );
        let r = oci("oci://plugin:latest");
        assert_eq!(r.registry, DOCKER_HUB);
        assert_eq!(r.repository, "library/plugin");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.default_pull_policy(), PullPolicy::Always);
        let d = format!("sha256:{}", "a".repeat(64));
        let r = oci(&format!("oci://h.io/p@{d}"));
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.manifest_reference(), d);
        assert_eq!(r.to_string(), format!("oci://h.io/p@{d}"));
        assert!(ModuleSource::parse("oci://h.io/p@sha256:abc").is_err());
        assert!(ModuleSource::parse("oci://h.io/UPPER:1").is_err());
        assert!(ModuleSource::parse("oci://h.io/p:bad/tag").is_err());
    }

    #[test]
    fn checksums() {
        let h = "A".repeat(64);
        assert_eq!(normalize_sha256(&h).unwrap(), "a".repeat(64));
        assert_eq!(
            normalize_sha256(&format!("sha256:{}", "b".repeat(64))).unwrap(),
            "b".repeat(64)
        );
        assert!(normalize_sha256("xyz").is_err());
    }
}
