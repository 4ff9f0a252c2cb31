//! What each selected plugin is handed: configuration bytes and names, VM environment
//! (`TestBuildVMConfig`), fail strategy (`TestFailurePolicy`), pull secrets
//! (`TestToSecretName`), the effective pull policy (`TestWasmCache` defaults) and a full
//! declaration.

mod common;

use std::path::PathBuf;

use common::{fixtures, oci_ref, parse, plugins, wasm, workload, wp};
use wasp_config::spec::{FailStrategy, TrafficDirection};
use wasp_config::wasmplugin::{
    DEFAULT_ROOT_NAMESPACE, ModuleSource, PluginPhase, PluginType, PullPolicy, PullSecret,
    ResourceKind, load_resources, parse_resources,
};

/// pluginConfig → compact JSON with sorted keys (nested too), numbers as protobuf doubles;
/// `{}`, null or nothing → zero bytes. pluginName → root_id, empty when unset; name
/// `namespace.name`, key `namespace/name`.
#[test]
fn configuration_and_names() {
    let docs = [
        wp(
            "ns",
            "cfg",
            "pluginName: my_root\npluginConfig:\n  z: {y: 1.0, x: [true, null, \"s\"]}\n  a: 2.5",
        ),
        wp("ns", "empty", "pluginConfig: {}"),
        wp("ns", "nil", "pluginConfig:"),
        wp("ns", "absent", ""),
    ]
    .join("---\n");
    let set = parse(&docs).unwrap();
    let chain = plugins(&set, &workload("ns", &[]));
    let by = |name: &str| chain.iter().find(|d| d.name == name).unwrap();
    let cfg = by("ns.cfg");
    assert_eq!(cfg.key, "ns/cfg");
    assert_eq!(
        String::from_utf8(wasm(cfg).configuration.clone()).unwrap(),
        r#"{"a":2.5,"z":{"x":[true,null,"s"],"y":1}}"#
    );
    assert_eq!(wasm(cfg).root_id, "my_root");
    for name in ["ns.empty", "ns.nil", "ns.absent"] {
        assert!(wasm(by(name)).configuration.is_empty(), "{name}");
        assert_eq!(wasm(by(name)).root_id, "", "{name}");
    }
}

/// Istio's `TestBuildVMConfig`: INLINE values are passed, HOST values come from wasp's own
/// environment (missing ones are left out, as Envoy does), ISTIO_META_* inline entries never
/// reach the plugin.
#[test]
fn vm_env() {
    let set = parse(&wp(
        "ns",
        "p",
        "vmConfig:\n  env:\n  - {name: POD_NAME, valueFrom: HOST}\n  - {name: ENV1, value: VAL1}\n  - {name: UNSET_HOST, valueFrom: HOST}\n  - {name: EMPTY}\n  - {name: ISTIO_META_WASM_IMAGE_PULL_SECRET, value: secret}",
    ))
    .unwrap();
    let host = |k: &str| (k == "POD_NAME").then(|| "pod-1".to_string());
    let chain = set.plugins_for(&workload("ns", &[]), DEFAULT_ROOT_NAMESPACE, &host);
    assert_eq!(
        wasm(&chain[0]).env,
        [
            ("POD_NAME".to_string(), "pod-1".to_string()),
            ("ENV1".to_string(), "VAL1".to_string()),
            ("EMPTY".to_string(), String::new()),
        ]
    );
}

/// Istio's `TestFailurePolicy`: FAIL_CLOSE by default, FAIL_OPEN and FAIL_RELOAD as given.
#[test]
fn fail_strategy() {
    let docs = [
        wp("ns", "a-default", ""),
        wp("ns", "b-close", "failStrategy: FAIL_CLOSE"),
        wp("ns", "c-open", "failStrategy: FAIL_OPEN"),
        wp("ns", "d-reload", "failStrategy: FAIL_RELOAD"),
    ]
    .join("---\n");
    let set = parse(&docs).unwrap();
    let got: Vec<FailStrategy> = plugins(&set, &workload("ns", &[]))
        .iter()
        .map(|d| wasm(d).fail_strategy)
        .collect();
    assert_eq!(
        got,
        [
            FailStrategy::FailClose,
            FailStrategy::FailClose,
            FailStrategy::FailOpen,
            FailStrategy::FailReload
        ]
    );
}

