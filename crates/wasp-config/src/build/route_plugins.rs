//! Plugin settings on routes and virtual hosts (`plugins:` under a route or a host): off
//! (`disabled: true`, Envoy's `FilterConfig`), another configuration for a Wasm plugin
//! (`pluginConfig` / `configuration`), another script for a Lua filter (`name` of one of its
//! `sourceCodes`, or `source_code`: Envoy's `LuaPerRoute`).
//!
//! Checked against the inline plugins once they are built. A name that is none of them is an
//! error, unless plugins also come from resources (`plugins.sources`, Kubernetes), whose names
//! are known only when the proxy runs: such a setting is kept, and applies if a plugin of that
//! name turns up.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_saphyr::Spanned;
use wasp_spec::{ListenerSpec, PluginSetting, PluginSettings, PluginSpec, RouteSpec};

use crate::raw::{RawListener, RawPlugin, RawPluginSetting, RawRoute};
use crate::values::config_bytes;

use super::{Builder, Result};

/// What the settings are checked against.
pub(super) struct KnownPlugins<'a> {
    pub specs: &'a [PluginSpec],
    pub raw: &'a [Spanned<RawPlugin>],
    /// Plugins may also come from resources.
    pub open: bool,
}

impl KnownPlugins<'_> {
    /// A Lua filter's named scripts (`lua.sourceCodes`).
    fn scripts(&self, plugin: &str) -> BTreeMap<String, String> {
        self.raw
            .iter()
            .filter(|p| p.value.name.value.trim() == plugin)
            .filter_map(|p| p.value.lua.as_ref()?.value.source_codes.as_ref())
            .flat_map(|codes| codes.iter().map(|(k, v)| (k.clone(), v.value.clone())))
            .collect()
    }
}

