//! The watched objects as a [`ResourceSet`], each parsed on its own by the same reader as
//! resource files: one that does not parse is reported and left out, the others are used.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kube::api::DynamicObject;

use super::kinds::Kind;
use super::kinds::SECRET;
use super::reference::ObjectRef;
use super::store::{ObjectKey, WatchFailure};
use crate::error::ConfigError;
use crate::wasmplugin::{ResourceSet, SecretDoc, Source, parse_resources};

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

/// The resources among `objects`. A pull secret that its watch cannot read (`failures`: 403,
/// the apiserver gone before it was ever listed) stands as an unusable Secret, so that its
/// plugins' fetch fails with that reason rather than with "not found".
pub fn resources(
    objects: &[(ObjectKey, DynamicObject)],
    failures: &[WatchFailure],
) -> ApiResources {
    let mut out = ApiResources::default();
    for failure in failures {
        let (plural, namespace) = (failure.scope.plural, &failure.scope.namespace);
        let Some(name) = failure
            .scope
            .name
            .as_ref()
            .filter(|_| plural == SECRET.plural)
        else {
            continue;
        };
        if objects
            .iter()
            .any(|((p, ns, n), _)| *p == plural && ns == namespace && n == name)
        {
            continue; // read before: the last value seen stays in use
        }
        out.set.secrets.push(SecretDoc {
            namespace: namespace.clone(),
            name: name.clone(),
            dockerconfigjson: Err(format!(
                "cannot be read from the Kubernetes API: {}",
                failure.message
            )),
            source: Source {
                file: PathBuf::from(format!("kubernetes/{namespace}/{plural}/{name}")),
                line: 1,
            },
        });
    }
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
