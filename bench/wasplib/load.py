"""Load generators: wrk (HTTP/1.1) and h2load (HTTP/2, h2c)."""

import os
import re
import subprocess

from .common import die, log

# h2load -D with thousands of connections sometimes never ends: some of its clients keep
# sending after its timer fired (seen with Envoy and wasp alike at 10,000 connections, a 1 s
# run, about one try in three). A run that outlives its duration by this much is stopped and
# counted as failed, instead of holding up the whole benchmark.
H2LOAD_GRACE_S = 60


def parse_wrk_time(s):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
    if not m:
        return None
    v = float(m.group(1))
    return v * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[m.group(2)]


def run_wrk(port, path, conns, threads, duration, cpus):
    cmd = (["taskset", "-c", cpus] if cpus else []) + [
        "wrk", "-t", str(threads), "-c", str(conns), "-d", f"{duration}s", "--latency",
        f"http://127.0.0.1:{port}{path}"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    text = out.stdout
    if out.returncode != 0:
        die(f"wrk failed: {out.stderr}\n{text}")
    res = {"cmd": " ".join(cmd)}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    res["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    res["rps"] = float(m.group(1)) if m else 0.0
    for pct, key in (("50%", "p50_ms"), ("99%", "p99_ms")):
        m = re.search(rf"^\s+{re.escape(pct)}\s+(\S+)", text, re.M)
        res[key] = parse_wrk_time(m.group(1)) if m else None
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(x) for x in m.groups())
    res["errors"] = errors
    return res


def run_h2load(port, path, conns, streams, threads, duration, cpus, logfile):
    cmd = (["taskset", "-c", cpus] if cpus else []) + [
        "h2load", "-t", str(threads), "-c", str(conns), "-m", str(streams), "-D", str(duration),
        "--log-file", logfile, f"http://127.0.0.1:{port}{path}"]
    res = {"cmd": " ".join(c if c != logfile else "LOG" for c in cmd)}
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + H2LOAD_GRACE_S)
    except subprocess.TimeoutExpired:
        log(f"h2load did not end {H2LOAD_GRACE_S} s after its {duration} s run ({conns} connections): "
            "stopped, counted as a failed run")
        return dict(res, rps=0.0, requests=0, errors=conns, p50_ms=None, p99_ms=None, hung=True)
    text = out.stdout
    if out.returncode != 0:
        die(f"h2load failed: {out.stderr}\n{text}")
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text)
    res["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", text)
    if m:
        res["requests"] = int(m.group(3))
        res["errors"] = int(m.group(5)) + int(m.group(6)) + int(m.group(7))
    else:
        res["requests"], res["errors"] = 0, 1
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if m:
        res["errors"] += int(m.group(3)) + int(m.group(4))
    lat = []
    try:
        with open(logfile) as f:
            for line in f:
                parts = line.split()  # start(us) status elapsed(us)
                if len(parts) >= 3:
                    lat.append(int(parts[2]))
        os.unlink(logfile)
    except OSError:
        pass
    lat.sort()
    res["p50_ms"] = lat[len(lat) // 2] / 1000 if lat else None
    res["p99_ms"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))] / 1000 if lat else None
    return res

