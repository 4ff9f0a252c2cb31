"""The `startup` workload: time to /ready and to the first response through N distinct plugins
(the header plugin with N different custom sections: N modules, N cache entries), for wasp with a
cold and a warm compiled-module cache, and Envoy; RSS once the first response is back."""

import json
import os
import shutil
import statistics
import time

from .common import PLUGINS_OUT, die, free_port, log, with_custom_section
from .configs import NGINX_UPSTREAM_SERVER, envoy_bootstrap, wasp_config
from .procs import Proc, http_get, hwm_kib, wait_http


def variants(d, n):
    """n distinct modules that run the same: headers.wasm plus a custom section each."""
    base = open(os.path.join(PLUGINS_OUT, "headers.wasm"), "rb").read()
    plugins = []
    for i in range(n):
        path = os.path.join(d, f"headers-{i}.wasm")
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(with_custom_section(base, "wasp-bench-variant", str(i).encode()))
        plugins.append({"name": f"p{i}", "wasm": path, "config": f"x-bench-p{i}"})
    return plugins


def once(b, workers, kind, cache, plugins, upstream_port, d):
    """One start: (ms to /ready, ms to the first response with every plugin's header, VmHWM KiB,
    VmRSS KiB, command)."""
    n = len(plugins)
    port, admin = free_port(), free_port()
    if kind == "envoy":
        conf = os.path.join(d, "envoy.json")
        with open(conf, "w") as f:
            json.dump(envoy_bootstrap(port, admin, upstream_port, workers, plugins), f)
        cmd = [b.envoy, "-c", conf, "--concurrency", str(workers), "-l", "warn", "--disable-hot-restart"]
        env = {}
    else:
        conf = os.path.join(d, "wasp.yaml")
        with open(conf, "w") as f:
            json.dump(wasp_config(port, admin, upstream_port, workers, plugins), f)
        cmd = [b.wasp, "run", "-c", conf, "--cache-dir", cache]
        env = {"WASP_LOG": "warn"}
    deadline = 60 + n  # s: 100 modules to compile on a shared 2-core machine take a while
    t0 = time.monotonic()
    p = Proc(f"startup-{kind}", cmd, None, d, env)
    ready = first = None
    try:
        end = t0 + deadline
        while time.monotonic() < end and ready is None:
            if not p.alive():
                die(f"{kind} exited during start-up:\n{p.tail()}")
            try:
                if http_get(admin, "/ready", 0.5)[0] == 200:
                    ready = time.monotonic() - t0
            except OSError:
                time.sleep(0.002)
        while time.monotonic() < end and first is None and ready is not None:
            try:
                status, hdrs, _ = http_get(port, "/small", 2)
                if status == 200 and all(hdrs.get(f"x-bench-p{i}") == "1" for i in range(n)):
                    first = time.monotonic() - t0
                elif status == 200:
                    die(f"{kind}: answered without the {n} plugins' headers: {hdrs}")
            except OSError:
                time.sleep(0.002)
        if ready is None or first is None:
            die(f"{kind}: not ready with {n} plugins within {deadline} s\n{p.tail()}")
        p.refresh()
        hwm, rss = hwm_kib(p.pids), hwm_kib(p.pids, "VmRSS:")
    finally:
        p.stop()
    return ready * 1000, first * 1000, hwm, rss, " ".join(cmd)


def run(b, workers, counts=(10,)):
    a = b.args
    d = os.path.join(b.work, "startup")
    os.makedirs(d, exist_ok=True)
    every = variants(d, max(counts))
    upstream_port = free_port()
    up = b.start_nginx(f"startup-w{workers}-upstream", 1, None, NGINX_UPSTREAM_SERVER,
                       port=upstream_port, h2port=free_port())
    wait_http(upstream_port, "/small", 10, up)
    out = []
    reps = a.startup_reps
    for n in counts:
        plugins = every[:n]
        for kind, mode in (("wasp", "cold"), ("wasp", "warm"), ("envoy", "-")):
            rows = []
            cache = os.path.join(d, f"cache-w{workers}-n{n}")
            if kind == "wasp" and mode == "warm":
                shutil.rmtree(cache, ignore_errors=True)
                once(b, workers, "wasp", cache, plugins, upstream_port, d)  # fills the cache; not counted
            for _ in range(reps):
                if kind == "wasp" and mode == "cold":
                    shutil.rmtree(cache, ignore_errors=True)
                rows.append(once(b, workers, kind, cache, plugins, upstream_port, d))
            r = {
                "workers": workers, "plugins": n, "proxy": kind, "cache": mode,
                "ready_ms": [r[0] for r in rows], "first_ms": [r[1] for r in rows],
                "hwm_kib": [r[2] for r in rows], "rss_kib": [r[3] for r in rows], "command": rows[0][4],
                "ready_ms_median": statistics.median(r[0] for r in rows),
                "first_ms_median": statistics.median(r[1] for r in rows),
                "hwm_kib_median": statistics.median(r[2] for r in rows),
                "rss_kib_median": statistics.median(r[3] for r in rows),
            }
            out.append(r)
            log(f"start-up workers={workers} plugins={n} {kind} {mode}: /ready {r['ready_ms_median']:.0f} ms, "
                f"first plugin response {r['first_ms_median']:.0f} ms, RSS {r['rss_kib_median'] / 1024:.1f} MiB")
        shutil.rmtree(os.path.join(d, f"cache-w{workers}-n{n}"), ignore_errors=True)
    up.stop()
    b.procs.remove(up)
    return out
