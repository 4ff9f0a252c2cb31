//! The Kubernetes source against `wasp-kube-emulator`, an emulator of the apiserver's
//! list/watch protocol (no kube-apiserver can run here): objects created, changed and deleted
//! are followed; a watch cut mid-stream and history compacted (410) still converge; an object
//! that does not parse is reported and left out while the others stay.

use std::time::Duration;

use serde_json::{Value, json};
use wasp_config::kubernetes::KubernetesSource;
use wasp_config::wasmplugin::PullSecret;
use wasp_kube_emulator::{KubeEmulator, Options, Rule};

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
    let set = source.resources().set;
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
        s.resources().set.resources().iter().any(|r| {
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
        seen(s) == ["default/good"] && !s.resources().invalid.is_empty()
    })
    .await;
    let resources = source.resources();
    assert_eq!(resources.invalid[0].0.name, "bad");
    let message = resources.errors().next().unwrap().to_string();
    assert!(
        message.contains("kubernetes/default/wasmplugins/bad"),
        "{message}"
    );
    assert!(message.contains("phase"), "{message}");
}

/// The pull secret a WasmPlugin of the default namespace resolves to now: its
/// `.dockerconfigjson`, or why it is unresolved.
fn pull_secret_of(source: &KubernetesSource) -> Option<Result<String, String>> {
    let set = source.resources().set;
    let workload = wasp_config::Workload::default();
    let decls = set.plugins_for(&workload, "istio-system", &|_| None);
    let decl = decls.first()?;
    let wasp_config::wasmplugin::PluginBody::Wasm(wasm) = &decl.body else {
        return None;
    };
    match wasm.pull_secret.as_ref()? {
        PullSecret::Found {
            dockerconfigjson, ..
        } => Some(Ok(String::from_utf8_lossy(dockerconfigjson).into_owned())),
        PullSecret::Unresolved { reason, .. } => Some(Err(reason.clone())),
    }
}

fn docker_secret(name: &str, auth: &str) -> Value {
    use base64::Engine as _;
    let config = format!(r#"{{"auths":{{"r.example":{{"auth":"{auth}"}}}}}}"#);
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "default"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(config)}
    })
}

#[tokio::test]
async fn the_named_pull_secret_is_watched_by_name_and_its_changes_followed() {
    let emulator = KubeEmulator::start(Options::default()).await.unwrap();
    let mut plugin = wasm_plugin("default", "private", "oci://r.example/private:v1");
    plugin["spec"]["imagePullSecret"] = json!("pull");
    emulator.create(plugin).unwrap();
    emulator.create(docker_secret("other", "b3RoZXI=")).unwrap();
    // Least privilege, as deploy/ grants it: the plugin kinds, and the one Secret by name.
    emulator.set_rules(vec![
        Rule::allow(
            &["get", "list", "watch"],
            "extensions.istio.io",
            &["wasmplugins", "trafficextensions"],
        ),
        Rule::allow(
            &["get", "list", "watch"],
            "networking.istio.io",
            &["envoyfilters"],
        ),
        Rule::allow(&["get", "list", "watch"], "", &["secrets"]).names(&["pull"]),
    ]);
    let source = KubernetesSource::start(client(&emulator), &["default".into()]);
    // Named but absent: unresolved, as Istio fails the fetch.
    until(&source, |s| matches!(pull_secret_of(s), Some(Err(_)))).await;

    emulator.create(docker_secret("pull", "Zmlyc3Q=")).unwrap();
    until(
        &source,
        |s| matches!(pull_secret_of(s), Some(Ok(c)) if c.contains("Zmlyc3Q=")),
    )
    .await;

    let mut changed = docker_secret("pull", "c2Vjb25k");
    changed["metadata"]["resourceVersion"] =
        emulator.get("v1", "Secret", "default", "pull").unwrap()["metadata"]["resourceVersion"]
            .clone();
    emulator.replace(changed).unwrap();
    until(
        &source,
        |s| matches!(pull_secret_of(s), Some(Ok(c)) if c.contains("c2Vjb25k")),
    )
    .await;
    // Only the named Secret was ever asked for, by name.
    let set = source.resources().set;
    assert_eq!(
        set.pull_secret_names(),
        [("default".to_string(), "pull".to_string())]
    );
}

