//! Which workloads and listeners a WasmPlugin applies to: Istio's `TestMatchListener`
//! (selector and `match`), the ECDS root-vs-namespace cases and `ShouldAttachPolicy` for
//! targetRefs.

mod common;

use common::{names, no_env, parse, plugins, workload, wp};
use wasp_config::spec::TrafficDirection;

/// Istio's `TestMatchListener`: the workload selector and the `match` truth table (SERVER =
/// inbound, CLIENT = outbound; gateways count as CLIENT, i.e. outbound listeners).
#[test]
fn match_listener() {
    let labels = [("a", "b"), ("c", "d")];
    let w = workload("ns", &labels);
    let cases: &[(&str, TrafficDirection, bool)] = &[
        ("", TrafficDirection::Inbound, true),
        (
            "selector: {matchLabels: {a: b}}",
            TrafficDirection::Inbound,
            true,
        ),
        (
            "selector: {matchLabels: {e: f}}",
            TrafficDirection::Inbound,
            false,
        ),
        ("match: [{}]", TrafficDirection::Inbound, true),
        ("match: [{mode: SERVER}]", TrafficDirection::Inbound, true),
        (
            "match: [{mode: SERVER, ports: []}]",
            TrafficDirection::Inbound,
            true,
        ),
        (
            "match: [{mode: SERVER, ports: [{number: 1234}]}]",
            TrafficDirection::Inbound,
            true,
        ),
        (
            "match: [{mode: SERVER, ports: [{number: 1235}]}]",
            TrafficDirection::Inbound,
            false,
        ),
        (
            "selector: {matchLabels: {e: f}}\nmatch: [{mode: SERVER, ports: [{number: 1234}]}]",
            TrafficDirection::Inbound,
            false,
        ),
        (
            "match: [{mode: CLIENT, ports: [{number: 1234}]}]",
            TrafficDirection::Outbound,
            true,
        ),
        (
            "match: [{mode: CLIENT_AND_SERVER, ports: [{number: 1234}]}]",
            TrafficDirection::Outbound,
            true,
        ),
        (
            "match: [{mode: CLIENT_AND_SERVER, ports: [{number: 1234}]}]",
            TrafficDirection::Inbound,
            true,
        ),
        (
            "match: [{mode: SERVER, ports: [{number: 1234}]}]",
            TrafficDirection::Outbound,
            false,
        ),
        ("match: [{mode: CLIENT}]", TrafficDirection::Inbound, false),
        (
            "match: [{mode: UNDEFINED}]",
            TrafficDirection::Outbound,
            true,
        ),
        // Any entry may match.
        (
            "match: [{mode: CLIENT}, {mode: SERVER, ports: [{number: 1234}]}]",
            TrafficDirection::Inbound,
            true,
        ),
        (
            "match: [{mode: CLIENT}, {mode: SERVER, ports: [{number: 9}]}]",
            TrafficDirection::Inbound,
            false,
        ),
    ];
    for (spec, direction, want) in cases {
        let set = parse(&wp("ns", "p", spec)).unwrap();
        let got = plugins(&set, &w)
            .first()
            .is_some_and(|d| d.matcher.applies_to(*direction, 1234));
        assert_eq!(
            got, *want,
            "{spec:?} on a {direction:?} listener, port 1234"
        );
    }
}

/// ECDS root-vs-namespace cases: root-namespace resources apply to every namespace, others
/// only to their own; the root namespace is a parameter.
#[test]
fn root_namespace_scope() {
    let docs = [
        wp("istio-system", "global", ""),
        wp("team-a", "a-only", ""),
        wp("team-b", "b-only", ""),
        wp(
            "istio-system",
            "ingress-only",
            "selector: {matchLabels: {istio: ingressgateway}}",
        ),
    ]
    .join("---\n");
    let set = parse(&docs).unwrap();
    assert_eq!(
        names(&plugins(&set, &workload("team-a", &[]))),
        ["team-a.a-only", "istio-system.global"]
    );
    assert_eq!(
        names(&plugins(&set, &workload("team-c", &[]))),
        ["istio-system.global"]
    );
    assert_eq!(
        names(&plugins(
            &set,
            &workload("istio-system", &[("istio", "ingressgateway")])
        )),
        ["istio-system.global", "istio-system.ingress-only"]
    );
    assert_eq!(
        names(&plugins(
            &set,
            &workload("team-c", &[("istio", "ingressgateway")])
        )),
        ["istio-system.global", "istio-system.ingress-only"]
    );
    // Another root namespace: istio-system is an ordinary namespace then.
    assert_eq!(
        names(&set.plugins_for(&workload("team-c", &[]), "team-b", &no_env)),
        ["team-b.b-only"]
    );
}

