//! The resources as written (serde, unknown fields rejected) and Istio's validation of them: the
//! CRD schema and CEL rules and the validating webhook (reference §1.2 and §1.4).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, IgnoredAny};
use serde_json::Value;
use serde_saphyr::{Location, Spanned};

use super::{
    Attachment, EnvVar, FailStrategy, LuaDecl, PluginPhase, PluginType, PullPolicy, Resource,
    ResourceBody, ResourceKind, Source, TargetRef, Timestamp, TrafficMatcher, TrafficSelector,
    WasmSpec, WorkloadMode,
};
use crate::error::ConfigError;
use crate::values::canonical_json;

type S<T> = Spanned<T>;
type Result<T> = std::result::Result<T, ConfigError>;

pub const API_VERSION: &str = "extensions.istio.io/v1alpha1";

// ---------------------------------------------------------------------------------------------
// Serde model.

/// A scalar read as written, for enums (Istio's parser takes names and numbers) and for
/// free-form scalars such as `resourceVersion`.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Other(String),
}

impl Scalar {
    pub fn text(&self) -> String {
        match self {
            Scalar::Str(s) | Scalar::Other(s) => s.clone(),
            Scalar::Int(i) => i.to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Scalar, E> {
                Ok(Scalar::Str(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Scalar, E> {
                Ok(i64::try_from(v).map_or_else(|_| Scalar::Other(v.to_string()), Scalar::Int))
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<Scalar, E> {
                Ok(Scalar::Other(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> std::result::Result<Scalar, E> {
                Ok(Scalar::Other(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The head of any document: enough to tell what it is and name it in errors. Other fields
/// are not looked at.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Head {
    pub kind: Option<S<Scalar>>,
    pub metadata: Option<HeadMeta>,
}

#[derive(Debug, Deserialize)]
pub struct HeadMeta {
    pub name: Option<Scalar>,
    pub namespace: Option<Scalar>,
}

/// A Kubernetes Secret, read leniently (only what pull secrets need).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawSecret {
    #[serde(rename = "type")]
    pub secret_type: Option<String>,
    pub data: Option<BTreeMap<String, String>>,
    pub string_data: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawResource<Spec> {
    pub api_version: S<String>,
    /// Already looked at (it chose this type).
    #[allow(dead_code)]
    pub kind: S<String>,
    pub metadata: S<RawMetadata>,
    pub spec: Option<S<Spec>>,
    /// Written by the cluster; accepted (resources exported with `kubectl get -o yaml` have it)
    /// and ignored.
    #[allow(dead_code)]
    pub status: Option<IgnoredAny>,
}

/// Kubernetes `ObjectMeta`: every field is accepted; only these are used: `name`,
/// `namespace`, `creationTimestamp`, `resourceVersion`.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMetadata {
    pub name: Option<S<String>>,
    pub namespace: Option<S<String>>,
    pub creation_timestamp: Option<S<String>>,
    pub resource_version: Option<Scalar>,
    pub labels: Option<IgnoredAny>,
    pub annotations: Option<IgnoredAny>,
    pub uid: Option<IgnoredAny>,
    pub generation: Option<IgnoredAny>,
    pub generate_name: Option<IgnoredAny>,
    pub managed_fields: Option<IgnoredAny>,
    pub owner_references: Option<IgnoredAny>,
    pub finalizers: Option<IgnoredAny>,
    pub deletion_timestamp: Option<IgnoredAny>,
    pub deletion_grace_period_seconds: Option<IgnoredAny>,
    pub self_link: Option<IgnoredAny>,
}

/// `WasmPlugin.spec`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawWasmPluginSpec {
    pub selector: Option<S<RawSelector>>,
    pub target_ref: Option<S<RawTargetRef>>,
    pub target_refs: Option<S<Vec<S<RawTargetRef>>>>,
    pub url: Option<S<String>>,
    pub sha256: Option<S<String>>,
    pub image_pull_policy: Option<S<Scalar>>,
    pub image_pull_secret: Option<S<String>>,
    /// Reserved by Istio and not implemented: accepted and ignored.
    pub verification_key: Option<String>,
    pub plugin_config: Option<S<Value>>,
    pub plugin_name: Option<S<String>>,
    pub phase: Option<S<Scalar>>,
    pub priority: Option<S<i64>>,
    pub fail_strategy: Option<S<Scalar>>,
    pub vm_config: Option<S<RawVmConfig>>,
    #[serde(rename = "match")]
    pub matcher: Option<S<Vec<S<RawTrafficSelector>>>>,
    #[serde(rename = "type")]
    pub plugin_type: Option<S<Scalar>>,
}

/// `TrafficExtension.spec`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTrafficExtensionSpec {
    pub selector: Option<S<RawSelector>>,
    pub target_refs: Option<S<Vec<S<RawTargetRef>>>>,
    pub phase: Option<S<Scalar>>,
    pub priority: Option<S<i64>>,
    #[serde(rename = "match")]
    pub matcher: Option<S<Vec<S<RawTrafficSelector>>>>,
    pub wasm: Option<S<RawWasmConfig>>,
    pub lua: Option<S<RawLuaConfig>>,
}

/// `TrafficExtension.spec.wasm`: the Wasm fields of WasmPlugin.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawWasmConfig {
    pub url: Option<S<String>>,
    pub sha256: Option<S<String>>,
    pub image_pull_policy: Option<S<Scalar>>,
    pub image_pull_secret: Option<S<String>>,
    /// Reserved by Istio and not implemented: accepted and ignored.
    #[allow(dead_code)]
    pub verification_key: Option<String>,
    pub plugin_config: Option<S<Value>>,
    pub plugin_name: Option<S<String>>,
    pub fail_strategy: Option<S<Scalar>>,
    pub vm_config: Option<S<RawVmConfig>>,
    #[serde(rename = "type")]
    pub plugin_type: Option<S<Scalar>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawLuaConfig {
    pub inline_code: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSelector {
    pub match_labels: Option<BTreeMap<String, S<String>>>,
    /// Not Istio's spelling, but the one introductions to WasmPlugin use (and a Kubernetes
    /// Service's `selector` has): read as `matchLabels`, with a warning.
    pub labels: Option<S<BTreeMap<String, S<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTargetRef {
    pub group: Option<S<String>>,
    pub kind: Option<S<String>>,
    pub name: Option<S<String>>,
    pub namespace: Option<S<String>>,
}

/// `vmConfig`: Istio's `{ env: [...] }`, or — as introductions to WasmPlugin write it — the
/// list of variables itself, read as `env` with a warning ([`RawVmConfig::written_as_list`]).
#[derive(Debug)]
pub struct RawVmConfig {
    pub env: Option<S<Vec<S<RawEnvVar>>>>,
    pub written_as_list: bool,
}

impl<'de> Deserialize<'de> for RawVmConfig {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Canonical {
            env: Option<S<Vec<S<RawEnvVar>>>>,
        }
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = RawVmConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping with `env` (or a list of {name, value})")
            }
            fn visit_map<A: de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<RawVmConfig, A::Error> {
                let c = Canonical::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawVmConfig {
                    env: c.env,
                    written_as_list: false,
                })
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> std::result::Result<RawVmConfig, A::Error> {
                let list: Vec<S<RawEnvVar>> =
                    Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                // The list's own place is the `vmConfig` value's: the caller fills it in.
                Ok(RawVmConfig {
                    env: Some(S::new(list, Location::UNKNOWN, Location::UNKNOWN)),
                    written_as_list: true,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawEnvVar {
    pub name: Option<S<String>>,
    pub value: Option<S<String>>,
    pub value_from: Option<S<Scalar>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrafficSelector {
    pub mode: Option<S<Scalar>>,
    pub ports: Option<S<Vec<S<RawPortSelector>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPortSelector {
    pub number: Option<S<i64>>,
}

impl RawWasmPluginSpec {
    /// The Wasm fields, as a TrafficExtension holds them (Istio 1.30 translates WasmPlugins
    /// this way, reference §1.9).
    fn split(self) -> (Common, RawWasmConfig) {
        let common = Common {
            selector: self.selector,
            target_ref: self.target_ref,
            target_refs: self.target_refs,
            phase: self.phase,
            priority: self.priority,
            matcher: self.matcher,
        };
        let wasm = RawWasmConfig {
            url: self.url,
            sha256: self.sha256,
            image_pull_policy: self.image_pull_policy,
            image_pull_secret: self.image_pull_secret,
            verification_key: self.verification_key,
            plugin_config: self.plugin_config,
            plugin_name: self.plugin_name,
            fail_strategy: self.fail_strategy,
            vm_config: self.vm_config,
            plugin_type: self.plugin_type,
        };
        (common, wasm)
    }
}

/// The fields both kinds share.
struct Common {
    selector: Option<S<RawSelector>>,
    target_ref: Option<S<RawTargetRef>>,
    target_refs: Option<S<Vec<S<RawTargetRef>>>>,
    phase: Option<S<Scalar>>,
    priority: Option<S<i64>>,
    matcher: Option<S<Vec<S<RawTrafficSelector>>>>,
}

// ---------------------------------------------------------------------------------------------
// Validation.

/// Validates one resource. `prefix` is the path of the resource in its document (`items[2]`
/// in a List, empty otherwise); errors carry it and the resource's name.
pub struct Checker<'a> {
    pub file: &'a Path,
    pub prefix: String,
    pub label: String,
    /// Line and column where the resource starts.
    pub start: (u64, u64),
    /// Spellings accepted in place of Istio's, each said once: shaped as errors (file, line,
    /// field), they do not stop the resource from loading.
    pub warnings: RefCell<Vec<ConfigError>>,
}

impl Checker<'_> {
    fn path(&self, field: &str) -> String {
        match (self.prefix.is_empty(), field.is_empty()) {
            (true, _) => field.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}.{field}", self.prefix),
        }
    }

    pub(super) fn err(
        &self,
        at: &Location,
        field: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::new(Some(self.file), Some(at), self.path(field), message)
            .in_resource(self.label.clone())
    }

    /// Records that `field` was read as `canonical`.
    fn accept_spelling(&self, at: &Location, field: &str, canonical: &str, how: &str) {
        let message = format!("read as `{canonical}`, Istio's spelling ({how})");
        self.warnings
            .borrow_mut()
            .push(self.err(at, field, message));
    }

    fn err_start(&self, field: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::with_position(
            Some(self.file),
            self.start.0,
            self.start.1,
            self.path(field),
            message,
        )
        .in_resource(self.label.clone())
    }

    pub fn wasm_plugin(&self, raw: RawResource<RawWasmPluginSpec>) -> Result<Resource> {
        let (meta, spec) = self.head(&raw.api_version, &raw.metadata, raw.spec)?;
        let spec_at = spec.referenced;
        let (common, wasm) = spec.value.split();
        let base = self.file.parent().unwrap_or(Path::new("."));
        let wasm = self.wasm(wasm, "spec", &spec_at, base)?;
        self.finish(
            ResourceKind::WasmPlugin,
            meta,
            common,
            ResourceBody::Wasm(Box::new(wasm)),
        )
    }

    pub fn traffic_extension(&self, raw: RawResource<RawTrafficExtensionSpec>) -> Result<Resource> {
        let (meta, spec) = self.head(&raw.api_version, &raw.metadata, raw.spec)?;
        let spec_at = spec.referenced;
        let spec = spec.value;
        let common = Common {
            selector: spec.selector,
            target_ref: None,
            target_refs: spec.target_refs,
            phase: spec.phase,
            priority: spec.priority,
            matcher: spec.matcher,
        };
        let body = match (spec.wasm, spec.lua) {
            (Some(wasm), None) => {
                let base = self.file.parent().unwrap_or(Path::new("."));
                ResourceBody::Wasm(Box::new(self.wasm(
                    wasm.value,
                    "spec.wasm",
                    &wasm.referenced,
                    base,
                )?))
            }
            (None, Some(lua)) => {
                let code = lua.value.inline_code.as_ref().ok_or_else(|| {
                    self.err(&lua.referenced, "spec.lua.inlineCode", "is required")
                })?;
                let len = code.value.len();
                if !(1..=65536).contains(&len) {
                    return Err(self.err(
                        &code.referenced,
                        "spec.lua.inlineCode",
                        format!("must be 1 to 65536 bytes long (it is {len})"),
                    ));
                }
                ResourceBody::Lua(LuaDecl {
                    inline_code: code.value.clone(),
                })
            }
            (Some(_), Some(lua)) => {
                return Err(self.err(
                    &lua.referenced,
                    "spec",
                    "exactly one of wasm or lua must be set, found both",
                ));
            }
            (None, None) => {
                return Err(self.err(&spec_at, "spec", "exactly one of wasm or lua must be set"));
            }
        };
        self.finish(ResourceKind::TrafficExtension, meta, common, body)
    }

    fn head<Spec>(
        &self,
        api_version: &S<String>,
        metadata: &S<RawMetadata>,
        spec: Option<S<Spec>>,
    ) -> Result<(Meta, S<Spec>)> {
        self.head_for(&[API_VERSION], api_version, metadata, spec)
    }

    /// apiVersion (one of `versions`), metadata and the presence of `spec`.
    pub(super) fn head_for<Spec>(
        &self,
        versions: &[&str],
        api_version: &S<String>,
        metadata: &S<RawMetadata>,
        spec: Option<S<Spec>>,
    ) -> Result<(Meta, S<Spec>)> {
        if !versions.contains(&api_version.value.as_str()) {
            return Err(self.err(
                &api_version.referenced,
                "apiVersion",
                format!(
                    "unsupported apiVersion `{}`, expected {}",
                    api_version.value,
                    versions.join(" or ")
                ),
            ));
        }
        let m = &metadata.value;
        let name = m
            .name
            .as_ref()
            .ok_or_else(|| self.err(&metadata.referenced, "metadata.name", "is required"))?;
        check_dns_subdomain(&name.value)
            .map_err(|msg| self.err(&name.referenced, "metadata.name", msg))?;
        let namespace = match &m.namespace {
            Some(ns) => {
                check_dns_label(&ns.value)
                    .map_err(|msg| self.err(&ns.referenced, "metadata.namespace", msg))?;
                ns.value.clone()
            }
            None => "default".to_string(),
        };
        let creation_timestamp = match &m.creation_timestamp {
            Some(ts) => Some(
                parse_rfc3339(&ts.value)
                    .map_err(|msg| self.err(&ts.referenced, "metadata.creationTimestamp", msg))?,
            ),
            None => None,
        };
        let spec = spec.ok_or_else(|| self.err_start("spec", "is required"))?;
        Ok((
            Meta {
                name: name.value.clone(),
                namespace,
                creation_timestamp,
                resource_version: m.resource_version.as_ref().map(Scalar::text),
            },
            spec,
        ))
    }

    fn finish(
        &self,
        kind: ResourceKind,
        meta: Meta,
        common: Common,
        body: ResourceBody,
    ) -> Result<Resource> {
        let attachment = self.attachment(&common)?;
        let phase = match &common.phase {
            None => PluginPhase::Unspecified,
            Some(p) => {
                let unspecified = match kind {
                    ResourceKind::WasmPlugin => "UNSPECIFIED_PHASE",
                    ResourceKind::TrafficExtension | ResourceKind::EnvoyFilter => "UNSPECIFIED",
                };
                self.enumeration(
                    p,
                    "spec.phase",
                    &[
                        (unspecified, 0, PluginPhase::Unspecified),
                        ("AUTHN", 1, PluginPhase::Authn),
                        ("AUTHZ", 2, PluginPhase::Authz),
                        ("STATS", 3, PluginPhase::Stats),
                    ],
                )?
            }
        };
        let priority = match &common.priority {
            None => None,
            Some(p) => Some(i32::try_from(p.value).map_err(|_| {
                self.err(
                    &p.referenced,
                    "spec.priority",
                    format!("{} is out of range (a 32-bit integer)", p.value),
                )
            })?),
        };
        let matcher = self.matcher(common.matcher.as_ref())?;
        Ok(Resource {
            kind,
            namespace: meta.namespace,
            name: meta.name,
            creation_timestamp: meta.creation_timestamp,
            resource_version: meta.resource_version,
            attachment,
            phase,
            priority,
            matcher,
            body,
            source: Source {
                file: self.file.to_path_buf(),
                line: self.start.0,
            },
        })
    }

    fn attachment(&self, c: &Common) -> Result<Attachment> {
        let set: Vec<(&str, &Location)> = [
            c.selector.as_ref().map(|s| ("selector", &s.referenced)),
            c.target_ref.as_ref().map(|s| ("targetRef", &s.referenced)),
            c.target_refs
                .as_ref()
                .map(|s| ("targetRefs", &s.referenced)),
        ]
        .into_iter()
        .flatten()
        .collect();
        if set.len() > 1 {
            let names: Vec<&str> = set.iter().map(|(n, _)| *n).collect();
            return Err(self.err(
                set[1].1,
                &format!("spec.{}", set[1].0),
                format!(
                    "only one of selector, targetRef or targetRefs can be set (found {})",
                    names.join(" and ")
                ),
            ));
        }
        if let Some(selector) = &c.selector {
            let mut labels = BTreeMap::new();
            let mut entries = selector.value.match_labels.as_ref();
            if let Some(alias) = &selector.value.labels {
                if entries.is_some() {
                    return Err(self.err(
                        &alias.referenced,
                        "spec.selector.labels",
                        "set together with matchLabels: write only matchLabels",
                    ));
                }
                self.accept_spelling(
                    &alias.referenced,
                    "spec.selector.labels",
                    "spec.selector.matchLabels",
                    "WasmPlugin's selector has matchLabels only",
                );
                entries = Some(&alias.value);
            }
            if entries.is_some_and(|m| m.len() > 4096) {
                return Err(self.err(
                    &selector.referenced,
                    "spec.selector.matchLabels",
                    "at most 4096 labels",
                ));
            }
            for (key, value) in entries.into_iter().flatten() {
                let path = format!("spec.selector.matchLabels.{key}");
                if key.is_empty() {
                    return Err(self.err(&value.referenced, &path, "empty label key"));
                }
                if key.contains('*') {
                    return Err(self.err(
                        &value.referenced,
                        &path,
                        "wildcard not allowed in label key match",
                    ));
                }
                if value.value.contains('*') {
                    return Err(self.err(
                        &value.referenced,
                        &path,
                        "wildcard not allowed in label value match",
                    ));
                }
                if value.value.chars().count() > 63 {
                    return Err(self.err(
                        &value.referenced,
                        &path,
                        "label values are at most 63 characters",
                    ));
                }
                labels.insert(key.clone(), value.value.clone());
            }
            return Ok(Attachment::Selector(labels));
        }
        if let Some(single) = &c.target_ref {
            // The legacy singular form is a one-element targetRefs (GetTargetRefs).
            let target = self.target_ref(single, "spec.targetRef")?;
            return Ok(Attachment::TargetRefs(vec![target]));
        }
        if let Some(refs) = &c.target_refs {
            return self.target_refs(refs, "spec.targetRefs");
        }
        Ok(Attachment::All)
    }

    /// `targetRefs` (at most 16; none means every workload).
    pub(super) fn target_refs(
        &self,
        refs: &S<Vec<S<RawTargetRef>>>,
        path: &str,
    ) -> Result<Attachment> {
        if refs.value.len() > 16 {
            return Err(self.err(&refs.referenced, path, "at most 16 entries"));
        }
        let mut out = Vec::with_capacity(refs.value.len());
        for (i, r) in refs.value.iter().enumerate() {
            out.push(self.target_ref(r, &format!("{path}[{i}]"))?);
        }
        if out.is_empty() {
            return Ok(Attachment::All);
        }
        Ok(Attachment::TargetRefs(out))
    }

    /// The CRD's field rules and the webhook's `validatePolicyTargetReference`.
    fn target_ref(&self, r: &S<RawTargetRef>, path: &str) -> Result<TargetRef> {
        let v = &r.value;
        let kind = v
            .kind
            .as_ref()
            .ok_or_else(|| self.err(&r.referenced, &format!("{path}.kind"), "is required"))?;
        let kind_ok = kind.value.len() <= 63
            && kind.value.starts_with(|c: char| c.is_ascii_alphabetic())
            && kind
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !kind.value.ends_with('-');
        if !kind_ok {
            return Err(self.err(
                &kind.referenced,
                &format!("{path}.kind"),
                format!("invalid kind `{}`", kind.value),
            ));
        }
        let name = v
            .name
            .as_ref()
            .ok_or_else(|| self.err(&r.referenced, &format!("{path}.name"), "is required"))?;
        if name.value.is_empty() || name.value.len() > 253 {
            return Err(self.err(
                &name.referenced,
                &format!("{path}.name"),
                "must be 1 to 253 characters long",
            ));
        }
        if let Some(ns) = &v.namespace
            && !ns.value.is_empty()
        {
            return Err(self.err(
                &ns.referenced,
                &format!("{path}.namespace"),
                "cross namespace referencing is not currently supported",
            ));
        }
        let group = v.group.as_ref().map_or("", |g| g.value.as_str());
        let group_ok = group.len() <= 253
            && group
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !group_ok {
            let at = v.group.as_ref().map_or(&r.referenced, |g| &g.referenced);
            return Err(self.err(
                at,
                &format!("{path}.group"),
                format!("invalid group `{group}`"),
            ));
        }
        let group = if group.is_empty() { "core" } else { group };
        let allowed = [
            ("gateway.networking.k8s.io", "Gateway"),
            ("gateway.networking.k8s.io", "GatewayClass"),
            ("core", "Service"),
            ("networking.istio.io", "ServiceEntry"),
        ];
        if !allowed.contains(&(group, kind.value.as_str())) {
            return Err(self.err(
                &kind.referenced,
                &format!("{path}.kind"),
                format!(
                    "targetRef must be to one of gateway.networking.k8s.io/Gateway, \
                     gateway.networking.k8s.io/GatewayClass, core/Service or \
                     networking.istio.io/ServiceEntry, not {group}/{}",
                    kind.value
                ),
            ));
        }
        Ok(TargetRef {
            group: group.to_string(),
            kind: kind.value.clone(),
            name: name.value.clone(),
        })
    }

    fn matcher(&self, raw: Option<&S<Vec<S<RawTrafficSelector>>>>) -> Result<TrafficMatcher> {
        let mut selectors = Vec::new();
        for (i, sel) in raw
            .map(|r| r.value.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let path = format!("spec.match[{i}]");
            let mode = match &sel.value.mode {
                None => WorkloadMode::Undefined,
                Some(m) => self.enumeration(
                    m,
                    &format!("{path}.mode"),
                    &[
                        ("UNDEFINED", 0, WorkloadMode::Undefined),
                        ("CLIENT", 1, WorkloadMode::Client),
                        ("SERVER", 2, WorkloadMode::Server),
                        ("CLIENT_AND_SERVER", 3, WorkloadMode::ClientAndServer),
                    ],
                )?,
            };
            let mut ports: Vec<u16> = Vec::new();
            let raw_ports = sel.value.ports.as_ref();
            for (j, p) in raw_ports
                .map(|p| p.value.as_slice())
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let ppath = format!("{path}.ports[{j}].number");
                let number = p
                    .value
                    .number
                    .as_ref()
                    .ok_or_else(|| self.err(&p.referenced, &ppath, "is required"))?;
                let port = u16::try_from(number.value)
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        self.err(
                            &number.referenced,
                            &ppath,
                            format!("invalid port {}: expected 1 to 65535", number.value),
                        )
                    })?;
                if ports.contains(&port) {
                    return Err(self.err(
                        &number.referenced,
                        &ppath,
                        format!("duplicate port {port}"),
                    ));
                }
                ports.push(port);
            }
            selectors.push(TrafficSelector { mode, ports });
        }
        Ok(TrafficMatcher { selectors })
    }

    fn wasm(
        &self,
        w: RawWasmConfig,
        at: &str,
        mapping: &Location,
        base: &Path,
    ) -> Result<WasmSpec> {
        let field = |name: &str| format!("{at}.{name}");
        let url = w
            .url
            .as_ref()
            .ok_or_else(|| self.err(mapping, &field("url"), "is required"))?;
        let (url_text, module) = super::url::module_url(&url.value, base)
            .map_err(|msg| self.err(&url.referenced, &field("url"), msg))?;
        let sha256 = match &w.sha256 {
            Some(s) if s.value.is_empty() => None,
            Some(s) => {
                let ok = s.value.len() == 64
                    && s.value
                        .chars()
                        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
                if !ok {
                    return Err(self.err(
                        &s.referenced,
                        &field("sha256"),
                        format!(
                            "invalid sha256 `{}`: expected 64 lowercase hex digits",
                            s.value
                        ),
                    ));
                }
                Some(s.value.clone())
            }
            None => None,
        };
        let pull_policy = match &w.image_pull_policy {
            None => PullPolicy::Unspecified,
            Some(p) => self.enumeration(
                p,
                &field("imagePullPolicy"),
                &[
                    ("UNSPECIFIED_POLICY", 0, PullPolicy::Unspecified),
                    ("IfNotPresent", 1, PullPolicy::IfNotPresent),
                    ("Always", 2, PullPolicy::Always),
                ],
            )?,
        };
        let pull_secret = match &w.image_pull_secret {
            None => None,
            Some(s) => {
                let n = s.value.chars().count();
                if !(1..=253).contains(&n) {
                    return Err(self.err(
                        &s.referenced,
                        &field("imagePullSecret"),
                        "must be 1 to 253 characters long (leave it out for none)",
                    ));
                }
                Some(s.value.clone())
            }
        };
        let configuration = match &w.plugin_config {
            None => Vec::new(),
            Some(pc) => match &pc.value {
                Value::Null => Vec::new(),
                Value::Object(m) if m.is_empty() => Vec::new(),
                v @ Value::Object(_) => canonical_json(v).into_bytes(),
                _ => {
                    return Err(self.err(
                        &pc.referenced,
                        &field("pluginConfig"),
                        "must be a mapping (a JSON object)",
                    ));
                }
            },
        };
        let root_id = match &w.plugin_name {
            None => String::new(),
            Some(n) => {
                let len = n.value.chars().count();
                if !(1..=256).contains(&len) {
                    return Err(self.err(
                        &n.referenced,
                        &field("pluginName"),
                        "must be 1 to 256 characters long (leave it out for none)",
                    ));
                }
                n.value.clone()
            }
        };
        let fail_strategy = match &w.fail_strategy {
            None => FailStrategy::FailClose,
            Some(f) => self.enumeration(
                f,
                &field("failStrategy"),
                &[
                    ("FAIL_CLOSE", 0, FailStrategy::FailClose),
                    ("FAIL_OPEN", 1, FailStrategy::FailOpen),
                    ("FAIL_RELOAD", 2, FailStrategy::FailReload),
                ],
            )?,
        };
        let plugin_type = match &w.plugin_type {
            None => PluginType::Http,
            Some(t) => self.enumeration(
                t,
                &field("type"),
                &[
                    ("UNSPECIFIED_PLUGIN_TYPE", 0, PluginType::Http),
                    ("HTTP", 1, PluginType::Http),
                    ("NETWORK", 2, PluginType::Network),
                ],
            )?,
        };
        let env = match &w.vm_config {
            Some(vm) if vm.value.written_as_list => {
                self.accept_spelling(
                    &vm.referenced,
                    &field("vmConfig"),
                    &field("vmConfig.env"),
                    "a list of {name, value} under vmConfig is its env",
                );
                let list = vm.value.env.as_ref().map(|l| S {
                    value: &l.value,
                    referenced: vm.referenced,
                    defined: vm.defined,
                });
                self.env(list.as_ref(), &field("vmConfig"))?
            }
            Some(vm) => {
                let list = vm.value.env.as_ref().map(|l| S {
                    value: &l.value,
                    referenced: l.referenced,
                    defined: l.defined,
                });
                self.env(list.as_ref(), &field("vmConfig.env"))?
            }
            None => Vec::new(),
        };
        Ok(WasmSpec {
            url: url_text,
            module,
            sha256,
            pull_policy,
            pull_secret,
            configuration,
            root_id,
            fail_strategy,
            env,
            plugin_type,
        })
    }

    fn env(&self, raw: Option<&S<&Vec<S<RawEnvVar>>>>, at: &str) -> Result<Vec<EnvVar>> {
        let Some(raw) = raw else {
            return Ok(Vec::new());
        };
        if raw.value.len() > 256 {
            return Err(self.err(&raw.referenced, at, "at most 256 entries"));
        }
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out = Vec::with_capacity(raw.value.len());
        for (i, e) in raw.value.iter().enumerate() {
            let path = format!("{at}[{i}]");
            let name =
                e.value.name.as_ref().ok_or_else(|| {
                    self.err(&e.referenced, &format!("{path}.name"), "is required")
                })?;
            let len = name.value.chars().count();
            if !(1..=256).contains(&len) {
                return Err(self.err(
                    &name.referenced,
                    &format!("{path}.name"),
                    "must be 1 to 256 characters long",
                ));
            }
            if !seen.insert(name.value.as_str()) {
                return Err(self.err(
                    &name.referenced,
                    &format!("{path}.name"),
                    format!("duplicate environment variable `{}`", name.value),
                ));
            }
            let host = match &e.value.value_from {
                None => false,
                Some(v) => self.enumeration(
                    v,
                    &format!("{path}.valueFrom"),
                    &[("INLINE", 0, false), ("HOST", 1, true)],
                )?,
            };
            if let Some(value) = &e.value.value {
                if host {
                    return Err(self.err(
                        &value.referenced,
                        &format!("{path}.value"),
                        "value may only be set when valueFrom is INLINE",
                    ));
                }
                if value.value.chars().count() > 2048 {
                    return Err(self.err(
                        &value.referenced,
                        &format!("{path}.value"),
                        "at most 2048 characters",
                    ));
                }
            }
            if host {
                out.push(EnvVar::Host {
                    name: name.value.clone(),
                });
            } else if !name.value.starts_with("ISTIO_META_") {
                // istio-agent deletes every ISTIO_META_* inline variable before Envoy sees it.
                out.push(EnvVar::Inline {
                    name: name.value.clone(),
                    value: e
                        .value
                        .value
                        .as_ref()
                        .map(|v| v.value.clone())
                        .unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    /// An enum field: the name, or its number (Istio's protojson parser takes both).
    fn enumeration<T: Copy>(
        &self,
        raw: &S<Scalar>,
        path: &str,
        table: &[(&str, i64, T)],
    ) -> Result<T> {
        let found = match &raw.value {
            Scalar::Str(s) => table.iter().find(|(name, _, _)| name == s),
            Scalar::Int(i) => table.iter().find(|(_, n, _)| n == i),
            Scalar::Other(_) => None,
        };
        if let Some((_, _, value)) = found {
            return Ok(*value);
        }
        let names: Vec<&str> = table.iter().map(|(n, _, _)| *n).collect();
        let expected = match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.join(""),
        };
        let shown = match &raw.value {
            Scalar::Str(s) => format!("{s:?}"),
            other => other.text(),
        };
        Err(self.err(
            &raw.referenced,
            path,
            format!("unknown value {shown}, expected {expected}"),
        ))
    }
}

pub(super) struct Meta {
    pub name: String,
    pub namespace: String,
    pub creation_timestamp: Option<Timestamp>,
    pub resource_version: Option<String>,
}

/// A Kubernetes object name: a DNS-1123 subdomain.
fn check_dns_subdomain(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid name `{name}`: expected lowercase letters, digits, '-' and '.', starting and \
             ending with a letter or digit (at most 253 characters)"
        ))
    }
}

/// A namespace: a DNS-1123 label.
fn check_dns_label(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid namespace `{name}`: expected lowercase letters, digits and '-', starting \
             and ending with a letter or digit (at most 63 characters)"
        ))
    }
}

/// RFC 3339 (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00.5+02:00`) to UTC.
pub fn parse_rfc3339(text: &str) -> std::result::Result<Timestamp, String> {
    let bad =
        || format!("invalid timestamp `{text}`: expected RFC 3339, such as 2024-05-01T12:00:00Z");
    let b = text.as_bytes();
    let digits = |from: usize, len: usize| -> std::result::Result<i64, String> {
        let s = text.get(from..from + len).ok_or_else(bad)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &text[start..i];
        if frac.is_empty() {
            return Err(bad());
        }
        let mut scale = 100_000_000u32;
        for c in frac.bytes().take(9) {
            nanos += u32::from(c - b'0') * scale;
            scale /= 10;
        }
    }
    let offset = match &text[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) && &tz[3..4] == ":" => {
            let h = digits(i + 1, 2)?;
            let m = digits(i + 4, 2)?;
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return Err(bad()),
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(Timestamp {
        seconds: days * 86_400 + hour * 3600 + minute * 60 + second - offset,
        nanos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(
            parse_rfc3339("1970-01-01T00:00:00Z"),
            Ok(Timestamp {
                seconds: 0,
                nanos: 0
            })
        );
        assert_eq!(
            parse_rfc3339("2024-05-01T12:00:00Z").unwrap().seconds,
            1_714_564_800
        );
        assert_eq!(
            parse_rfc3339("2024-05-01T14:00:00.25+02:00"),
            Ok(Timestamp {
                seconds: 1_714_564_800,
                nanos: 250_000_000
            })
        );
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-02-30T00:00:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00+0200",
            "yesterday",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names() {
        assert!(check_dns_subdomain("auth").is_ok());
        assert!(check_dns_subdomain("a.b-c").is_ok());
        assert!(check_dns_subdomain("Auth").is_err());
        assert!(check_dns_subdomain("-a").is_err());
        assert!(check_dns_label("istio-system").is_ok());
        assert!(check_dns_label("a.b").is_err());
    }
}
