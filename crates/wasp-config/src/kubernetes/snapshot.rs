//! The watched objects as a [`ResourceSet`], each parsed on its own by the same reader as
//! resource files: one that does not parse is reported and left out, the others are used.

use std::path::PathBuf;

use kube::api::DynamicObject;

use super::store::ObjectKey;
use crate::error::ConfigError;
use crate::wasmplugin::{ResourceSet, parse_resources};

/// The resources among `objects`, and the errors of those that did not parse (each names the
/// object as `kubernetes/<namespace>/<plural>/<name>` in place of a file).
pub fn resources(objects: &[(ObjectKey, DynamicObject)]) -> (ResourceSet, Vec<ConfigError>) {
    let mut set = ResourceSet::default();
    let mut errors = Vec::new();
    for ((plural, namespace, name), object) in objects {
        let origin = PathBuf::from(format!("kubernetes/{namespace}/{plural}/{name}"));
        // JSON is YAML; pretty, so that an error's line points into the object.
        let text = match serde_json::to_string_pretty(object) {
            Ok(text) => text,
            Err(e) => {
                errors.push(ConfigError::new(Some(&origin), None, "", e.to_string()));
                continue;
            }
        };
        match parse_resources(&[(origin, text)]) {
            Ok(parsed) => set.extend(parsed),
            Err(e) => errors.push(e),
        }
    }
    (set, errors)
}
