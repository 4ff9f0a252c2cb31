"""The `memory` workload.

(a) One plugin, workers=1 (pinned as the other workers=1 cells): RSS after 200 requests for wasp
    after a cold start (empty --cache-dir) and a warm one (the cache the cold start filled), Envoy
    with the same module, and nginx as a reverse proxy (no plugin) for the baseline; for the Rust
    header plugin and the Go plugin.
(b) 1, 10 and 50 plugins of one module (distinct names and vm ids: a VM each per worker),
    workers=2, wasp warm and Envoy, Rust and Go: RSS, peak (VmHWM), and the VM count each proxy
    reports. wasplib.analyse fits the RSS added per plugin VM.

Every row: VmRSS and VmHWM summed over the target's processes, and /proc/PID/smaps_rollup
(Anonymous against Rss - Anonymous: file-backed and shared memory, e.g. code mapped from a file).
"""

import http.client
import json
import os
import shutil
import statistics

from .common import GO_PLUGIN, die, free_port, log
from .configs import (MEMORY_MODULES, NGINX_PROXY_SERVER, NGINX_UPSTREAM_SERVER, envoy_bootstrap,
                      same_module_headers, same_module_plugins, wasp_config)
from .procs import hwm_kib, prom_value, smaps_kib, wait_http

# The active-VM gauges: wasp's, and Envoy's wasm.envoy.wasm.runtime.v8.active.
VM_METRIC = {"wasp": "wasp_wasm_vms_active", "envoy": "envoy_wasm_envoy_wasm_runtime_v8_active"}


def expected_vms(proxy, plugins, workers):
    """The convention of "What a plugin costs": wasp runs a VM per plugin per worker; Envoy
    also keeps two per plugin on its main thread (the base VM and a thread-local one), as its
    active-VM gauge shows."""
    return {"wasp": plugins * workers, "envoy": plugins * (workers + 2)}.get(proxy, 0)


def start(b, proxy, name, workers, cpus, upstream, plugins, cache=None):
    """Starts a target and waits until it is ready; returns (proc, port, admin)."""
    port, admin = free_port(), free_port()
    if proxy == "nginx":
        p = b.start_nginx(name, workers, cpus, NGINX_PROXY_SERVER, port=port, h2port=free_port(), upstream=upstream)
        wait_http(port, "/small", 10, p)
        conf = os.path.join(b.work, name, "nginx.conf")
    elif proxy == "envoy":
        conf = os.path.join(b.work, name + ".json")
        with open(conf, "w") as f:
            json.dump(envoy_bootstrap(port, admin, upstream, workers, plugins), f, indent=1)
        p = b.start(name, [b.envoy, "-c", conf, "--concurrency", str(workers), "-l", "warn", "--disable-hot-restart"],
                    cpus)
        wait_http(admin, "/ready", 60 + 2 * len(plugins), p)
    else:
        conf = os.path.join(b.work, name + ".yaml")
        with open(conf, "w") as f:
            json.dump(wasp_config(port, admin, upstream, workers, plugins), f, indent=1)
        p = b.start(name, [b.wasp, "run", "-c", conf, "--cache-dir", cache], cpus, env={"WASP_LOG": "warn"})
        wait_http(admin, "/ready", 60 + 2 * len(plugins), p)
    b.save_config(name, conf)
    return p, port, admin


def stop(b, p):
    p.stop()
    b.procs.remove(p)


def drive(name, port, n, proof):
    """n requests, each on a new connection (so that every worker gets some), each checked: 200
    and the plugins' response headers."""
    for i in range(n):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            c.request("GET", "/small")
            r = c.getresponse()
            r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
        except OSError as e:
            die(f"memory {name}: request {i + 1}/{n} failed: {e}")
        finally:
            c.close()
        missing = [k for k, v in proof.items() if hdrs.get(k) != v]
        if r.status != 200 or missing:
            die(f"memory {name}: request {i + 1}/{n}: {r.status}, missing plugin headers {missing[:5]}")


def sample(b, name, p, proxy, port, admin, nplugins, workers, proof):
    """Drives the requests, then reads the target's memory."""
    drive(name, port, b.args.memory_requests, proof)
    if not p.alive():
        die(f"memory {name}: exited\n{p.tail()}")
    p.refresh()
    sm = smaps_kib(p.pids)
    vms = prom_value(admin, VM_METRIC[proxy]) if proxy in VM_METRIC else None
    want = expected_vms(proxy, nplugins, workers)
    if proxy in VM_METRIC and vms is not None and int(vms) != want:
        log(f"memory {name}: {int(vms)} VMs active, expected {want}")
    return {"rss_kib": hwm_kib(p.pids, "VmRSS:"), "hwm_kib": hwm_kib(p.pids),
            "smaps_rss_kib": sm.get("Rss"), "anon_kib": sm.get("Anonymous"), "pss_kib": sm.get("Pss"),
            "file_shmem_kib": sm["Rss"] - sm["Anonymous"] if "Rss" in sm and "Anonymous" in sm else None,
            "vms": int(vms) if vms is not None else None, "processes": len(p.pids)}


