//! Inline plugins must start, as Envoy refuses a static configuration whose Wasm filter fails
//! `proxy_on_vm_start` or `proxy_on_configure`. Resource plugins (WasmPlugin, ...) do not stop
//! wasp: their `failStrategy` applies.

use std::sync::{Arc, Mutex};

use anyhow::bail;
use wasp_config::spec::PluginSpec;
use wasp_host::{LogRecord, PluginConfig, Vm, VmConfig};

/// Collects a plugin's log lines while it starts, so a failure can show them.
#[derive(Default, Clone)]
struct Collect(Arc<Mutex<Vec<String>>>);

impl wasp_host::Embedder for Collect {
    fn log(&self, record: LogRecord<'_>) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(format!("{}: {}", record.level.as_str(), record.message));
        }
    }

    fn log_level(&self) -> wasp_host::LogLevel {
        wasp_host::LogLevel::Trace
    }
}

/// Starts every inline Wasm plugin of `plugins` once in a VM of its own (`wasp validate`):
/// fails with the plugin's log lines and the reason when one does not start.
pub fn start_inline_plugins(plugins: &[PluginSpec]) -> anyhow::Result<()> {
    let host = wasp_host::Host::new(wasp_host::HostConfig {
        pooling_instances: None,
        ..wasp_host::HostConfig::default()
    })?;
    for (p, wasm) in plugins.iter().filter_map(|p| Some((p, p.wasm()?))) {
        let logs = Collect::default();
        let started = host
            .load_module(&wasm.module)
            .map_err(|e| e.to_string())
            .and_then(|module| {
                let config = VmConfig {
                    vm_id: wasm.vm_id.clone(),
                    configuration: wasm.vm_configuration.clone(),
                    env: wasm.env.clone(),
                    queue_notifier: None,
                };
                let mut vm =
                    Vm::new(&module, config, Box::new(logs.clone())).map_err(|e| e.to_string())?;
                vm.start_plugin(&PluginConfig {
                    name: p.name.clone(),
                    root_id: wasm.root_id.clone(),
                    configuration: wasm.configuration.clone(),
                    allow_headers_stop_iteration: false,
                })
                .map(|_| ())
                .map_err(|e| e.to_string())
            });
        if let Err(reason) = started {
            let lines = logs.0.lock().map(|l| l.clone()).unwrap_or_default();
            bail!("{}", failure(&p.name, &reason, &lines));
        }
    }
    Ok(())
}

/// `wasp run`: the inline plugins that failed to start on some worker, as one error.
pub fn check_started(
    inline: &[PluginSpec],
    statuses: &[wasp_proxy::PluginStatus],
) -> anyhow::Result<()> {
    for s in statuses {
        let is_inline = inline.iter().any(|p| p.name == s.name && !p.is_lua());
        if is_inline && s.state == "failed" {
            let reason = s.error.as_deref().unwrap_or("it failed to start");
            bail!(
                "{} (its log lines are above)",
                failure(&s.name, reason, &[])
            );
        }
    }
    Ok(())
}

fn failure(name: &str, reason: &str, lines: &[String]) -> String {
    let mut out = format!("plugin {name} failed to start: {reason}");
    for line in lines {
        out.push_str(&format!("\n  [plugin {name}] {line}"));
    }
    out.push_str(
        "\n(an inline plugin must start, as Envoy refuses a configuration whose Wasm filter \
         fails to start; WasmPlugin resources follow their failStrategy instead)",
    );
    out
}