#[tokio::test]
async fn the_apiserver_gone_keeps_the_last_objects_and_its_return_resumes() {
    let emulator = KubeEmulator::start(Options::default()).await.unwrap();
    emulator
        .create(wasm_plugin("default", "kept", "oci://r.example/kept:v1"))
        .unwrap();
    let source = KubernetesSource::start(client(&emulator), &["default".into()]);
    until(&source, |s| seen(s) == ["default/kept"]).await;

    emulator.stop().await;
    // Retries fail for a while: what was seen stays in use.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(seen(&source), ["default/kept"]);

    emulator.restart().await.unwrap();
    emulator
        .create(wasm_plugin("default", "after", "oci://r.example/after:v1"))
        .unwrap();
    // kube's backoff may wait some seconds before its next try.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut ready = false;
    while !ready && tokio::time::Instant::now() < deadline {
        ready = seen(&source) == ["default/after", "default/kept"];
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the source holds {:?}", seen(&source));
}

#[tokio::test]
async fn rbac_that_forbids_the_plugin_kinds_is_a_clear_error_at_once() {
    let emulator = KubeEmulator::start(Options::default()).await.unwrap();
    emulator.set_rules(vec![Rule::allow(
        &["get", "list", "watch"],
        "networking.istio.io",
        &["envoyfilters"],
    )]);
    let source = KubernetesSource::start(client(&emulator), &["default".into()]);
    let started = tokio::time::Instant::now();
    let error = source
        .first_lists(Duration::from_secs(10))
        .await
        .expect_err("a forbidden list must not pass for an empty one");
    // At the first refusal, not after the wait.
    assert!(started.elapsed() < Duration::from_secs(5));
    let message = error.to_string();
    assert!(message.contains("RBAC"), "{message}");
    assert!(message.contains("deploy/base/rbac.yaml"), "{message}");
    assert!(message.contains("forbidden"), "{message}");
    assert!(message.contains("wasmplugins"), "{message}");
}

#[tokio::test]
async fn a_pull_secret_rbac_does_not_grant_fails_its_plugin_with_that_reason() {
    let emulator = KubeEmulator::start(Options::default()).await.unwrap();
    let mut plugin = wasm_plugin("default", "private", "oci://r.example/private:v1");
    plugin["spec"]["imagePullSecret"] = json!("pull");
    emulator.create(plugin).unwrap();
    emulator.create(docker_secret("pull", "Zmlyc3Q=")).unwrap();
    // The plugin kinds, but no Secret at all (resourceNames forgotten).
    emulator.set_rules(vec![
        Rule::allow(
            &["get", "list", "watch"],
            "extensions.istio.io",
            &["wasmplugins", "trafficextensions"],
        ),
        Rule::allow(
            &["get", "list", "watch"],
            "networking.istio.io",
            &["envoyfilters"],
        ),
    ]);
    let source = KubernetesSource::start(client(&emulator), &["default".into()]);
    until(
        &source,
        |s| matches!(pull_secret_of(s), Some(Err(reason)) if reason.contains("cannot be read")),
    )
    .await;
    let Some(Err(reason)) = pull_secret_of(&source) else {
        unreachable!()
    };
    assert!(reason.contains("default/pull"), "{reason}");
    assert!(reason.contains("forbidden"), "{reason}");

    // Granted: the Secret is read and the plugin's fetch can use it.
    emulator.allow_all();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !matches!(pull_secret_of(&source), Some(Ok(_))) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            pull_secret_of(&source)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
