//! WasmPlugin / TrafficExtension resources: reading, Istio's validation, selection, ordering and
//! what each plugin is handed. The cases mirror Istio's own tests where there is one (named in
//! each test's comment; see §6 of the reference): the CRD corpus `wasm-{valid,invalid}.yaml`,
//! `TestMatchListener`, `ShouldAttachPolicy`, `TestTrafficExtensions`, `TestBuildVMConfig`,
//! `TestFailurePolicy`, `TestToSecretName`, the ECDS root-vs-namespace cases and the cache's
//! pull-policy defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wasp_config::spec::{FailStrategy, TrafficDirection};
use wasp_config::wasmplugin::{
    Attachment, DEFAULT_ROOT_NAMESPACE, EnvVar, LuaDecl, ModuleSource, PluginBody, PluginDecl,
    PluginPhase, PluginType, PullPolicy, PullSecret, ResourceBody, ResourceKind, ResourceSet,
    Timestamp, WasmDecl, load_resources, parse_resources,
};
use wasp_config::{ConfigError, Workload};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wasmplugin")
}

fn parse(yaml: &str) -> Result<ResourceSet, ConfigError> {
    parse_resources(&[(PathBuf::from("plugins.yaml"), yaml.to_string())])
}

fn error(yaml: &str) -> String {
    match parse(yaml) {
        Ok(set) => panic!("expected an error, got {:#?}", set.resources()),
        Err(e) => e.to_string(),
    }
}

