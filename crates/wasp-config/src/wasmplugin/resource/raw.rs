//! The resources as written: serde types, unknown fields rejected, enums read as Istio reads
//! them (names or numbers).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny};
use serde_json::Value;
use serde_saphyr::Location;

use super::S;

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
    /// Higress (`extensions.higress.io/v1alpha1`): the configuration when no rule matches.
    pub default_config: Option<S<Value>>,
    /// Higress: off when no rule matches.
    pub default_config_disable: Option<S<bool>>,
    /// Higress: settings by domain, service and ingress (route), the first match wins.
    pub match_rules: Option<S<Vec<S<RawMatchRule>>>>,
}

/// One of Higress's `matchRules`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMatchRule {
    pub ingress: Option<Vec<S<String>>>,
    pub domain: Option<Vec<S<String>>>,
    pub service: Option<Vec<S<String>>>,
    pub config: Option<S<Value>>,
    pub config_disable: Option<S<bool>>,
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
    /// Takes Higress's fields out: `defaultConfig`, `defaultConfigDisable`, `matchRules`.
    pub(super) fn take_higress(&mut self) -> HigressFields {
        HigressFields {
            default_config: self.default_config.take(),
            default_config_disable: self.default_config_disable.take(),
            match_rules: self.match_rules.take(),
        }
    }

    pub(super) fn split(self) -> (Common, RawWasmConfig) {
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

/// Higress's per-route fields of a WasmPlugin.
pub(super) struct HigressFields {
    pub(super) default_config: Option<S<Value>>,
    pub(super) default_config_disable: Option<S<bool>>,
    pub(super) match_rules: Option<S<Vec<S<RawMatchRule>>>>,
}

/// The fields both kinds share.
pub(super) struct Common {
    pub(super) selector: Option<S<RawSelector>>,
    pub(super) target_ref: Option<S<RawTargetRef>>,
    pub(super) target_refs: Option<S<Vec<S<RawTargetRef>>>>,
    pub(super) phase: Option<S<Scalar>>,
    pub(super) priority: Option<S<i64>>,
    pub(super) matcher: Option<S<Vec<S<RawTrafficSelector>>>>,
}
