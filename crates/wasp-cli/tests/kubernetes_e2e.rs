//! `wasp run` with `plugins.kubernetes`, against `wasp-kube-emulator` — an emulator of the
//! apiserver's list/watch protocol (no kube-apiserver can run here) — reached through a
//! kubeconfig with a bearer token over TLS: a WasmPlugin created there is served, its changes
//! are applied while requests keep flowing, and its deletion removes it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use wasp_kube_emulator::{KubeEmulator, Options};

mod support;

use support::*;
use wasp_test_support::raw::raw_get as get;

/// The emulator, served by a runtime on a thread of its own for the test's life.
fn emulator() -> Arc<KubeEmulator> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let emulator = Arc::new(KubeEmulator::start(Options::default()).await.unwrap());
            tx.send(emulator.clone()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

fn kubeconfig(dir: &Path, emulator: &KubeEmulator) -> std::path::PathBuf {
    let ca = base64::engine::general_purpose::STANDARD.encode(emulator.ca_pem());
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: emulator\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: wasp\n  user:\n    token: {}\ncontexts:\n- name: wasp\n  context: {{ cluster: emulator, user: wasp, namespace: shop }}\ncurrent-context: wasp\n",
            emulator.base_url(),
            emulator.token()
        ),
    )
    .unwrap();
    path
}

fn wasm_plugin(config: Value) -> Value {
    let url = format!("file://{}", wasp_test_plugins::path("headers").display());
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": {"name": "headers", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "cart"}},
            "url": url,
            "pluginConfig": config
        }
    })
}

#[test]
fn a_wasmplugin_in_the_api_is_served_and_followed_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let emulator = emulator();
    emulator.create(wasm_plugin(json!({"a": 1}))).unwrap();
    let listener: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    std::fs::write(
        dir.join("wasp.yaml"),
        format!(
            r#"admin: {{ address: "{admin}" }}
workload: {{ namespace: shop, labels: {{ app: cart }} }}
listeners:
  - name: inbound
    address: "{listener}"
    routes:
      - match: {{ prefix: / }}
        direct_response: {{ status: 200, body: "from wasp\n" }}
plugins:
  kubernetes: {{ kubeconfig: ./kubeconfig }}
"#
        ),
    )
    .unwrap();
    kubeconfig(dir, &emulator);
    let _wasp = run_wasp(dir, admin);
    let log = || std::fs::read_to_string(dir.join("wasp.log")).unwrap_or_default();
    let config = || get(listener, "/").and_then(|a| a.header("x-plugin-config"));
    assert_eq!(config().as_deref(), Some(r#"{"a":1}"#), "{}", log());

    // Requests keep flowing while the resource changes: none may fail.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load = {
        let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                sent.fetch_add(1, Ordering::Relaxed);
                if get(listener, "/").is_none_or(|a| a.status != 200) {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    let mut changed = wasm_plugin(json!({"v": 2}));
    changed["metadata"]["resourceVersion"] = emulator
        .get(
            "extensions.istio.io/v1alpha1",
            "WasmPlugin",
            "shop",
            "headers",
        )
        .unwrap()["metadata"]["resourceVersion"]
        .clone();
    emulator.replace(changed).unwrap();
    assert!(
        wait(Duration::from_secs(3), || config().as_deref()
            == Some(r#"{"v":2}"#)),
        "the change was not applied: {}",
        log()
    );

    emulator
        .delete(
            "extensions.istio.io/v1alpha1",
            "WasmPlugin",
            "shop",
            "headers",
        )
        .unwrap();
    assert!(
        wait(Duration::from_secs(3), || get(listener, "/").is_some_and(
            |a| a.status == 200 && a.header("x-plugin-config").is_none()
        )),
        "the deletion was not applied: {}",
        log()
    );
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    assert!(sent.load(Ordering::Relaxed) > 10);
    assert_eq!(failed.load(Ordering::Relaxed), 0, "{}", log());
}
