"""bench/run's command line: which workloads, how long, where the results go."""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys

from .analyse import analyse, memory_slopes, update_benchmarks
from . import memory, scale, startup
from .cells import WORKLOADS, Bench, profile, summarize
from .common import ROOT, die, log, require, version_of
from .render import loadavg, machine_info, render

CELL_WORKLOADS = [w[0] for w in WORKLOADS]
OTHER_WORKLOADS = ["scale", "memory", "startup"]


def counts(text):
    return [int(x) for x in text.split(",") if x.strip()]


def reanalyse(data):
    """Medians, ratios, slopes and targets from the raw rounds (again, for --render)."""
    for c in data["cells"] + data.get("scale", []):
        c["median"] = summarize(c["rounds"])
    data["memory_slopes"] = memory_slopes(data.get("memory"))
    data["ratios"], data["plugin_costs"], data["targets"] = analyse(
        data["cells"], data["startup"], data.get("scale", []), data.get("memory"))


def main(doc=__doc__):
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 round, 2 s per cell, 1 start-up rep")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    ap.add_argument("--duration", type=int, help="seconds measured per cell (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="seconds of unmeasured load before each cell (default 1)")
    ap.add_argument("--workers", default="1,2", help="worker counts, comma-separated (default 1,2)")
    ap.add_argument("--only", help=f"workloads to run: {','.join(CELL_WORKLOADS + OTHER_WORKLOADS)} (default all)")
    ap.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    ap.add_argument("--h2-connections", type=int, default=10, help="h2load connections (default 10)")
    ap.add_argument("--h2-streams", type=int, default=10, help="h2load streams per connection (default 10)")
    ap.add_argument("--startup-reps", type=int, help="start-up measurements per mode (default 5)")
    ap.add_argument("--startup-plugins", type=counts, default=[1, 10, 100],
                    help="start-up: numbers of distinct plugins, comma-separated (default 1,10,100)")
    ap.add_argument("--scale-connections", type=counts, default=[10, 100, 1000, 10000],
                    help="scale: concurrent connections, comma-separated (default 10,100,1000,10000)")
    ap.add_argument("--scale-workers", type=counts, default=[1],
                    help="scale: worker counts, comma-separated (default 1: pinned as the other workers=1 cells)")
    ap.add_argument("--scale-h2-streams", type=int, default=1,
                    help="scale: h2load streams per connection (default 1)")
    ap.add_argument("--memory-plugins", type=counts, default=[1, 10, 50],
                    help="memory: numbers of plugins of one module, comma-separated (default 1,10,50)")
    ap.add_argument("--memory-workers", type=int, default=2, help="memory: workers with N plugins (default 2)")
    ap.add_argument("--memory-requests", type=int, default=200,
                    help="memory: requests before reading RSS (default 200)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin with taskset at workers=1")
    ap.add_argument("--no-build", dest="build", action="store_false", help="use the existing wasp and plugin builds")
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "bench"), help="where results.{json,md} go")
    ap.add_argument("--update-benchmarks", action="store_true", help="write the results into BENCHMARKS.md")
    ap.add_argument("--shared", action="store_true", help="say in the report that the machine was shared during the run")
    ap.add_argument("--profile", action="store_true",
                    help="instead of the benchmark: perf record wasp (workers=1, --profile-plugins) under wrk load")
    ap.add_argument("--profile-plugins", default="headers", help="plugin set for --profile (default headers)")
    ap.add_argument("--keep", action="store_true", help="keep the temp directory (configurations, logs)")
    ap.add_argument("--render", metavar="RESULTS_JSON",
                    help="only re-render the markdown from an earlier results.json (with --update-benchmarks, into BENCHMARKS.md)")
    a = ap.parse_args()
    if a.render:
        data = json.load(open(a.render))
        reanalyse(data)
        md = render(data)
        if a.update_benchmarks:
            update_benchmarks(md)
        print(md)
        return
    a.rounds = a.rounds or (1 if a.quick else 3)
    a.duration = a.duration or (2 if a.quick else 5)
    a.startup_reps = a.startup_reps or (1 if a.quick else 5)
    a.workers = [int(w) for w in a.workers.split(",")]
    a.only = set(a.only.split(",")) if a.only else None
    unknown = (a.only or set()) - set(CELL_WORKLOADS + OTHER_WORKLOADS)
    if unknown:
        die(f"unknown workload(s) {','.join(sorted(unknown))}: pick from {','.join(CELL_WORKLOADS + OTHER_WORKLOADS)}")
    for t in ("wrk", "h2load", "nginx", "curl", "taskset"):
        require(t)
    if os.cpu_count() < 2 and not a.no_pin:
        die("pinning needs 2 CPUs; use --no-pin")

    b = Bench(a)
    if a.profile:
        try:
            profile(b, a)
        finally:
            b.stop_all()
            shutil.rmtree(b.work, ignore_errors=True)
        return
    git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    data = {
        "command": "bench/run " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "loadavg_before": loadavg(),
        "shared_note": a.shared,
        "versions": {
            "wasp_git": git,
            "wasp": version_of([b.wasp, "--version"]),
            "envoy": version_of([b.envoy, "--version"]).replace(b.envoy, "envoy").strip(" :"),
            "nginx": version_of([require("nginx"), "-v"]),
            "wrk": version_of(["wrk", "-v"]).split(" [")[0],
            "h2load": version_of(["h2load", "--version"]),
            "rustc": version_of(["rustc", "-V"]),
        },
        "settings": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(a).items()},
        "cells": [], "startup": [], "scale": [], "memory": None,
    }
    log(f"work dir {b.work}; envoy {b.envoy}; wasp {b.wasp}")
    try:
        for w in a.workers:
            if not a.only or a.only - set(OTHER_WORKLOADS):
                data["cells"] += b.run_workers(w)
        if not a.only or "scale" in a.only:
            for w in a.scale_workers:
                data["scale"] += scale.run(b, w)
        if not a.only or "memory" in a.only:
            data["memory"] = memory.run(b)
        if not a.only or "startup" in a.only:
            for w in a.workers:
                data["startup"] += startup.run(b, w, a.startup_plugins)
    finally:
        b.stop_all()
        if not a.keep:
            shutil.rmtree(b.work, ignore_errors=True)
        else:
            log(f"kept {b.work}")
    data["loadavg_after"] = loadavg()
    data["sample_configs"] = {}
    for name, ext in (("envoy", "json"), ("wasp", "yaml")):
        f = os.path.join(a.out, "configs", f"w{a.workers[0]}-h1-{name}-headers.{ext}")
        if os.path.exists(f):
            data["sample_configs"][name] = open(f).read()
        # The Lua filter's part only (the rest is as above): Envoy's http_filters, wasp's plugins.
        f = os.path.join(a.out, "configs", f"w{a.workers[0]}-lua-{name}-lua.{ext}")
        if os.path.exists(f):
            conf = json.load(open(f))
            part = (conf["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
                    if name == "envoy" else {"plugins": conf["plugins"]})
            data["sample_configs"][name + "-lua"] = json.dumps(part, indent=1)
    data["memory_slopes"] = memory_slopes(data["memory"])
    data["ratios"], data["plugin_costs"], data["targets"] = analyse(data["cells"], data["startup"], data["scale"],
                                                                    data["memory"])
    md = render(data)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(data, f, indent=1)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(md)
    log(f"wrote {a.out}/results.json and results.md")
    if a.update_benchmarks:
        update_benchmarks(md)
    print(md)


