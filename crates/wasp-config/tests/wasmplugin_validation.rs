//! WasmPlugin validation, as Istio's CRD and webhook do it: the `wasm-{valid,invalid}.yaml`
//! corpus, the error format (file, line, column, resource, field), unknown fields and their
//! near spellings, metadata rules and enums by name or number.

mod common;

use std::path::PathBuf;

use common::{error, fixtures, oci_ref, parse, plugins, wasm, workload, wp};
use wasp_config::spec::{FailStrategy, TrafficDirection};
use wasp_config::wasmplugin::{
    Attachment, EnvVar, ModuleSource, PluginPhase, PluginType, PullPolicy, ResourceBody, Timestamp,
    load_resources, parse_resources,
};

/// Istio's `wasm-valid.yaml`: every document is accepted, with Istio's defaults.
#[test]
fn istio_valid_corpus() {
    let set = load_resources(&[fixtures().join("istio-valid.yaml")]).unwrap();
    let r = set.resources();
    assert_eq!(r.len(), 4);
    assert_eq!(r[0].key(), "default/full");
    assert_eq!(r[0].phase, PluginPhase::Authn);
    assert_eq!(r[0].source.line, 3);
    assert_eq!(
        r[0].attachment,
        Attachment::Selector([("istio".to_string(), "ingressgateway".to_string())].into())
    );
    let ResourceBody::Wasm(full) = &r[0].body else {
        panic!()
    };
    assert_eq!(
        full.module,
        Ok(ModuleSource::File("/opt/filters/openid.wasm".into()))
    );
    assert_eq!(
        full.sha256.as_deref(),
        Some("1ef0c9a92b0420cf25f7fe5d481b231464bc88f486ca3b9c83ed5cc21d2f6210")
    );
    let ResourceBody::Wasm(no_scheme) = &r[2].body else {
        panic!()
    };
    // No scheme: istiod's default is oci://.
    assert_eq!(no_scheme.url, "oci://test");
    assert_eq!(no_scheme.module, oci_ref("test"));
    let ResourceBody::Wasm(env) = &r[3].body else {
        panic!()
    };
    assert_eq!(
        env.env,
        vec![
            EnvVar::Host {
                name: "test".into()
            },
            EnvVar::Inline {
                name: "test2".into(),
                value: "test".into()
            },
            EnvVar::Inline {
                name: "test3".into(),
                value: "test".into()
            },
        ]
    );
}

