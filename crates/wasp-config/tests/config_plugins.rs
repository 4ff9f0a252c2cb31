//! Plugins in a wasp.yaml: inline module files and Lua scripts, sha256 checks, WasmPlugin
//! sources, field errors, shared VMs, pluginConfig bytes and Istio's plugin order.

mod common;

use common::{BASE, Dir, MODULE, sha256};

fn plugin(fields: &str) -> String {
    format!("{BASE}plugins:\n  inline:\n    - name: p\n{fields}")
}

#[test]
fn plugin_files() {
    let dir = Dir::new();
    let e = dir.error(&plugin("      url: nope.wasm\n"));
    assert!(
        e.starts_with(&format!(
            "wasp.yaml:13:12: plugins.inline[0].url: cannot read {}: No such file or directory (os error 2)",
            dir.path().join("nope.wasm").display()
        )),
        "{e}"
    );
    let e = dir.error(&plugin("      url: https://example.com/p.wasm\n"));
    assert!(
        e.starts_with("wasp.yaml:13:12: plugins.inline[0].url: `https://example.com/p.wasm`: inline plugins are read from files; declare a module fetched over https as a WasmPlugin resource in plugins.sources"),
        "{e}"
    );
    let e = dir.error(&plugin("      url: oci://ghcr.io/x/p:1\n"));
    assert!(
        e.contains(
            "plugins.inline[0].url: `oci://ghcr.io/x/p:1`: inline plugins are read from files; declare a module fetched over oci"
        ),
        "{e}"
    );
    let e = dir.error(&plugin("      url: file://p.wasm\n"));
    assert!(e.contains("needs an absolute path"), "{e}");
    let e = dir.error(&plugin("      pluginName: x\n"));
    assert_eq!(
        e,
        "wasp.yaml:12:13: plugins.inline[0]: one of url (a Wasm module) or lua (a Lua script) is required"
    );
    // A Lua filter instead of a module; its script is compiled at load.
    let spec = dir
        .load(&plugin(
            "      lua: { inlineCode: \"function envoy_on_request(h) end\" }\n",
        ))
        .unwrap()
        .spec;
    assert!(spec.plugins[0].is_lua());
    let e = dir.error(&plugin(
        "      lua: { inlineCode: \"function envoy_on_request(h)\" }\n",
    ));
    assert!(
        e.starts_with("wasp.yaml:13:26: plugins.inline[0].lua.inlineCode: lua script 'p': [string \"function envoy_on_request(h)\"]:1: "),
        "{e}"
    );
    let e = dir.error(&plugin(
        "      url: hello.wasm\n      lua: { inlineCode: \"function envoy_on_request(h) end\" }\n",
    ));
    assert!(e.contains("url and lua are mutually exclusive"), "{e}");
}

#[test]
fn sha256_checked() {
    let dir = Dir::new();
    let good = sha256(MODULE);
    let loaded = dir
        .load(&plugin(&format!(
            "      url: hello.wasm\n      sha256: {}\n",
            good.to_uppercase()
        )))
        .unwrap();
    assert_eq!(&*loaded.spec.plugins[0].wasm().unwrap().module, MODULE);
    let bad = sha256(b"something else");
    let e = dir.error(&plugin(&format!(
        "      url: hello.wasm\n      sha256: {bad}\n"
    )));
    assert_eq!(
        e,
        format!(
            "wasp.yaml:14:15: plugins.inline[0].sha256: sha256 mismatch for file://{}: expected {bad}, actual {good}",
            dir.path().join("hello.wasm").display()
        )
    );
    let e = dir.error(&plugin("      url: hello.wasm\n      sha256: abc\n"));
    assert_eq!(
        e,
        "wasp.yaml:14:15: plugins.inline[0].sha256: `abc` is not a sha256 (64 hex digits)"
    );
}

