//! An inline plugin that does not start stops `wasp run` and `wasp validate`, as Envoy refuses
//! a static configuration whose Wasm filter fails `proxy_on_configure`: with the plugin's own
//! log line and the reason.

use std::process::Command;
use std::time::Duration;

const WASP: &str = env!("CARGO_BIN_EXE_wasp");

fn config(dir: &std::path::Path, plugin_config: &str) -> std::path::PathBuf {
    let path = dir.join("wasp.yaml");
    std::fs::write(
        &path,
        format!(
            r#"listeners:
  - name: main
    address: "127.0.0.1:0"
    routes:
      - match: {{ prefix: / }}
        direct_response: {{ status: 200, body: "ok" }}
plugins:
  inline:
    - name: refuses
      url: {}
      configuration: "{plugin_config}"
"#,
            wasp_test_plugins::path("hostcalls").display()
        ),
    )
    .unwrap();
    path
}

fn output(mut cmd: Command) -> (bool, String) {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn validate_starts_inline_plugins_and_says_why_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(WASP);
    cmd.args(["validate", "-c"])
        .arg(config(dir.path(), "fail-configure"));
    let (ok, text) = output(cmd);
    assert!(!ok, "{text}");
    assert!(text.contains("plugin refuses failed to start"), "{text}");
    // The plugin's own log line, then the reason.
    assert!(text.contains("configure config=fail-configure"), "{text}");
    assert!(!text.contains("config OK"), "{text}");

    let mut cmd = Command::new(WASP);
    cmd.args(["validate", "-c"]).arg(config(dir.path(), "fine"));
    let (ok, text) = output(cmd);
    assert!(ok, "{text}");
    assert!(text.contains("config OK"), "{text}");
}

#[test]
fn run_stops_when_an_inline_plugin_fails_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(WASP);
    cmd.args(["run", "-c"])
        .arg(config(dir.path(), "fail-configure"))
        .arg("--cache-dir")
        .arg(dir.path().join("cache"));
    let started = std::time::Instant::now();
    let (ok, text) = output(cmd);
    assert!(!ok, "{text}");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(text.contains("plugin refuses failed to start"), "{text}");
    assert!(text.contains("configure config=fail-configure"), "{text}");
}
