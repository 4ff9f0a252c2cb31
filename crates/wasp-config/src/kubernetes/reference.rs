//! One object of the API as events and status writes name it.

use k8s_openapi::api::core::v1::ObjectReference;

use super::kinds::Kind;

/// A plugin resource in the API: what an Event is about, and whose status gets a condition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// Its kind.
    pub kind: Kind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `metadata.uid`: tells this object from an earlier one of the same name.
    pub uid: Option<String>,
    /// `metadata.generation` when it was read: a status condition's `observedGeneration`.
    pub generation: Option<i64>,
}

impl ObjectRef {
    /// The core `ObjectReference` an Event's `regarding` carries.
    pub fn reference(&self) -> ObjectReference {
        ObjectReference {
            api_version: Some(self.kind.api_version()),
            kind: Some(self.kind.kind.to_string()),
            namespace: Some(self.namespace.clone()),
            name: Some(self.name.clone()),
            uid: self.uid.clone(),
            ..ObjectReference::default()
        }
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind.kind, self.namespace, self.name)
    }
}
