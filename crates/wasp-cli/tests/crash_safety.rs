//! `kill -9` at any moment of a cold start leaves nothing a restart would run by mistake: wasp
//! is killed again and again while it pulls two modules from a real registry (a 4.5 MB
//! Go-built one and a small Rust one), writes its module cache and its index, compiles, and
//! writes its compiled-module cache — each kill a little later than the one before, from a
//! cache that starts empty in every round. After each round a clean start must serve both
//! plugins as they are (so it runs the right modules), with no cache entry refused as damaged
//! (nothing partial was ever renamed into place) and no temporary file left behind.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use support::*;
use wasp_test_support::raw::raw_get as get;

/// The configuration: the two plugins (FAIL_CLOSE: a missing plugin fails requests) from the
/// registry at `registry`, the echo upstream behind them.
fn write_config(dir: &Path, registry: u16, upstream: SocketAddr) -> (SocketAddr, SocketAddr) {
    let listener: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    std::fs::write(
        dir.join("wasp.yaml"),
        format!(
            r#"admin: {{ address: "{admin}" }}
workers: 1
workload: {{ namespace: shop, labels: {{ app: cart }} }}
listeners:
  - name: inbound
    address: "{listener}"
    routes:
      - match: {{ prefix: / }}
        cluster: backend
clusters:
  - name: backend
    endpoints: ["{upstream}"]
plugins:
  sources: [./plugins/]
  insecureRegistries: ["127.0.0.1:{registry}"]
"#
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    for (name, image) in [("go", "go_hostcalls"), ("rust", "headers")] {
        std::fs::write(
            dir.join("plugins").join(format!("{name}.yaml")),
            format!(
                "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: {name}\n  namespace: shop\nspec:\n  url: oci://127.0.0.1:{registry}/plugins/{image}:v1\n  failStrategy: FAIL_CLOSE\n"
            ),
        )
        .unwrap();
    }
    (listener, admin)
}

/// Both plugins ran on a request: the Go one added `x-go-plugin` on its way up, the Rust one
/// `x-powered-by` on the way back.
fn both_plugins_served(listener: SocketAddr) -> bool {
    get(listener, "/").is_some_and(|a| {
        a.status == 200
            && a.header("x-echo-h-x-go-plugin").as_deref() == Some("yes")
            && a.header("x-powered-by").as_deref() == Some("wasp")
    })
}

fn temporary_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.join("cache")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.parent().is_some_and(|p| p.ends_with("tmp"))
                || entry.file_name().to_string_lossy().starts_with(".tmp-")
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[test]
fn kill_9_at_any_moment_of_a_cold_start_leaves_a_cache_that_serves_the_right_modules() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (_registry, port) = registry(dir);
    push(
        &format!("oci://127.0.0.1:{port}/plugins/go_hostcalls:v1"),
        &wasp_test_plugins::path("go_hostcalls"),
        "oci",
    );
    push(
        &format!("oci://127.0.0.1:{port}/plugins/headers:v1"),
        &wasp_test_plugins::path("headers"),
        "docker",
    );
    let up = wasp_test_support::upstream::upstream();
    let (listener, admin) = write_config(dir, port, up.address);

    // How long a clean cold start takes here: the kills spread over it.
    let started = Instant::now();
    let mut clean = Proc(spawn_wasp(dir));
    // And how long until both modules are in the module cache (the fetch and its writes).
    let mut fetched = Duration::from_secs(10);
    while started.elapsed() < Duration::from_secs(10) {
        if left_behind(dir).modules == 2 {
            fetched = started.elapsed();
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        wait(Duration::from_secs(60), || both_plugins_served(listener)),
        "a clean start serves both plugins: {}",
        std::fs::read_to_string(dir.join("wasp.log")).unwrap_or_default()
    );
    let cold = started.elapsed();
    let _ = clean.0.kill();
    let _ = clean.0.wait();
    eprintln!("cold start: {cold:?}, modules fetched after {fetched:?}");

    let kills_per_round = 6;
    let mut kills = 0;
    let mut phases = Vec::new();
    for round in 0..3 {
        for k in 0..kills_per_round {
            // The first half from an empty cache, early (fetching, writing modules and the
            // index); the second half on what the kills before left, later (compiling,
            // writing compiled code). Offset per round so the rounds hit other moments.
            let at = if k < kills_per_round / 2 {
                std::fs::remove_dir_all(dir.join("cache")).ok();
                fetched.mul_f64(0.3 + 0.3 * f64::from(k) + 0.1 * f64::from(round))
            } else {
                cold.mul_f64(
                    0.35 + 0.2 * f64::from(k - kills_per_round / 2) + 0.06 * f64::from(round),
                )
            };
            let mut child = spawn_wasp(dir);
            std::thread::sleep(at);
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;
            let state = left_behind(dir);
            eprintln!("round {round}, kill {k} after {at:?}: {state:?}");
            phases.push(state);
        }
        let run = Proc(spawn_wasp(dir));
        assert!(
            wait(Duration::from_secs(60), || both_plugins_served(listener)),
            "round {round}: after {kills} kills a start serves both plugins: {}",
            std::fs::read_to_string(dir.join("wasp.log")).unwrap_or_default()
        );
        let plugins = get(admin, "/plugins").unwrap().body;
        assert_eq!(plugins.matches("\"ready\"").count(), 2, "{plugins}");
        let log = std::fs::read_to_string(dir.join("wasp.log")).unwrap();
        for damaged in [
            "does not match its hash",
            "checksum mismatch",
            "cannot be loaded",
        ] {
            assert!(!log.contains(damaged), "round {round}: {damaged}:\n{log}");
        }
        assert_eq!(temporary_files(dir), Vec::<String>::new(), "round {round}");
        drop(run);
    }
    // The kills fell in each phase of a cold start: before both modules were in the cache
    // (fetching), and after that but before both were compiled into the cache (compiling).
    assert!(
        phases.iter().any(|p| p.modules < 2),
        "no kill while fetching: {phases:?}"
    );
    assert!(
        phases.iter().any(|p| p.modules == 2 && p.compiled < 2),
        "no kill while compiling: {phases:?}"
    );
}

/// What a killed process left in the cache.
#[derive(Debug)]
#[allow(dead_code)] // printed
struct LeftBehind {
    /// Modules in the module cache (named by their hash).
    modules: usize,
    /// Compiled modules in the compiled-module cache.
    compiled: usize,
    /// Files being written when the process died.
    temporary: usize,
}

fn left_behind(dir: &Path) -> LeftBehind {
    let count = |path: std::path::PathBuf, suffix: &str| {
        std::fs::read_dir(path).map_or(0, |entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                .count()
        })
    };
    LeftBehind {
        modules: count(dir.join("cache/modules/modules/sha256"), ".wasm"),
        compiled: count(dir.join("cache/compiled"), ".cwasm"),
        temporary: temporary_files(dir).len(),
    }
}
