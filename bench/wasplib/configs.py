"""Configurations generated from templates: nginx, Envoy's bootstrap, wasp.yaml; the plugin sets
and the proof that each ran."""

import os

from .common import GO_PLUGIN, PLUGINS_OUT

NGINX_COMMON = """\
daemon off;
master_process on;
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
{user}
{rlimit}events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    http2_max_requests 100000000;
{body}
}}
"""

NGINX_UPSTREAM_SERVER = """\
    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.1:{h2port} http2;
        location = /small {{ default_type text/plain; return 200 "{small}"; }}
        location = /64k {{ default_type text/plain; alias {dir}/64k.txt; }}
    }}
"""

NGINX_PROXY_SERVER = """\
    upstream backend {{
        server 127.0.0.1:{upstream};
        keepalive 256;
        keepalive_requests 100000000;
    }}
    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.1:{h2port} http2;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
"""


def nginx_conf(dirname, workers, body, connections=8192, rlimit_nofile=None):
    """`connections`: worker_connections (per worker, downstream and upstream connections both
    count); `rlimit_nofile`: worker_rlimit_nofile, for the scale workload's 10,000 connections."""
    user = "user root;" if os.geteuid() == 0 else ""  # as root, workers would become `nobody`
    rlimit = f"worker_rlimit_nofile {rlimit_nofile};\n" if rlimit_nofile else ""
    os.makedirs(dirname, exist_ok=True)
    return NGINX_COMMON.format(workers=workers, dir=dirname, user=user, body=body, rlimit=rlimit,
                               connections=connections)


def envoy_bootstrap(port, admin, upstream, workers_unused, plugins, tcp=False, circuit_breakers=None):
    """`circuit_breakers`: {max_connections, max_pending_requests, max_requests} for the upstream
    cluster (Envoy's thresholds; the defaults, 1024 each, otherwise)."""
    def sock(p):
        return {"socket_address": {"address": "127.0.0.1", "port_value": p}}

    def cluster(name, p):
        c = {
            "name": name,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": sock(p)}}]}]},
        }
        if circuit_breakers and name == "upstream":
            c["circuit_breakers"] = {"thresholds": [dict(circuit_breakers, priority="DEFAULT")]}
        return c

    filters = []
    for pl in plugins:
        if pl.get("lua"):
            filters.append({
                "name": "envoy.filters.http.lua",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                    "default_source_code": {"inline_string": pl["lua"]},
                },
            })
            continue
        filters.append({
            "name": "envoy.filters.http.wasm",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": pl["name"],
                    "root_id": "",
                    "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": pl["config"]},
                    "failure_policy": "FAIL_CLOSED",
                    "vm_config": {
                        "vm_id": pl["name"],
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": {"local": {"filename": pl["wasm"]}},
                    },
                },
            },
        })
    if tcp:
        # The TCP workload: the plugins as network Wasm filters in front of tcp_proxy.
        for f in filters:
            f["name"] = "envoy.filters.network.wasm"
            f["typed_config"]["@type"] = "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm"
        filters.append({
            "name": "envoy.filters.network.tcp_proxy",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                             "stat_prefix": "main", "cluster": "upstream"},
        })
        return {
            "node": {"id": "bench", "cluster": "bench"},
            "admin": {"address": sock(admin)},
            "static_resources": {
                "listeners": [{"name": "main", "address": sock(port), "traffic_direction": "INBOUND",
                               "filter_chains": [{"filters": filters}]}],
                "clusters": [cluster("upstream", upstream)],
            },
        }
    filters.append({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                         "suppress_envoy_headers": True},
    })
    return {
        "node": {"id": "bench", "cluster": "bench"},
        "admin": {"address": sock(admin)},
        "static_resources": {
            "listeners": [{
                "name": "main",
                "address": sock(port),
                "traffic_direction": "INBOUND",
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "main",
                        "codec_type": "AUTO",
                        "route_config": {"name": "main", "virtual_hosts": [{
                            "name": "main", "domains": ["*"],
                            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream", "timeout": "15s"}}],
                        }]},
                        "http_filters": filters,
                    },
                }]}],
            }],
            "clusters": [cluster("upstream", upstream), cluster("callout", upstream)],
        },
    }


def wasp_config(port, admin, upstream, workers, plugins, tcp=False, circuit_breakers=None):
    # JSON is YAML: no quoting rules to get wrong. No `max_connections` (proxy-wide): no limit,
    # as Envoy without an overload manager. `circuit_breakers` as in envoy_bootstrap.
    listener = {"name": "main", "address": f"127.0.0.1:{port}"}
    if tcp:
        listener.update({"protocol": "tcp", "cluster": "upstream"})
    else:
        listener["routes"] = [{"match": {"prefix": "/"}, "cluster": "upstream", "timeout": "15s"}]
        # Per-route configurations of one plugin: a route per `x-route: N` header, each with a
        # configuration of its own, and the catch-all (what the load hits) with another.
        for pl in plugins:
            if pl.get("routes"):
                routes = [{
                    "match": {"prefix": "/", "headers": [{"name": "x-route", "value": str(i)}]},
                    "cluster": "upstream", "timeout": "15s",
                } for i in range(pl["routes"])]
                if pl.get("route_config"):
                    for i, r in enumerate(routes):
                        r["plugins"] = {pl["name"]: {"configuration": f"x-bench-r{i}"}}
                    listener["routes"][0]["plugins"] = {pl["name"]: {"configuration": pl["route_config"]}}
                listener["routes"] = routes + listener["routes"]
    clusters = [
        {"name": "upstream", "endpoints": [f"127.0.0.1:{upstream}"], "connect_timeout": "1s"},
        {"name": "callout", "endpoints": [f"127.0.0.1:{upstream}"], "connect_timeout": "1s"},
    ]
    if circuit_breakers:
        clusters[0]["circuit_breakers"] = dict(circuit_breakers)
    return {
        "admin": {"address": f"127.0.0.1:{admin}"},
        "workers": workers,
        "listeners": [listener],
        "clusters": clusters,
        "plugins": {"inline": [{"name": pl["name"], "lua": {"inlineCode": pl["lua"]}} if pl.get("lua") else {
            "name": pl["name"],
            "url": pl["wasm"],
            "configuration": pl["config"],
            "vmId": pl["name"],
            "failStrategy": "FAIL_CLOSE",
            "type": "NETWORK" if tcp else "HTTP",
        } for pl in plugins]},
    }