/// `ShouldAttachPolicy` for targetRefs: a Gateway ref attaches to the pods of that Gateway API
/// gateway in the same namespace; a Service ref attaches to the routes whose cluster is that
/// service (off elsewhere), on any workload of the namespaces looked at; ServiceEntry and
/// GatewayClass refs never match; other targetRefs policies are ignored (no selector
/// fallback); the legacy `targetRef` is a one-element `targetRefs`.
#[test]
fn target_refs() {
    const GW: &str = "gateway.networking.k8s.io/gateway-name";
    let gateway = |name| {
        format!("targetRefs: [{{group: gateway.networking.k8s.io, kind: Gateway, name: {name}}}]")
    };
    let docs = [
        wp("ingress", "to-my-gw", &gateway("my-gw")),
        wp("ingress", "to-other-gw", &gateway("other-gw")),
        wp("ingress", "legacy", "targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: my-gw}"),
        wp("ingress", "to-service", "targetRefs: [{kind: Service, name: my-gw}]"),
        wp("ingress", "to-class", "targetRefs: [{group: gateway.networking.k8s.io, kind: GatewayClass, name: istio-waypoint}]"),
        wp("ingress", "by-selector", &format!("selector: {{matchLabels: {{\"{GW}\": my-gw}}}}")),
        wp("istio-system", "root-to-my-gw", &gateway("my-gw")),
    ]
    .join("---\n");
    let set = parse(&docs).unwrap();
    assert_eq!(
        names(&plugins(&set, &workload("ingress", &[(GW, "my-gw")]))),
        [
            "ingress.by-selector",
            "ingress.legacy",
            "ingress.to-my-gw",
            "ingress.to-service"
        ]
    );
    let on_gateway = plugins(&set, &workload("ingress", &[(GW, "my-gw")]));
    let to_service = on_gateway
        .iter()
        .find(|d| d.name == "ingress.to-service")
        .unwrap();
    assert!(to_service.routing.default_disabled);
    assert_eq!(
        to_service.routing.rules[0].services,
        ["my-gw.ingress.svc.cluster.local", "my-gw"]
    );
    assert_eq!(
        to_service.routing.rules[0].setting,
        wasp_config::spec::PluginSetting::Enabled
    );
    let to_gateway = on_gateway
        .iter()
        .find(|d| d.name == "ingress.to-my-gw")
        .unwrap();
    assert_eq!(to_gateway.routing, Default::default());
    // Same gateway name, other namespace: the refs are namespace-local.
    assert!(plugins(&set, &workload("elsewhere", &[(GW, "my-gw")])).is_empty());
    // A root-namespace targetRefs policy attaches to gateways of the root namespace only.
    assert_eq!(
        names(&plugins(&set, &workload("istio-system", &[(GW, "my-gw")]))),
        ["istio-system.root-to-my-gw"]
    );
    // Not a Gateway API gateway: targetRefs policies are ignored, even when the labels would
    // match a selector, but for the Service ref.
    assert_eq!(
        names(&plugins(&set, &workload("ingress", &[("app", "my-gw")]))),
        ["ingress.to-service"]
    );
    let r = &set.resources()[2];
    assert_eq!(
        r.attachment,
        parse(&wp("ingress", "x", &gateway("my-gw")))
            .unwrap()
            .resources()[0]
            .attachment
    );
}
