//! The watched objects as a [`ResourceSet`], each parsed on its own by the same reader as
//! resource files: one that does not parse is reported and left out, the others are used.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kube::api::DynamicObject;

use super::kinds::Kind;
use super::reference::ObjectRef;
use super::store::ObjectKey;
use crate::error::ConfigError;
use crate::wasmplugin::{ResourceSet, parse_resources};

/// The resources of the API's objects, and which object each came from.
#[derive(Default)]
pub struct ApiResources {
    /// Every object that parsed.
    pub set: ResourceSet,
    /// Objects that did not parse (left out), each with its error. The error names the object
    /// as `kubernetes/<namespace>/<plural>/<name>` in place of a file.
    pub invalid: Vec<(ObjectRef, ConfigError)>,
    /// The object behind each origin (`kubernetes/<namespace>/<plural>/<name>`) that a
    /// resource's [`Source`](crate::wasmplugin::Source) names.
    pub origins: BTreeMap<PathBuf, ObjectRef>,
}

impl ApiResources {
    /// The errors of the objects left out.
    pub fn errors(&self) -> impl Iterator<Item = &ConfigError> {
        self.invalid.iter().map(|(_, e)| e)
    }
}

/// The resources among `objects`.
pub fn resources(objects: &[(ObjectKey, DynamicObject)]) -> ApiResources {
    let mut out = ApiResources::default();
    for ((plural, namespace, name), object) in objects {
        let origin = PathBuf::from(format!("kubernetes/{namespace}/{plural}/{name}"));
        let reference = Kind::by_plural(plural).map(|kind| ObjectRef {
            kind,
            namespace: namespace.clone(),
            name: name.clone(),
            uid: object.metadata.uid.clone(),
            generation: object.metadata.generation,
        });
        // JSON is YAML; pretty, so that an error's line points into the object.
        let parsed = serde_json::to_string_pretty(object)
            .map_err(|e| ConfigError::new(Some(&origin), None, "", e.to_string()))
            .and_then(|text| parse_resources(&[(origin.clone(), text)]));
        match (parsed, reference) {
            (Ok(parsed), reference) => {
                out.set.extend(parsed);
                if let Some(reference) = reference {
                    out.origins.insert(origin, reference);
                }
            }
            (Err(e), Some(reference)) => out.invalid.push((reference, e)),
            (Err(e), None) => tracing::error!("{e}"),
        }
    }
    out
}
