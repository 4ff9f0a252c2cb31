//! What the proxies report besides the traffic: plugin log lines (from their log files) and
//! plugin-defined metrics (from their admin endpoints), in one shape for both.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context as _;

use crate::process::get;

/// One plugin log line: the level as the plugin gave it and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: String,
    pub message: String,
}

/// Plugin log lines written after byte `from` of the log, grouped by `<root_id> <vm_id>`
/// (what both proxies tag plugin lines with).
pub type PluginLogs = BTreeMap<String, Vec<LogLine>>;

pub fn log_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Bytes `range` of a log file (`None` end: to its end).
pub type Span = (u64, Option<u64>);

fn read_span(path: &Path, (from, to): Span) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let to = to.map_or(bytes.len(), |t| (t as usize).min(bytes.len()));
    let from = (from as usize).min(to);
    Ok(String::from_utf8_lossy(&bytes[from..to]).into_owned())
}

/// Lines logged while a proxy started: Envoy runs start and configure several times (a
/// canary VM, the base VM, the worker's), so each distinct line counts once.
pub fn distinct(logs: PluginLogs) -> PluginLogs {
    logs.into_iter()
        .map(|(k, lines)| {
            let mut seen: Vec<LogLine> = Vec::new();
            for l in lines {
                if !seen.contains(&l) {
                    seen.push(l);
                }
            }
            (k, seen)
        })
        .collect()
}

/// Envoy, run with `--log-format '@@%l|%n|%v'`: records start with `@@`; plugin lines come
/// from the `wasm` logger as `wasm log [<name>] <root_id> <vm_id>: <message>`.
pub fn envoy_logs(path: &Path, span: Span) -> anyhow::Result<PluginLogs> {
    let mut logs = PluginLogs::new();
    for (level, logger, message) in envoy_records(path, span)? {
        let Some(rest) = message.strip_prefix("wasm log ") else {
            continue;
        };
        if logger != "wasm" {
            continue;
        }
        let Some((prefix, message)) = rest.split_once(": ") else {
            continue;
        };
        // Stream contexts log `<name> <root_id> <vm_id>`, root contexts `<root_id> <vm_id>`;
        // an empty vm_id leaves its word out. The suite's plugin names (`c07-p0-hostcalls`)
        // tell the first form.
        let mut words: Vec<&str> = prefix.split(' ').collect();
        if words.len() > 1 && is_plugin_name(words[0]) {
            words.remove(0);
        }
        let plugin = match words.as_slice() {
            [root_id] => format!("{root_id} "),
            _ => words[words.len().saturating_sub(2)..].join(" "),
        };
        logs.entry(plugin).or_default().push(LogLine {
            level: envoy_level(&level),
            message: message.to_owned(),
        });
    }
    Ok(logs)
}

