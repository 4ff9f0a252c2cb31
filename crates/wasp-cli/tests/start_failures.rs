//! An inline plugin that does not start stops `wasp run` and `wasp validate`, as Envoy refuses
//! a static configuration whose Wasm filter fails `proxy_on_configure`: with the plugin's own
//! log line and the reason.

use std::process::Command;
use std::time::Duration;

mod support;

use support::WASP;

fn config(dir: &std::path::Path, plugin_config: &str) -> std::path::PathBuf {
    config_with(dir, plugin_config, "")
}

/// `before` goes at the top of the file (e.g. an `admin:` line).
fn config_with(dir: &std::path::Path, plugin_config: &str, before: &str) -> std::path::PathBuf {
    let path = dir.join("wasp.yaml");
    std::fs::write(
        &path,
        format!(
            r#"{before}listeners:
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

/// Envoy never becomes ready with a configuration it refuses; neither may wasp while it finds
/// out that an inline plugin failed (an orchestrator would send traffic meanwhile).
#[test]
fn run_is_never_ready_when_an_inline_plugin_fails_to_start() {
    // The admin endpoint is up only between its bind and the exit — a window that can be a
    // few milliseconds when the machine is busy: run again until a poll lands in it.
    let mut answered = 0;
    for _ in 0..10 {
        answered += ready_answers_until_exit();
        if answered > 0 {
            break;
        }
    }
    assert!(
        answered > 0,
        "the admin endpoint never answered in 10 runs: the test proved nothing"
    );
}

/// Runs wasp with the failing plugin, polls `/ready` until it exits (failing every answer that
/// is 200) and returns how many polls got an answer.
fn ready_answers_until_exit() -> usize {
    let dir = tempfile::tempdir().unwrap();
    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], support::free_port()));
    let mut child = Command::new(WASP)
        .args(["run", "-c"])
        .arg(config_with(
            dir.path(),
            "fail-configure",
            &format!("admin: {{ address: \"{admin}\" }}\n"),
        ))
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut answered = 0;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "wasp did not exit");
        if let Some(code) = ready_status(admin) {
            answered += 1;
            assert_ne!(
                code, 200,
                "/ready said 200 with a plugin that failed to start"
            );
        }
    };
    assert!(!status.success());
    answered
}

/// The status `/ready` answers, or `None` when nothing listens yet (or any more).
fn ready_status(admin: std::net::SocketAddr) -> Option<u16> {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect_timeout(&admin, Duration::from_millis(200)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    tcp.write_all(b"GET /ready HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n")
        .ok()?;
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