impl Builder<'_> {
    /// Fills in the plugin settings of every route and virtual host of `listeners` (built
    /// from `raw`, in the same order).
    pub(super) fn route_plugins(
        &self,
        raw: &[Spanned<RawListener>],
        listeners: &mut [ListenerSpec],
        known: &KnownPlugins<'_>,
    ) -> Result<()> {
        for (i, (rl, l)) in raw.iter().zip(listeners.iter_mut()).enumerate() {
            let path = format!("listeners[{i}]");
            let rl = &rl.value;
            self.fill_routes(
                rl.routes.as_deref(),
                &mut l.routes,
                &format!("{path}.routes"),
                known,
            )?;
            let hosts = rl.virtual_hosts.as_deref().unwrap_or_default();
            for (k, (rh, h)) in hosts.iter().zip(l.virtual_hosts.iter_mut()).enumerate() {
                let at = format!("{path}.virtual_hosts[{k}]");
                h.plugins =
                    self.settings(rh.value.plugins.as_ref(), &format!("{at}.plugins"), known)?;
                self.fill_routes(
                    rh.value.routes.as_deref(),
                    &mut h.routes,
                    &format!("{at}.routes"),
                    known,
                )?;
            }
        }
        Ok(())
    }

    fn fill_routes(
        &self,
        raw: Option<&[Spanned<RawRoute>]>,
        routes: &mut [RouteSpec],
        path: &str,
        known: &KnownPlugins<'_>,
    ) -> Result<()> {
        for (j, (rr, r)) in raw
            .unwrap_or_default()
            .iter()
            .zip(routes.iter_mut())
            .enumerate()
        {
            r.plugins = self.settings(
                rr.value.plugins.as_ref(),
                &format!("{path}[{j}].plugins"),
                known,
            )?;
        }
        Ok(())
    }

    fn settings(
        &self,
        raw: Option<&BTreeMap<String, Spanned<RawPluginSetting>>>,
        path: &str,
        known: &KnownPlugins<'_>,
    ) -> Result<PluginSettings> {
        let mut out = PluginSettings::new();
        for (name, setting) in raw.into_iter().flatten() {
            let at = format!("{path}.{name}");
            let plugin = known.specs.iter().find(|p| p.name == *name);
            if plugin.is_none() && !known.open {
                let names: Vec<&str> = known.specs.iter().map(|p| p.name.as_str()).collect();
                return Err(self.errs.at(
                    &setting.referenced,
                    at,
                    format!("unknown plugin `{name}` (plugins: {})", names.join(", ")),
                ));
            }
            out.insert(
                name.clone(),
                self.setting(setting, &at, name, plugin, known)?,
            );
        }
        Ok(out)
    }

    fn setting(
        &self,
        raw: &Spanned<RawPluginSetting>,
        path: &str,
        name: &str,
        plugin: Option<&PluginSpec>,
        known: &KnownPlugins<'_>,
    ) -> Result<PluginSetting> {
        let s = &raw.value;
        let given: Vec<(&str, &serde_saphyr::Location)> = [
            ("disabled", s.disabled.as_ref().map(|v| &v.referenced)),
            (
                "pluginConfig",
                s.plugin_config.as_ref().map(|v| &v.referenced),
            ),
            (
                "configuration",
                s.configuration.as_ref().map(|v| &v.referenced),
            ),
            ("name", s.name.as_ref().map(|v| &v.referenced)),
            ("source_code", s.source_code.as_ref().map(|v| &v.referenced)),
        ]
        .into_iter()
        .filter_map(|(k, at)| Some((k, at?)))
        .collect();
        let (field, at) = match given.as_slice() {
            [one] => *one,
            [] => {
                return Err(self.errs.at(
                    &raw.referenced,
                    path,
                    "give one of disabled, pluginConfig, configuration (Wasm), name, source_code (Lua)",
                ));
            }
            [_, (second, at), ..] => {
                return Err(self.errs.at(
                    at,
                    format!("{path}.{second}"),
                    format!("only one of disabled, pluginConfig, configuration, name, source_code (found {})", given.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(" and ")),
                ));
            }
        };
        let field_path = format!("{path}.{field}");
        let lua = plugin.map(PluginSpec::is_lua);
        let wrong_kind = |for_lua: bool| {
            let (kind, wanted) = if for_lua {
                ("a Lua filter", "name or source_code")
            } else {
                ("a Wasm plugin", "pluginConfig or configuration")
            };
            self.errs.at(
                at,
                &field_path,
                format!("`{name}` is {kind}: give it {wanted}"),
            )
        };
        Ok(match field {
            "disabled" => match s.disabled.as_ref().map(|d| d.value) {
                Some(true) => PluginSetting::Disabled,
                _ => PluginSetting::Enabled,
            },
            "pluginConfig" | "configuration" => {
                if lua == Some(true) {
                    return Err(wrong_kind(true));
                }
                let bytes = match (&s.plugin_config, &s.configuration) {
                    (Some(v), _) => config_bytes(&v.value)
                        .ok_or_else(|| self.errs.at(at, &field_path, NOT_A_MAPPING))?,
                    (None, Some(c)) => c.value.clone().into_bytes(),
                    (None, None) => Vec::new(),
                };
                PluginSetting::Configuration(Arc::from(bytes))
            }
            "name" => {
                if lua == Some(false) {
                    return Err(wrong_kind(false));
                }
                let wanted = s.name.as_ref().map(|n| n.value.trim()).unwrap_or_default();
                let scripts = known.scripts(name);
                match scripts.get(wanted) {
                    Some(code) => PluginSetting::LuaSource(Arc::from(code.as_str())),
                    None => {
                        let names: Vec<&str> = scripts.keys().map(String::as_str).collect();
                        return Err(self.errs.at(
                            at,
                            field_path,
                            format!(
                                "`{name}` has no script `{wanted}` in lua.sourceCodes ({})",
                                if names.is_empty() {
                                    "none".to_string()
                                } else {
                                    names.join(", ")
                                }
                            ),
                        ));
                    }
                }
            }
            _ => {
                if lua == Some(false) {
                    return Err(wrong_kind(false));
                }
                let code = s
                    .source_code
                    .as_ref()
                    .map(|c| c.value.as_str())
                    .unwrap_or_default();
                wasp_lua::LuaScript::compile(name, code)
                    .map_err(|e| self.errs.at(at, &field_path, e.to_string()))?;
                PluginSetting::LuaSource(Arc::from(code))
            }
        })
    }
}

/// What a `pluginConfig` that is not a mapping is told.
pub(super) const NOT_A_MAPPING: &str = "must be a mapping (use configuration for a plain string)";