# ---------------------------------------------------------------------------------------------
# Plugin sets and their proofs

# The header plugin (bench/plugins/headers) as an Envoy Lua filter: the same two header adds,
# `x-bench-req: 1` on the request and `<name>: 1` on the response. Run as-is by Envoy's
# envoy.filters.http.lua (default_source_code.inline_string) and wasp's plugins.inline[].lua.
LUA_HEADERS = ('function envoy_on_request(h) h:headers():add("x-bench-req", "1") end\n'
               'function envoy_on_response(h) h:headers():add("x-bench-lua", "1") end\n')


def plugin_sets():
    o = PLUGINS_OUT
    return {
        "none": [],
        "headers": [{"name": "headers", "wasm": f"{o}/headers.wasm", "config": "x-bench-headers"}],
        "chain3": [{"name": f"headers-{c}", "wasm": f"{o}/headers.wasm", "config": f"x-bench-{c}"} for c in "abc"],
        "body": [{"name": "body", "wasm": f"{o}/body.wasm", "config": ""}],
        "callout": [{"name": "callout", "wasm": f"{o}/callout.wasm", "config": "callout"}],
        "large": [{"name": "large", "wasm": f"{o}/large.wasm", "config": "x-bench-large"}],
        "lua": [{"name": "lua-headers", "lua": LUA_HEADERS}],
        "tcp_count": [{"name": "tcp-count", "wasm": f"{o}/tcp_count.wasm", "config": ""}],
        "routes100": [{"name": "headers", "wasm": f"{o}/headers.wasm", "config": "x-bench-headers",
                       "routes": 100, "route_config": "x-bench-routes"}],
        # The same 100 routes, all with the plugin's one configuration: the route table's cost.
        "routes100_same": [{"name": "headers", "wasm": f"{o}/headers.wasm", "config": "x-bench-headers",
                            "routes": 100}],
    }


PLUGIN_LABEL = {
    "none": "no plugin",
    "headers": "header plugin",
    "chain3": "3 chained header plugins",
    "body": "body rewrite (64 KiB)",
    "callout": "HTTP callout per request",
    "large": "large module (2.8 MB)",
    "lua": "Lua header filter",
    "tcp_count": "byte-counting network plugin",
    "routes100": "header plugin, 100 routes with their own configuration",
    "routes100_same": "header plugin, 100 routes with its one configuration",
}


def expected_headers(pset):
    return {
        "none": {},
        "headers": {"x-bench-headers": "1"},
        "chain3": {"x-bench-a": "1", "x-bench-b": "1", "x-bench-c": "1"},
        "body": {"x-bench-body": "1"},
        "callout": {"x-bench-callout": "200"},
        "large": {"x-bench-large": "1"},
        "lua": {"x-bench-lua": "1"},
        "tcp_count": {},
        "routes100": {"x-bench-routes": "1"},
        "routes100_same": {"x-bench-headers": "1"},
    }[pset]




# The scale workload's upstream circuit breakers, the same in Envoy and wasp: the default 1024
# upstream connections, but requests beyond them wait for one (up to a million) instead of being
# answered 503 by the default max_pending_requests / max_requests of 1024 each.
SCALE_CIRCUIT_BREAKERS = {"max_connections": 1024, "max_pending_requests": 1000000, "max_requests": 1000000}

# The memory workload's modules: the Rust header plugin (its proof: the response header named by
# each plugin's configuration) and the Go plugin (configured `noop`: no header to prove it ran;
# its proof is the proxy's count of active VMs).
MEMORY_MODULES = {
    "rust": {"label": "Rust header plugin", "file": "headers.wasm", "wasm": os.path.join(PLUGINS_OUT, "headers.wasm"),
             "header": True},
    "go": {"label": "Go plugin (noop)", "file": "go_hostcalls.wasm", "wasm": GO_PLUGIN, "header": False},
}


def same_module_plugins(module, n):
    """n plugins of one module: distinct names and so distinct vm ids (envoy_bootstrap and
    wasp_config use the name), each its own VM in both proxies."""
    m = MEMORY_MODULES[module]
    return [{"name": f"{module}-{i}", "wasm": m["wasm"], "config": f"x-bench-m{i}" if m["header"] else "noop"}
            for i in range(n)]


def same_module_headers(module, n):
    return {f"x-bench-m{i}": "1" for i in range(n)} if MEMORY_MODULES[module]["header"] else {}
