"""Cells (one target under one load), the cell workloads (h1, body, h2, lua, tcp, routes), the
checks made before measuring, and the Bench that starts and measures targets."""

import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile

from .common import (BODY_64K, CLK_TCK, PLUGINS_OUT, SMALL_BODY, build_plugins, die, find_envoy, find_wasp,
                     free_port, log, require)
from .configs import (NGINX_PROXY_SERVER, NGINX_UPSTREAM_SERVER, SCALE_CIRCUIT_BREAKERS, envoy_bootstrap,
                      expected_headers, nginx_conf, plugin_sets, wasp_config)
from .load import run_h2load, run_wrk
from .procs import Proc, cpu_ticks, http_get, hwm_kib, wait_http

# ---------------------------------------------------------------------------------------------
# Checks before measuring


def warm_routes(port, n, workers):
    """Sends each of the `x-route` routes a few requests on fresh connections, so that every
    worker has started each route's root context before the load."""
    for i in range(n):
        for _ in range(2 * workers + 2):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/small", headers={"x-route": str(i)})
            r = c.getresponse()
            r.read()
            if r.getheader(f"x-bench-r{i}") != "1":
                die(f"route {i}: its configuration did not run ({r.status} {r.getheaders()})")
            c.close()


def curl_check(cell, port, path, h2):
    """One curl per target before measuring: it must answer 200 with the upstream's body and
    (with plugins) the plugins' proofs."""
    cmd = ["curl", "-sS", "--max-time", "5", "-D", "-", "-o", "-"]
    if h2:
        cmd.append("--http2-prior-knowledge")
    cmd.append(f"http://127.0.0.1:{port}{path}")
    out = subprocess.run(cmd, capture_output=True)
    if out.returncode != 0:
        die(f"{cell}: curl failed: {out.stderr.decode(errors='replace')}")
    raw = out.stdout
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status_line = lines[0]
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    proto_ok = status_line.startswith("HTTP/2") if h2 else status_line.startswith("HTTP/1.1")
    if not proto_ok or " 200" not in status_line:
        die(f"{cell}: expected 200 over {'HTTP/2' if h2 else 'HTTP/1.1'}, got `{status_line}`\n{head.decode(errors='replace')}")
    for k, v in expected_headers(cell.pset).items():
        if headers.get(k) != v:
            die(f"{cell}: the plugin did not run: response header {k}: {headers.get(k)!r}, expected {v!r}\n"
                f"{head.decode(errors='replace')}")
    if cell.pset == "tcp_count":
        # An L4 plugin leaves no trace in the response: its byte counter must have moved.
        stats = http_get(cell.admin, "/stats/prometheus")[2].decode(errors="replace")
        counted = re.search(r"^(?:envoy_)?(?:wasmcustom_)?tcp_count_downstream_bytes_total(?:\{[^}]*\})? (\d+)", stats, re.M)
        if not counted or int(counted.group(1)) == 0:
            die(f"{cell}: the network plugin did not count any byte")
    if cell.pset == "routes100":
        # Every route's configuration has its root context, in one VM per worker.
        stats = http_get(cell.admin, "/stats/prometheus")[2].decode(errors="replace")
        vms = re.search(r"^wasp_wasm_vms_active(?:\{\})? (\d+)", stats, re.M)
        roots = re.search(r"^wasp_wasm_root_contexts_active(?:\{\})? (\d+)", stats, re.M)
        if not vms or not roots or int(roots.group(1)) < 101:
            die(f"{cell}: expected 101+ root contexts in one VM per worker, got vms={vms and vms.group(1)} roots={roots and roots.group(1)}")
        cell.note = f"{vms.group(1)} VMs, {roots.group(1)} root contexts"
    if path == "/small" and body != SMALL_BODY.encode():
        die(f"{cell}: unexpected body {body[:80]!r}")
    if path == "/64k":
        if len(body) != BODY_64K:
            die(f"{cell}: body of {len(body)} bytes, expected {BODY_64K}")
        want_upper = cell.pset == "body"
        if want_upper != body[:64].isupper():
            die(f"{cell}: body {'not ' if want_upper else ''}rewritten: {body[:40]!r}")
    return " ".join(f"{k}: {headers[k]}" for k in expected_headers(cell.pset)) or status_line



# ---------------------------------------------------------------------------------------------
# Cells and targets


class Cell:
    def __init__(self, workload, target, pset, path, h2):
        self.workload, self.target, self.pset, self.path, self.h2 = workload, target, pset, path, h2
        self.proc = None
        self.port = None
        self.rounds = []
        self.verified = ""
        self.note = ""

    @property
    def label(self):
        if self.target in ("upstream", "nginx"):
            return {"upstream": "bare upstream (nginx)", "nginx": "nginx reverse proxy"}[self.target]
        return f"{self.target} + {self.pset}" if self.pset != "none" else f"{self.target}, no plugin"

    def __str__(self):
        return f"[{self.workload}] {self.label}"


