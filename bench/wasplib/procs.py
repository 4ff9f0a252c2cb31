"""Processes and what /proc says about them; plain HTTP GETs."""

import http.client
import os
import re
import signal
import subprocess
import time

from .common import die

# Responses of the start-up workload carry one header per plugin (100 and more): more than
# http.client's default cap of 100 header lines.
http.client._MAXHEADERS = max(getattr(http.client, "_MAXHEADERS", 100), 1000)


def descendants(pid):
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [pid], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def cpu_ticks(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except (OSError, IndexError, ValueError):
            pass
    return total


def hwm_kib(pids, field="VmHWM:"):
    """Summed VmHWM (peak RSS) of the processes, or another /proc/PID/status field (VmRSS:)."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith(field):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class Proc:
    def __init__(self, name, cmd, cpus, logdir, env=None):
        self.name = name
        self.cmd = (["taskset", "-c", cpus] if cpus else []) + cmd
        self.log = open(os.path.join(logdir, re.sub(r"[^\w.-]", "_", name) + ".log"), "w")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.env = env or {}
        self.p = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT, env=full_env,
                                  start_new_session=True)
        self.pids = [self.p.pid]

    def refresh(self):
        self.pids = descendants(self.p.pid)

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self.log.close()

    def tail(self, n=30):
        try:
            with open(self.log.name) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def http_get(port, path, timeout=1.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def wait_http(port, path, deadline_s, proc=None, want=200):
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        if proc is not None and not proc.alive():
            die(f"{proc.name} exited during start-up:\n{proc.tail()}")
        try:
            status, _, _ = http_get(port, path, timeout=0.5)
            if want is None or status == want:
                return
            last = status
        except OSError as e:
            last = e
        time.sleep(0.02)
    die(f"{proc.name if proc else port}: no {want} on {path} after {deadline_s}s (last: {last})"
        + (f"\n{proc.tail()}" if proc else ""))




def smaps_kib(pids):
    """/proc/PID/smaps_rollup summed over the processes: {"Rss": KiB, "Pss": ..., "Anonymous": ...,
    "Pss_Anon", "Pss_File", "Pss_Shmem", ...} (kernel >= 4.14; fields missing in older kernels)."""
    total = {}
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 3 and parts[2] == "kB":
                        key = parts[0].rstrip(":")
                        total[key] = total.get(key, 0) + int(parts[1])
        except OSError:
            pass
    return total


def prom_value(port, metric):
    """A metric's value (summed over its label sets) from an admin /stats/prometheus, or None."""
    try:
        text = http_get(port, "/stats/prometheus", 5)[2].decode(errors="replace")
    except OSError:
        return None
    vals = [float(m.group(1)) for m in re.finditer(rf"^{re.escape(metric)}(?:{{[^}}]*}})? (\S+)$", text, re.M)]
    return sum(vals) if vals else None
