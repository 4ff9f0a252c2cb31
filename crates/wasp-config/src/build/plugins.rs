//! `plugins.inline`: Wasm modules read from files (read once per file) and Lua scripts, in
//! chain order.

use std::collections::HashMap;
use std::sync::Arc;

use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};
use wasp_spec::{FailStrategy, ListenerSpec, LuaSpec, PluginKind, PluginSpec, WasmSpec};

use crate::raw::{RawFailStrategy, RawPhase, RawPlugin, RawPluginType};
use crate::values::{config_bytes, file_url, parse_module_file};

use super::{Builder, Result};

impl Builder<'_> {
    fn module(&mut self, url: &Spanned<String>, path: &str) -> Result<(String, Arc<[u8]>)> {
        let file = parse_module_file(&url.value, &self.base)
            .map_err(|msg| self.errs.at(&url.referenced, path, msg))?;
        if let Some(bytes) = self.modules.get(&file) {
            return Ok((file_url(&file), bytes.clone()));
        }
        let bytes: Arc<[u8]> = std::fs::read(&file)
            .map_err(|e| {
                self.errs.at(
                    &url.referenced,
                    path,
                    format!("cannot read {}: {e}", file.display()),
                )
            })?
            .into();
        self.modules.insert(file.clone(), bytes.clone());
        Ok((file_url(&file), bytes))
    }

    pub(super) fn plugins(
        &mut self,
        raw: &[Spanned<RawPlugin>],
        listeners: &[ListenerSpec],
    ) -> Result<Vec<PluginSpec>> {
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut specs: Vec<PluginSpec> = Vec::with_capacity(raw.len());
        for (i, p) in raw.iter().enumerate() {
            let p = &p.value;
            let path = format!("plugins.inline[{i}]");
            let name = self.name(&p.name, &format!("{path}.name"))?;
            if let Some(first) = names.insert(name.clone(), i) {
                return Err(self.errs.at(
                    &p.name.referenced,
                    format!("{path}.name"),
                    format!("duplicate plugin name `{name}` (also plugins.inline[{first}])"),
                ));
            }
            let (url, wasm, lua) = match (&p.url, &p.lua) {
                (Some(url), None) => {
                    let (url, wasm) = self.module(url, &format!("{path}.url"))?;
                    (url, wasm, None)
                }
                (None, Some(lua)) => {
                    let code = &lua.value.inline_code;
                    // Checked here, so that a bad script is an error at its line of the file;
                    // the data plane loads it again on each worker.
                    wasp_lua::LuaScript::compile(&name, &code.value).map_err(|e| {
                        self.errs.at(
                            &code.referenced,
                            format!("{path}.lua.inlineCode"),
                            e.to_string(),
                        )
                    })?;
                    (
                        format!("lua:{name}"),
                        Arc::from(Vec::new()),
                        Some(code.value.clone()),
                    )
                }
                (Some(_), Some(lua)) => {
                    return Err(self.errs.at(
                        &lua.referenced,
                        format!("{path}.lua"),
                        "url and lua are mutually exclusive (a plugin is a Wasm module or a Lua script)",
                    ));
                }
                (None, None) => {
                    return Err(self.errs.at(
                        &p.name.referenced,
                        path.clone(),
                        "one of url (a Wasm module) or lua (a Lua script) is required",
                    ));
                }
            };
            if let Some(expected) = &p.sha256
                && lua.is_none()
            {
                let field = format!("{path}.sha256");
                let want = expected.value.trim().to_ascii_lowercase();
                if want.len() != 64 || !want.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(self.errs.at(
                        &expected.referenced,
                        field,
                        format!("`{}` is not a sha256 (64 hex digits)", expected.value),
                    ));
                }
                let actual = hex::encode(Sha256::digest(&wasm));
                if actual != want {
                    return Err(self.errs.at(
                        &expected.referenced,
                        field,
                        format!("sha256 mismatch for {url}: expected {want}, actual {actual}"),
                    ));
                }
            }
            let configuration = match (&p.configuration, &p.plugin_config) {
                (Some(_), Some(pc)) => {
                    return Err(self.errs.at(
                        &pc.referenced,
                        format!("{path}.pluginConfig"),
                        "configuration and pluginConfig are mutually exclusive",
                    ));
                }
                (Some(c), None) => c.value.clone().into_bytes(),
                (None, Some(pc)) => config_bytes(&pc.value).ok_or_else(|| {
                    self.errs.at(
                        &pc.referenced,
                        format!("{path}.pluginConfig"),
                        super::route_plugins::NOT_A_MAPPING,
                    )
                })?,
                (None, None) => Vec::new(),
            };
            // Empty, as Envoy's default: plugins with the same module, VM configuration and
            // environment then share a VM (and their shared data), and `plugin_vm_id` is "".
            let vm_id = p
                .vm_id
                .as_ref()
                .map(|v| v.value.clone())
                .unwrap_or_default();
            let env: Vec<(String, String)> =
                p.env.clone().unwrap_or_default().into_iter().collect();
            let vm_configuration = p.vm_configuration.clone().unwrap_or_default().into_bytes();
            let network = p
                .plugin_type
                .as_ref()
                .is_some_and(|t| t.value == RawPluginType::Network);
            if let Some(t) = p.plugin_type.as_ref().filter(|_| network && lua.is_some()) {
                return Err(self.errs.at(
                    &t.referenced,
                    format!("{path}.type"),
                    "a Lua filter is an HTTP filter: `type: NETWORK` needs a Wasm module",
                ));
            }
            let mut plugin_listeners: Vec<String> = Vec::new();
            for (k, l) in p
                .listeners
                .as_deref()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let wanted = l.value.trim();
                if !listeners.iter().any(|x| x.name == wanted) {
                    let known: Vec<&str> = listeners.iter().map(|x| x.name.as_str()).collect();
                    return Err(self.errs.at(
                        &l.referenced,
                        format!("{path}.listeners[{k}]"),
                        format!(
                            "unknown listener `{wanted}` (listeners: {})",
                            known.join(", ")
                        ),
                    ));
                }
                if !plugin_listeners.iter().any(|x| x == wanted) {
                    plugin_listeners.push(wanted.to_string());
                }
            }
            let phase = match p.phase {
                Some(RawPhase::Authn) => Some("AUTHN"),
                Some(RawPhase::Authz) => Some("AUTHZ"),
                Some(RawPhase::Stats) => Some("STATS"),
                Some(RawPhase::Unspecified) | None => None,
            };
            if let Some(codes) = p.lua.as_ref().and_then(|l| l.value.source_codes.as_ref()) {
                for (script, code) in codes {
                    wasp_lua::LuaScript::compile(&format!("{name}/{script}"), &code.value)
                        .map_err(|e| {
                            self.errs.at(
                                &code.referenced,
                                format!("{path}.lua.sourceCodes.{script}"),
                                e.to_string(),
                            )
                        })?;
                }
            }
            let kind = match lua {
                Some(source) => PluginKind::Lua(LuaSpec { source }),
                None => PluginKind::Wasm(WasmSpec {
                    root_id: p.plugin_name.clone().unwrap_or_else(|| name.clone()),
                    module: wasm,
                    configuration,
                    vm_configuration,
                    vm_id: vm_id.clone(),
                    env,
                    network,
                }),
            };
            let spec = PluginSpec {
                name: name.clone(),
                url,
                kind,
                fail_strategy: match p.fail_strategy {
                    None | Some(RawFailStrategy::Close) => FailStrategy::FailClose,
                    Some(RawFailStrategy::Open) => FailStrategy::FailOpen,
                    Some(RawFailStrategy::Reload) => FailStrategy::FailReload,
                },
                phase: phase.map(str::to_string),
                priority: p.priority,
                listeners: plugin_listeners,
                load_error: None,
                origin: Default::default(),
                routing: Default::default(),
            };
            specs.push(spec);
        }
        crate::sources::sort_chain(&mut specs);
        Ok(specs)
    }
}
