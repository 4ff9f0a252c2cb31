//! Status back to the cluster, against `wasp-kube-emulator` (an emulator of the apiserver's
//! API, which validates events.k8s.io Events on create as the apiserver does): an Event and a
//! status condition per outcome, written once per change; the conditions of others kept;
//! what RBAC refuses (status, the root namespace) is left out per namespace, the rest written; writes missed while the apiserver is gone are
//! made when it returns; status writes are not news to the watches.

use std::time::Duration;

use serde_json::{Value, json};
use wasp_config::kubernetes::{
    CONDITION_TYPE, CONTROLLER, KubernetesSource, ObjectRef, Outcome, StatusReporter, WASM_PLUGIN,
};
use wasp_kube_emulator::{KubeEmulator, Options, Rule};

const API_VERSION: &str = "extensions.istio.io/v1alpha1";

fn client(emulator: &KubeEmulator) -> kube::Client {
    let mut config = kube::Config::new(emulator.base_url().parse().unwrap());
    config.root_cert = Some(vec![emulator.ca_der().to_vec()]);
    config.auth_info.token = Some(emulator.token().to_string().into());
    kube::Client::try_from(config).unwrap()
}

/// A WasmPlugin `shop/name` created in the emulator, and its reference.
fn created(emulator: &KubeEmulator, name: &str) -> ObjectRef {
    created_in(emulator, "shop", name)
}

fn created_in(emulator: &KubeEmulator, namespace: &str, name: &str) -> ObjectRef {
    let object = emulator
        .create(json!({
            "apiVersion": API_VERSION,
            "kind": "WasmPlugin",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"url": "oci://r.example/p:v1"}
        }))
        .unwrap();
    ObjectRef {
        kind: WASM_PLUGIN,
        namespace: namespace.into(),
        name: name.into(),
        uid: object["metadata"]["uid"].as_str().map(String::from),
        generation: object["metadata"]["generation"].as_i64(),
    }
}

/// Waits up to 10 s for `check`.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not reached: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn conditions(emulator: &KubeEmulator, name: &str) -> Vec<Value> {
    emulator
        .get(API_VERSION, "WasmPlugin", "shop", name)
        .and_then(|o| o["status"]["conditions"].as_array().cloned())
        .unwrap_or_default()
}

fn ours(emulator: &KubeEmulator, name: &str) -> Option<Value> {
    conditions(emulator, name)
        .into_iter()
        .find(|c| c["type"] == CONDITION_TYPE)
}

#[tokio::test]
async fn each_change_of_outcome_is_one_event_and_one_condition() {
    let emulator = KubeEmulator::start(Options::default()).await.unwrap();
    let object = created(&emulator, "auth");
    // Another controller's condition, written first: it must stay.
    let client = client(&emulator);
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(client.clone(), "shop", &WASM_PLUGIN.api_resource());
    let mut current = api.get("auth").await.unwrap();
    current.data["status"] = json!({"conditions": [{"type": "Reconciled", "status": "True"}]});
    api.replace_status("auth", &Default::default(), &current)
        .await
        .unwrap();
    let writes_before = emulator.status_writes().len();

    let reporter = StatusReporter::start(client, "wasp-7d4b9c".into());
    reporter.report(vec![(object.clone(), Outcome::Loaded)]);
    until("a Loaded event", || emulator.events().len() == 1).await;
    let event = &emulator.events()[0];
    assert_eq!(event["apiVersion"], "events.k8s.io/v1");
    assert_eq!(event["type"], "Normal");
    assert_eq!(event["reason"], "Loaded");
    assert_eq!(event["reportingController"], CONTROLLER);
    assert_eq!(event["reportingInstance"], "wasp-7d4b9c");
    assert_eq!(event["regarding"]["kind"], "WasmPlugin");
    assert_eq!(event["regarding"]["name"], "auth");
    assert_eq!(event["regarding"]["uid"].as_str(), object.uid.as_deref());
    assert_eq!(event["metadata"]["namespace"], "shop");
    until("a True condition", || {
        ours(&emulator, "auth").is_some_and(|c| c["status"] == "True")
    })
    .await;
    let kept = conditions(&emulator, "auth");
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.iter().any(|c| c["type"] == "Reconciled"), "{kept:?}");
    assert_eq!(ours(&emulator, "auth").unwrap()["observedGeneration"], 1);

    // The same outcome again (every reload reports all): nothing new is written.
    reporter.report(vec![(object.clone(), Outcome::Loaded)]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(emulator.events().len(), 1);
    assert_eq!(emulator.status_writes().len(), writes_before + 1);

    let why = "pulling oci://r.example/p:v1: 401 Unauthorized".to_string();
    reporter.report(vec![(object.clone(), Outcome::FetchFailed(why.clone()))]);
    until("a FetchFailed event", || emulator.events().len() == 2).await;
    let event = &emulator.events()[1];
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["reason"], "FetchFailed");
    assert!(event["note"].as_str().unwrap().contains(&why), "{event}");
    until("a False condition", || {
        ours(&emulator, "auth")
            .is_some_and(|c| c["status"] == "False" && c["reason"] == "FetchFailed")
    })
    .await;
    assert_eq!(conditions(&emulator, "auth").len(), 2);
}

