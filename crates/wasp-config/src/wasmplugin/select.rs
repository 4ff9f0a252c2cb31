//! Which resources apply to a workload (reference §1.2 `selector`/`targetRefs`, §1.5 steps
//! 1–3; Istio's `WorkloadPolicyMatcher.ShouldAttachPolicy`).

use super::{Attachment, Resource};
use crate::Workload;

/// The label Gateway API deployments put on their pods.
pub const GATEWAY_NAME_LABEL: &str = "gateway.networking.k8s.io/gateway-name";

/// The resources that apply to `workload`, in Istio's candidate order: the workload's namespace
/// first, then the root namespace; inside a namespace by `creationTimestamp` (oldest first,
/// none before any), then name (`sortConfigByCreationTime`). Ordering by phase and priority
/// comes after (`order.rs`) and is stable, so this order breaks its ties.
pub fn select<'a>(
    resources: &'a [Resource],
    workload: &Workload,
    root_namespace: &str,
) -> Vec<&'a Resource> {
    let mut namespaces = vec![workload.namespace.as_str()];
    if root_namespace != workload.namespace {
        namespaces.push(root_namespace);
    }
    let mut out = Vec::new();
    for namespace in namespaces {
        let mut candidates: Vec<&Resource> = resources
            .iter()
            .filter(|r| r.namespace == namespace)
            .collect();
        candidates.sort_by(|a, b| {
            a.creation_timestamp
                .cmp(&b.creation_timestamp)
                .then_with(|| a.name.cmp(&b.name))
        });
        out.extend(candidates.into_iter().filter(|r| attaches(r, workload)));
    }
    out
}

/// `ShouldAttachPolicy` for a workload that is not a waypoint:
/// - `targetRefs`: Gateway API gateway workloads (labelled
///   `gateway.networking.k8s.io/gateway-name`), in the resource's own namespace, through a
///   `gateway.networking.k8s.io/Gateway` ref naming that gateway: the whole listener. A
///   `Service` ref attaches the plugin to the routes whose cluster is that service (see
///   [`service_targets`]), as Istio attaches it to the service's traffic at a waypoint.
///   `ServiceEntry` and `GatewayClass` refs never match. A resource with targetRefs is not
///   matched by labels (no fallback to a selector).
/// - otherwise the selector: every `matchLabels` entry present with the same value (also on
///   Gateway API gateways, as with Istio's default `ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY`).
pub fn attaches(resource: &Resource, workload: &Workload) -> bool {
    attachment_applies(&resource.attachment, &resource.namespace, workload)
}

/// [`attaches`] for an attachment declared in `namespace`.
pub fn attachment_applies(attachment: &Attachment, namespace: &str, workload: &Workload) -> bool {
    match attachment {
        Attachment::All => true,
        Attachment::Selector(labels) => labels
            .iter()
            .all(|(k, v)| workload.labels.get(k) == Some(v)),
        Attachment::TargetRefs(refs) => {
            gateway_attached(namespace, refs, workload) || refs.iter().any(is_service)
        }
    }
}

fn is_service(r: &super::TargetRef) -> bool {
    r.group == "core" && r.kind == "Service"
}

fn gateway_attached(namespace: &str, refs: &[super::TargetRef], workload: &Workload) -> bool {
    let Some(gateway) = workload.labels.get(GATEWAY_NAME_LABEL) else {
        return false;
    };
    namespace == workload.namespace
        && refs.iter().any(|r| {
            r.group == "gateway.networking.k8s.io" && r.kind == "Gateway" && &r.name == gateway
        })
}

/// The services a resource attaches to when only its `Service` targetRefs bring it to this
/// workload: each as `NAME.NAMESPACE.svc.cluster.local` (matched against route clusters with
/// or without a port, and in Istio's `outbound|PORT||HOST` form) and as `NAME` (a cluster
/// named after the service). `None`: it applies to whole listeners.
pub fn service_targets(resource: &Resource, workload: &Workload) -> Option<Vec<String>> {
    let Attachment::TargetRefs(refs) = &resource.attachment else {
        return None;
    };
    if gateway_attached(&resource.namespace, refs, workload) {
        return None;
    }
    let services: Vec<String> = refs
        .iter()
        .filter(|r| is_service(r))
        .flat_map(|r| {
            [
                format!("{}.{}.svc.cluster.local", r.name, resource.namespace),
                r.name.clone(),
            ]
        })
        .collect();
    (!services.is_empty()).then_some(services)
}
