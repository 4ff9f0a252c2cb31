//! The resource kinds wasp reads from the Kubernetes API, as the API names them.

use kube::api::{ApiResource, GroupVersionKind};

/// One kind: its group, version, kind and plural (the path segment of its API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kind {
    /// API group (`extensions.istio.io`; empty for the core group).
    pub group: &'static str,
    /// API version within the group.
    pub version: &'static str,
    /// The kind's name as objects carry it.
    pub kind: &'static str,
    /// The plural in the API path.
    pub plural: &'static str,
}

impl Kind {
    /// kube's description of the kind, for a dynamic `Api`.
    pub fn api_resource(&self) -> ApiResource {
        let gvk = GroupVersionKind::gvk(self.group, self.version, self.kind);
        ApiResource::from_gvk_with_plural(&gvk, self.plural)
    }

    /// `group/version`, or `version` alone for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The kind whose API path segment is `plural` (among those wasp reads).
    pub fn by_plural(plural: &str) -> Option<Kind> {
        PLUGIN_KINDS
            .into_iter()
            .chain([SECRET])
            .find(|k| k.plural == plural)
    }
}

/// Istio's WasmPlugin.
pub const WASM_PLUGIN: Kind = Kind {
    group: "extensions.istio.io",
    version: "v1alpha1",
    kind: "WasmPlugin",
    plural: "wasmplugins",
};

/// Istio's TrafficExtension (WasmPlugin's successor, with Lua).
pub const TRAFFIC_EXTENSION: Kind = Kind {
    group: "extensions.istio.io",
    version: "v1alpha1",
    kind: "TrafficExtension",
    plural: "trafficextensions",
};

/// Istio's EnvoyFilter (wasp reads its Lua patches).
pub const ENVOY_FILTER: Kind = Kind {
    group: "networking.istio.io",
    version: "v1alpha3",
    kind: "EnvoyFilter",
    plural: "envoyfilters",
};

/// Secrets, read one by one where an `imagePullSecret` names them.
pub const SECRET: Kind = Kind {
    group: "",
    version: "v1",
    kind: "Secret",
    plural: "secrets",
};

/// The kinds that declare plugins, in the order their objects are handed to the parser.
pub const PLUGIN_KINDS: [Kind; 3] = [WASM_PLUGIN, TRAFFIC_EXTENSION, ENVOY_FILTER];
