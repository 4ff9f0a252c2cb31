//! `wasp run` with `plugins.kubernetes`, against `wasp-kube-emulator` — an emulator of the
//! apiserver's list/watch protocol (no kube-apiserver can run here) — reached through a
//! kubeconfig with a bearer token over TLS: a WasmPlugin, a Lua TrafficExtension and an
//! EnvoyFilter created there are served, their changes and deletions within a second while
//! requests keep flowing (none fails, the apiserver going away and coming back included); a
//! WasmPlugin with a pull secret is pulled from a real registry and its outcome reported back
//! as Events and a status condition; RBAC that forbids the resources stops `wasp run` with a
//! clear error.

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
struct Apiserver {
    emulator: Arc<KubeEmulator>,
    rt: tokio::runtime::Handle,
}

impl std::ops::Deref for Apiserver {
    type Target = KubeEmulator;
    fn deref(&self) -> &KubeEmulator {
        &self.emulator
    }
}

impl Apiserver {
    /// Stops serving: every connection is cut, objects are kept.
    fn stop(&self) {
        self.rt.block_on(self.emulator.stop());
    }

    /// Serves again on the same port.
    fn restart(&self) {
        self.rt.block_on(self.emulator.restart()).unwrap();
    }
}

fn emulator() -> Apiserver {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let handle = rt.handle().clone();
        rt.block_on(async move {
            let emulator = Arc::new(KubeEmulator::start(Options::default()).await.unwrap());
            tx.send(Apiserver {
                emulator,
                rt: handle,
            })
            .unwrap();
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

const API: &str = "extensions.istio.io/v1alpha1";
const EF: &str = "networking.istio.io/v1alpha3";

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

    // Each change must be served within a second of its write.
    let within_a_second = |what: &str, check: &dyn Fn() -> bool| {
        let started = std::time::Instant::now();
        assert!(
            wait(Duration::from_secs(5), check),
            "{what} was not applied: {}",
            log()
        );
        let took = started.elapsed();
        eprintln!("{what}: served after {} ms", took.as_millis());
        assert!(took < Duration::from_secs(1), "{what} took {took:?}");
    };
    let has_config = |want: &'static str| move || config().as_deref() == Some(want);

    edit(&emulator, API, "WasmPlugin", "headers", |p| {
        p["spec"]["pluginConfig"] = json!({"v": 2});
    });
    within_a_second("the change", &has_config(r#"{"v":2}"#));

    emulator
        .delete(API, "WasmPlugin", "shop", "headers")
        .unwrap();
    within_a_second("the deletion", &|| {
        get(listener, "/").is_some_and(|a| a.status == 200 && a.header("x-plugin-config").is_none())
    });

    emulator.create(wasm_plugin(json!({"v": 3}))).unwrap();
    within_a_second("the creation", &has_config(r#"{"v":3}"#));

    // The other two kinds, each created, changed and deleted: a Lua TrafficExtension and an
    // EnvoyFilter whose patch inserts a Lua filter.
    let header = |name: &'static str| move || get(listener, "/").and_then(|a| a.header(name));
    emulator.create(traffic_extension("v1")).unwrap();
    within_a_second("a TrafficExtension", &|| {
        header("x-te")().as_deref() == Some("v1")
    });
    edit(&emulator, API, "TrafficExtension", "tag", |t| {
        t["spec"]["lua"]["inlineCode"] =
            traffic_extension("v2")["spec"]["lua"]["inlineCode"].clone();
    });
    within_a_second("its change", &|| header("x-te")().as_deref() == Some("v2"));
    emulator
        .delete(API, "TrafficExtension", "shop", "tag")
        .unwrap();
    within_a_second("its deletion", &|| {
        get(listener, "/").is_some_and(|a| a.status == 200 && a.header("x-te").is_none())
    });
    emulator.create(envoy_filter("v1")).unwrap();
    within_a_second("an EnvoyFilter", &|| {
        header("x-ef")().as_deref() == Some("v1")
    });
    edit(&emulator, EF, "EnvoyFilter", "lua-tag", |f| {
        f["spec"] = envoy_filter("v2")["spec"].clone();
    });
    within_a_second("its change", &|| header("x-ef")().as_deref() == Some("v2"));
    emulator
        .delete(EF, "EnvoyFilter", "shop", "lua-tag")
        .unwrap();
    within_a_second("its deletion", &|| {
        get(listener, "/").is_some_and(|a| a.status == 200 && a.header("x-ef").is_none())
    });

    // The apiserver goes away: the last resources stay in use, requests keep passing.
    emulator.stop();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(config().as_deref(), Some(r#"{"v":3}"#), "{}", log());
    // It returns: the watches resume (after kube's backoff) and changes apply again.
    emulator.restart();
    edit(&emulator, API, "WasmPlugin", "headers", |p| {
        p["spec"]["pluginConfig"] = json!({"v": 4});
    });
    assert!(
        wait(Duration::from_secs(40), has_config(r#"{"v":4}"#)),
        "the change after the apiserver's return was not applied: {}",
        log()
    );

    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    assert!(sent.load(Ordering::Relaxed) > 10);
    assert_eq!(failed.load(Ordering::Relaxed), 0, "{}", log());
}

/// A Lua TrafficExtension `shop/tag` that adds `x-te: VERSION` to responses.
fn traffic_extension(version: &str) -> Value {
    json!({
        "apiVersion": API,
        "kind": "TrafficExtension",
        "metadata": {"name": "tag", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "cart"}},
            "lua": {"inlineCode": format!(
                "function envoy_on_response(h) h:headers():add('x-te', '{version}') end"
            )}
        }
    })
}

/// An EnvoyFilter `shop/lua-tag` inserting a Lua filter before the router that adds
/// `x-ef: VERSION` to responses.
fn envoy_filter(version: &str) -> Value {
    json!({
        "apiVersion": EF,
        "kind": "EnvoyFilter",
        "metadata": {"name": "lua-tag", "namespace": "shop"},
        "spec": {
            "workloadSelector": {"labels": {"app": "cart"}},
            "configPatches": [{
                "applyTo": "HTTP_FILTER",
                "match": {"context": "ANY", "listener": {"filterChain": {"filter": {
                    "name": "envoy.filters.network.http_connection_manager",
                    "subFilter": {"name": "envoy.filters.http.router"}
                }}}},
                "patch": {"operation": "INSERT_BEFORE", "value": {
                    "name": "envoy.filters.http.lua",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                        "inlineCode": format!(
                            "function envoy_on_response(h) h:headers():add('x-ef', '{version}') end"
                        )
                    }
                }}
            }]
        }
    })
}

/// A `kubernetes.io/dockerconfigjson` Secret `shop/regcred` for the registry at `port`.
fn pull_secret(port: u16, user: &str, pass: &str) -> Value {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let config =
        json!({"auths": {format!("127.0.0.1:{port}"): {"auth": b64(&format!("{user}:{pass}"))}}});
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "regcred", "namespace": "shop"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": b64(&config.to_string())}
    })
}

/// The emulated object `kind shop/name` with `edit` applied, written back at its version.
fn edit(
    emulator: &KubeEmulator,
    api_version: &str,
    kind: &str,
    name: &str,
    edit: impl FnOnce(&mut Value),
) {
    let mut object = emulator.get(api_version, kind, "shop", name).unwrap();
    edit(&mut object);
    emulator.replace(object).unwrap();
}

/// `reason: note` of the Events recorded about `name`, in order.
fn events_about(emulator: &KubeEmulator, name: &str) -> Vec<String> {
    emulator
        .events()
        .iter()
        .filter(|e| e["regarding"]["name"] == name)
        .map(|e| {
            format!(
                "{}: {}",
                e["reason"].as_str().unwrap_or_default(),
                e["note"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn a_wasmplugin_with_a_pull_secret_runs_from_a_real_registry_and_its_status_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let login = ("wasp", "s3cret-pass");
    let (_registry, port) = registry_with(dir, Some(login));
    let v1 = format!("oci://127.0.0.1:{port}/plugins/headers:v1");
    let v2 = format!("oci://127.0.0.1:{port}/plugins/headers:v2");
    let module = wasp_test_plugins::path("headers");
    push_as(&v1, &module, "oci", Some(login));
    push_as(&v2, &module, "oci", Some(login));

    let emulator = emulator();
    emulator
        .create(pull_secret(port, login.0, login.1))
        .unwrap();
    let mut private = wasm_plugin(json!({"from": "registry"}));
    private["spec"]["url"] = json!(v1);
    private["spec"]["imagePullSecret"] = json!("regcred");
    emulator.create(private).unwrap();
    // A plugin whose VM refuses its configuration (the Go SDK's strict JSON reading).
    emulator
        .create(json!({
            "apiVersion": "extensions.istio.io/v1alpha1",
            "kind": "WasmPlugin",
            "metadata": {"name": "strict", "namespace": "shop"},
            "spec": {
                "url": format!("file://{}", wasp_test_plugins::path("go_hostcalls").display()),
                "pluginConfig": {"no-such-field": 1},
                "failStrategy": "FAIL_OPEN"
            }
        }))
        .unwrap();

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
  insecureRegistries: ["127.0.0.1:{port}"]
  kubernetes: {{ kubeconfig: ./kubeconfig }}
"#
        ),
    )
    .unwrap();
    kubeconfig(dir, &emulator);
    let _wasp = run_wasp(dir, admin);
    let log = || std::fs::read_to_string(dir.join("wasp.log")).unwrap_or_default();
    let config = || get(listener, "/").and_then(|a| a.header("x-plugin-config"));
    assert_eq!(
        config().as_deref(),
        Some(r#"{"from":"registry"}"#),
        "{}",
        log()
    );

    // Status back to the cluster: an Event each, and wasp's condition on the resource.
    assert!(
        wait(Duration::from_secs(5), || events_about(
            &emulator, "headers"
        )
        .len()
            == 1
            && events_about(&emulator, "strict").len() == 1),
        "events: {:?}\n{}",
        emulator.events(),
        log()
    );
    assert!(events_about(&emulator, "headers")[0].starts_with("Loaded: "));
    let strict = &events_about(&emulator, "strict")[0];
    assert!(strict.starts_with("VMFailed: "), "{strict}");
    let condition = |name: &str| {
        emulator
            .get("extensions.istio.io/v1alpha1", "WasmPlugin", "shop", name)
            .and_then(|o| {
                o["status"]["conditions"]
                    .as_array()?
                    .iter()
                    .find(|c| c["type"] == "WaspPluginLoaded")
                    .cloned()
            })
    };
    assert!(
        wait(Duration::from_secs(5), || condition("headers")
            .is_some_and(|c| c["status"] == "True")
            && condition("strict")
                .is_some_and(|c| c["reason"] == "VMFailed")),
        "{:?} {:?}",
        condition("headers"),
        condition("strict")
    );

    // The Secret changes to a wrong password and the plugin moves to v2: the pull uses the
    // new Secret, fails, and says why.
    edit(&emulator, "v1", "Secret", "regcred", |s| {
        s["data"] = pull_secret(port, login.0, "wrong")["data"].clone();
    });
    edit(
        &emulator,
        "extensions.istio.io/v1alpha1",
        "WasmPlugin",
        "headers",
        |p| {
            p["spec"]["url"] = json!(v2);
        },
    );
    assert!(
        wait(Duration::from_secs(10), || events_about(
            &emulator, "headers"
        )
        .len()
            == 2),
        "events: {:?}\n{}",
        events_about(&emulator, "headers"),
        log()
    );
    let failed = &events_about(&emulator, "headers")[1];
    assert!(failed.starts_with("FetchFailed: "), "{failed}");
    assert!(failed.contains("v2"), "{failed}");
    let plugins = get(admin, "/plugins").unwrap().body;
    assert!(plugins.contains("unavailable"), "{plugins}");

    // The right password again: v2 is pulled and runs.
    edit(&emulator, "v1", "Secret", "regcred", |s| {
        s["data"] = pull_secret(port, login.0, login.1)["data"].clone();
    });
    assert!(
        wait(Duration::from_secs(10), || events_about(
            &emulator, "headers"
        )
        .len()
            == 3),
        "events: {:?}\n{}",
        events_about(&emulator, "headers"),
        log()
    );
    assert!(events_about(&emulator, "headers")[2].starts_with("Loaded: "));
    assert_eq!(
        config().as_deref(),
        Some(r#"{"from":"registry"}"#),
        "{}",
        log()
    );
}

#[test]
fn rbac_that_forbids_the_resources_stops_wasp_run_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let emulator = emulator();
    emulator.set_rules(vec![]);
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    std::fs::write(
        dir.join("wasp.yaml"),
        format!(
            r#"admin: {{ address: "{admin}" }}
workload: {{ namespace: shop }}
listeners:
  - name: inbound
    address: "127.0.0.1:0"
    routes:
      - match: {{ prefix: / }}
        direct_response: {{ status: 200 }}
plugins:
  kubernetes: {{ kubeconfig: ./kubeconfig }}
"#
        ),
    )
    .unwrap();
    kubeconfig(dir, &emulator);
    let started = std::time::Instant::now();
    let out = std::process::Command::new(WASP)
        .args(["run", "-c", dir.join("wasp.yaml").to_str().unwrap()])
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    // At the refusal, not after the 10 s allowed for the first lists.
    assert!(started.elapsed() < Duration::from_secs(8), "{text}");
    assert!(text.contains("RBAC"), "{text}");
    assert!(text.contains("forbidden"), "{text}");
    assert!(text.contains("deploy/base/rbac.yaml"), "{text}");
}
