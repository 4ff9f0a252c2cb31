//! What the apiserver checks of an `events.k8s.io/v1` Event on create (k8s.io/kubernetes
//! `pkg/apis/core/validation/events.go`, `ValidateEventCreate` for that group version): the
//! fields a reporter must fill, their lengths, the type, and a namespace that matches the
//! object the event is about. Other kinds have no schema here.

use serde_json::Value;

/// `reportingController` is a qualified name of at most this many characters.
const CONTROLLER_MAX: usize = 100;
/// `reportingInstance`, `action` and `reason` are at most this long.
const FIELD_MAX: usize = 128;
/// `note` is at most 1 kB.
const NOTE_MAX: usize = 1024;

/// The field errors of an events.k8s.io/v1 Event, as the apiserver words them; empty if valid.
pub fn event(object: &Value, namespace: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let text = |field: &str| {
        object
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    if text("eventTime").is_empty() {
        errors.push("eventTime: Required value".to_string());
    }
    let controller = text("reportingController");
    if controller.is_empty() {
        errors.push("reportingController: Required value".to_string());
    } else if controller.len() > CONTROLLER_MAX || !qualified_name(controller) {
        errors.push(format!(
            "reportingController: Invalid value: \"{controller}\": must be a qualified name"
        ));
    }
    for field in ["reportingInstance", "action", "reason"] {
        let value = text(field);
        if value.is_empty() {
            errors.push(format!("{field}: Required value"));
        } else if value.len() > FIELD_MAX {
            errors.push(format!(
                "{field}: Too long: may not be more than {FIELD_MAX} bytes"
            ));
        }
    }
    if text("note").len() > NOTE_MAX {
        errors.push(format!(
            "note: Too long: may not be more than {NOTE_MAX} bytes"
        ));
    }
    let kind = text("type");
    if kind != "Normal" && kind != "Warning" {
        errors.push(format!(
            "type: Unsupported value: \"{kind}\": supported values: \"Normal\", \"Warning\""
        ));
    }
    let regarding = object
        .pointer("/regarding/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !regarding.is_empty() && regarding != namespace {
        errors.push(format!(
            "regarding.namespace: Invalid value: \"{regarding}\": does not match event.namespace"
        ));
    }
    errors
}

/// `[prefix/]name`: an optional DNS subdomain prefix, and a name of at most 63 characters of
/// alphanumerics, `-`, `_` and `.`, starting and ending with an alphanumeric.
fn qualified_name(value: &str) -> bool {
    let (prefix, name) = match value.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, value),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
    });
    name_ok && prefix_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_complete_event_passes_and_a_bare_one_lists_every_missing_field() {
        let good = json!({
            "eventTime": "2026-12-06T10:00:00.000000Z", "reportingController": "wasp.io/proxy",
            "reportingInstance": "pod-1", "action": "LoadPlugin", "reason": "Loaded",
            "type": "Normal", "regarding": {"namespace": "shop"}
        });
        assert!(event(&good, "shop").is_empty());
        assert_eq!(event(&good, "other").len(), 1);
        let bare = event(&json!({}), "shop");
        assert_eq!(bare.len(), 6, "{bare:?}");
    }

    #[test]
    fn qualified_names() {
        assert!(qualified_name("wasp.io/proxy"));
        assert!(qualified_name("kubelet"));
        assert!(!qualified_name("Wasp.IO/proxy"));
        assert!(!qualified_name("-bad"));
        assert!(!qualified_name("a/b/c"));
    }
}
