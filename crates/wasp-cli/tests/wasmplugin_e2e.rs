//! The whole delivery path with real parts: a real registry (Debian's `docker-registry`), a
//! module published with `wasp plugin push`, a WasmPlugin file naming it, `wasp run` serving
//! it; then the file edited, broken and removed while wasp runs, and a registry that is down.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod support;

use support::*;
// A raw HTTP/1 GET (`connection: close`), `None` until the server answers.
use wasp_test_support::raw::raw_get as get;

struct Wasp {
    _proc: Proc,
    listener: SocketAddr,
    admin: SocketAddr,
}

/// `wasp run` on a config whose plugins come from `plugins/` under `dir`.
fn wasp(dir: &Path, registry_port: u16) -> Wasp {
    wasp_as(
        dir,
        registry_port,
        "{ namespace: shop, labels: { app: cart } }",
    )
}

/// As [`wasp`], for the workload `workload` (YAML).
fn wasp_as(dir: &Path, registry_port: u16, workload: &str) -> Wasp {
    let listener: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    std::fs::write(
        dir.join("wasp.yaml"),
        format!(
            r#"admin: {{ address: "{admin}" }}
workers: 2
workload: {workload}
listeners:
  - name: inbound
    address: "{listener}"
    routes:
      - match: {{ prefix: / }}
        direct_response: {{ status: 200, body: "from wasp\n" }}
plugins:
  sources: [./plugins/]
  insecureRegistries: ["127.0.0.1:{registry_port}"]
"#
        ),
    )
    .unwrap();
    Wasp {
        _proc: run_wasp(dir, admin),
        listener,
        admin,
    }
}

fn plugin_file(dir: &Path, name: &str, url: &str, extra: &str) -> PathBuf {
    let path = dir.join("plugins").join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: {name}\n  namespace: shop\nspec:\n  selector:\n    matchLabels: {{ app: cart }}\n  url: {url}\n{extra}"
        ),
    )
    .unwrap();
    path
}

fn module() -> PathBuf {
    wasp_test_plugins::path("headers")
}

