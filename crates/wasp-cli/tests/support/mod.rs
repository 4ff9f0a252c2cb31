//! What the end-to-end tests share: the `wasp` binary, free ports, processes killed on drop,
//! a real registry (Debian's `docker-registry`) and `wasp plugin push`.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const WASP: &str = env!("CARGO_BIN_EXE_wasp");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's docker-registry on plain HTTP, storage in `dir`.
pub fn registry(dir: &Path) -> (Proc, u16) {
    registry_with(dir, None)
}

/// Debian's docker-registry on plain HTTP, storage in `dir`; with `login`, it asks for that
/// user and password (htpasswd, bcrypt as distribution requires).
pub fn registry_with(dir: &Path, login: Option<(&str, &str)>) -> (Proc, u16) {
    let port = free_port();
    let config = dir.join("registry.yml");
    let auth = match login {
        None => String::new(),
        Some((user, pass)) => {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .expect("htpasswd must be installed: apt-get install apache2-utils");
            assert!(out.status.success(), "htpasswd failed");
            let file = dir.join("htpasswd");
            std::fs::write(&file, out.stdout).unwrap();
            format!(
                "auth: {{ htpasswd: {{ realm: wasp-test, path: {} }} }}\n",
                file.display()
            )
        }
    };
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog: {{ level: error }}\nstorage:\n  filesystem: {{ rootdirectory: {} }}\n  delete: {{ enabled: true }}\nhttp: {{ addr: 127.0.0.1:{port}, secret: wasp-test }}\n{auth}",
            dir.join("storage").display()
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .args(["serve", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry must be installed: apt-get install docker-registry");
    let proc = Proc(child);
    assert!(
        wait(Duration::from_secs(10), || TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "registry did not start"
    );
    (proc, port)
}

pub fn wait(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

pub fn push(reference: &str, file: &Path, format: &str) -> String {
    push_as(reference, file, format, None)
}

/// `wasp plugin push`, logged in as `login` (user, password) if given.
pub fn push_as(reference: &str, file: &Path, format: &str, login: Option<(&str, &str)>) -> String {
    let mut cmd = Command::new(WASP);
    cmd.args([
        "plugin",
        "push",
        file.to_str().unwrap(),
        reference,
        "--insecure",
    ])
    .args(["--format", format]);
    if let Some((user, pass)) = login {
        cmd.args(["--username", user, "--password", pass]);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "push failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `wasp run -c DIR/wasp.yaml` with its cache in `DIR/cache` and its log in `DIR/wasp.log`,
/// not waited for.
pub fn spawn_wasp(dir: &Path) -> Child {
    Command::new(WASP)
        .args(["run", "-c", dir.join("wasp.yaml").to_str().unwrap()])
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("wasp.log")).unwrap())
        .spawn()
        .unwrap()
}

/// [`spawn_wasp`], once its admin endpoint at `admin` answers `/ready` (panics with the log
/// otherwise).
pub fn run_wasp(dir: &Path, admin: std::net::SocketAddr) -> Proc {
    let proc = Proc(spawn_wasp(dir));
    assert!(
        wait(Duration::from_secs(20), || wasp_test_support::raw::raw_get(
            admin, "/ready"
        )
        .is_some_and(|a| a.status == 200)),
        "wasp did not become ready: {}",
        std::fs::read_to_string(dir.join("wasp.log")).unwrap_or_default()
    );
    proc
}
