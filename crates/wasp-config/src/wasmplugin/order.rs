//! Chain order (reference §1.5 step 4, §1.2 `priority`; Istio's `sortByPriority` in
//! `push_context.go`).

use super::Resource;

/// Groups by phase — AUTHN, AUTHZ, STATS, then no phase (Istio places UNSPECIFIED after the
/// STATS plugins, just before the router) — and, inside a phase, orders by priority, highest
/// first. An unset priority sorts as `i32::MIN` (Istio's `math.MinInt32`, not the 0 the API doc
/// claims), so after every explicit priority and tied with an explicit `-2147483648`.
///
/// The sort is stable: ties keep the candidate order `select` produced, which is Istio's
/// tie-break — the workload's namespace before the root namespace, then `creationTimestamp`,
/// then name.
pub fn order(mut selected: Vec<&Resource>) -> Vec<&Resource> {
    selected.sort_by_key(|r| (r.phase, std::cmp::Reverse(r.priority.unwrap_or(i32::MIN))));
    selected
}
