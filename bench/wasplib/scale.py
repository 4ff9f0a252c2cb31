"""The `scale` workload: requests/s, p99 and CPU per request at 10 to 10,000 concurrent
connections, HTTP/1.1 (wrk) and HTTP/2 (h2load, h2c, few streams per connection), through nginx
as a reverse proxy, Envoy + the header plugin and wasp + the header plugin."""

import os

from .cells import Cell, curl_check, summarize
from .common import free_port, log, raise_nofile, restore_nofile
from .configs import NGINX_UPSTREAM_SERVER, SCALE_CIRCUIT_BREAKERS, plugin_sets, wasp_config
from .procs import wait_http

TARGETS = (("nginx", "none"), ("envoy", "headers"), ("wasp", "headers"))


def run(b, workers):
    """One group per connection count: the three targets started afresh (so that RSS is that of
    this count), each measured over HTTP/1.1 and HTTP/2 in interleaved rounds. Returns rows like
    bench cells, with `connections`, and the descriptor limit in force."""
    a = b.args
    pinned = workers == 1 and not a.no_pin
    sut_cpus = "1" if pinned else None
    load_cpus = "0" if pinned else None
    threads = 1 if workers == 1 else 2
    counts = a.scale_connections
    # A proxy holds each downstream connection and some upstream ones; nginx opens an upstream
    # connection per request in flight (keepalive only bounds the idle ones).
    want = 2 * max(counts) + 1024
    (soft, hard), before = raise_nofile(want)
    if soft < want:
        log(f"scale: RLIMIT_NOFILE is {soft} (hard {hard}), under the {want} wanted for {max(counts)} connections "
            "through a proxy: a proxy with as many upstream connections as downstream ones may run out of descriptors")
    # wasp: no proxy-wide max_connections (nothing else limits its downstream connections).
    assert "max_connections" not in wasp_config(1, 2, 3, workers, [])
    up_port = free_port()
    upstream = b.start_nginx(f"w{workers}-scale-upstream", workers, load_cpus, NGINX_UPSTREAM_SERVER, nofile=soft,
                             port=up_port, h2port=free_port())
    rows = []
    try:
        wait_http(up_port, "/small", 10, upstream)
        b.save_config(f"w{workers}-scale-upstream", os.path.join(b.work, f"w{workers}-scale-upstream", "nginx.conf"))
        for n in counts:
            if n < threads:
                log(f"scale: {n} connections < {threads} load threads: skipped (wrk needs -c >= -t)")
                continue
            h1, h2 = [], []
            for t, ps in TARGETS:
                c1 = Cell("scale", t, ps, "/small", False)
                b.start_target(c1, workers, sut_cpus, up_port, name=f"w{workers}-scale{n}-{t}-{ps}", nofile=soft)
                c2 = Cell("scale", t, ps, "/small", True)
                c2.proc, c2.admin, c2.port = c1.proc, c1.admin, c1.h2_port
                h1.append(c1)
                h2.append(c2)
            group = h1 + h2
            for c in group:
                c.verified = curl_check(c, c.port, c.path, c.h2)
                log(f"scale workers={workers} connections={n} {c} {'h2c' if c.h2 else 'http/1.1'}: ok ({c.verified})")
            for r in range(a.rounds):
                for c in group:
                    res = b.measure(c, workers, load_cpus, conns=n, h2_streams=a.scale_h2_streams)
                    log(f"scale workers={workers} connections={n} round {r + 1}/{a.rounds} {c} "
                        f"{'h2c' if c.h2 else 'http/1.1'}: {res['rps']:.0f} req/s, p99 {res['p99_ms']} ms, "
                        f"{res['cpu_us_per_req'] and round(res['cpu_us_per_req'], 1)} µs CPU/req, "
                        f"{res['rss_kib'] / 1024:.1f} MiB RSS, errors {res['errors']}")
            for c in h1:
                c.proc.stop()
                b.procs.remove(c.proc)
            for c in group:
                rows.append({
                    "workers": workers, "connections": n, "workload": "scale", "target": c.target,
                    "plugins": c.pset, "label": c.label, "path": c.path, "protocol": "h2c" if c.h2 else "http/1.1",
                    "h2_streams": a.scale_h2_streams if c.h2 else None, "threads": threads,
                    "verified": c.verified, "pinned": pinned, "nofile": soft,
                    "circuit_breakers": SCALE_CIRCUIT_BREAKERS if c.target != "nginx" else None,
                    "command": " ".join(c.proc.cmd), "load_command": c.rounds[0]["cmd"] if c.rounds else "",
                    "rounds": c.rounds, "median": summarize(c.rounds),
                })
    finally:
        upstream.stop()
        b.procs.remove(upstream)
        restore_nofile(before)
    return rows


def steps(rows):
    """Per protocol and target, req/s at each connection count over req/s at the one before
    (0.8: 20 % fewer requests/s with more connections). Returns [{workers, protocol, from, to,
    nginx, envoy, wasp}] with the ratios."""
    idx = {(r["workers"], r["protocol"], r["target"], r["connections"]): r["median"]["rps"] for r in rows}
    out = []
    for w, proto in sorted({(r["workers"], r["protocol"]) for r in rows}):
        counts = sorted({r["connections"] for r in rows if r["workers"] == w and r["protocol"] == proto})
        for lo, hi in zip(counts, counts[1:]):
            step = {"workers": w, "protocol": proto, "from": lo, "to": hi}
            for t, _ in TARGETS:
                x, y = idx.get((w, proto, t, lo)), idx.get((w, proto, t, hi))
                step[t] = y / x if x and y is not None else None
            out.append(step)
    return out