#[tokio::test]
async fn what_rbac_refuses_is_left_out_per_namespace_and_the_rest_written() {
    let emulator = KubeEmulator::start(Options::default()).await.unwrap();
    let object = created(&emulator, "limited");
    let mesh_wide = created_in(&emulator, "istio-system", "mesh-wide");
    // As deploy/ grants: events in the workload's namespace only, no status anywhere.
    emulator.set_rules(vec![
        Rule::allow(
            &["get", "list", "watch"],
            "extensions.istio.io",
            &["wasmplugins"],
        ),
        Rule::allow(&["create", "patch"], "events.k8s.io", &["events"]).in_namespaces(&["shop"]),
    ]);
    let reporter = StatusReporter::start(client(&emulator), "wasp-1".into());
    let failed = Outcome::VmFailed("proxy_on_configure returned false".into());
    reporter.report(vec![
        (mesh_wide.clone(), Outcome::Loaded),
        (object.clone(), failed.clone()),
    ]);
    until("a VMFailed event", || emulator.events().len() == 1).await;
    assert_eq!(emulator.events()[0]["reason"], "VMFailed");
    assert_eq!(emulator.events()[0]["metadata"]["namespace"], "shop");
    // Refused once, a write is not tried again there: the next outcome is one event, in shop.
    reporter.report(vec![
        (mesh_wide, Outcome::Loaded),
        (object, Outcome::Loaded),
    ]);
    until("a Loaded event", || emulator.events().len() == 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(emulator.events().len(), 2);
    assert!(emulator.status_writes().is_empty());
}

#[tokio::test]
async fn what_could_not_be_written_while_the_apiserver_was_gone_is_written_on_its_return() {
    let emulator = KubeEmulator::start(Options::default()).await.unwrap();
    let object = created(&emulator, "later");
    let reporter = StatusReporter::start(client(&emulator), "wasp-1".into());
    emulator.stop().await;
    reporter.report(vec![(object, Outcome::Loaded)]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    emulator.restart().await.unwrap();
    until("the event, after the return", || {
        emulator.events().len() == 1
    })
    .await;
    until("the condition, after the return", || {
        ours(&emulator, "later").is_some()
    })
    .await;
}

#[tokio::test]
async fn a_status_write_is_not_a_change_of_the_resource() {
    let emulator = KubeEmulator::start(Options::default()).await.unwrap();
    let object = created(&emulator, "steady");
    let client = client(&emulator);
    let source = KubernetesSource::start(client.clone(), &["shop".into()]);
    assert!(source.wait_listed(Duration::from_secs(5)).await);
    let version = |source: &KubernetesSource| {
        source.resources().set.resources()[0]
            .resource_version
            .clone()
    };
    let before = version(&source);
    let mut changed = source.changed();
    changed.borrow_and_update();

    let reporter = StatusReporter::start(client, "wasp-1".into());
    reporter.report(vec![(object, Outcome::Loaded)]);
    until("the condition", || ours(&emulator, "steady").is_some()).await;
    // The watch delivers the status write; it must not count as news.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !changed.has_changed().unwrap(),
        "a status write was taken for a change"
    );
    assert_eq!(
        version(&source),
        before,
        "imagePullPolicy: Always would pull again"
    );

    // A real edit still is one.
    let mut edited = emulator
        .get(API_VERSION, "WasmPlugin", "shop", "steady")
        .unwrap();
    edited["spec"]["url"] = json!("oci://r.example/p:v2");
    emulator.replace(edited).unwrap();
    tokio::time::timeout(Duration::from_secs(5), changed.changed())
        .await
        .expect("the edit was not seen")
        .unwrap();
    assert_ne!(version(&source), before);
}
