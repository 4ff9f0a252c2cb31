//! wasp's configuration for a plan, in the format of docs/configuration.md. It is written as
//! JSON, which is YAML too: no quoting rules to get wrong for plugin configurations.

use serde_json::{Value, json};

use crate::plan::{NODE_CLUSTER, NODE_ID, Plan};
use crate::scenario::{Code, FailStrategy, Layer, PluginInstance, RouteDef, RouteSetting};

/// A case route with wasp's per-plugin settings (route `plugins`, by plugin name).
fn route(id: &str, r: &RouteDef, plugins: &[PluginInstance]) -> Value {
    let mut settings = serde_json::Map::new();
    for (&position, setting) in &r.plugins {
        let Some(p) = plugins.get(position) else {
            continue;
        };
        let value = match setting {
            RouteSetting::Disabled => json!({"disabled": true}),
            RouteSetting::SourceCode(code) => json!({"source_code": code}),
        };
        settings.insert(p.name.clone(), value);
    }
    json!({
        "match": {"prefix": r.prefix},
        "cluster": id,
        "timeout": "15s",
        "plugins": settings
    })
}

pub fn config(plan: &Plan, layer: Layer) -> Value {
    let mut listeners = Vec::new();
    let mut clusters = Vec::new();
    let mut plugins = Vec::new();
    for case in &plan.cases {
        let id = &case.layout.id;
        listeners.push(match layer {
            Layer::Http => {
                let mut listener = json!({
                    "name": id,
                    "address": case.listener.to_string(),
                    "routes": [{"match": {"prefix": "/"}, "cluster": id, "timeout": "15s"}]
                });
                if let Some(policy) = &case.retry_policy {
                    listener["routes"][0]["retry_policy"] = policy.clone();
                }
                if !case.routes.is_empty() {
                    let catch_all = listener["routes"][0].clone();
                    let mut routes: Vec<Value> = case
                        .routes
                        .iter()
                        .map(|r| route(id, r, &case.layout.plugins))
                        .collect();
                    routes.push(catch_all);
                    listener["routes"] = Value::Array(routes);
                }
                if let Some(dir) = &plan.access_logs {
                    listener["access_log"] = json!([{
                        "path": dir.join(format!("{id}.log")),
                        "json_format": crate::access_log::istio_fields(),
                    }]);
                }
                if let (Some(tls), Some(pki)) = (case.tls, &plan.pki) {
                    listener["tls"] = json!({
                        "cert_file": pki.server_cert,
                        "key_file": pki.server_key,
                        "ca_file": pki.ca,
                        "require_client_certificate": tls.require_client_certificate,
                    });
                }
                listener
            }
            Layer::Tcp => json!({
                "name": id,
                "address": case.listener.to_string(),
                "protocol": "tcp",
                "cluster": id
            }),
        });
        clusters.push(
            json!({"name": id, "endpoints": [case.upstream.to_string()], "connect_timeout": "1s"}),
        );
        for p in &case.layout.plugins {
            let fail = match p.def.fail {
                FailStrategy::Close => "FAIL_CLOSE",
                FailStrategy::Open => "FAIL_OPEN",
                FailStrategy::Reload => "FAIL_RELOAD",
            };
            let wasm = match &p.code {
                Code::Wasm(path) => path,
                Code::Lua(source) => {
                    let mut lua = json!({
                        "name": p.name,
                        "lua": {"inlineCode": source},
                        "listeners": [id],
                    });
                    if p.def.fail != FailStrategy::Close {
                        lua["failStrategy"] = fail.into();
                    }
                    plugins.push(lua);
                    continue;
                }
            };
            plugins.push(json!({
                "name": p.name,
                "url": wasm.display().to_string(),
                "pluginName": p.root_id,
                "configuration": p.def.config,
                "vmConfiguration": p.def.vm_config,
                "vmId": p.vm_id,
                "env": p.def.env,
                "failStrategy": fail,
                "listeners": [id],
                "type": if layer == Layer::Tcp { "NETWORK" } else { "HTTP" },
            }));
        }
    }
    for (name, address) in &plan.clusters {
        clusters.push(
            json!({"name": name, "endpoints": [address.to_string()], "connect_timeout": "1s"}),
        );
    }
    json!({
        "admin": {"address": plan.admin.to_string()},
        // One worker, as Envoy runs with --concurrency 1: one VM per plugin on both sides.
        "workers": 1,
        "node": {"id": NODE_ID, "cluster": NODE_CLUSTER, "metadata": {}},
        "listeners": listeners,
        "clusters": clusters,
        "plugins": {"inline": plugins}
    })
}
