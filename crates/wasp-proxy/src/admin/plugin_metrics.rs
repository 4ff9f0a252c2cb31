//! The metrics plugins define (`proxy_define_metric`), written as Envoy's `/stats/prometheus`
//! writes them, so dashboards and alerts built on Envoy keep working:
//!
//! - Envoy keeps them under the custom stat namespace `wasmcustom.` and exports them without
//!   it and without its `envoy_` prefix: a counter `probe_hits` is `probe_hits{} 2`. No
//!   `_total` is added to counters (this is why prometheus-client, whose counters always end
//!   in `_total`, does not write this section).
//! - Names go through Istio's tag extraction: istio-proxy's bootstrap lists `stats_tags`
//!   regexes `(<tag>=\.=(.*?);\.;)` for [`ISTIO_TAGS`], so a plugin that names a counter
//!   `reporter=.=destination;.;response_code=.=200;.;istio_requests_total` (as Istio's stats
//!   plugin does) is exported as `istio_requests_total{reporter="destination",response_code="200"}`.
//! - Characters outside `[a-zA-Z0-9_]` become `_`; a name that then starts with a digit is
//!   not a Prometheus name, and Envoy leaves the metric out.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use wasp_host::shared::MetricValue;
use wasp_host::shared::metrics::{HISTOGRAM_BUCKETS, MetricSnapshot};

/// The tags istio-proxy's bootstrap extracts from stat names, in its order (its other
/// extractors are anchored on Envoy's own stat prefixes and never match a plugin's metric).
pub const ISTIO_TAGS: [&str; 30] = [
    "response_code",
    "reporter",
    "source_namespace",
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "destination_namespace",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "destination_port",
    "destination_cluster",
    "request_protocol",
    "request_operation",
    "request_host",
    "response_flags",
    "grpc_response_status",
    "connection_security_policy",
    "source_canonical_service",
    "destination_canonical_service",
    "source_canonical_revision",
    "destination_canonical_revision",
];

/// A plugin metric's exported name and tags.
#[derive(Debug, PartialEq, Eq)]
pub struct Exported {
    pub name: String,
    pub tags: Vec<(String, String)>,
}

/// What Envoy exports for a plugin metric named `defined`.
pub fn exported(defined: &str) -> Exported {
    let mut rest = defined.to_string();
    let mut tags = Vec::new();
    for tag in ISTIO_TAGS {
        // `(<tag>=\.=(.*?);\.;)`: the shortest value up to the first `;.;`.
        let opener = format!("{tag}=.=");
        // Not anchored: `xreporter=.=` matches too, as in Envoy.
        let Some(start) = rest.find(&opener) else {
            continue;
        };
        let value_from = start + opener.len();
        // response_code's regex takes `.+?`: at least one character.
        let at_least = usize::from(tag == "response_code");
        let Some(len) = rest
            .get(value_from + at_least..)
            .and_then(|after| after.find(";.;"))
            .map(|len| len + at_least)
        else {
            continue;
        };
        tags.push((
            tag.to_string(),
            rest[value_from..value_from + len].to_string(),
        ));
        rest.replace_range(start..value_from + len + 3, "");
    }
    Exported {
        name: sanitize(&rest),
        tags,
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Envoy exports a custom-namespace metric only when its sanitized name is a valid Prometheus
/// name.
fn valid(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('"', "\\\"")
}

fn labels(tags: &[(String, String)], extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = tags
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", sanitize(k), escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    format!("{{{}}}", parts.join(","))
}

/// Envoy's bucket bounds as it prints them (`0.5`, `1`, `3600000`).
fn bound(b: f64) -> String {
    format!("{b}")
}

/// One exported name: its type and its samples (tags, value).
type Family = (&'static str, Vec<(Vec<(String, String)>, MetricValue)>);

/// The section for these metrics: one `# TYPE` line per exported name (metrics that differ
/// only by tags are one family), families sorted by name as Envoy sorts them.
pub fn render(metrics: Vec<MetricSnapshot>) -> String {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for m in metrics {
        let e = exported(&m.name);
        if !valid(&e.name) {
            continue;
        }
        let kind = match m.value {
            MetricValue::Counter(_) => "counter",
            MetricValue::Gauge(_) => "gauge",
            MetricValue::Histogram(_) => "histogram",
        };
        families
            .entry(e.name)
            .or_insert_with(|| (kind, Vec::new()))
            .1
            .push((e.tags, m.value));
    }
    let mut out = String::new();
    for (name, (kind, samples)) in families {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (tags, value) in samples {
            match value {
                MetricValue::Counter(v) => {
                    let _ = writeln!(out, "{name}{} {v}", labels(&tags, None));
                }
                MetricValue::Gauge(v) => {
                    let _ = writeln!(out, "{name}{} {v}", labels(&tags, None));
                }
                MetricValue::Histogram(h) => {
                    for (b, count) in HISTOGRAM_BUCKETS.iter().zip(h.buckets) {
                        let le = bound(*b);
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {count}",
                            labels(&tags, Some(("le", &le)))
                        );
                    }
                    let all = labels(&tags, Some(("le", "+Inf")));
                    let _ = writeln!(out, "{name}_bucket{all} {}", h.count);
                    let _ = writeln!(out, "{name}_sum{} {}", labels(&tags, None), h.sum);
                    let _ = writeln!(out, "{name}_count{} {}", labels(&tags, None), h.count);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_envoy_exports_them() {
        assert_eq!(
            exported("probe_hits"),
            Exported {
                name: "probe_hits".into(),
                tags: vec![]
            }
        );
        assert_eq!(exported("my.metric-1").name, "my_metric_1");
        assert!(!valid(&exported("1st").name));
        let istio = exported(
            "reporter=.=destination;.;source_workload=.=sleep;.;response_code=.=200;.;istio_requests_total",
        );
        assert_eq!(istio.name, "istio_requests_total");
        let tag = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            istio.tags,
            [
                tag("response_code", "200"),
                tag("reporter", "destination"),
                tag("source_workload", "sleep")
            ]
        );
        // An empty value: `.*?` takes it, response_code's `.+?` does not.
        let empty = exported("reporter=.=;.;response_code=.=;.;x");
        assert_eq!(empty.tags, [tag("reporter", "")]);
        assert_eq!(empty.name, "response_code______x");
    }
}
