//! `wasp validate -c FILE`: load a configuration (reading and checksumming every plugin module,
//! without compiling them), print what it describes, and say `config OK` or why not.

use std::fmt::Write as _;
use std::path::PathBuf;

use wasp_config::spec::{
    FailStrategy, PathMatch, PluginKind, ProxySpec, RouteAction, TrafficDirection, UpstreamProtocol,
};

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file (YAML).
    #[arg(short = 'c', long = "config")]
    config: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let loaded = wasp_config::load(&args.config)?;
    print!("{}", summary(&loaded));
    crate::start_check::start_inline_plugins(&loaded.spec.plugins)?;
    println!("config OK");
    Ok(())
}

fn summary(loaded: &wasp_config::Loaded) -> String {
    let spec: &ProxySpec = &loaded.spec;
    let mut out = String::new();
    let _ = writeln!(out, "config {}", loaded.source.display());
    let admin = spec
        .admin
        .map_or_else(|| "off".to_string(), |a| a.to_string());
    let _ = writeln!(
        out,
        "workers {}, admin {admin}, buffer limit {} bytes",
        spec.workers, spec.buffer_limit_bytes
    );
    if !spec.node.id.is_empty() {
        let _ = writeln!(out, "node {} (cluster {})", spec.node.id, spec.node.cluster);
    }

    let _ = writeln!(out, "listeners:");
    for l in &spec.listeners {
        let direction = match l.direction {
            TrafficDirection::Inbound => "inbound",
            TrafficDirection::Outbound => "outbound",
        };
        let scheme = if l.tls.is_some() { "https" } else { "http" };
        let _ = writeln!(out, "  {} {scheme}://{} ({direction})", l.name, l.address);
        if l.routes.is_empty() {
            let _ = writeln!(out, "    (no routes: every request gets 404)");
        }
        for r in &l.routes {
            let matcher = match &r.path {
                PathMatch::Prefix(p) => format!("prefix {p}"),
                PathMatch::Exact(p) => format!("path {p}"),
                PathMatch::Regex(re) => format!("regex {}", re.as_str()),
            };
            let headers: String = r
                .headers
                .iter()
                .map(|h| match &h.value {
                    Some(v) => format!(" [{}: {v}]", h.name),
                    None => format!(" [{}]", h.name),
                })
                .collect();
            let action = match &r.action {
                RouteAction::Cluster {
                    name,
                    timeout,
                    retry,
                    hash_header,
                } => format!(
                    "cluster {name}, timeout {}{}{}",
                    timeout.map_or_else(|| "none".to_string(), wasp_config::format_duration),
                    retry
                        .as_ref()
                        .map_or_else(String::new, |r| format!(", {} retries", r.num_retries)),
                    hash_header
                        .as_ref()
                        .map_or_else(String::new, |h| format!(", hash on {h}")),
                ),
                RouteAction::Direct { status, body } => {
                    format!("direct response {status} ({} bytes)", body.len())
                }
            };
            let _ = writeln!(out, "    {matcher}{headers} -> {action}");
        }
    }

    let _ = writeln!(out, "clusters:");
    if spec.clusters.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for c in &spec.clusters {
        let protocol = match c.protocol {
            UpstreamProtocol::Http1 => "http1",
            UpstreamProtocol::Http2 => "http2",
        };
        let tls = match &c.tls {
            None => String::new(),
            Some(tls) => format!(
                ", tls (sni {}, roots {})",
                tls.sni.as_deref().unwrap_or("from endpoint"),
                tls.ca_file
                    .as_ref()
                    .map_or_else(|| "web PKI".to_string(), |f| f.display().to_string())
            ),
        };
        let _ = writeln!(
            out,
            "  {} {protocol} [{}], connect timeout {}{tls}",
            c.name,
            c.endpoints.join(", "),
            wasp_config::format_duration(c.connect_timeout)
        );
    }

    let _ = writeln!(out, "plugins (chain order):");
    if spec.plugins.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for (i, p) in spec.plugins.iter().enumerate() {
        let fail = match p.fail_strategy {
            FailStrategy::FailClose => "FAIL_CLOSE",
            FailStrategy::FailOpen => "FAIL_OPEN",
            FailStrategy::FailReload => "FAIL_RELOAD",
        };
        let (size, vm_id, configuration) = match &p.kind {
            PluginKind::Wasm(w) => (w.module.len(), w.vm_id.as_str(), w.configuration.len()),
            PluginKind::Lua(l) => (l.source.len(), "", 0),
        };
        let _ = writeln!(out, "  {}. {} {} ({size} bytes)", i + 1, p.name, p.url);
        let mut details = format!("vmId {vm_id}, failStrategy {fail}");
        if !p.is_lua() && p.root_id() != p.name {
            let _ = write!(details, ", pluginName {}", p.root_id());
        }
        if let Some(phase) = &p.phase {
            let _ = write!(details, ", phase {phase}");
        }
        if let Some(priority) = p.priority {
            let _ = write!(details, ", priority {priority}");
        }
        if !p.listeners.is_empty() {
            let _ = write!(details, ", listeners {}", p.listeners.join(", "));
        }
        let _ = writeln!(out, "     {details}, configuration {configuration} bytes");
    }
    if let (Some(sources), Some(resources)) = (&loaded.plugin_sources, &loaded.resources) {
        resource_summary(&mut out, loaded, sources, resources);
    }
    out
}

/// The WasmPlugin resources read, and which of them this workload gets (their modules are
/// fetched only by `wasp run` and `wasp plugin pull`).
fn resource_summary(
    out: &mut String,
    loaded: &wasp_config::Loaded,
    sources: &wasp_config::PluginSources,
    resources: &wasp_config::wasmplugin::ResourceSet,
) {
    let _ = writeln!(
        out,
        "WasmPlugin resources ({} read, root namespace {}):",
        resources.resources().len(),
        sources.root_namespace
    );
    for warning in resources.warnings() {
        let _ = writeln!(out, "  warning: {warning}");
    }
    let selected = resources.plugins_for(&loaded.workload, &sources.root_namespace, &|name| {
        std::env::var(name).ok()
    });
    for r in resources.resources() {
        let key = r.key();
        let state = match selected.iter().position(|d| d.key == key) {
            Some(i) => format!("selected, #{} of the resource chain", i + 1),
            None => "not selected for this workload".to_string(),
        };
        let _ = writeln!(
            out,
            "  {} {key} ({}:{}): {state}",
            r.kind.as_str(),
            r.source.file.display(),
            r.source.line
        );
    }
    for d in &selected {
        if let Some(w) = d.wasm() {
            let _ = writeln!(
                out,
                "     {}: {} phase {}, priority {}, pull {}",
                d.key,
                w.url,
                d.phase.as_str(),
                d.priority
                    .map_or_else(|| "unset".to_string(), |p| p.to_string()),
                match &w.module {
                    Ok(source) =>
                        format!("{:?}", w.pull_policy.effective(source, w.sha256.as_deref())),
                    Err(e) => format!("impossible ({e})"),
                }
            );
        }
    }
}
