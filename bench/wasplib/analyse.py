"""What the numbers say: wasp / Envoy ratios, what a plugin costs, Lua vs Wasm, the memory
slopes, the targets of issues 6 and 18; and writing BENCHMARKS.md."""

import os

from .common import ROOT, fmt, log, ratio
from .configs import PLUGIN_LABEL, plugin_sets
from .scale import steps as scale_steps


def lua_vs_wasm(cells):
    """The `lua` workload: per proxy, the Lua filter's and the Wasm plugin's cost over no plugin;
    and the ratios Lua/Wasm (in wasp) and wasp/Envoy (Lua)."""
    idx = {(c["workers"], c["target"], c["plugins"]): c["median"] for c in cells if c["workload"] == "lua"}
    if not idx:
        return None
    rows, ratios = [], []

    def d(a, b, key, scale=1):
        return (a[key] - b[key]) / scale if a and b and a[key] is not None and b[key] is not None else None

    for w in sorted({k[0] for k in idx}):
        for t in ("wasp", "envoy"):
            n, h, l = idx.get((w, t, "none")), idx.get((w, t, "headers")), idx.get((w, t, "lua"))
            if not (n and h and l):
                continue
            rows.append({"workers": w, "target": t, "none_us": n["cpu_us_per_req"],
                         "wasm_us": d(h, n, "cpu_us_per_req"), "lua_us": d(l, n, "cpu_us_per_req"),
                         "wasm_rps": h["rps"], "lua_rps": l["rps"], "wasm_p99": h["p99_ms"], "lua_p99": l["p99_ms"],
                         "wasm_mib": d(h, n, "rss_kib", 1024), "lua_mib": d(l, n, "rss_kib", 1024)})
        for what, a, b in (("wasp: Lua / Wasm", ("wasp", "lua"), ("wasp", "headers")),
                           ("Envoy: Lua / Wasm", ("envoy", "lua"), ("envoy", "headers")),
                           ("Lua: wasp / Envoy", ("wasp", "lua"), ("envoy", "lua")),
                           ("Wasm: wasp / Envoy", ("wasp", "headers"), ("envoy", "headers"))):
            x, y = idx.get((w,) + a), idx.get((w,) + b)
            if x and y:
                ratios.append({"workers": w, "what": what, "rps": ratio(x["rps"], y["rps"]),
                               "p99": ratio(x["p99_ms"], y["p99_ms"]),
                               "cpu": ratio(x["cpu_us_per_req"], y["cpu_us_per_req"]),
                               "rss": ratio(x["rss_kib"], y["rss_kib"])})
    return {"rows": rows, "ratios": ratios}