#[test]
fn a_wasmplugin_from_a_registry_is_served_and_follows_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::create_dir(dir.join("plugins")).unwrap();
    let (_registry, port) = registry(dir);
    let pushed = push(
        &format!("oci://127.0.0.1:{port}/plugins/headers:v1"),
        &module(),
        "oci",
    );
    assert!(pushed.contains("manifest sha256:"), "{pushed}");
    // Istio's other common layout, a Docker image with plugin.wasm, for the second plugin.
    push(
        &format!("127.0.0.1:{port}/plugins/headers-docker:v1"),
        &module(),
        "docker",
    );
    plugin_file(
        dir,
        "headers",
        &format!("oci://127.0.0.1:{port}/plugins/headers:v1"),
        "  pluginConfig:\n    b: 2\n    a: 1\n",
    );
    let w = wasp(dir, port);

    let a = get(w.listener, "/").unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(a.body, "from wasp\n");
    assert_eq!(
        a.header("x-powered-by").as_deref(),
        Some("wasp"),
        "{}",
        a.head
    );
    // pluginConfig arrives as compact JSON with sorted keys.
    assert_eq!(
        a.header("x-plugin-config").as_deref(),
        Some(r#"{"a":1,"b":2}"#)
    );
    let plugins = get(w.admin, "/plugins").unwrap().body;
    assert!(plugins.contains("\"shop.headers\""), "{plugins}");
    assert!(
        plugins.contains("\"manifest_digest\": \"sha256:"),
        "{plugins}"
    );
    assert!(plugins.contains("\"state\": \"ready\""), "{plugins}");
    let stats = get(w.admin, "/stats/prometheus").unwrap().body;
    assert!(
        stats.contains("wasp_plugin_fetches_total{result=\"success\"} 1"),
        "{stats}"
    );

    // Edited: another image (the Docker layout) and another configuration.
    plugin_file(
        dir,
        "headers",
        &format!("127.0.0.1:{port}/plugins/headers-docker:v1"),
        "  pluginConfig: { v: 2 }\n",
    );
    assert!(
        wait(Duration::from_secs(10), || get(w.listener, "/")
            .and_then(|a| a.header("x-plugin-config"))
            .as_deref()
            == Some(r#"{"v":2}"#)),
        "the edit was not applied"
    );

    // Broken YAML: the running plugins stay.
    std::fs::write(
        dir.join("plugins/broken.yaml"),
        "kind: WasmPlugin\n  bad: [",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        get(w.listener, "/")
            .unwrap()
            .header("x-plugin-config")
            .as_deref(),
        Some(r#"{"v":2}"#)
    );
    std::fs::remove_file(dir.join("plugins/broken.yaml")).unwrap();

    // An image that does not exist, FAIL_OPEN: wasp serves without it and says why.
    plugin_file(
        dir,
        "headers",
        &format!("oci://127.0.0.1:{port}/plugins/missing:v1"),
        "  failStrategy: FAIL_OPEN\n",
    );
    assert!(wait(Duration::from_secs(10), || {
        get(w.admin, "/plugins").is_some_and(|a| a.body.contains("unavailable"))
    }));
    let a = get(w.listener, "/").unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-powered-by"), None);
    // The same with FAIL_CLOSE: 403, Istio's answer for a plugin that could not be loaded.
    plugin_file(
        dir,
        "headers",
        &format!("oci://127.0.0.1:{port}/plugins/missing:v1"),
        "  failStrategy: FAIL_CLOSE\n",
    );
    assert!(wait(Duration::from_secs(10), || {
        get(w.listener, "/").is_some_and(|a| a.status == 403)
    }));

    // Removed: no plugins at all.
    std::fs::remove_file(dir.join("plugins/headers.yaml")).unwrap();
    assert!(wait(Duration::from_secs(10), || {
        get(w.listener, "/").is_some_and(|a| a.status == 200 && a.header("x-powered-by").is_none())
    }));
    assert!(wait(Duration::from_secs(5), || {
        get(w.admin, "/plugins").is_some_and(|a| a.body.trim() == "[]")
    }));
}

#[test]
fn registry_down_at_start_still_becomes_ready_and_applies_the_failure_policy() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::create_dir(dir.join("plugins")).unwrap();
    let port = free_port(); // nothing listens there
    plugin_file(
        dir,
        "closed",
        &format!("oci://127.0.0.1:{port}/plugins/headers:v1"),
        "  failStrategy: FAIL_CLOSE\n",
    );
    let w = wasp(dir, port);
    assert_eq!(get(w.listener, "/").unwrap().status, 403);
    let plugins = get(w.admin, "/plugins").unwrap().body;
    assert!(plugins.contains("unavailable"), "{plugins}");
    assert!(plugins.contains(&format!("127.0.0.1:{port}")), "{plugins}");
    let stats = get(w.admin, "/stats/prometheus").unwrap().body;
    assert!(
        stats.contains("wasp_plugin_fetches_total{result=\"download_failure\"} 1")
            || stats.contains("wasp_plugin_fetches_total{result=\"manifest_failure\"} 1"),
        "{stats}"
    );
}

#[test]
fn plugin_pull_fills_the_cache_and_prints_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (_registry, port) = registry(dir);
    let reference = format!("oci://127.0.0.1:{port}/plugins/headers:v1");
    let pushed = push(&reference, &module(), "oci");
    let manifest = pushed
        .lines()
        .find_map(|l| l.strip_prefix("manifest "))
        .unwrap()
        .to_string();
    let pull = |extra: &[&str]| {
        Command::new(WASP)
            .args(["plugin", "pull", &reference, "--insecure", "--cache-dir"])
            .arg(dir.join("cache"))
            .args(extra)
            .output()
            .unwrap()
    };
    let out = pull(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("manifest {manifest}")), "{stdout}");
    assert!(stdout.contains("downloaded into the cache"), "{stdout}");
    let out = pull(&[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("already cached"));
    // A wrong pinned digest is a failure that says so.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let out = pull(&["--sha256", &wrong]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&"0".repeat(64)), "{stderr}");
}

/// The WasmPlugin of the introductions to the feature, unchanged but for the registry's
/// address: `selector.labels` and the `vmConfig` list are read (with warnings naming file, line
/// and Istio's spelling), and the plugin, pulled from a real registry, sees its configuration and
/// the variable.
#[test]
fn the_introductory_example_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::create_dir(dir.join("plugins")).unwrap();
    let (_registry, port) = registry(dir);
    push(
        &format!("oci://127.0.0.1:{port}/tetrate/hello-world:v1"),
        &module(),
        "oci",
    );
    std::fs::write(
        dir.join("plugins/hello.yaml"),
        format!(
            r#"apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {{ name: hello-world-wasm, namespace: default }}
spec:
  selector:
    labels:
      app: hello-world
  url: oci://127.0.0.1:{port}/tetrate/hello-world:v1
  pluginConfig: {{ greeting: hello, something: anything }}
  vmConfig:
    - name: TRUST_DOMAIN
      value: "cluster.local"
"#
        ),
    )
    .unwrap();
    let w = wasp_as(
        dir,
        port,
        "{ namespace: default, labels: { app: hello-world } }",
    );
    let a = get(w.listener, "/").unwrap();
    assert_eq!(a.status, 200, "{}", a.head);
    assert_eq!(
        a.header("x-plugin-config").as_deref(),
        Some(r#"{"greeting":"hello","something":"anything"}"#),
        "{}",
        a.head
    );
    assert_eq!(a.header("x-trust-domain").as_deref(), Some("cluster.local"));
    let log = std::fs::read_to_string(dir.join("wasp.log")).unwrap();
    let hello = dir.join("plugins/hello.yaml");
    for expected in [
        format!(
            "{}:7:7: WasmPlugin default/hello-world-wasm: spec.selector.labels: read as `spec.selector.matchLabels`",
            hello.display()
        ),
        format!(
            "{}:11:5: WasmPlugin default/hello-world-wasm: spec.vmConfig: read as `spec.vmConfig.env`",
            hello.display()
        ),
    ] {
        assert!(log.contains(&expected), "missing {expected:?} in\n{log}");
    }
    // `wasp validate` says the same.
    let out = Command::new(WASP)
        .args(["validate", "-c", dir.join("wasp.yaml").to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("warning: "), "{stdout}");
    assert!(
        stdout.contains("WasmPlugin default/hello-world-wasm (") && stdout.contains("selected"),
        "{stdout}"
    );
}

#[test]
fn credentials_in_a_module_url_are_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::create_dir(dir.join("plugins")).unwrap();
    let port = free_port(); // nothing listens there: the fetch fails and says so
    plugin_file(
        dir,
        "signed",
        &format!(
            "https://deployer:s3cret-pass@127.0.0.1:{port}/p.wasm?X-Amz-Signature=t0ken-value&X-Amz-Expires=60"
        ),
        "  failStrategy: FAIL_OPEN\n",
    );
    let w = wasp(dir, port);
    let plugins = get(w.admin, "/plugins").unwrap().body;
    assert!(plugins.contains("unavailable"), "{plugins}");
    assert!(
        plugins.contains(&format!(
            "https://***@127.0.0.1:{port}/p.wasm?X-Amz-Signature=***&X-Amz-Expires=***"
        )),
        "{plugins}"
    );
    let dump = get(w.admin, "/config_dump").unwrap().body;
    std::thread::sleep(Duration::from_millis(300));
    let log = std::fs::read_to_string(dir.join("wasp.log")).unwrap();
    assert!(
        log.contains("***@127.0.0.1"),
        "the failure is logged: {log}"
    );
    for (what, text) in [
        ("/plugins", &plugins),
        ("/config_dump", &dump),
        ("the log", &log),
    ] {
        for secret in ["s3cret-pass", "t0ken-value", "deployer"] {
            assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
        }
    }
}