/// imagePullSecret: looked up in the plugin's namespace among the loaded Secrets (decoded
/// `.dockerconfigjson`); a missing, misplaced or unusable secret is an error for that plugin
/// only, never an anonymous pull. `kubernetes://[ns/]name` is accepted with the namespace forced
/// to the plugin's (`TestToSecretName`).
#[test]
fn pull_secrets() {
    let set = load_resources(&[fixtures().join("mesh")]).unwrap();
    let gw = workload(
        "istio-ingress",
        &[("gateway.networking.k8s.io/gateway-name", "my-gw")],
    );
    let chain = plugins(&set, &gw);
    let acl = chain
        .iter()
        .find(|d| d.name == "istio-ingress.acl-check")
        .unwrap();
    assert_eq!(
        wasm(acl).pull_secret,
        Some(PullSecret::Found {
            name: "registry-creds".into(),
            dockerconfigjson:
                br#"{"auths":{"registry.example.com:5000":{"auth":"dXNlcjpwYXNzd2Q="}}}"#.to_vec(),
        })
    );
    let stats = chain
        .iter()
        .find(|d| d.name == "istio-ingress.header-stats")
        .unwrap();
    let Some(PullSecret::Unresolved { name, reason }) = &wasm(stats).pull_secret else {
        panic!("{:?}", wasm(stats).pull_secret)
    };
    assert_eq!(name, "missing-creds");
    assert_eq!(
        reason,
        "Secret istio-ingress/missing-creds is not among the plugin sources"
    );

    let secret = |ns: &str, name: &str, body: &str| {
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {ns}}}\n{body}")
    };
    let with = |pull: &str| wp("app", "p", &format!("imagePullSecret: \"{pull}\""));
    let docs = [
        secret("app", "good", "type: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{\"auths\":{}}'\n"),
        secret("other", "elsewhere", "type: kubernetes.io/dockerconfigjson\nstringData: {.dockerconfigjson: x}\n"),
        secret("app", "opaque", "type: Opaque\ndata: {.dockerconfigjson: e30=}\n"),
        secret("app", "nokey", "type: kubernetes.io/dockerconfigjson\ndata: {other: e30=}\n"),
    ]
    .join("---\n");
    let resolve = |pull: &str| {
        let set = parse_resources(&[
            (PathBuf::from("secrets.yaml"), docs.clone()),
            (PathBuf::from("p.yaml"), with(pull)),
        ])
        .unwrap();
        wasm(&plugins(&set, &workload("app", &[]))[0])
            .pull_secret
            .clone()
            .unwrap()
    };
    assert!(
        matches!(resolve("good"), PullSecret::Found { dockerconfigjson, .. } if dockerconfigjson == br#"{"auths":{}}"#)
    );
    assert!(matches!(
        resolve("kubernetes://good"),
        PullSecret::Found { .. }
    ));
    assert!(matches!(
        resolve("kubernetes://other/good"),
        PullSecret::Found { .. }
    ));
    assert!(matches!(
        resolve("other/elsewhere"),
        PullSecret::Unresolved { .. }
    ));
    let PullSecret::Unresolved { reason, .. } = resolve("opaque") else {
        panic!()
    };
    assert!(reason.contains("is of type Opaque"), "{reason}");
    assert!(
        reason.starts_with("Secret app/opaque (secrets.yaml:"),
        "{reason}"
    );
    let PullSecret::Unresolved { reason, .. } = resolve("nokey") else {
        panic!()
    };
    assert!(reason.contains("has no .dockerconfigjson key"), "{reason}");
}

