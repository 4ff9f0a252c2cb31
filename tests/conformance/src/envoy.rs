//! Envoy's bootstrap for a plan: a static listener per case with the http connection manager,
//! its `envoy.filters.http.wasm` filters (V8) and `envoy.filters.http.lua` filters in the
//! case's order, and the router; static clusters; the admin.

use serde_json::{Value, json};

use crate::plan::{NODE_CLUSTER, NODE_ID, Plan};
use crate::scenario::{Code, FailStrategy, Layer, PluginInstance, RouteDef, RouteSetting};

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
        // Per-route settings name the filter: each gets the plugin's name then (with the
        // default names, one setting would reach every filter of the kind).
        if !case.routes.is_empty() {
            for (f, p) in filters.iter_mut().zip(&case.layout.plugins) {
                f["name"] = p.name.clone().into();
            }
        }
        filters.push(json!({
            "name": "envoy.filters.http.router",
            // No x-envoy-upstream-service-time & co.: plugins would see headers wasp never adds.
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                "suppress_envoy_headers": true
            }
        }));
        let mut listener = json!({
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
        });
        if let Some(policy) = &case.retry_policy {
            listener["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"]
                [0]["routes"][0]["route"]["retry_policy"] = policy.clone();
        }
        if !case.routes.is_empty() {
            let routes = &mut listener["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]
                ["virtual_hosts"][0]["routes"];
            let catch_all = routes[0].clone();
            let mut all: Vec<Value> = case
                .routes
                .iter()
                .map(|r| route(id, r, &case.layout.plugins))
                .collect();
            all.push(catch_all);
            *routes = Value::Array(all);
        }
        if let Some(dir) = &plan.access_logs {
            listener["filter_chains"][0]["filters"][0]["typed_config"]["access_log"] = json!([{
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": dir.join(format!("{id}.log")),
                    "log_format": {"json_format": crate::access_log::istio_fields()}
                }
            }]);
        }
        if let (Some(tls), Some(pki)) = (case.tls, &plan.pki) {
            // As Istio's listeners: the TLS inspector is what tells Envoy the SNI
            // (requestedServerName); the transport socket alone does not.
            listener["listener_filters"] = json!([{
                "name": "envoy.filters.listener.tls_inspector",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
                }
            }]);
            listener["filter_chains"][0]["transport_socket"] = json!({
                "name": "envoy.transport_sockets.tls",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                    "require_client_certificate": tls.require_client_certificate,
                    "common_tls_context": {
                        "alpn_protocols": ["h2", "http/1.1"],
                        "tls_certificates": [{
                            "certificate_chain": {"filename": pki.server_cert},
                            "private_key": {"filename": pki.server_key}
                        }],
                        "validation_context": {"trusted_ca": {"filename": pki.ca}}
                    }
                }
            });
        }
        listeners.push(listener);
        clusters.push(cluster(id, case.upstream));
    }
    for (name, address) in &plan.clusters {
        clusters.push(cluster(name, *address));
    }
    json!({
        "node": {"id": NODE_ID, "cluster": NODE_CLUSTER},
        "stats_config": istio_stats_config(),
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

/// A case route with Envoy's per-filter settings.
fn route(id: &str, r: &RouteDef, plugins: &[PluginInstance]) -> Value {
    let mut per_filter = serde_json::Map::new();
    for (&position, setting) in &r.plugins {
        let Some(p) = plugins.get(position) else {
            continue;
        };
        let value = match setting {
            RouteSetting::Disabled => json!({
                "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
                "disabled": true
            }),
            RouteSetting::SourceCode(code) => json!({
                "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute",
                "source_code": {"inline_string": code}
            }),
        };
        per_filter.insert(p.name.clone(), value);
    }
    json!({
        "match": {"prefix": r.prefix},
        "route": {"cluster": id, "timeout": "15s"},
        "typed_per_filter_config": per_filter
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

/// istio-proxy's tag extraction for the stats its plugins define (the `key=.=value;.;`
/// convention of Istio's stats plugin), as its bootstrap sets it: wasp extracts the same tags.
fn istio_stats_config() -> Value {
    let mut tags = vec![json!({
        "tag_name": "response_code",
        "regex": "(response_code=\\.=(.+?);\\.;)|_rq(_(\\.d{3}))$"
    })];
    for tag in ISTIO_TAGS {
        tags.push(json!({"tag_name": tag, "regex": format!("({tag}=\\.=(.*?);\\.;)")}));
    }
    json!({"use_all_default_tags": false, "stats_tags": tags})
}

/// Istio's bootstrap tags in `key=.=value;.;` form, in its order (after response_code).
const ISTIO_TAGS: [&str; 29] = [
    "reporter",
    "source_namespace",
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "destination_namespace",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "destination_port",
    "destination_cluster",
    "request_protocol",
    "request_operation",
    "request_host",
    "response_flags",
    "grpc_response_status",
    "connection_security_policy",
    "source_canonical_service",
    "destination_canonical_service",
    "source_canonical_revision",
    "destination_canonical_revision",
];
