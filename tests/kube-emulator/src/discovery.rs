//! Legacy (unaggregated) discovery — `/api`, `/apis`, `/api/v1`, `/apis/GROUP[/VERSION]`,
//! `/version` — generated from the kinds table, and the server-side `Table` rendering kubectl
//! asks for with `Accept: application/json;as=Table;g=meta.k8s.io;v=v1`.

use serde_json::{Value, json};

use crate::kinds::KINDS;

fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for k in KINDS.iter().filter(|k| !k.group.is_empty()) {
        if !out.contains(&(k.group, k.version)) {
            out.push((k.group, k.version));
        }
    }
    out
}

fn group_json(group: &str) -> Value {
    let versions: Vec<Value> = groups()
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": versions, "preferredVersion": versions.first().cloned().unwrap_or(Value::Null)})
}

fn resources(group: &str, version: &str) -> Value {
    let mut list = Vec::new();
    for k in KINDS
        .iter()
        .filter(|k| k.group == group && k.version == version)
    {
        list.push(json!({
            "name": k.plural, "singularName": k.singular, "namespaced": true, "kind": k.kind,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
        }));
        if k.status_subresource {
            list.push(json!({"name": format!("{}/status", k.plural), "singularName": "", "namespaced": true,
                "kind": k.kind, "verbs": ["get", "patch", "update"]}));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list})
}

/// The discovery document for `path`, if it is a discovery path.
pub fn document(path: &str) -> Option<Value> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["version"] => Some(
            json!({"major": "1", "minor": "34", "gitVersion": "v1.34.0-wasp-kube-emulator",
            "platform": "linux/amd64", "goVersion": "go1.24", "compiler": "gc"}),
        ),
        ["api"] => Some(json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]})),
        ["apis"] => {
            let mut names: Vec<&str> = groups().into_iter().map(|(g, _)| g).collect();
            names.dedup();
            let list: Vec<Value> = names.into_iter().map(group_json).collect();
            Some(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": list}))
        }
        ["api", "v1"] => Some(resources("", "v1")),
        ["apis", g] if groups().iter().any(|(x, _)| x == g) => {
            let mut v = group_json(g);
            v["kind"] = json!("APIGroup");
            v["apiVersion"] = json!("v1");
            Some(v)
        }
        ["apis", g, v] if groups().contains(&(*g, *v)) => Some(resources(g, v)),
        _ => None,
    }
}

/// Whether the `Accept` header asks for a `Table` (kubectl's `get`).
pub fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',')
            .next()
            .is_some_and(|first| first.contains("as=Table"))
    })
}

/// The default table the apiserver renders for a kind without printer columns: `Name` and
/// `Created At`, each row carrying the object's metadata as `PartialObjectMetadata`.
pub fn table(list_metadata: &Value, items: &[Value]) -> Value {
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            json!({
                "cells": [o.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
                          o.pointer("/metadata/creationTimestamp").cloned().unwrap_or(Value::Null)],
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                           "metadata": o.get("metadata").cloned().unwrap_or(json!({}))},
            })
        })
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_metadata,
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0},
            {"name": "Created At", "type": "date", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0},
        ],
        "rows": rows,
    })
}
