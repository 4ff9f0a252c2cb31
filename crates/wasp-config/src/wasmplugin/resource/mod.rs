//! The resources as written (serde, unknown fields rejected) and Istio's validation of them: the
//! CRD schema and CEL rules and the validating webhook (reference §1.2 and §1.4).

use std::cell::RefCell;
use std::path::Path;

use serde_saphyr::{Location, Spanned};

use super::{
    Attachment, EnvVar, FailStrategy, LuaDecl, PluginPhase, PluginType, PullPolicy, Resource,
    ResourceBody, ResourceKind, Source, TargetRef, Timestamp, TrafficMatcher, TrafficSelector,
    WasmSpec, WorkloadMode,
};
use crate::error::ConfigError;

type S<T> = Spanned<T>;
type Result<T> = std::result::Result<T, ConfigError>;

mod attach;
mod higress;
mod names;
mod raw;
mod wasm;

pub use self::names::parse_rfc3339;
use self::names::{check_dns_label, check_dns_subdomain};
pub use self::raw::*;

pub const API_VERSION: &str = "extensions.istio.io/v1alpha1";
/// Higress's WasmPlugin: Istio's fields and `defaultConfig`, `defaultConfigDisable`,
/// `matchRules`.
pub const HIGRESS_API_VERSION: &str = "extensions.higress.io/v1alpha1";

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
        let (meta, mut spec) = self.head_for(
            &[API_VERSION, HIGRESS_API_VERSION],
            &raw.api_version,
            &raw.metadata,
            raw.spec,
        )?;
        let spec_at = spec.referenced;
        let higress = spec.value.take_higress();
        let higress_api = raw.api_version.value == HIGRESS_API_VERSION;
        self.higress_default(&higress, higress_api, &mut spec.value)?;
        let (common, wasm) = spec.value.split();
        let base = self.file.parent().unwrap_or(Path::new("."));
        let wasm = self.wasm(wasm, "spec", &spec_at, base)?;
        let routing = self.higress_routing(&higress)?;
        let mut resource = self.finish(
            ResourceKind::WasmPlugin,
            meta,
            common,
            ResourceBody::Wasm(Box::new(wasm)),
        )?;
        resource.routing = routing;
        Ok(resource)
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
                    filter_name: String::new(),
                    source_codes: Default::default(),
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
            routing: Default::default(),
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
