//! The table of resource kinds the emulator serves: group, version, plural, kind and the few
//! per-kind traits the apiserver's behaviour depends on. Adding a kind is one line in [`KINDS`].

/// One registered resource type (an apiserver "resource" with its kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    /// API group; empty for the core group (served under `/api/v1`).
    pub group: &'static str,
    /// API version within the group.
    pub version: &'static str,
    /// The resource name in URLs (`wasmplugins`).
    pub plural: &'static str,
    /// The kind of one object (`WasmPlugin`); lists are `<Kind>List`.
    pub kind: &'static str,
    /// The lowercase singular name, as discovery reports it.
    pub singular: &'static str,
    /// Whether the kind has a `status` subresource (the Istio CRDs do).
    pub status_subresource: bool,
    /// Whether the server maintains `metadata.generation` (custom resources do; Secrets and
    /// Events do not).
    pub generation: bool,
    /// Field selectors the kind accepts besides `metadata.name` and `metadata.namespace`.
    pub extra_fields: &'static [&'static str],
}

impl KindInfo {
    /// `group/version`, or just `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The group-qualified resource (`wasmplugins.extensions.istio.io`, or `secrets`), as the
    /// apiserver names it in NotFound and Forbidden messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

// One positional argument per column keeps each entry of the table on one line.
#[allow(clippy::too_many_arguments)]
const fn kind(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    singular: &'static str,
    status_subresource: bool,
    generation: bool,
    extra_fields: &'static [&'static str],
) -> KindInfo {
    KindInfo {
        group,
        version,
        plural,
        kind,
        singular,
        status_subresource,
        generation,
        extra_fields,
    }
}

/// Every kind served. All are namespaced. Columns: group, version, plural, kind, singular,
/// status subresource, generation, extra field selectors.
#[rustfmt::skip]
pub const KINDS: &[KindInfo] = &[
    kind("extensions.istio.io", "v1alpha1", "wasmplugins", "WasmPlugin", "wasmplugin", true, true, &[]),
    kind("extensions.istio.io", "v1alpha1", "trafficextensions", "TrafficExtension", "trafficextension", true, true, &[]),
    kind("networking.istio.io", "v1alpha3", "envoyfilters", "EnvoyFilter", "envoyfilter", true, true, &[]),
    kind("", "v1", "secrets", "Secret", "secret", false, false, &["type"]),
    kind("", "v1", "events", "Event", "event", false, false, &[]),
    kind("events.k8s.io", "v1", "events", "Event", "event", false, false, &[]),
];

/// The index in [`KINDS`] of `group/version/plural`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<usize> {
    KINDS
        .iter()
        .position(|k| k.group == group && k.version == version && k.plural == plural)
}

/// The index in [`KINDS`] of the kind an object declares in `apiVersion` and `kind`.
pub fn find_by_object(api_version: &str, kind: &str) -> Option<usize> {
    KINDS
        .iter()
        .position(|k| k.api_version() == api_version && k.kind == kind)
}