#[test]
fn plugin_sources() {
    let dir = Dir::new();
    // A missing folder is an error naming the field.
    let e = dir.error(&format!("{BASE}plugins:\n  sources: [./wasmplugins/]\n"));
    assert!(
        e.starts_with("wasp.yaml:11:12: plugins.sources[0]: cannot read "),
        "{e}"
    );
    std::fs::create_dir(dir.path().join("wasmplugins")).unwrap();
    std::fs::write(
        dir.path().join("wasmplugins/auth.yaml"),
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: { name: auth, namespace: istio-system }\nspec:\n  url: oci://registry.local/auth:1\n  phase: AUTHN\n",
    )
    .unwrap();
    let loaded = dir
        .load(&format!(
            "{BASE}plugins:\n  sources: [./wasmplugins/]\n  insecureRegistries: [\"registry.local\"]\n"
        ))
        .unwrap();
    let sources = loaded.plugin_sources.as_ref().unwrap();
    assert_eq!(sources.root_namespace, "istio-system");
    assert_eq!(sources.insecure_registries, ["registry.local"]);
    assert_eq!(sources.sources, [dir.path().join("./wasmplugins/")]);
    let resources = loaded.resources.as_ref().unwrap();
    assert_eq!(resources.resources().len(), 1);
    // Root-namespace plugins apply to every workload.
    let decls = resources.plugins_for(&loaded.workload, &sources.root_namespace, &|_| None);
    assert_eq!(decls[0].key, "istio-system/auth");
    // The fingerprint follows the files' contents.
    let before = sources.fingerprint();
    std::fs::write(dir.path().join("wasmplugins/other.yml"), "").unwrap();
    assert_ne!(sources.fingerprint(), before);
    // An invalid resource fails the load, with its own file and line.
    std::fs::write(
        dir.path().join("wasmplugins/bad.yaml"),
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: { name: bad }\nspec:\n  url: oci://x/y:1\n  phase: SOMETIMES\n",
    )
    .unwrap();
    let e = dir.error(&format!("{BASE}plugins:\n  sources: [./wasmplugins/]\n"));
    assert!(e.contains("bad.yaml:6:"), "{e}");
    assert!(e.contains("spec.phase"), "{e}");
    let e = dir.error(&format!(
        "{BASE}plugins:\n  sources: [./wasmplugins/]\n  insecureRegistries: [\"http://x/\"]\n"
    ));
    assert!(e.contains("plugins.insecureRegistries[0]"), "{e}");
}

#[test]
fn plugin_field_errors() {
    let dir = Dir::new();
    let e = dir.error(&plugin(
        "      url: hello.wasm\n      configuration: x\n      pluginConfig: { a: 1 }\n",
    ));
    assert_eq!(
        e,
        "wasp.yaml:15:21: plugins.inline[0].pluginConfig: configuration and pluginConfig are mutually exclusive"
    );
    let e = dir.error(&plugin("      url: hello.wasm\n      pluginConfig: [1]\n"));
    assert_eq!(
        e,
        "wasp.yaml:14:21: plugins.inline[0].pluginConfig: must be a mapping (use configuration for a plain string)"
    );
    let e = dir.error(&plugin(
        "      url: hello.wasm\n      listeners: [inbound, outbound]\n",
    ));
    assert_eq!(
        e,
        "wasp.yaml:14:28: plugins.inline[0].listeners[1]: unknown listener `outbound` (listeners: inbound)"
    );
    let e = dir.error(&plugin("      url: hello.wasm\n      vmid: x\n"));
    assert!(
        e.starts_with(
            "wasp.yaml:14:7: plugins.inline[0].vmid: unknown field `vmid`, expected one of"
        ),
        "{e}"
    );
}

#[test]
fn shared_vm() {
    let dir = Dir::new();
    let spec = dir
        .load(&plugin(
            "      url: hello.wasm\n      vmId: v\n    - name: q\n      url: hello.wasm\n      vmId: v\n",
        ))
        .unwrap()
        .spec;
    let (p, q) = (
        spec.plugins[0].wasm().unwrap(),
        spec.plugins[1].wasm().unwrap(),
    );
    assert_eq!(p.vm_id, "v");
    assert_eq!(q.vm_id, "v");
    assert!(
        std::sync::Arc::ptr_eq(&p.module, &q.module),
        "one module read once"
    );
    // One vmId over different modules is accepted, as by Envoy: the data plane gives each
    // module its own VM, and the vmId still names their common shared data and queues.
    std::fs::copy(dir.path().join("hello.wasm"), dir.path().join("other.wasm")).unwrap();
    let spec = dir
        .load(&plugin(
            "      url: hello.wasm\n      vmId: v\n    - name: q\n      url: other.wasm\n      vmId: v\n      vmConfiguration: other\n",
        ))
        .unwrap()
        .spec;
    let q = spec.plugins[1].wasm().unwrap();
    assert_eq!(q.vm_id, "v");
    assert_eq!(q.vm_configuration, b"other");
}

fn configuration_of(fields: &str) -> Vec<u8> {
    let dir = Dir::new();
    let spec = dir
        .load(&plugin(&format!("      url: hello.wasm\n{fields}")))
        .unwrap()
        .spec;
    spec.plugins[0].wasm().unwrap().configuration.clone()
}

