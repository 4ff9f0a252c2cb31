//! Which documents are read and how: the introductory example as written, folders of YAML
//! files, Lists, other kinds, duplicates, TrafficExtension bodies (`wasm` or `lua`) and
//! unreadable sources.

mod common;

use std::path::PathBuf;

use common::{error, fixtures, names, parse, plugins, wasm, workload, wp};
use wasp_config::wasmplugin::{
    LuaDecl, PluginBody, PluginPhase, PluginType, ResourceKind, load_resources, parse_resources,
};

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
            inline_code: "function envoy_on_request(h) end\n".into(),
            filter_name: String::new(),
            source_codes: Default::default(),
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

/// Reading errors name the path.
#[test]
fn unreadable_sources() {
    let missing = fixtures().join("nope");
    let e = load_resources(std::slice::from_ref(&missing)).unwrap_err();
    assert_eq!(e.file(), Some(missing.as_path()));
    assert!(e.message().contains("cannot read"), "{e}");
}
