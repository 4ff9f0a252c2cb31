//! The workload as a pod learns it from Kubernetes' downward API, as a sidecar does: the
//! namespace from the `POD_NAMESPACE` variable, the labels from a `downwardAPI` volume file
//! (`/etc/podinfo/labels`, one `key="value"` line per label, the value quoted as Go's `%q`).
//! `workload:` in wasp.yaml wins over both.

use std::collections::BTreeMap;

/// Where the pod's labels file is mounted (the path Kubernetes' own examples use).
pub const LABELS_FILE: &str = "/etc/podinfo/labels";

/// The pod's namespace, from `POD_NAMESPACE` (unset or empty: none).
pub fn namespace() -> Option<String> {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
}

/// Who this proxy is in the cluster's Events: the pod's name from `POD_NAME`, else the host
/// name (a pod's host name is its name), else `wasp`.
pub fn instance() -> String {
    std::env::var("POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "wasp".into())
}

/// The pod's labels, from [`LABELS_FILE`] (absent: none).
pub fn labels() -> Option<BTreeMap<String, String>> {
    Some(parse_labels(&std::fs::read_to_string(LABELS_FILE).ok()?))
}

/// The labels of a downward API labels file; lines that do not parse are skipped.
pub fn parse_labels(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let (key, quoted) = line.split_once('=')?;
            Some((key.trim().to_string(), unquote(quoted.trim())?))
        })
        .collect()
}

/// Go's `strconv.Quote` undone for what label values can hold (printable ASCII, `\"`, `\\`).
fn unquote(quoted: &str) -> Option<String> {
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                other => out.push(other),
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_as_the_kubelet_writes_them() {
        let text = "app=\"cart\"\npod-template-hash=\"7d4b9c\"\nquote=\"a\\\"b\"\nbroken\n";
        let labels = parse_labels(text);
        assert_eq!(labels.get("app").map(String::as_str), Some("cart"));
        assert_eq!(
            labels.get("pod-template-hash").map(String::as_str),
            Some("7d4b9c")
        );
        assert_eq!(labels.get("quote").map(String::as_str), Some("a\"b"));
        assert_eq!(labels.len(), 3);
    }
}