def analyse(cells, startup, scale=(), memory=None):
    idx = {(c["workers"], c["workload"], c["target"], c["plugins"]): c["median"] for c in cells}
    ratios, costs = [], []
    for (w, wl, t, ps), s in sorted(idx.items()):
        if t != "wasp":
            continue
        e = idx.get((w, wl, "envoy", ps))
        if not e:
            continue
        ratios.append({"workers": w, "workload": wl, "plugins": ps,
                       "rps": ratio(s["rps"], e["rps"]), "p99": ratio(s["p99_ms"], e["p99_ms"]),
                       "cpu": ratio(s["cpu_us_per_req"], e["cpu_us_per_req"]), "rss": ratio(s["rss_kib"], e["rss_kib"])})
        if ps == "none":
            continue
        # VMs serving requests: one per plugin per worker in both. Envoy also keeps two more per
        # plugin, as its active-VM gauge shows (the memory workload): the base VM it loads the
        # code in and clones the others from, and a thread-local one on its main thread. Its
        # delta is spread over plugins x (workers + 2) VMs, which favours Envoy.
        nplugins = len(plugin_sets()[ps])
        nvms, envoy_vms = nplugins * w, nplugins * (w + 2)

        def delta(target, key):
            a, b = idx.get((w, wl, target, ps)), idx.get((w, wl, target, "none"))
            if not a or not b or a[key] is None or b[key] is None:
                return None
            return a[key] - b[key]

        ew, ww = delta("envoy", "rss_kib"), delta("wasp", "rss_kib")
        # Round-to-round noise of the wasp CPU delta: half the larger min-max range of the two cells.
        ranges = [idx.get((w, wl, "wasp", x), {}).get("cpu_us_range") for x in (ps, "none")]
        noise = max(r for r in ranges if r is not None) / 2 if any(r is not None for r in ranges) else None
        costs.append({"workers": w, "workload": wl, "plugins": ps,
                      "envoy_us": delta("envoy", "cpu_us_per_req"), "wasp_us": delta("wasp", "cpu_us_per_req"),
                      "wasp_us_noise": noise,
                      "envoy_mib_per_vm": ew / 1024 / envoy_vms if ew is not None else None,
                      "wasp_mib_per_vm": ww / 1024 / nvms if ww is not None else None})
    targets = []

    def yes(ok):
        return "–" if ok is None else ("**yes**" if ok else "**no**")

    for r in ratios:
        if r["plugins"] == "headers" and r["workload"] == "h1":
            targets.append({"target": f"wasp ≥ 3× Envoy req/s, header plugin, workers={r['workers']}",
                            "measured": f"{fmt(r['rps'], 2)}×",
                            "met": yes(r["rps"] >= 3 if r["rps"] else None)})
            targets.append({"target": f"wasp p99 ≤ ½ Envoy's, header plugin, workers={r['workers']}",
                            "measured": f"{fmt(r['p99'], 2)}×",
                            "met": yes(r["p99"] <= 0.5 if r["p99"] else None)})
    for c in costs:
        if c["plugins"] == "headers" and c["workload"] == "h1":
            ok = yes(c["wasp_us"] <= 2 if c["wasp_us"] is not None else None)
            n = c.get("wasp_us_noise")
            if n is not None and c["wasp_us"] is not None and c["wasp_us"] - n <= 2 < c["wasp_us"] + n:
                ok = f"inconclusive: the rounds vary by ±{n:.1f} µs"
            targets.append({"target": f"header plugin ≤ 2 µs/request over no plugin (wasp), workers={c['workers']}",
                            "measured": f"{fmt(c['wasp_us'], 2)} µs (Envoy: {fmt(c['envoy_us'], 2)} µs)",
                            "met": ok})
    for c in costs:
        if c["plugins"] in ("chain3", "large") and c["workload"] == "h1":
            ok = None
            if c["wasp_mib_per_vm"] is not None and c["envoy_mib_per_vm"]:
                ok = c["wasp_mib_per_vm"] <= c["envoy_mib_per_vm"] / 4
            targets.append({"target": f"RSS per plugin VM ≤ ¼ Envoy's ({PLUGIN_LABEL[c['plugins']]}, workers={c['workers']})",
                            "measured": f"wasp {fmt(c['wasp_mib_per_vm'], 2)} MiB vs Envoy {fmt(c['envoy_mib_per_vm'], 2)} MiB",
                            "met": yes(ok)})
    for s in startup:
        if s["proxy"] == "wasp" and s["cache"] == "warm" and s.get("plugins", 10) == 10:
            targets.append({"target": f"ready with 10 cached plugins ≤ 200 ms, workers={s['workers']}",
                            "measured": f"{fmt(s['ready_ms_median'])} ms (first response {fmt(s['first_ms_median'])} ms)",
                            "met": yes(s["ready_ms_median"] <= 200)})
    targets += memory_targets(memory, yes) + scale_targets(scale, yes)
    return ratios, costs, targets


def memory_slopes(memory):
    """RSS added per plugin VM, per module and proxy: the least-squares slope of RSS over the VM
    count (wasp plugins x workers, Envoy plugins x (workers + 2)) in memory["plugins"]."""
    if not memory or not memory.get("plugins"):
        return []
    out = []
    for module in sorted({r["module"] for r in memory["plugins"]}, key=lambda m: m != "rust"):
        row = {"module": module, "module_label": None, "workers": None}
        for proxy in ("wasp", "envoy"):
            pts = [(r["vms_expected"], r["rss_kib"]) for r in memory["plugins"]
                   if r["module"] == module and r["proxy"] == proxy and r["rss_kib"] is not None]
            slope = None
            if len({x for x, _ in pts}) >= 2:
                mx, my = sum(x for x, _ in pts) / len(pts), sum(y for _, y in pts) / len(pts)
                slope = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts) / 1024
            row[f"{proxy}_mib_per_vm"] = slope
            row[f"{proxy}_points"] = len(pts)
        for r in memory["plugins"]:
            if r["module"] == module:
                row["module_label"], row["workers"] = r["module_label"], r["workers"]
        row["ratio"] = ratio(row["wasp_mib_per_vm"], row["envoy_mib_per_vm"])
        out.append(row)
    return out