/// Istio's `wasm-invalid.yaml`, plus the webhook's rules: each is rejected, at the field.
#[test]
fn istio_invalid_corpus() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "match:\n  - ports:\n    - {}",
            "spec.match[0].ports[0].number",
            "is required",
        ),
        ("url: \"\"", "spec.url", "must not be empty"),
        (
            "url: \"#%blah$#@\"",
            "spec.url",
            "url must have schema one of",
        ),
        (
            "url: \"fake://example.com\"",
            "spec.url",
            "url must have schema one of",
        ),
        (
            "url: \"http://test\"\nsha256: foo",
            "spec.sha256",
            "64 lowercase hex",
        ),
        (
            "sha256: 1EF0C9A92B0420CF25F7FE5D481B231464BC88F486CA3B9C83ED5CC21D2F6210",
            "spec.sha256",
            "64 lowercase hex",
        ),
        (
            "imagePullSecret: \"\"",
            "spec.imagePullSecret",
            "1 to 253 characters",
        ),
        ("pluginName: \"\"", "spec.pluginName", "1 to 256 characters"),
        (
            "vmConfig:\n  env:\n  - name: a\n  - name: a",
            "spec.vmConfig.env[1].name",
            "duplicate environment variable `a`",
        ),
        (
            "vmConfig:\n  env:\n    - name: \"\"",
            "spec.vmConfig.env[0].name",
            "1 to 256 characters",
        ),
        (
            "vmConfig:\n  env:\n  - name: test\n    valueFrom: HOST\n    value: value",
            "spec.vmConfig.env[0].value",
            "value may only be set when valueFrom is INLINE",
        ),
        (
            "selector:\n  matchLabels:\n    istio: \"bar*\"",
            "spec.selector.matchLabels.istio",
            "wildcard not allowed in label value match",
        ),
        (
            "selector:\n  matchLabels:\n    \"istio*\": bar",
            "spec.selector.matchLabels.istio*",
            "wildcard not allowed in label key match",
        ),
        (
            "match:\n  - ports: [{number: 0}]",
            "spec.match[0].ports[0].number",
            "invalid port 0",
        ),
        (
            "match:\n  - ports: [{number: 70000}]",
            "spec.match[0].ports[0].number",
            "invalid port 70000",
        ),
        (
            "match:\n  - ports: [{number: 80}, {number: 80}]",
            "spec.match[0].ports[1].number",
            "duplicate port 80",
        ),
        ("priority: 2147483648", "spec.priority", "out of range"),
        (
            "selector: {matchLabels: {a: b}}\ntargetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]",
            "spec.targetRefs",
            "only one of selector, targetRef or targetRefs",
        ),
        (
            "targetRef: {kind: Gateway, group: gateway.networking.k8s.io, name: gw}\ntargetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]",
            "spec.targetRefs",
            "only one of selector, targetRef or targetRefs",
        ),
        (
            "targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw, namespace: other}]",
            "spec.targetRefs[0].namespace",
            "cross namespace referencing is not currently supported",
        ),
        (
            "targetRefs: [{kind: Deployment, group: apps, name: web}]",
            "spec.targetRefs[0].kind",
            "targetRef must be to one of",
        ),
        (
            "targetRefs: [{group: gateway.networking.k8s.io, name: gw}]",
            "spec.targetRefs[0].kind",
            "is required",
        ),
        (
            "phase: LATE",
            "spec.phase",
            "unknown value \"LATE\", expected UNSPECIFIED_PHASE, AUTHN, AUTHZ or STATS",
        ),
        (
            "failStrategy: FAIL_SOMETIMES",
            "spec.failStrategy",
            "expected FAIL_CLOSE, FAIL_OPEN or FAIL_RELOAD",
        ),
        (
            "type: GRPC",
            "spec.type",
            "expected UNSPECIFIED_PLUGIN_TYPE, HTTP or NETWORK",
        ),
        (
            "match: [{mode: BOTH}]",
            "spec.match[0].mode",
            "expected UNDEFINED, CLIENT, SERVER or CLIENT_AND_SERVER",
        ),
        (
            "vmConfig: {env: [{name: A, valueFrom: ENV}]}",
            "spec.vmConfig.env[0].valueFrom",
            "expected INLINE or HOST",
        ),
        (
            "pluginConfig: [1, 2]",
            "spec.pluginConfig",
            "must be a mapping",
        ),
        ("url: file://relative.wasm", "spec.url", "absolute path"),
    ];
    for (spec, path, message) in cases {
        let e = error(&wp("ns", "bad", spec));
        assert!(
            e.contains(&format!("WasmPlugin ns/bad: {path}: ")) && e.contains(message),
            "spec {spec:?}: expected `{path}: ...{message}...`, got `{e}`"
        );
        assert!(e.starts_with("plugins.yaml:"), "{e}");
    }
    // `spec:` null, and `url:` null.
    let e = error(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: nil}\nspec:\n",
    );
    assert_eq!(
        e,
        "plugins.yaml:1:1: WasmPlugin default/nil: spec: is required"
    );
    let e = error(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: nested-nil}\nspec:\n  url:\n  phase: AUTHN\n",
    );
    assert_eq!(
        e,
        "plugins.yaml:5:3: WasmPlugin default/nested-nil: spec.url: is required"
    );
}

/// The error format: file, line and column, the resource, the field path, what is wrong.
#[test]
fn error_names_file_line_resource_and_field() {
    let text = std::fs::read_to_string(fixtures().join("auth.yaml")).unwrap();
    let e = parse_resources(&[(PathBuf::from("plugins/auth.yaml"), text)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "plugins/auth.yaml:13:20: WasmPlugin istio-system/auth: spec.imagePullPolicy: unknown \
         value \"Sometimes\", expected UNSPECIFIED_POLICY, IfNotPresent or Always"
    );
    assert_eq!(e.resource(), Some("WasmPlugin istio-system/auth"));
    assert_eq!(e.path(), "spec.imagePullPolicy");
    assert_eq!((e.line(), e.column()), (Some(13), Some(20)));
}

/// Unknown fields are rejected at every level (deserialization errors carry the path too),
/// also inside a List, and in the second document of a file.
#[test]
fn unknown_fields_rejected() {
    let e = error(&wp("ns", "p", "imagePullPolicyy: Always"));
    assert!(
        e.starts_with("plugins.yaml:8:3: WasmPlugin ns/p: spec.imagePullPolicyy: unknown field"),
        "{e}"
    );
    let e = error(&wp(
        "ns",
        "p",
        "vmConfig:\n  env:\n  - name: A\n    valeu: x",
    ));
    assert!(
        e.starts_with(
            "plugins.yaml:11:7: WasmPlugin ns/p: spec.vmConfig.env[0].valeu: unknown field"
        ),
        "{e}"
    );
    let two = format!("{}---\n{}", wp("ns", "a", ""), wp("ns", "b", "selectr: {}"));
    let e = error(&two);
    assert!(
        e.starts_with("plugins.yaml:16:3: WasmPlugin ns/b: spec.selectr: unknown field"),
        "{e}"
    );
    let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: extensions.istio.io/v1alpha1\n  kind: WasmPlugin\n  metadata: {name: a, namespace: ns}\n  spec: {url: x}\n- apiVersion: extensions.istio.io/v1alpha1\n  kind: WasmPlugin\n  metadata: {name: b, namespace: ns}\n  spec:\n    url: x\n    phase: AUTHZ\n    prio: 3\n";
    let e = error(list);
    assert!(
        e.starts_with("plugins.yaml:14:5: WasmPlugin ns/b: items[1].spec.prio: unknown field"),
        "{e}"
    );
    let e = error(&wp("ns", "p", "priority: high"));
    assert!(
        e.starts_with("plugins.yaml:8:13: WasmPlugin ns/p: spec.priority: "),
        "{e}"
    );
    let e = error(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: p, labels: {a: b}, owner: me}\nspec: {url: x}\n",
    );
    assert!(
        e.contains("WasmPlugin default/p: metadata.owner: unknown field"),
        "{e}"
    );
}