WORKLOADS = [
    # (id, description, path, h2, [(target, plugin set)])
    ("h1", "HTTP/1.1, 24-byte body", "/small", False,
     [("upstream", "none"), ("nginx", "none"), ("envoy", "none"), ("envoy", "headers"),
      ("envoy", "chain3"), ("envoy", "callout"), ("envoy", "large"),
      ("wasp", "none"), ("wasp", "headers"), ("wasp", "chain3"), ("wasp", "callout"), ("wasp", "large")]),
    ("body", "HTTP/1.1, 64 KiB body", "/64k", False,
     [("upstream", "none"), ("nginx", "none"), ("envoy", "none"), ("envoy", "body"),
      ("wasp", "none"), ("wasp", "body")]),
    ("h2", "HTTP/2 (h2c) downstream, 24-byte body", "/small", True,
     [("upstream", "none"), ("nginx", "none"), ("envoy", "none"), ("envoy", "headers"),
      ("wasp", "none"), ("wasp", "headers")]),
    # The same header edits as a Lua filter and as the Wasm header plugin, in one interleaved
    # group, so that Lua vs Wasm (in each proxy) and wasp-Lua vs Envoy-Lua compare like for like.
    ("lua", "HTTP/1.1, 24-byte body, Lua filter vs Wasm plugin", "/small", False,
     [("envoy", "none"), ("envoy", "headers"), ("envoy", "lua"),
      ("wasp", "none"), ("wasp", "headers"), ("wasp", "lua")]),
    # L4: the same HTTP/1.1 load through a TCP proxy (Envoy's tcp_proxy, wasp's protocol: tcp
    # listener), without and with a network plugin that counts the bytes of every chunk.
    ("tcp", "TCP proxy (HTTP/1.1 24-byte body through it), network plugin", "/small", False,
     [("upstream", "none"), ("envoy", "none"), ("envoy", "tcp_count"),
      ("wasp", "none"), ("wasp", "tcp_count")]),
    # One plugin, 100 routes with a configuration each (a root context each in one VM per
    # worker; Envoy has no per-route Wasm configuration): RSS and CPU per request against the
    # same plugin with one configuration.
    ("routes", "HTTP/1.1, one plugin with 100 per-route configurations", "/small", False,
     [("envoy", "headers"), ("wasp", "headers"), ("wasp", "routes100_same"), ("wasp", "routes100")]),
]


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="wasp-bench-")
        self.procs = []
        self.envoy = find_envoy()
        build_plugins(args.build)
        self.wasp = find_wasp(args.build)
        self.psets = plugin_sets()
        with open(os.path.join(self.work, "64k.txt"), "w") as f:
            line = "the quick brown fox jumps over the lazy dog, again and again and again.\n"  # 72 bytes
            f.write((line * (BODY_64K // len(line) + 1))[:BODY_64K])

    def save_config(self, name, conf):
        """Keeps a copy of every generated configuration in OUT/configs (the report links them)."""
        d = os.path.join(self.args.out, "configs")
        os.makedirs(d, exist_ok=True)
        shutil.copy(conf, os.path.join(d, name + os.path.splitext(conf)[1]))

    def start(self, name, cmd, cpus, env=None):
        p = Proc(name, cmd, cpus, self.work, env)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in self.procs:
            p.stop()
        self.procs = []

    # -- targets --------------------------------------------------------------------------

    def start_nginx(self, name, workers, cpus, server_tmpl, nofile=None, **kw):
        """`nofile`: for many connections, worker_rlimit_nofile and worker_connections (a little
        under it) instead of the default 8192 connections per worker."""
        d = os.path.join(self.work, name)
        os.makedirs(d, exist_ok=True)
        if not os.path.exists(os.path.join(d, "64k.txt")):
            shutil.copy(os.path.join(self.work, "64k.txt"), os.path.join(d, "64k.txt"))
        conf = os.path.join(d, "nginx.conf")
        limits = {"connections": max(8192, nofile - 64), "rlimit_nofile": nofile} if nofile else {}
        with open(conf, "w") as f:
            f.write(nginx_conf(d, workers, server_tmpl.format(dir=d, small=SMALL_BODY.replace("\n", "\\n"), **kw),
                               **limits))
        p = self.start(name, [require("nginx"), "-p", d, "-c", conf, "-e", os.path.join(d, "error.log")], cpus)
        return p

    def start_target(self, cell, workers, cpus, upstream, name=None, nofile=None):
        """`nofile` (the scale workload): nginx sized for that many descriptors, Envoy and wasp
        with SCALE_CIRCUIT_BREAKERS on their upstream cluster."""
        port, h2port, admin = free_port(), free_port(), free_port()
        name = name or f"w{workers}-{cell.workload}-{cell.target}-{cell.pset}"
        cb = SCALE_CIRCUIT_BREAKERS if nofile else None
        if cell.target == "upstream":
            p = self.start_nginx(name, workers, cpus, NGINX_UPSTREAM_SERVER, port=port, h2port=h2port)
            wait_http(port, "/small", 10, p)
            p.cmd_note = "nginx (same configuration as the upstream), worker_processes=%d" % workers
        elif cell.target == "nginx":
            p = self.start_nginx(name, workers, cpus, NGINX_PROXY_SERVER, nofile=nofile, port=port, h2port=h2port,
                                 upstream=upstream)
            wait_http(port, "/small", 10, p)
        elif cell.target == "envoy":
            conf = os.path.join(self.work, name + ".json")
            with open(conf, "w") as f:
                json.dump(envoy_bootstrap(port, admin, upstream, workers, self.psets[cell.pset],
                                          tcp=cell.workload == "tcp", circuit_breakers=cb), f, indent=1)
            p = self.start(name, [self.envoy, "-c", conf, "--concurrency", str(workers), "-l", "warn",
                                  "--disable-hot-restart"], cpus)
            wait_http(admin, "/ready", 60, p)
            h2port = port
        else:
            conf = os.path.join(self.work, name + ".yaml")
            with open(conf, "w") as f:
                json.dump(wasp_config(port, admin, upstream, workers, self.psets[cell.pset],
                                      tcp=cell.workload == "tcp", circuit_breakers=cb), f, indent=1)
            # A cold compiled-module cache per target: every wasp compiles its modules at start, as
            # Envoy does, so that its RSS is not lower just because another target compiled first.
            cache = os.path.join(self.work, name + "-cache")
            p = self.start(name, [self.wasp, "run", "-c", conf, "--cache-dir", cache], cpus,
                           env={"WASP_LOG": "warn"})
            wait_http(admin, "/ready", 60, p)
            h2port = port
            if cell.pset == "routes100":
                warm_routes(port, 100, workers)
        cell.proc = p
        cell.admin = admin
        cell.port = h2port if cell.h2 else port
        cell.h1_port, cell.h2_port = port, h2port
        p.refresh()
        self.save_config(name, conf if cell.target in ("envoy", "wasp") else os.path.join(self.work, name, "nginx.conf"))

    # -- measuring ------------------------------------------------------------------------

    def measure(self, cell, workers, load_cpus, conns=None, h2_streams=None):
        """One round of a cell: a warm-up, then the measured load. `conns` (and `h2_streams`) for
        both wrk and h2load instead of --connections / --h2-connections, --h2-streams."""
        a = self.args
        threads = 1 if workers == 1 else 2
        def load(duration):
            if cell.h2:
                return run_h2load(cell.port, cell.path, conns or a.h2_connections, h2_streams or a.h2_streams,
                                  threads, duration, load_cpus, os.path.join(self.work, "h2load.log"))
            return run_wrk(cell.port, cell.path, conns or a.connections, threads, duration, load_cpus)
        load(a.warmup)  # warm-up: connections, pools, caches; not measured
        cell.proc.refresh()
        t0 = cpu_ticks(cell.proc.pids)
        res = load(a.duration)
        t1 = cpu_ticks(cell.proc.pids)
        if not cell.proc.alive():
            die(f"{cell} died during the run:\n{cell.proc.tail()}")
        cpu_s = (t1 - t0) / CLK_TCK
        res["cpu_s"] = cpu_s
        res["cpu_cores"] = cpu_s / a.duration
        res["cpu_us_per_req"] = cpu_s * 1e6 / res["requests"] if res["requests"] else None
        res["hwm_kib"] = hwm_kib(cell.proc.pids)
        res["rss_kib"] = hwm_kib(cell.proc.pids, "VmRSS:")
        cell.rounds.append(res)
        return res

    def run_workers(self, workers):
        a = self.args
        pinned = workers == 1 and not a.no_pin
        sut_cpus = "1" if pinned else None
        load_cpus = "0" if pinned else None
        up_port, up_h2 = free_port(), free_port()
        upstream = self.start_nginx(f"w{workers}-upstream", workers, load_cpus, NGINX_UPSTREAM_SERVER,
                                    port=up_port, h2port=up_h2)
        wait_http(up_port, "/small", 10, upstream)
        self.save_config(f"w{workers}-upstream", os.path.join(self.work, f"w{workers}-upstream", "nginx.conf"))
        cells = []
        for wid, desc, path, h2, targets in WORKLOADS:
            if a.only and wid not in a.only:
                continue
            group = [Cell(wid, t, ps, path, h2) for t, ps in targets]
            for c in group:
                self.start_target(c, workers, sut_cpus, up_port)
            for c in group:
                c.verified = curl_check(c, c.port, c.path, c.h2)
                if c.note:
                    c.verified += f" ({c.note})"
                log(f"workers={workers} {c}: ok ({c.verified})")
            for r in range(a.rounds):
                for c in group:
                    res = self.measure(c, workers, load_cpus)
                    log(f"workers={workers} round {r + 1}/{a.rounds} {c}: {res['rps']:.0f} req/s, "
                        f"p99 {res['p99_ms']} ms, {res['cpu_us_per_req'] and round(res['cpu_us_per_req'], 1)} µs CPU/req, "
                        f"{res['cpu_cores']:.2f} cores, errors {res['errors']}")
            for c in group:
                c.proc.stop()
                self.procs.remove(c.proc)
            cells += group
        upstream.stop()
        self.procs.remove(upstream)
        out = []
        for c in cells:
            out.append({
                "workers": workers, "workload": c.workload, "target": c.target, "plugins": c.pset,
                "label": c.label, "path": c.path, "protocol": "h2c" if c.h2 else "http/1.1",
                "verified": c.verified, "pinned": pinned,
                "command": " ".join(c.proc.cmd), "load_command": c.rounds[0]["cmd"] if c.rounds else "",
                "rounds": c.rounds,
                "median": summarize(c.rounds),
            })
        return out


def profile(b, a):
    """`perf record` of wasp with the header plugin (workers=1, pinned) under wrk load; prints
    and saves the top symbols by self time. perf samples the cpu-clock (software) event, which
    works in VMs without hardware counters."""
    if not shutil.which("perf"):
        die("perf not found (apt-get install linux-perf)")
    up_port = free_port()
    upstream = b.start_nginx("profile-upstream", 1, "0", NGINX_UPSTREAM_SERVER, port=up_port, h2port=free_port())
    wait_http(up_port, "/small", 10, upstream)
    cell = Cell("h1", "wasp", a.profile_plugins, "/small", False)
    b.start_target(cell, 1, "1", up_port)
    cell.verified = curl_check(cell, cell.port, cell.path, False)
    log(f"profiling {cell} ({cell.verified}) for {a.duration} s")
    data = os.path.join(a.out, "perf.data")
    os.makedirs(a.out, exist_ok=True)
    run_wrk(cell.port, cell.path, a.connections, 1, a.warmup, "0")
    rec = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "1999", "--call-graph", "dwarf,16384",
                            "-o", data, "-p", str(cell.proc.p.pid), "--", "sleep", str(a.duration)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    res = run_wrk(cell.port, cell.path, a.connections, 1, a.duration, "0")
    rec.wait()
    log(f"{res['rps']:.0f} req/s during the profile")
    report = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,symbol",
                             "--percent-limit", "0.5", "-g", "none"], capture_output=True, text=True).stdout
    by_dso = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso",
                             "-g", "none"], capture_output=True, text=True).stdout
    with open(os.path.join(a.out, "profile.txt"), "w") as f:
        f.write(report + "\n" + by_dso)
    print(report)
    print(by_dso)
    log(f"wrote {a.out}/profile.txt and {data} (perf report -i {data})")


def summarize(rounds):
    def med(key):
        vals = [r[key] for r in rounds if r.get(key) is not None]
        return statistics.median(vals) if vals else None
    rps = [r["rps"] for r in rounds]
    return {
        "rps": med("rps"), "p50_ms": med("p50_ms"), "p99_ms": med("p99_ms"),
        "cpu_us_per_req": med("cpu_us_per_req"), "cpu_cores": med("cpu_cores"),
        "hwm_kib": max(r["hwm_kib"] for r in rounds) if rounds else None,
        "rss_kib": max(r["rss_kib"] for r in rounds) if rounds else None,
        "errors": sum(r["errors"] for r in rounds),
        "cpu_us_range": (max(r["cpu_us_per_req"] for r in rounds) - min(r["cpu_us_per_req"] for r in rounds))
        if rounds and all(r.get("cpu_us_per_req") is not None for r in rounds) else None,
        "rps_spread_pct": (max(rps) - min(rps)) * 100 / statistics.median(rps) if rps and statistics.median(rps) else None,
    }

