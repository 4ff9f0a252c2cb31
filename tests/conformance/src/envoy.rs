//! Envoy's bootstrap for a plan: a static listener per case with the http connection manager,
//! its `envoy.filters.http.wasm` filters (V8) and `envoy.filters.http.lua` filters in the
//! case's order, and the router; static clusters; the admin.

use serde_json::{Value, json};

use crate::plan::{NODE_CLUSTER, NODE_ID, Plan};
use crate::scenario::{Code, FailStrategy, Layer, PluginInstance};

pub fn bootstrap(plan: &Plan, layer: Layer) -> Value {
    let mut listeners = Vec::new();
    let mut clusters = Vec::new();
    for case in &plan.cases {
        let id = &case.layout.id;
        if layer == Layer::Tcp {
            listeners.push(tcp_listener(id, case.listener, &case.layout.plugins));
            clusters.push(cluster(id, case.upstream));
            continue;
        }
        let mut filters: Vec<Value> = case.layout.plugins.iter().map(filter).collect();
        filters.push(json!({
            "name": "envoy.filters.http.router",
            // No x-envoy-upstream-service-time & co.: plugins would see headers wasp never adds.
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                "suppress_envoy_headers": true
            }
        }));
        listeners.push(json!({
            "name": id,
            "address": socket(case.listener),
            // wasp listeners are inbound by default (listener_direction 1).
            "traffic_direction": "INBOUND",
            // wasp answers xds.filter_chain_name with the listener's name: name the chain alike.
            "filter_chains": [{
                "name": id,
                "filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": id,
                        "codec_type": "AUTO",
                        "route_config": {
                            "name": id,
                            "virtual_hosts": [{
                                "name": id,
                                "domains": ["*"],
                                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": id, "timeout": "15s"}}]
                            }]
                        },
                        "http_filters": filters
                    }
                }]
            }]
        }));
        clusters.push(cluster(id, case.upstream));
    }
    for (name, address) in &plan.clusters {
        clusters.push(cluster(name, *address));
    }
    json!({
        "node": {"id": NODE_ID, "cluster": NODE_CLUSTER},
        "admin": {"address": socket(plan.admin)},
        "static_resources": {"listeners": listeners, "clusters": clusters}
    })
}

/// A listener whose chain is the plugins as `envoy.filters.network.wasm` filters, then
/// `envoy.filters.network.tcp_proxy` to the case's cluster.
fn tcp_listener(id: &str, address: std::net::SocketAddr, plugins: &[PluginInstance]) -> Value {
    let mut filters: Vec<Value> = plugins
        .iter()
        .map(|p| {
            let mut f = filter(p);
            f["name"] = "envoy.filters.network.wasm".into();
            f["typed_config"]["@type"] =
                "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm".into();
            f
        })
        .collect();
    filters.push(json!({
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": id,
            "cluster": id
        }
    }));
    json!({
        "name": id,
        "address": socket(address),
        "traffic_direction": "INBOUND",
        "filter_chains": [{"name": id, "filters": filters}]
    })
}

fn filter(p: &PluginInstance) -> Value {
    let wasm = match &p.code {
        Code::Wasm(path) => path,
        Code::Lua(source) => {
            return json!({
                "name": "envoy.filters.http.lua",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                    "default_source_code": {"inline_string": source}
                }
            });
        }
    };
    let policy = match p.def.fail {
        FailStrategy::Close => "FAIL_CLOSED",
        FailStrategy::Open => "FAIL_OPEN",
        FailStrategy::Reload => "FAIL_RELOAD",
    };
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": p.name,
                "root_id": p.root_id,
                "configuration": string_value(&p.def.config),
                "failure_policy": policy,
                "vm_config": {
                    "vm_id": p.vm_id,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm.display().to_string()}},
                    "configuration": string_value(&p.def.vm_config),
                    "environment_variables": {"key_values": p.def.env}
                }
            }
        }
    })
}

fn string_value(s: &str) -> Value {
    json!({"@type": "type.googleapis.com/google.protobuf.StringValue", "value": s})
}

fn socket(address: std::net::SocketAddr) -> Value {
    json!({"socket_address": {"address": address.ip().to_string(), "port_value": address.port()}})
}

fn cluster(name: &str, address: std::net::SocketAddr) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket(address)}}]}]
        }
    })
}