/// An unknown field that is a near spelling of a real one says which.
#[test]
fn unknown_fields_suggest_the_near_spelling() {
    let e = error(&wp("ns", "p", "imagePullPolicyy: Always"));
    assert!(e.ends_with("(did you mean `imagePullPolicy`?)"), "{e}");
    let e = error(&wp("ns", "p", "plugin_config: {a: 1}"));
    assert!(e.contains("spec.plugin_config: unknown field"), "{e}");
    assert!(e.ends_with("(did you mean `pluginConfig`?)"), "{e}");
    let e = error(&wp("ns", "p", "selector:\n  matchlabels: {app: x}"));
    assert!(e.ends_with("(did you mean `matchLabels`?)"), "{e}");
    // Nothing near: no guess.
    let e = error(&wp("ns", "p", "colour: red"));
    assert!(!e.contains("did you mean"), "{e}");
}

/// Metadata: names, namespaces and timestamps are checked; apiVersion must be v1alpha1.
#[test]
fn metadata_rules() {
    let doc = |meta: &str| {
        format!(
            "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {meta}\nspec: {{url: x}}\n"
        )
    };
    let e = error(&doc("{namespace: ns}"));
    assert_eq!(
        e,
        "plugins.yaml:3:11: WasmPlugin ns/(no name): metadata.name: is required"
    );
    assert!(error(&doc("{name: Auth}")).contains("metadata.name: invalid name `Auth`"));
    assert!(
        error(&doc("{name: a, namespace: a.b}")).contains("metadata.namespace: invalid namespace")
    );
    assert!(
        error(&doc("{name: a, creationTimestamp: yesterday}"))
            .contains("metadata.creationTimestamp: invalid timestamp `yesterday`")
    );
    let e = error(&doc("{name: a}").replace("v1alpha1", "v1beta1"));
    assert!(
        e.contains("apiVersion: unsupported apiVersion `extensions.istio.io/v1beta1`"),
        "{e}"
    );
    let set = parse(&doc(
        "{name: a, creationTimestamp: \"2024-05-01T14:00:00+02:00\", resourceVersion: 42}",
    ))
    .unwrap();
    let r = &set.resources()[0];
    assert_eq!(r.namespace, "default");
    assert_eq!(
        r.creation_timestamp,
        Some(Timestamp {
            seconds: 1_714_564_800,
            nanos: 0
        })
    );
    assert_eq!(r.resource_version.as_deref(), Some("42"));
}

/// Enum fields take Istio's names or their numbers (protojson accepts both).
#[test]
fn enums_by_name_or_number() {
    let set = parse(&wp(
        "ns",
        "p",
        "phase: 2\nfailStrategy: 1\nimagePullPolicy: 2\ntype: 2\nmatch: [{mode: 2}]\nvmConfig: {env: [{name: A, valueFrom: 1}]}",
    ))
    .unwrap();
    let d = &plugins(&set, &workload("ns", &[]))[0];
    assert_eq!(d.phase, PluginPhase::Authz);
    assert_eq!(d.plugin_type(), PluginType::Network);
    let w = wasm(d);
    assert_eq!(w.fail_strategy, FailStrategy::FailOpen);
    assert_eq!(w.pull_policy, PullPolicy::Always);
    assert!(d.matcher.applies_to(TrafficDirection::Inbound, 1));
    assert!(!d.matcher.applies_to(TrafficDirection::Outbound, 1));
    assert!(error(&wp("ns", "p", "phase: 4")).contains("unknown value 4"));
}
