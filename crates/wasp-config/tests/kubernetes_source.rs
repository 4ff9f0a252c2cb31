//! The Kubernetes source against `wasp-kube-emulator`, an emulator of the apiserver's
//! list/watch protocol (no kube-apiserver can run here): objects created, changed and deleted
//! are followed; a watch cut mid-stream and history compacted (410) still converge; an object
//! that does not parse is reported and left out while the others stay.

use std::time::Duration;

use serde_json::{Value, json};
use wasp_config::kubernetes::KubernetesSource;
use wasp_kube_emulator::{KubeEmulator, Options};

fn client(emulator: &KubeEmulator) -> kube::Client {
    let mut config = kube::Config::new(emulator.base_url().parse().unwrap());
    config.root_cert = Some(vec![emulator.ca_der().to_vec()]);
    config.auth_info.token = Some(emulator.token().to_string().into());
    kube::Client::try_from(config).unwrap()
}

fn wasm_plugin(namespace: &str, name: &str, url: &str) -> Value {
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"url": url, "pluginConfig": {"greeting": "hello"}}
    })
}

/// `namespace/name url` of every resource the source holds now, sorted.
fn seen(source: &KubernetesSource) -> Vec<String> {
    let (set, _) = source.resources();
    let mut names: Vec<String> = set
        .resources()
        .iter()
        .map(|r| format!("{}/{}", r.namespace, r.name))
        .collect();
    names.sort();
    names
}

/// Waits (up to 5 s) until `check` holds for the source.
async fn until(source: &KubernetesSource, mut check: impl FnMut(&KubernetesSource) -> bool) {
    let mut changed = source.changed();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !check(source) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(
            tokio::time::timeout(left, changed.changed()).await.is_ok(),
            "not reached; the source holds {:?}",
            seen(source)
        );
    }
}

#[tokio::test]
async fn follows_creation_change_and_deletion_in_both_namespaces() {
    let emulator = KubeEmulator::start(Options::default()).await.unwrap();
    emulator
        .create(wasm_plugin("default", "early", "oci://r.example/early:v1"))
        .unwrap();
    let source = KubernetesSource::start(
        client(&emulator),
        &["default".into(), "istio-system".into()],
    );
    until(&source, |s| seen(s) == ["default/early"]).await;

    emulator
        .create(wasm_plugin(
            "istio-system",
            "mesh-wide",
            "oci://r.example/m:v1",
        ))
        .unwrap();
    emulator
        .create(wasm_plugin("elsewhere", "ignored", "oci://r.example/x:v1"))
        .unwrap();
    until(&source, |s| {
        seen(s) == ["default/early", "istio-system/mesh-wide"]
    })
    .await;

    let mut changed = wasm_plugin("default", "early", "oci://r.example/early:v2");
    changed["metadata"]["resourceVersion"] = emulator
        .get(
            "extensions.istio.io/v1alpha1",
            "WasmPlugin",
            "default",
            "early",
        )
        .unwrap()["metadata"]["resourceVersion"]
        .clone();
    emulator.replace(changed).unwrap();
    until(&source, |s| {
        s.resources().0.resources().iter().any(|r| {
            r.name == "early"
                && r.resource_version.as_deref() != Some("1")
                && format!("{:?}", r).contains("early:v2")
        })
    })
    .await;

    emulator
        .delete(
            "extensions.istio.io/v1alpha1",
            "WasmPlugin",
            "default",
            "early",
        )
        .unwrap();
    until(&source, |s| seen(s) == ["istio-system/mesh-wide"]).await;
}

#[tokio::test]
async fn a_cut_watch_and_compacted_history_still_converge() {
    let emulator = KubeEmulator::start(Options::default()).await.unwrap();
    let source = KubernetesSource::start(client(&emulator), &["default".into()]);
    emulator
        .create(wasm_plugin("default", "one", "oci://r.example/one:v1"))
        .unwrap();
    until(&source, |s| seen(s) == ["default/one"]).await;
    let lists_before = emulator.requests("list");

    // Changes made while no watch is open, then history the watch would resume from is
    // gone: the watcher gets 410 Expired and lists again.
    emulator.drop_watches();
    emulator
        .create(wasm_plugin("default", "two", "oci://r.example/two:v1"))
        .unwrap();
    emulator
        .delete(
            "extensions.istio.io/v1alpha1",
            "WasmPlugin",
            "default",
            "one",
        )
        .unwrap();
    emulator.compact();
    emulator.drop_watches();
    until(&source, |s| seen(s) == ["default/two"]).await;
    // The resumed watch met 410 Expired: only a new list could bring it back.
    assert!(
        emulator.requests("list") > lists_before,
        "lists: {} before, {} after",
        lists_before,
        emulator.requests("list")
    );
}

#[tokio::test]
async fn a_resource_that_does_not_parse_is_reported_and_the_others_stay() {
    let emulator = KubeEmulator::start(Options::default()).await.unwrap();
    emulator
        .create(wasm_plugin("default", "good", "oci://r.example/good:v1"))
        .unwrap();
    let mut bad = wasm_plugin("default", "bad", "oci://r.example/bad:v1");
    bad["spec"]["phase"] = json!("SOMETIMES");
    emulator.create(bad).unwrap();
    let source = KubernetesSource::start(client(&emulator), &["default".into()]);
    until(&source, |s| {
        seen(s) == ["default/good"] && !s.resources().1.is_empty()
    })
    .await;
    let (_, errors) = source.resources();
    let message = errors[0].to_string();
    assert!(
        message.contains("kubernetes/default/wasmplugins/bad"),
        "{message}"
    );
    assert!(message.contains("phase"), "{message}");
}