#[test]
fn plugin_config_is_compact_sorted_json() {
    let bytes =
        configuration_of("      pluginConfig:\n        b:\n          c: [1, x]\n        a: 1\n");
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        r#"{"a":1,"b":{"c":[1,"x"]}}"#
    );
    let bytes = configuration_of(
        "      pluginConfig: { z: { y: 2.0, x: 0.5 }, \"k\\\"q\": \"é\", t: true, n: null }\n",
    );
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        r#"{"k\"q":"é","n":null,"t":true,"z":{"x":0.5,"y":2}}"#
    );
}

#[test]
fn empty_plugin_config_is_no_bytes() {
    assert!(configuration_of("      pluginConfig: {}\n").is_empty());
    assert!(configuration_of("      pluginConfig:\n").is_empty());
    assert!(configuration_of("").is_empty());
    assert_eq!(
        configuration_of("      configuration: '{\"raw\": 1}'\n"),
        br#"{"raw": 1}"#
    );
}

#[test]
fn istio_plugin_order() {
    let dir = Dir::new();
    let mut yaml = format!("{BASE}plugins:\n  inline:\n");
    for (name, phase, priority) in [
        ("unset1", None, None),
        ("stats", Some("STATS"), None),
        ("authz_low", Some("AUTHZ"), Some(-5)),
        ("unspecified", Some("UNSPECIFIED_PHASE"), Some(100)),
        ("authn_none", Some("AUTHN"), None),
        ("authz_high", Some("AUTHZ"), Some(50)),
        ("authn_10", Some("AUTHN"), Some(10)),
        ("authn_20", Some("AUTHN"), Some(20)),
        ("authn_10b", Some("AUTHN"), Some(10)),
        ("unset2", None, None),
        ("authz_none", Some("AUTHZ"), None),
    ] {
        yaml.push_str(&format!("    - name: {name}\n      url: hello.wasm\n"));
        if let Some(phase) = phase {
            yaml.push_str(&format!("      phase: {phase}\n"));
        }
        if let Some(priority) = priority {
            yaml.push_str(&format!("      priority: {priority}\n"));
        }
    }
    let spec = dir.load(&yaml).unwrap().spec;
    let order: Vec<&str> = spec.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        order,
        [
            "authn_20",
            "authn_10",
            "authn_10b",
            "authn_none",
            "authz_high",
            "authz_low",
            "authz_none",
            "stats",
            "unspecified",
            "unset1",
            "unset2",
        ]
    );
    let unspecified = spec
        .plugins
        .iter()
        .find(|p| p.name == "unspecified")
        .unwrap();
    assert_eq!(unspecified.phase, None);
    assert_eq!(unspecified.priority, Some(100));
}

#[test]
fn kubernetes_settings() {
    let dir = Dir::new();
    let settings = |yaml: &str| {
        dir.load(&format!("{BASE}plugins:\n  kubernetes: {yaml}\n"))
            .unwrap()
            .plugin_sources
            .unwrap()
            .kubernetes
            .unwrap()
    };
    let default = settings("{}");
    assert!(default.report_status, "reporting is on unless turned off");
    assert_eq!(default.kubeconfig, None);
    assert!(!settings("{ reportStatus: false }").report_status);
    let e = dir.error(&format!(
        "{BASE}plugins:\n  kubernetes: {{ reportStatus: sometimes }}\n"
    ));
    assert_eq!(
        e,
        "wasp.yaml:11:31: plugins.kubernetes.reportStatus: invalid boolean"
    );
    let e = dir.error(&format!(
        "{BASE}plugins:\n  kubernetes: {{ reportstatus: false }}\n"
    ));
    assert!(e.contains("reportstatus"), "{e}");
}

#[test]
fn network_plugins() {
    let dir = Dir::new();
    dir.write("p.wasm", MODULE);
    let spec = dir
        .load(&plugin("      url: p.wasm\n      type: NETWORK\n"))
        .unwrap()
        .spec;
    assert!(spec.plugins[0].wasm().unwrap().network);
    let spec = dir.load(&plugin("      url: p.wasm\n")).unwrap().spec;
    assert!(!spec.plugins[0].wasm().unwrap().network, "HTTP unless said");
    let e = dir.error(&plugin(
        "      type: NETWORK\n      lua: { inlineCode: \"function envoy_on_request(h) end\" }\n",
    ));
    assert!(
        e.contains("plugins.inline[0].type: a Lua filter is an HTTP filter"),
        "{e}"
    );
    let e = dir.error(&plugin("      url: p.wasm\n      type: L4\n"));
    assert!(e.contains("type"), "{e}");
}
