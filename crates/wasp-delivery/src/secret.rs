//! Registry credentials: a Kubernetes `kubernetes.io/dockerconfigjson` Secret (the WasmPlugin's
//! `imagePullSecret`), a plain docker `config.json`, or a username and password.
//!
//! A docker config holds entries for several registries; the one for the image's registry is
//! chosen at fetch time with Docker's matching rules (exact key, then the key reduced to its host
//! so `https://host/v1/` matches, and Docker Hub's aliases). When a pull secret is given and has
//! no entry for the registry, the fetch fails instead of silently pulling anonymously — Istio
//! behaves the same way for a missing secret, and a typo in a registry name should be loud.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

use crate::url::DOCKER_HUB;

/// Credentials for one fetch or push.
#[derive(Clone)]
pub struct Credentials {
    /// Where they came from, for error messages (`secret ns/name`, `docker config`, `basic`).
    origin: String,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Basic(RegistryAuth),
    Config(BTreeMap<String, RegistryAuth>),
}

/// What one registry entry allows.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum RegistryAuth {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token endpoint.
    IdentityToken(String),
    /// A bearer token used as is (`registrytoken`).
    RegistryToken(String),
}

impl fmt::Debug for Credentials {
    // Never print secrets; the registries an entry covers are enough to debug matching.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Basic(_) => write!(f, "Credentials({}, basic)", self.origin),
            Kind::Config(m) => write!(
                f,
                "Credentials({}, registries {:?})",
                self.origin,
                m.keys().collect::<Vec<_>>()
            ),
        }
    }
}

/// The key of a `kubernetes.io/dockerconfigjson` Secret that holds the docker config.
const KEY: &str = ".dockerconfigjson";

/// Why a pull secret cannot be used (not a dockerconfigjson Secret, undecodable, another
/// namespace's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SecretError(pub String);

impl Credentials {
    /// Username and password for any registry (e.g. `wasp plugin push --username`).
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            origin: "basic credentials".into(),
            kind: Kind::Basic(RegistryAuth::Basic {
                username: username.into(),
                password: password.into(),
            }),
        }
    }

    /// A docker `config.json` (`{"auths": {...}}`).
    pub fn from_docker_config_json(text: &str) -> Result<Self, SecretError> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| SecretError(format!("docker config is not JSON: {e}")))?;
        Self::from_config_value(&value, "docker config".into()).map_err(SecretError)
    }

    /// A Kubernetes Secret of type `kubernetes.io/dockerconfigjson` in YAML or JSON, with the
    /// config under `data` (base64) or `stringData`; a plain docker config.json is accepted too.
    /// `namespace` is the WasmPlugin's: a Secret that says it lives elsewhere is refused, as
    /// Istio only reads pull secrets from the plugin's own namespace.
    pub fn from_secret_yaml(text: &str, namespace: &str) -> Result<Self, SecretError> {
        Self::from_secret_text(text, namespace).map_err(SecretError)
    }

    fn from_secret_text(text: &str, namespace: &str) -> Result<Self, String> {
        let value: serde_json::Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| format!("secret is not valid JSON: {e}"))?
        } else {
            serde_saphyr::from_str(text).map_err(|e| format!("secret is not valid YAML: {e}"))?
        };
        if value.get("auths").is_some() && value.get("kind").is_none() {
            return Self::from_config_value(&value, "docker config".into());
        }
        let kind = value.get("kind").and_then(|v| v.as_str()).unwrap_or("");
        if kind != "Secret" {
            return Err(format!(
                "expected a Kubernetes Secret or a docker config.json, got kind {kind:?}"
            ));
        }
        let meta = value.get("metadata");
        let name = meta
            .and_then(|m| m.get("name"))
            .and_then(|v| v.as_str())
            .unwrap_or("<unnamed>");
        let secret_ns = meta
            .and_then(|m| m.get("namespace"))
            .and_then(|v| v.as_str());
        if let Some(ns) = secret_ns
            && !namespace.is_empty()
            && ns != namespace
        {
            return Err(format!(
                "secret {ns}/{name} is not in namespace {namespace:?}; pull secrets must be in the plugin's namespace"
            ));
        }
        let origin = format!("secret {}/{name}", secret_ns.unwrap_or(namespace));
        let ty = value.get("type").and_then(|v| v.as_str()).unwrap_or("");
        if ty != "kubernetes.io/dockerconfigjson" {
            return Err(format!(
                "{origin} has type {ty:?}; only kubernetes.io/dockerconfigjson is supported"
            ));
        }
        let config_text = if let Some(s) = value
            .get("stringData")
            .and_then(|d| d.get(KEY))
            .and_then(|v| v.as_str())
        {
            s.to_string()
        } else if let Some(s) = value
            .get("data")
            .and_then(|d| d.get(KEY))
            .and_then(|v| v.as_str())
        {
            let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = B64
                .decode(clean)
                .map_err(|e| format!("{origin}: data.{KEY} is not base64: {e}"))?;
            String::from_utf8(bytes).map_err(|_| format!("{origin}: data.{KEY} is not UTF-8"))?
        } else {
            return Err(format!("{origin} has no {KEY} in data or stringData"));
        };
        let config: serde_json::Value = serde_json::from_str(&config_text)
            .map_err(|e| format!("{origin}: {KEY} is not JSON: {e}"))?;
        Self::from_config_value(&config, origin)
    }

    fn from_config_value(value: &serde_json::Value, origin: String) -> Result<Self, String> {
        let auths = value
            .get("auths")
            .and_then(|a| a.as_object())
            .ok_or_else(|| format!("{origin} has no \"auths\" object"))?;
        let mut map = BTreeMap::new();
        for (registry, entry) in auths {
            let field = |k: &str| {
                entry
                    .get(k)
                    .and_then(|v| v.as_str())
                    .filter(|s| !s.is_empty())
            };
            let auth = if let Some(token) = field("registrytoken") {
                RegistryAuth::RegistryToken(token.to_string())
            } else if let Some(token) = field("identitytoken") {
                RegistryAuth::IdentityToken(token.to_string())
            } else if let Some(encoded) = field("auth") {
                let decoded = B64
                    .decode(encoded.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        format!("{origin}: the auth of {registry:?} is not base64 of user:password")
                    })?;
                let (username, password) = decoded.split_once(':').ok_or_else(|| {
                    format!("{origin}: the auth of {registry:?} is not user:password")
                })?;
                RegistryAuth::Basic {
                    username: username.into(),
                    password: password.into(),
                }
            } else if let (Some(username), Some(password)) = (field("username"), field("password"))
            {
                RegistryAuth::Basic {
                    username: username.into(),
                    password: password.into(),
                }
            } else {
                return Err(format!(
                    "{origin}: the entry for {registry:?} has no credentials"
                ));
            };
            map.insert(registry.clone(), auth);
        }
        Ok(Credentials {
            origin,
            kind: Kind::Config(map),
        })
    }

    /// Where the credentials came from (`secret ns/name`, ...).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The entry for `registry` (`host[:port]` as written in the image reference).
    pub(crate) fn for_registry(&self, registry: &str) -> Result<RegistryAuth, String> {
        let map = match &self.kind {
            Kind::Basic(a) => return Ok(a.clone()),
            Kind::Config(m) => m,
        };
        let wanted = registry.to_ascii_lowercase();
        if let Some(a) = map.get(registry) {
            return Ok(a.clone());
        }
        let hub = is_docker_hub(&wanted);
        map.iter()
            .find(|(key, _)| {
                let host = key_host(key);
                host == wanted || (hub && is_docker_hub(&host))
            })
            .map(|(_, a)| a.clone())
            .ok_or_else(|| {
                format!(
                    "{} has no entry for registry {registry:?} (entries: {:?})",
                    self.origin,
                    map.keys().collect::<Vec<_>>()
                )
            })
    }

    /// A digest of the credentials, so fetches with different credentials are never merged.
    pub(crate) fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.origin.as_bytes());
        let entries: Vec<(&str, &RegistryAuth)> = match &self.kind {
            Kind::Basic(a) => vec![("", a)],
            Kind::Config(m) => m.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        };
        for (k, a) in entries {
            h.update([0]);
            h.update(k.as_bytes());
            match a {
                RegistryAuth::Basic { username, password } => {
                    h.update(b"b");
                    h.update(username.as_bytes());
                    h.update([0]);
                    h.update(password.as_bytes());
                }
                RegistryAuth::IdentityToken(t) => {
                    h.update(b"i");
                    h.update(t.as_bytes());
                }
                RegistryAuth::RegistryToken(t) => {
                    h.update(b"r");
                    h.update(t.as_bytes());
                }
            }
        }
        hex::encode(&h.finalize()[..8])
    }
}