def median_row(row, samples):
    row["samples"] = samples
    for k in ("rss_kib", "hwm_kib", "anon_kib", "file_shmem_kib", "pss_kib", "vms"):
        vals = [s[k] for s in samples if s.get(k) is not None]
        row[k] = statistics.median(vals) if vals else None
    return row


def run(b):
    a = b.args
    if not os.path.exists(GO_PLUGIN):
        die(f"{GO_PLUGIN} missing: build it with scripts/build-foreign-plugins.sh")
    d = os.path.join(b.work, "memory")
    os.makedirs(d, exist_ok=True)
    pinned = not a.no_pin
    sut_cpus, load_cpus = ("1", "0") if pinned else (None, None)
    up_port = free_port()
    up = b.start_nginx("memory-upstream", 1, load_cpus, NGINX_UPSTREAM_SERVER, port=up_port, h2port=free_port())
    wait_http(up_port, "/small", 10, up)
    cold_warm, by_plugins = {}, {}
    try:
        for r in range(a.rounds):
            # (a) one plugin, workers=1
            p, port, admin = start(b, "nginx", "memory-nginx", 1, sut_cpus, up_port, [])
            s = sample(b, "nginx", p, "nginx", port, admin, 0, 1, {})
            stop(b, p)
            cold_warm.setdefault(("-", "nginx", "-"), []).append((s, " ".join(p.cmd)))
            log(f"memory round {r + 1}/{a.rounds} nginx reverse proxy: RSS {s['rss_kib'] / 1024:.1f} MiB")
            for module in MEMORY_MODULES:
                plugins = same_module_plugins(module, 1)
                proof = same_module_headers(module, 1)
                cache = os.path.join(d, f"cache-{module}-1")
                shutil.rmtree(cache, ignore_errors=True)
                for proxy, mode in (("wasp", "cold"), ("wasp", "warm"), ("envoy", "-")):
                    name = f"memory-w1-{module}-{proxy}" + (f"-{mode}" if proxy == "wasp" else "")
                    p, port, admin = start(b, proxy, name, 1, sut_cpus, up_port, plugins, cache)
                    s = sample(b, name, p, proxy, port, admin, 1, 1, proof)
                    stop(b, p)
                    cold_warm.setdefault((module, proxy, mode), []).append((s, " ".join(p.cmd)))
                    log(f"memory round {r + 1}/{a.rounds} {module} {proxy} {mode}: RSS {s['rss_kib'] / 1024:.1f} MiB, "
                        f"anon {(s['anon_kib'] or 0) / 1024:.1f} MiB, peak {s['hwm_kib'] / 1024:.1f} MiB")
            # (b) n plugins of one module, workers=--memory-workers, wasp warm and Envoy
            w = a.memory_workers
            for module in MEMORY_MODULES:
                for n in a.memory_plugins:
                    plugins = same_module_plugins(module, n)
                    proof = same_module_headers(module, n)
                    cache = os.path.join(d, f"cache-{module}-n{n}")
                    for proxy in ("wasp", "envoy"):
                        name = f"memory-w{w}-{module}-{n}-{proxy}"
                        if proxy == "wasp" and not os.path.isdir(cache):
                            p, _, _ = start(b, proxy, name + "-fill", w, None, up_port, plugins, cache)
                            stop(b, p)  # fills the compiled-module cache; not measured
                        p, port, admin = start(b, proxy, name, w, None, up_port, plugins, cache)
                        s = sample(b, name, p, proxy, port, admin, n, w, proof)
                        stop(b, p)
                        by_plugins.setdefault((module, proxy, n), []).append((s, " ".join(p.cmd)))
                        log(f"memory round {r + 1}/{a.rounds} workers={w} {module} x{n} {proxy}: "
                            f"RSS {s['rss_kib'] / 1024:.1f} MiB, {s['vms']} VMs (expected "
                            f"{expected_vms(proxy, n, w)}), peak {s['hwm_kib'] / 1024:.1f} MiB")
    finally:
        stop(b, up)
    out = {"requests": a.memory_requests, "pinned": pinned, "cold_warm": [], "plugins": []}
    for (module, proxy, mode), got in cold_warm.items():
        out["cold_warm"].append(median_row({
            "workers": 1, "module": module, "module_label": MEMORY_MODULES[module]["label"] if module != "-" else "–",
            "module_file": MEMORY_MODULES[module]["file"] if module != "-" else None,
            "proxy": proxy, "cache": mode, "plugins": 0 if module == "-" else 1,
            "vms_expected": expected_vms(proxy, 0 if module == "-" else 1, 1), "command": got[0][1],
        }, [s for s, _ in got]))
    for (module, proxy, n), got in by_plugins.items():
        out["plugins"].append(median_row({
            "workers": a.memory_workers, "module": module, "module_label": MEMORY_MODULES[module]["label"],
            "module_file": MEMORY_MODULES[module]["file"], "proxy": proxy, "cache": "warm" if proxy == "wasp" else "-",
            "plugins": n, "vms_expected": expected_vms(proxy, n, a.memory_workers), "command": got[0][1],
        }, [s for s, _ in got]))
    return out
