//! The order of a workload's plugin chain: phase, then priority, then Istio's
//! `TestTrafficExtensions` tie-break (namespace, creation time, name); Lua and Wasm together.

mod common;

use common::{fixtures, names, parse, plugins, workload, wp};
use wasp_config::wasmplugin::{PluginBody, load_resources};

/// Phases in chain order, higher priority first, unset priority after every explicit one
/// (Istio sorts it as MinInt32, so it ties with an explicit -2147483648).
#[test]
fn order_by_phase_then_priority() {
    let docs = [
        wp("ns", "none-no-priority", ""),
        wp("ns", "stats", "phase: STATS"),
        wp("ns", "authz-unset", "phase: AUTHZ"),
        wp("ns", "authz-negative", "phase: AUTHZ\npriority: -5"),
        wp("ns", "authz-high", "phase: AUTHZ\npriority: 100"),
        wp("ns", "authz-zero", "phase: AUTHZ\npriority: 0"),
        wp("ns", "authn", "phase: AUTHN\npriority: -1000"),
        wp(
            "ns",
            "none-explicit",
            "phase: UNSPECIFIED_PHASE\npriority: 1",
        ),
        wp("ns", "authz-min", "phase: AUTHZ\npriority: -2147483648"),
    ]
    .join("---\n");
    let set = parse(&docs).unwrap();
    assert_eq!(
        names(&plugins(&set, &workload("ns", &[]))),
        [
            "ns.authn",
            "ns.authz-high",
            "ns.authz-zero",
            "ns.authz-negative",
            // MinInt32 and unset tie: by name (no creation times).
            "ns.authz-min",
            "ns.authz-unset",
            "ns.stats",
            "ns.none-explicit",
            "ns.none-no-priority",
        ]
    );
}

/// Istio's `TestTrafficExtensions` tie-break: the workload's namespace before the root
/// namespace, then creationTimestamp (none first, then oldest), then name — not file order.
#[test]
fn ties_by_namespace_then_creation_then_name() {
    let at = |ts: &str| format!("  creationTimestamp: \"{ts}\"\n");
    let with_ts = |ns: &str, name: &str, ts: Option<&str>| {
        let doc = wp(ns, name, "phase: STATS\npriority: 7");
        match ts {
            Some(ts) => doc.replace("spec:\n", &format!("{}spec:\n", at(ts))),
            None => doc,
        }
    };
    let docs = [
        with_ts("istio-system", "a-root-old", Some("2020-01-01T00:00:00Z")),
        with_ts("app", "z-newest", Some("2024-01-01T00:00:00Z")),
        with_ts("app", "b-old", Some("2021-01-01T00:00:00Z")),
        with_ts("app", "a-old", Some("2021-01-01T00:00:00Z")),
        with_ts("app", "y-no-timestamp", None),
        with_ts("app", "m-older", Some("2021-01-01T00:00:00.5+01:00")),
    ]
    .join("---\n");
    let set = parse(&docs).unwrap();
    assert_eq!(
        names(&plugins(&set, &workload("app", &[]))),
        [
            "app.y-no-timestamp",
            "app.m-older",
            "app.a-old",
            "app.b-old",
            "app.z-newest",
            "istio-system.a-root-old",
        ]
    );
}

/// Lua and Wasm extensions are ordered together (extensionfilter's mixed priority test), and
/// the folder fixture gives the chain an ingress gateway gets.
#[test]
fn mixed_lua_and_wasm_order() {
    let set = load_resources(&[fixtures().join("mesh")]).unwrap();
    let gw = workload(
        "istio-ingress",
        &[
            ("gateway.networking.k8s.io/gateway-name", "my-gw"),
            ("istio", "ingressgateway"),
        ],
    );
    let chain = plugins(&set, &gw);
    assert_eq!(
        names(&chain),
        [
            "istio-ingress.openid-connect", // AUTHN 10
            "istio-ingress.add-header",     // AUTHN 5 (Lua)
            "istio-system.basic-auth",      // AUTHN, unset, root namespace
            "istio-ingress.acl-check",      // AUTHZ 1000
            "istio-ingress.header-stats",   // STATS
        ]
    );
    assert!(matches!(chain[1].body, PluginBody::Lua(_)));
}