/// A WasmPlugin document `ns/name` with these spec lines (indented by two spaces), and a URL
/// unless the lines give one.
fn wp(ns: &str, name: &str, spec: &str) -> String {
    let mut out = format!(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n"
    );
    if !spec.contains("url:") {
        out.push_str("  url: oci://example.com/p:1\n");
    }
    for line in spec.lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn workload(ns: &str, labels: &[(&str, &str)]) -> Workload {
    Workload {
        namespace: ns.to_string(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn plugins(set: &ResourceSet, w: &Workload) -> Vec<PluginDecl> {
    set.plugins_for(w, DEFAULT_ROOT_NAMESPACE, &no_env)
}

fn names(decls: &[PluginDecl]) -> Vec<&str> {
    decls.iter().map(|d| d.name.as_str()).collect()
}

fn wasm(decl: &PluginDecl) -> &WasmDecl {
    decl.wasm().expect("a Wasm plugin")
}

// ------------------------------------------------------------------------------------------
// Reading and validation.

fn oci_ref(reference: &str) -> Result<ModuleSource, wasp_delivery::UrlError> {
    Ok(ModuleSource::Oci(
        wasp_delivery::OciReference::parse(reference).unwrap(),
    ))
}

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

/// The WasmPlugin of the introductions to the feature, as written there: `selector.labels`
/// and `vmConfig` as a list are read as `selector.matchLabels` and `vmConfig.env`, each with a
/// warning naming file, line, field and Istio's spelling.
#[test]
fn introductory_example_as_written() {
    let yaml = "apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: hello-world-wasm, namespace: default }
spec:
  selector:
    labels:
      app: hello-world
  url: oci://my-registry/tetrate/hello-world:v1
  pluginConfig: { greeting: hello, something: anything }
  vmConfig:
    - name: TRUST_DOMAIN
      value: \"cluster.local\"
";
    let set = parse(yaml).unwrap();
    let mut warnings: Vec<String> = set
        .warnings()
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    warnings.sort();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings[1].starts_with(
            "plugins.yaml:7:7: WasmPlugin default/hello-world-wasm: spec.selector.labels: read as `spec.selector.matchLabels`"
        ),
        "{warnings:#?}"
    );
    assert!(
        warnings[0].starts_with(
            "plugins.yaml:11:5: WasmPlugin default/hello-world-wasm: spec.vmConfig: read as `spec.vmConfig.env`"
        ),
        "{warnings:#?}"
    );
    // Selected by the label, configured and given the variable.
    let chain = plugins(&set, &workload("default", &[("app", "hello-world")]));
    assert_eq!(names(&chain), ["default.hello-world-wasm"]);
    let w = wasm(&chain[0]);
    assert_eq!(
        w.env,
        [("TRUST_DOMAIN".to_string(), "cluster.local".to_string())]
    );
    assert_eq!(
        String::from_utf8_lossy(&w.configuration),
        r#"{"greeting":"hello","something":"anything"}"#
    );
    assert!(plugins(&set, &workload("default", &[("app", "other")])).is_empty());
    // The list form is checked as env is.
    let e = error(&wp(
        "ns",
        "p",
        "vmConfig:\n  - {name: A, value: x}\n  - {name: A}",
    ));
    assert!(
        e.contains("spec.vmConfig[1].name: duplicate environment variable `A`"),
        "{e}"
    );
    let e = error(&wp("ns", "p", "vmConfig:\n  - {name: A, vaule: x}"));
    assert!(e.contains("spec.vmConfig[0].vaule: unknown field"), "{e}");
    assert!(e.ends_with("(did you mean `value`?)"), "{e}");
    // Both spellings at once is ambiguous.
    let e = error(&wp(
        "ns",
        "p",
        "selector:\n  labels: {a: b}\n  matchLabels: {a: b}",
    ));
    assert!(
        e.contains("spec.selector.labels: set together with matchLabels"),
        "{e}"
    );
    // The canonical spellings give no warning.
    let set = parse(&wp(
        "ns",
        "p",
        "selector: {matchLabels: {a: b}}\nvmConfig: {env: [{name: A, value: x}]}",
    ))
    .unwrap();
    assert!(set.warnings().is_empty());
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

/// A folder: *.yaml and *.yml sorted by name, hidden files, other files and subfolders
/// skipped; Secrets kept for pull secrets; Lists read item by item; empty documents skipped.
#[test]
fn folder_of_resources() {
    let set = load_resources(&[fixtures().join("mesh")]).unwrap();
    let keys: Vec<String> = set
        .resources()
        .iter()
        .map(|r| format!("{} {}", r.kind, r.key()))
        .collect();
    assert_eq!(
        keys,
        [
            "WasmPlugin istio-system/basic-auth",
            "WasmPlugin istio-ingress/acl-check",
            "WasmPlugin istio-ingress/header-stats",
            "TrafficExtension istio-ingress/add-header",
            "TrafficExtension istio-ingress/openid-connect",
        ]
    );
    let acl = &set.resources()[1];
    assert!(acl.source.file.ends_with("mesh/exported.yml"));
    assert_eq!(acl.source.line, 7);
    assert_eq!(acl.resource_version.as_deref(), Some("483920"));
    let openid = &set.resources()[4];
    assert_eq!(openid.source.line, 16);
}

/// Other kinds are errors (a typo in `kind` must not silently drop a plugin); so are
/// documents without a kind, and YAML syntax errors.
#[test]
fn other_kinds_rejected() {
    let e =
        error("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\n");
    assert!(
        e.starts_with("plugins.yaml:2:7: kind: unsupported kind `VirtualService`"),
        "{e}"
    );
    let e = error(&wp("ns", "a", "").replace("kind: WasmPlugin", "kind: WasmPlugins"));
    assert!(e.contains("unsupported kind `WasmPlugins`"), "{e}");
    let e = error("apiVersion: v1\nkind: List\nitems:\n- kind: Deployment\n");
    assert!(
        e.starts_with("plugins.yaml:4:9: items[0].kind: unsupported kind"),
        "{e}"
    );
    let e = error("metadata: {name: x}\n");
    assert!(e.contains("`kind` is missing"), "{e}");
    let e = error("kind: [\n");
    assert!(e.starts_with("plugins.yaml:"), "{e}");
    // Secrets of any type, and empty documents, are fine.
    let set = parse(
        "---\n# nothing\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: tls}\ntype: kubernetes.io/tls\n---\n",
    )
    .unwrap();
    assert!(set.resources().is_empty());
}

/// The same namespace/name twice is an error, across files and across the two kinds.
#[test]
fn duplicates_rejected() {
    let a = (PathBuf::from("a.yaml"), wp("ns", "p", ""));
    let b = (
        PathBuf::from("b.yaml"),
        format!("# x\n{}", wp("ns", "p", "")),
    );
    let e = parse_resources(&[a.clone(), b]).unwrap_err().to_string();
    assert_eq!(
        e,
        "b.yaml:2:1: WasmPlugin ns/p: metadata.name: duplicate WasmPlugin ns/p (also at a.yaml:1)"
    );
    let te = (
        PathBuf::from("c.yaml"),
        "apiVersion: extensions.istio.io/v1alpha1\nkind: TrafficExtension\nmetadata: {name: p, namespace: ns}\nspec: {lua: {inlineCode: x}}\n".to_string(),
    );
    let e = parse_resources(&[a, te]).unwrap_err().to_string();
    assert!(
        e.contains("TrafficExtension ns/p has the namespace and name of WasmPlugin ns/p"),
        "{e}"
    );
}

/// TrafficExtension (Istio 1.30+): `wasm` is read like WasmPlugin's fields, `lua` is kept
/// for a Lua filter; exactly one of them; no `targetRef` (singular) and `UNSPECIFIED` phase.
#[test]
fn traffic_extension_bodies() {
    let te = |spec: &str| {
        format!(
            "apiVersion: extensions.istio.io/v1alpha1\nkind: TrafficExtension\nmetadata: {{name: t, namespace: ns}}\nspec:\n{spec}"
        )
    };
    let set = parse(&te(
        "  phase: UNSPECIFIED\n  wasm:\n    url: oci://r/p:1\n    pluginConfig: {b: 1, a: 2}\n",
    ))
    .unwrap();
    let d = &plugins(&set, &workload("ns", &[]))[0];
    assert_eq!(d.kind, ResourceKind::TrafficExtension);
    assert_eq!(d.phase, PluginPhase::Unspecified);
    assert_eq!(wasm(d).configuration, br#"{"a":2,"b":1}"#);
    let set = parse(&te(
        "  lua:\n    inlineCode: |\n      function envoy_on_request(h) end\n",
    ))
    .unwrap();
    let d = &plugins(&set, &workload("ns", &[]))[0];
    assert_eq!(
        d.body,
        PluginBody::Lua(LuaDecl {
            inline_code: "function envoy_on_request(h) end\n".into()
        })
    );
    assert_eq!(d.plugin_type(), PluginType::Http);
    assert!(
        error(&te("  phase: AUTHN\n")).contains("spec: exactly one of wasm or lua must be set")
    );
    assert!(
        error(&te("  wasm: {url: x}\n  lua: {inlineCode: y}\n"))
            .contains("exactly one of wasm or lua must be set, found both")
    );
    assert!(
        error(&te("  lua: {inlineCode: \"\"}\n"))
            .contains("spec.lua.inlineCode: must be 1 to 65536 bytes")
    );
    assert!(
        error(&te("  wasm: {}\n")).contains("TrafficExtension ns/t: spec.wasm.url: is required")
    );
    assert!(error(&te("  wasm: {url: x, sha256: nope}\n")).contains("spec.wasm.sha256"));
    assert!(
        error(&te(
            "  targetRef: {kind: Gateway, name: g}\n  lua: {inlineCode: y}\n"
        ))
        .contains("spec.targetRef: unknown field")
    );
    assert!(
        error(&te("  phase: UNSPECIFIED_PHASE\n  lua: {inlineCode: y}\n"))
            .contains("expected UNSPECIFIED, AUTHN, AUTHZ or STATS")
    );
}

// ------------------------------------------------------------------------------------------
// Selection.

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
/// gateway in the same namespace; targetRefs policies are ignored on other workloads; Service,
/// ServiceEntry and GatewayClass refs attach to waypoints only; the legacy `targetRef` is a
/// one-element `targetRefs`.
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
        ["ingress.by-selector", "ingress.legacy", "ingress.to-my-gw"]
    );
    // Same gateway name, other namespace: the refs are namespace-local.
    assert!(plugins(&set, &workload("elsewhere", &[(GW, "my-gw")])).is_empty());
    // A root-namespace targetRefs policy attaches to gateways of the root namespace only.
    assert_eq!(
        names(&plugins(&set, &workload("istio-system", &[(GW, "my-gw")]))),
        ["istio-system.root-to-my-gw"]
    );
    // Not a Gateway API gateway: targetRefs policies are ignored, even when the labels would
    // match a selector.
    assert!(plugins(&set, &workload("ingress", &[("app", "my-gw")])).is_empty());
    let r = &set.resources()[2];
    assert_eq!(
        r.attachment,
        parse(&wp("ingress", "x", &gateway("my-gw")))
            .unwrap()
            .resources()[0]
            .attachment
    );
}

// ------------------------------------------------------------------------------------------
// Ordering.

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

// ------------------------------------------------------------------------------------------
// What each plugin is handed.

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

/// Reading errors name the path.
#[test]
fn unreadable_sources() {
    let missing = fixtures().join("nope");
    let e = load_resources(std::slice::from_ref(&missing)).unwrap_err();
    assert_eq!(e.file(), Some(missing.as_path()));
    assert!(e.message().contains("cannot read"), "{e}");
}

// ----- EnvoyFilter with a Lua filter (the form most Istio users run Lua with) -----

/// An EnvoyFilter `ns/name` with these configPatches (already indented under the list).
fn envoy_filter(ns: &str, name: &str, extra_spec: &str, patches: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{extra_spec}  configPatches:\n{patches}"
    )
}

const LUA_BEFORE_ROUTER: &str = r#"  - applyTo: HTTP_FILTER
    match:
      context: SIDECAR_INBOUND
      listener:
        portNumber: 8080
        filterChain:
          filter:
            name: envoy.filters.network.http_connection_manager
            subFilter: { name: envoy.filters.http.router }
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.lua
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
          inlineCode: |
            function envoy_on_request(handle) handle:headers():add("x-lua", "1") end
"#;

#[test]
fn envoy_filter_lua_patches_become_lua_plugins() {
    let yaml = [
        envoy_filter(
            "shop",
            "lua-late",
            "  workloadSelector: { labels: { app: cart } }\n",
            LUA_BEFORE_ROUTER,
        ),
        envoy_filter(
            "shop",
            "lua-first",
            "",
            r#"  - applyTo: HTTP_FILTER
    patch:
      operation: INSERT_FIRST
      value:
        name: envoy.lua
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
          default_source_code: { inline_string: "function envoy_on_response(h) end" }
"#,
        ),
        wp("shop", "authn", "phase: AUTHN\n"),
        wp("shop", "plain", ""),
    ]
    .join("---\n");
    let set = parse(&yaml).unwrap();
    let w = workload("shop", &[("app", "cart")]);
    let decls = plugins(&set, &w);
    // INSERT_FIRST before every WasmPlugin; INSERT_BEFORE the router after all of them.
    assert_eq!(
        names(&decls),
        [
            "shop.lua-first",
            "shop.authn",
            "shop.plain",
            "shop.lua-late"
        ]
    );
    let late = decls.last().unwrap();
    assert_eq!(late.kind, ResourceKind::EnvoyFilter);
    assert_eq!(late.phase, PluginPhase::BeforeRouter);
    match &late.body {
        PluginBody::Lua(LuaDecl { inline_code }) => {
            assert!(inline_code.contains("x-lua"), "{inline_code}");
        }
        other => panic!("{other:?}"),
    }
    // SIDECAR_INBOUND + portNumber: inbound listeners on 8080 only.
    assert!(late.matcher.applies_to(TrafficDirection::Inbound, 8080));
    assert!(!late.matcher.applies_to(TrafficDirection::Inbound, 9090));
    assert!(!late.matcher.applies_to(TrafficDirection::Outbound, 8080));
    // workloadSelector: another workload does not get it.
    let other = plugins(&set, &workload("shop", &[("app", "web")]));
    assert!(!names(&other).contains(&"shop.lua-late"));
}

#[test]
fn envoy_filter_priority_orders_patches_as_istio_applies_them() {
    // Lower priority is applied first, so before the router it comes first.
    let yaml = [
        envoy_filter("shop", "b", "  priority: 10\n", LUA_BEFORE_ROUTER),
        envoy_filter("shop", "a", "  priority: -5\n", LUA_BEFORE_ROUTER),
        envoy_filter("shop", "c", "", LUA_BEFORE_ROUTER),
    ]
    .join("---\n");
    let set = parse(&yaml).unwrap();
    let decls = plugins(&set, &workload("shop", &[]));
    assert_eq!(names(&decls), ["shop.a", "shop.c", "shop.b"]);
}

#[test]
fn envoy_filter_patches_other_than_lua_are_refused_clearly() {
    let cluster_patch = envoy_filter(
        "shop",
        "cluster",
        "",
        "  - applyTo: CLUSTER\n    patch:\n      operation: MERGE\n      value: { connect_timeout: 1s }\n",
    );
    let e = error(&cluster_patch);
    assert!(
        e.contains("spec.configPatches[0].applyTo: CLUSTER patches are not supported"),
        "{e}"
    );
    assert!(e.contains("EnvoyFilter shop/cluster"), "{e}");
    assert!(e.starts_with("plugins.yaml:"), "{e}");

    let other_filter = LUA_BEFORE_ROUTER
        .replace("envoy.filters.http.lua", "envoy.filters.http.cors")
        .replace(
            "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "x",
        );
    let e = error(&envoy_filter("shop", "cors", "", &other_filter));
    assert!(
        e.contains("only envoy.filters.http.lua filters are supported"),
        "{e}"
    );

    let merge = LUA_BEFORE_ROUTER.replace("INSERT_BEFORE", "MERGE");
    let e = error(&envoy_filter("shop", "merge", "", &merge));
    assert!(e.contains("operation MERGE is not supported"), "{e}");

    let before_cors = LUA_BEFORE_ROUTER.replace(
        "subFilter: { name: envoy.filters.http.router }",
        "subFilter: { name: envoy.filters.http.cors }",
    );
    let e = error(&envoy_filter("shop", "before-cors", "", &before_cors));
    assert!(e.contains("INSERT_BEFORE envoy.filters.http.cors"), "{e}");

    let no_code = LUA_BEFORE_ROUTER.replace(
        "          inlineCode: |\n            function envoy_on_request(handle) handle:headers():add(\"x-lua\", \"1\") end\n",
        "",
    );
    let e = error(&envoy_filter("shop", "empty", "", &no_code));
    assert!(e.contains("no inline code"), "{e}");

    let bad_version = envoy_filter("shop", "v", "", LUA_BEFORE_ROUTER)
        .replace("networking.istio.io/v1alpha3", "networking.istio.io/v2");
    let e = error(&bad_version);
    assert!(
        e.contains("unsupported apiVersion `networking.istio.io/v2`"),
        "{e}"
    );
}
