//! Higress's WasmPlugin fields (`extensions.higress.io/v1alpha1`): `defaultConfig` (the
//! plugin's configuration when no rule matches: Istio's `pluginConfig` under another name),
//! `defaultConfigDisable` (off when no rule matches) and `matchRules` (settings by request
//! domain, route service and ingress, the first rule that matches wins).

use std::sync::Arc;

use wasp_spec::{MatchRule, PluginRouting, PluginSetting};

use super::raw::{HigressFields, RawWasmPluginSpec};
use super::{Checker, Result, S};
use crate::values::config_bytes;

impl Checker<'_> {
    /// Moves `defaultConfig` into `pluginConfig` for a Higress resource; on Istio's
    /// apiVersion the Higress fields are errors that say where they belong.
    pub(super) fn higress_default(
        &self,
        h: &HigressFields,
        higress_api: bool,
        spec: &mut RawWasmPluginSpec,
    ) -> Result<()> {
        if !higress_api {
            let given = [
                (
                    "defaultConfig",
                    h.default_config.as_ref().map(|v| v.referenced),
                ),
                (
                    "defaultConfigDisable",
                    h.default_config_disable.as_ref().map(|v| v.referenced),
                ),
                ("matchRules", h.match_rules.as_ref().map(|v| v.referenced)),
            ];
            if let Some((field, Some(at))) = given.into_iter().find(|(_, at)| at.is_some()) {
                return Err(self.err(
                    &at,
                    &format!("spec.{field}"),
                    format!(
                        "`{field}` is Higress's: use apiVersion {} for it",
                        super::HIGRESS_API_VERSION
                    ),
                ));
            }
            return Ok(());
        }
        if let Some(default) = &h.default_config {
            if let Some(pc) = &spec.plugin_config {
                return Err(self.err(
                    &pc.referenced,
                    "spec.pluginConfig",
                    "set together with defaultConfig (the same setting): give one",
                ));
            }
            spec.plugin_config = Some(default.clone());
        }
        Ok(())
    }

    /// `defaultConfigDisable` and `matchRules` as the plugin's routing.
    pub(super) fn higress_routing(&self, h: &HigressFields) -> Result<PluginRouting> {
        let mut routing = PluginRouting {
            default_disabled: h.default_config_disable.as_ref().is_some_and(|d| d.value),
            rules: Vec::new(),
        };
        let Some(rules) = &h.match_rules else {
            return Ok(routing);
        };
        for (i, r) in rules.value.iter().enumerate() {
            let path = format!("spec.matchRules[{i}]");
            let rule = &r.value;
            let list = |v: &Option<Vec<S<String>>>| -> Vec<String> {
                v.iter()
                    .flatten()
                    .map(|s| s.value.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            };
            let (domains, services, routes) =
                (list(&rule.domain), list(&rule.service), list(&rule.ingress));
            if domains.is_empty() && services.is_empty() && routes.is_empty() {
                return Err(self.err(
                    &r.referenced,
                    &path,
                    "a rule needs at least one of ingress, domain or service",
                ));
            }
            for (k, d) in rule.domain.iter().flatten().enumerate() {
                let wild = d.value.matches('*').count();
                if wild > 1 || (wild == 1 && !d.value.starts_with('*') && !d.value.ends_with('*')) {
                    return Err(self.err(
                        &d.referenced,
                        &format!("{path}.domain[{k}]"),
                        format!(
                            "`{}`: a wildcard is one `*` at the start or the end",
                            d.value
                        ),
                    ));
                }
            }
            let setting = if rule.config_disable.as_ref().is_some_and(|d| d.value) {
                PluginSetting::Disabled
            } else {
                match &rule.config {
                    None => PluginSetting::Enabled,
                    Some(c) => {
                        let bytes = config_bytes(&c.value).ok_or_else(|| {
                            self.err(
                                &c.referenced,
                                &format!("{path}.config"),
                                "must be a mapping (a JSON object)",
                            )
                        })?;
                        PluginSetting::Configuration(Arc::from(bytes))
                    }
                }
            };
            routing.rules.push(MatchRule {
                virtual_hosts: Vec::new(),
                domains,
                services,
                routes,
                setting,
            });
        }
        Ok(routing)
    }
}