def memory_targets(memory, yes):
    if not memory:
        return []
    targets = []
    rows = {(r["module"], r["proxy"], r["cache"]): r for r in memory.get("cold_warm", [])}
    nginx = rows.get(("-", "nginx", "-"))
    for module in ("rust", "go"):
        cold, warm = rows.get((module, "wasp", "cold")), rows.get((module, "wasp", "warm"))
        if not (cold and warm):
            continue
        label = cold["module_label"]
        diff = (cold["rss_kib"] - warm["rss_kib"]) / warm["rss_kib"] if warm["rss_kib"] else None
        targets.append({"target": f"RSS after a cold start within 10 % of a warm start ({label}, workers=1)",
                        "measured": f"cold {fmt(cold['rss_kib'] / 1024, 1)} MiB, warm {fmt(warm['rss_kib'] / 1024, 1)} MiB "
                                    f"({fmt(diff * 100 if diff is not None else None, 1, ' %')})",
                        "met": yes(abs(diff) <= 0.10 if diff is not None else None)})
        if nginx:
            worst = max(cold["rss_kib"], warm["rss_kib"])
            targets.append({"target": f"total RSS with one plugin ≤ nginx's + 20 MiB ({label}, workers=1)",
                            "measured": f"wasp {fmt(warm['rss_kib'] / 1024, 1)} MiB warm, {fmt(cold['rss_kib'] / 1024, 1)} MiB "
                                        f"cold; nginx reverse proxy {fmt(nginx['rss_kib'] / 1024, 1)} MiB",
                            "met": yes(worst <= nginx["rss_kib"] + 20 * 1024)})
    for s in memory_slopes(memory):
        ok = None
        if s["wasp_mib_per_vm"] is not None and s["envoy_mib_per_vm"]:
            ok = s["wasp_mib_per_vm"] <= s["envoy_mib_per_vm"] / 4
        targets.append({"target": f"RSS per plugin VM ≤ ¼ Envoy's ({s['module_label']}, 1 to "
                                  f"{max(r['plugins'] for r in memory['plugins'])} plugins, workers={s['workers']})",
                        "measured": f"wasp {fmt(s['wasp_mib_per_vm'], 2)} MiB vs Envoy {fmt(s['envoy_mib_per_vm'], 2)} MiB "
                                    f"({fmt(s['ratio'], 2)}×)",
                        "met": yes(ok)})
    return targets


def scale_targets(scale, yes):
    """No step from one connection count to the next where wasp's req/s falls by a larger factor
    than Envoy's."""
    targets = []
    st = scale_steps(scale or [])
    for w, proto in sorted({(s["workers"], s["protocol"]) for s in st}):
        mine = [s for s in st if s["workers"] == w and s["protocol"] == proto]
        known = [s for s in mine if s["wasp"] is not None and s["envoy"] is not None]
        worse = [s for s in known if s["wasp"] < s["envoy"]]
        worse_steps = ", ".join(f"{s['from']:,}→{s['to']:,}" for s in worse)
        targets.append({
            "target": f"no step where wasp degrades faster than Envoy ({proto}, workers={w}, req/s from each "
                      "connection count to the next)",
            "measured": "; ".join(f"{s['from']:,}→{s['to']:,}: wasp {fmt(s['wasp'], 2)}× vs Envoy {fmt(s['envoy'], 2)}×"
                                  for s in mine),
            "met": f"**no** ({worse_steps})" if worse else yes(True if known else None),
        })
    return targets


def update_benchmarks(md):
    path = os.path.join(ROOT, "BENCHMARKS.md")
    begin, end = "<!-- bench/run: begin -->", "<!-- bench/run: end -->"
    block = f"{begin}\n{md}{end}"
    if os.path.exists(path):
        text = open(path).read()
        if begin in text and end in text:
            text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
    else:
        text = "# Benchmarks: wasp vs Envoy vs nginx\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)
    log(f"updated {path}")