/// Docker's `ConvertToHostname`: drop the scheme and anything after the host.
fn key_host(key: &str) -> String {
    let k = key.to_ascii_lowercase();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(&k);
    k.split('/').next().unwrap_or(k).to_string()
}

fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        DOCKER_HUB | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(c: &Credentials, reg: &str) -> Result<(String, String), String> {
        match c.for_registry(reg)? {
            RegistryAuth::Basic { username, password } => Ok((username, password)),
            _ => Err("not basic".into()),
        }
    }

    const CONFIG: &str = r#"{"auths":{
        "ghcr.io":{"auth":"dTE6cDE="},
        "https://index.docker.io/v1/":{"username":"hub","password":"pw"},
        "https://reg.example.com:5000/v2/":{"auth":"dTI6cDI="}}}"#;

    #[test]
    fn docker_matching_rules() {
        let c = Credentials::from_docker_config_json(CONFIG).unwrap();
        assert_eq!(basic(&c, "ghcr.io").unwrap(), ("u1".into(), "p1".into()));
        assert_eq!(basic(&c, "docker.io").unwrap(), ("hub".into(), "pw".into()));
        assert_eq!(
            basic(&c, "reg.example.com:5000").unwrap(),
            ("u2".into(), "p2".into())
        );
        let err = basic(&c, "quay.io").unwrap_err();
        assert!(err.contains("no entry for registry \"quay.io\""), "{err}");
        assert!(!format!("{c:?}").contains("pw"));
    }

    #[test]
    fn secrets() {
        let data = B64.encode(CONFIG);
        let yaml = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: reg-cred\n  namespace: apps\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {data}\n"
        );
        let c = Credentials::from_secret_yaml(&yaml, "apps").unwrap();
        assert_eq!(c.origin(), "secret apps/reg-cred");
        assert_eq!(basic(&c, "ghcr.io").unwrap(), ("u1".into(), "p1".into()));
        let err = Credentials::from_secret_yaml(&yaml, "other").unwrap_err();
        assert!(err.to_string().contains("not in namespace"), "{err}");

        let yaml = format!(
            "kind: Secret\nmetadata: {{name: s}}\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{}'\n",
            CONFIG.replace('\n', " ")
        );
        let c = Credentials::from_secret_yaml(&yaml, "ns").unwrap();
        assert_eq!(c.origin(), "secret ns/s");
        assert!(basic(&c, "docker.io").is_ok());

        let opaque = "kind: Secret\nmetadata: {name: s}\ntype: Opaque\ndata: {}\n";
        assert!(
            Credentials::from_secret_yaml(opaque, "ns")
                .unwrap_err()
                .to_string()
                .contains("Opaque")
        );
        assert!(Credentials::from_secret_yaml(CONFIG, "ns").is_ok());
    }
}