/// Whether `word` is a plugin name as the suite gives them: `c<case>-p<index>-<module>`.
fn is_plugin_name(word: &str) -> bool {
    let mut parts = word.splitn(3, '-');
    let digits = |p: Option<&str>, lead: char| {
        p.and_then(|p| p.strip_prefix(lead))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    digits(parts.next(), 'c') && digits(parts.next(), 'p') && parts.next().is_some()
}

/// Envoy's records as (level, logger, message); a message may span several lines.
fn envoy_records(path: &Path, span: Span) -> anyhow::Result<Vec<(String, String, String)>> {
    let text = read_span(path, span)?;
    let mut records: Vec<(String, String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("@@") {
            let mut parts = rest.splitn(3, '|');
            let level = parts.next().unwrap_or_default().to_owned();
            let logger = parts.next().unwrap_or_default().to_owned();
            let message = parts.next().unwrap_or_default().to_owned();
            records.push((level, logger, message));
        } else if let Some(last) = records.last_mut() {
            last.2.push('\n');
            last.2.push_str(line);
        }
    }
    Ok(records)
}

fn envoy_level(level: &str) -> String {
    match level {
        "warning" => "warn".to_owned(),
        other => other.to_owned(),
    }
}

/// Lua script lines Envoy wrote in `span`: its `lua` logger's `script log: <message>` records
/// (what `handle:log*()` writes, and script errors). Envoy does not say which filter logged,
/// so the harness reads them case by case (each case's own span of the log).
pub fn envoy_lua_logs(path: &Path, span: Span) -> anyhow::Result<Vec<LogLine>> {
    Ok(envoy_records(path, span)?
        .into_iter()
        .filter(|(_, logger, _)| logger == "lua")
        .filter_map(|(level, _, message)| {
            Some(LogLine {
                level: envoy_level(&level),
                message: message.strip_prefix("script log: ")?.to_string(),
            })
        })
        .collect())
}

/// The level of one of wasp's JSON records: `tracing`'s, or `critical` for an error line
/// marked `critical` (how wasp records the level `tracing` does not have).
fn wasp_level(record: &serde_json::Value) -> String {
    if record["fields"]["critical"] == true {
        return "critical".to_string();
    }
    record["level"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Lua script lines wasp wrote in `span` (`--log-json`): target `wasp::lua`, with the script's
/// name in `script`.
pub fn wasp_lua_logs(path: &Path, span: Span) -> anyhow::Result<Vec<LogLine>> {
    let text = read_span(path, span)?;
    let mut lines = Vec::new();
    for line in text.lines() {
        let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if record["target"] != "wasp::lua" {
            continue;
        }
        let fields = &record["fields"];
        lines.push(LogLine {
            level: wasp_level(&record),
            message: fields["message"].as_str().unwrap_or_default().to_string(),
        });
    }
    Ok(lines)
}

/// wasp, run with `--log-json`: plugin lines have the target `wasp::plugin` and `plugin`
/// (the root id) and `vm` fields.
pub fn wasp_logs(path: &Path, span: Span) -> anyhow::Result<PluginLogs> {
    let text = read_span(path, span)?;
    let mut logs = PluginLogs::new();
    for line in text.lines() {
        let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if record["target"] != "wasp::plugin" {
            continue;
        }
        let fields = &record["fields"];
        let message = fields["message"].as_str().unwrap_or_default();
        // wasp's own diagnostics about a plugin (a trap's backtrace, a refused callout) share
        // the plugin's log target; Envoy logs them without the `wasm log` prefix, so neither
        // side counts them as plugin lines (docs/compatibility.md, host-diagnostics).
        if HOST_DIAGNOSTICS.iter().any(|p| message.starts_with(p)) {
            continue;
        }
        let plugin = format!(
            "{} {}",
            fields["plugin"].as_str().unwrap_or_default(),
            fields["vm"].as_str().unwrap_or_default()
        );
        logs.entry(plugin).or_default().push(LogLine {
            level: wasp_level(&record),
            message: message.to_owned(),
        });
    }
    Ok(logs)
}

/// How wasp's host-side lines about a plugin begin.
const HOST_DIAGNOSTICS: &[&str] = &["VM failed in ", "http call to "];

/// Plugin-defined counters and gauges as each proxy's `/stats/prometheus` shows them, keyed by
/// the sample as printed (`name{tags}`): names, tag extraction and formatting compare exactly.
/// Histograms are left out: Envoy only computes them on its periodic stats flush.
pub type Metrics = BTreeMap<String, i64>;

/// Envoy's plugin metrics: those without its `envoy_` prefix (Envoy exports its custom stat
/// namespace `wasmcustom` bare).
pub fn envoy_metrics(admin: SocketAddr) -> anyhow::Result<Metrics> {
    let (_, body) = get(admin, "/stats/prometheus")?;
    Ok(prometheus_samples(&body, &["envoy_"]))
}

/// wasp's plugin metrics: those without the prefixes of its own metrics (`wasp_`, the
/// Envoy-named `envoy_` ones, istio-agent's `istio_agent_`).
pub fn wasp_metrics(admin: SocketAddr) -> anyhow::Result<Metrics> {
    let (_, body) = get(admin, "/stats/prometheus")?;
    Ok(prometheus_samples(
        &body,
        &["wasp_", "envoy_", "istio_agent_"],
    ))
}

fn prometheus_samples(body: &str, skip: &[&str]) -> Metrics {
    let mut types: BTreeMap<&str, &str> = BTreeMap::new();
    let mut metrics = Metrics::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                types.insert(name, kind);
            }
            continue;
        }
        let Some((sample, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let family = sample.split('{').next().unwrap_or(sample);
        if skip.iter().any(|p| family.starts_with(p))
            || !matches!(types.get(family), Some(&"counter" | &"gauge"))
        {
            continue;
        }
        if let Ok(value) = value.parse::<f64>() {
            metrics.insert(sample.to_owned(), value as i64);
        }
    }
    metrics
}

/// What changed between two snapshots (new metrics count from zero).
pub fn delta(before: &Metrics, after: &Metrics) -> Metrics {
    after
        .iter()
        .filter_map(|(name, value)| {
            let change = value - before.get(name).copied().unwrap_or(0);
            (change != 0 || !before.contains_key(name)).then(|| (name.clone(), change))
        })
        .collect()
}
