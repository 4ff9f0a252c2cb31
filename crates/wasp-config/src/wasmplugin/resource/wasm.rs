//! The Wasm fields of a resource: `url`, `sha256`, pull policy and secret, `pluginConfig`,
//! `pluginName`, `failStrategy`, `type` and `vmConfig`.

use std::collections::HashSet;
use std::path::Path;

use serde_saphyr::Location;

use super::{EnvVar, FailStrategy, PluginType, PullPolicy, WasmSpec};
use crate::values::config_bytes;

use super::raw::*;
use super::{Checker, Result, S};

impl Checker<'_> {
    pub(super) fn wasm(
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
        let (url_text, module) = crate::wasmplugin::url::module_url(&url.value, base)
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
            Some(pc) => config_bytes(&pc.value).ok_or_else(|| {
                self.err(
                    &pc.referenced,
                    &field("pluginConfig"),
                    "must be a mapping (a JSON object)",
                )
            })?,
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
}