/// The pull policy istio-agent applies (`TestWasmCache` defaults): `:latest` → Always unless
/// a checksum is known; an untagged reference is not `:latest`; IfNotPresent stays.
#[test]
fn effective_pull_policy() {
    let policy = |spec: &str| {
        let set = parse(&wp("ns", "p", spec)).unwrap();
        let w = wasm(&plugins(&set, &workload("ns", &[]))[0]).clone();
        w.pull_policy
            .effective(w.module.as_ref().unwrap(), w.sha256.as_deref())
    };
    let sha = "sha256: 1ef0c9a92b0420cf25f7fe5d481b231464bc88f486ca3b9c83ed5cc21d2f6210";
    assert_eq!(policy("url: oci://r/p:latest"), PullPolicy::Always);
    assert_eq!(policy("url: r/p:latest"), PullPolicy::Always);
    assert_eq!(policy("url: oci://r/p"), PullPolicy::IfNotPresent);
    assert_eq!(policy("url: oci://r/p:1.0"), PullPolicy::IfNotPresent);
    assert_eq!(
        policy(&format!("url: oci://r/p:latest\n{sha}")),
        PullPolicy::IfNotPresent
    );
    assert_eq!(
        policy("url: oci://r/p:latest\nimagePullPolicy: IfNotPresent"),
        PullPolicy::IfNotPresent
    );
    assert_eq!(
        policy("url: oci://r/p:1.0\nimagePullPolicy: Always"),
        PullPolicy::Always
    );
    assert_eq!(
        policy(&format!(
            "url: oci://r/p:1.0\nimagePullPolicy: Always\n{sha}"
        )),
        PullPolicy::IfNotPresent
    );
    assert_eq!(
        policy(
            "url: oci://r/p@sha256:1ef0c9a92b0420cf25f7fe5d481b231464bc88f486ca3b9c83ed5cc21d2f6210\nimagePullPolicy: Always"
        ),
        PullPolicy::IfNotPresent
    );
    assert_eq!(policy("url: https://h/p.wasm"), PullPolicy::IfNotPresent);
    assert_eq!(
        policy("url: https://h/p.wasm\nimagePullPolicy: Always"),
        PullPolicy::Always
    );
}

/// The folder's declarations in full for one plugin: everything the integrator needs.
#[test]
fn declaration_fields() {
    let set = load_resources(&[fixtures().join("mesh")]).unwrap();
    let gw = workload(
        "istio-ingress",
        &[("gateway.networking.k8s.io/gateway-name", "my-gw")],
    );
    let host = |k: &str| (k == "POD_NAME").then(|| "gw-7f9".to_string());
    let chain = set.plugins_for(&gw, DEFAULT_ROOT_NAMESPACE, &host);
    let acl = chain
        .iter()
        .find(|d| d.key == "istio-ingress/acl-check")
        .unwrap();
    assert_eq!(acl.kind, ResourceKind::WasmPlugin);
    assert_eq!(acl.phase, PluginPhase::Authz);
    assert_eq!(acl.priority, Some(1000));
    assert_eq!(acl.resource_version.as_deref(), Some("483920"));
    assert!(acl.matcher.applies_to(TrafficDirection::Outbound, 8080));
    assert!(!acl.matcher.applies_to(TrafficDirection::Outbound, 8081));
    assert!(!acl.matcher.applies_to(TrafficDirection::Inbound, 8080));
    let w = wasm(acl);
    assert_eq!(w.url, "oci://registry.example.com:5000/acl:latest");
    assert_eq!(w.module, oci_ref("registry.example.com:5000/acl:latest"));
    assert_eq!(w.sha256, None);
    assert_eq!(w.pull_policy, PullPolicy::Unspecified);
    assert_eq!(
        w.pull_policy.effective(w.module.as_ref().unwrap(), None),
        PullPolicy::Always
    );
    assert_eq!(w.fail_strategy, FailStrategy::FailClose);
    assert_eq!(w.plugin_type, PluginType::Http);
    assert!(w.configuration.is_empty());
    assert_eq!(
        w.env,
        [
            ("POD_NAME".to_string(), "gw-7f9".to_string()),
            ("TRUST_DOMAIN".to_string(), "cluster.local".to_string()),
        ]
    );
    let openid = chain
        .iter()
        .find(|d| d.key == "istio-ingress/openid-connect")
        .unwrap();
    assert_eq!(
        wasm(openid).module,
        Ok(ModuleSource::File("/opt/filters/openid.wasm".into()))
    );
    assert_eq!(wasm(openid).root_id, "openid_root");
    assert_eq!(
        wasm(openid).configuration,
        br#"{"openid_realm":"ingress","openid_server":"authn"}"#
    );
    let basic = chain.iter().find(|d| d.key == "istio-system/basic-auth");
    assert!(
        basic.is_none(),
        "selector istio=ingressgateway does not match this workload"
    );
}
