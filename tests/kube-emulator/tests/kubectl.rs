//! `kubectl get` against the `wasp-kube-emulator` binary serving fixtures (skipped, with a
//! message, when kubectl is not installed).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn kubectl_get_against_the_binary() {
    if !kubectl_available() {
        eprintln!("kubectl is not installed: skipping");
        return;
    }
    let dir = std::env::temp_dir().join(format!("wasp-kube-emulator-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.crt");
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasp-kube-emulator"))
        .args(["--port", "0", "--token", "kubectl-token", "--ca-out"])
        .arg(&ca)
        .arg("--fixtures")
        .arg(&fixtures)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _server = Server(child);
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected: {line}"))
        .to_string();

    let kubectl = |tls: &[&str], args: &[&str]| {
        let out = Command::new("kubectl")
            .args(["--server", &url, "--token", "kubectl-token", "--cache-dir"])
            .arg(dir.join("cache"))
            .args(tls)
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, text) = kubectl(
        &["--insecure-skip-tls-verify"],
        &["get", "wasmplugins", "-n", "default"],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("NAME") && text.contains("auth-filter"),
        "{text}"
    );

    let ca_flag = format!("--certificate-authority={}", ca.display());
    let (ok, text) = kubectl(
        &[&ca_flag],
        &[
            "get",
            "secrets",
            "-n",
            "default",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
    );
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "pull-secret");

    let (ok, text) = kubectl(&[&ca_flag], &["get", "envoyfilters", "-A", "-o", "name"]);
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "envoyfilter.networking.istio.io/lua-filter");

    let (ok, text) = kubectl(
        &[&ca_flag],
        &["get", "wasmplugin", "missing", "-n", "default"],
    );
    assert!(!ok);
    assert!(
        text.contains("wasmplugins.extensions.istio.io \"missing\" not found"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
