//! The request handler: authentication, authorization, discovery, and the verbs (list, watch,
//! get, create, update, patch, delete, and the status subresource) on the registered kinds.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use serde_json::{Value, json};

use crate::auth::Attributes;
use crate::discovery;
use crate::kinds::KINDS;
use crate::meta;
use crate::router::{self, Target};
use crate::selectors::{FieldSelector, LabelSelector, Selectors};
use crate::state::{Shared, Write, lock};
use crate::status::{self, ApiError};
use crate::store::Scope;
use crate::watch::{self, WatchParams};

/// The response body type: a full JSON document or a watch stream.
pub type RespBody = BoxBody<Bytes, std::io::Error>;

fn json_response(code: u16, v: &Value) -> Response<RespBody> {
    let body = Full::new(Bytes::from(serde_json::to_vec(v).unwrap_or_default()))
        .map_err(|never| match never {})
        .boxed();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .header("Cache-Control", "no-cache, private")
        .body(body)
        .expect("static response parts are valid")
}

fn error_response(e: &ApiError) -> Response<RespBody> {
    json_response(e.code, &e.body)
}

/// Handles one request.
pub async fn handle<B>(shared: Arc<Shared>, req: Request<B>) -> Response<RespBody>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: std::fmt::Display,
{
    match handle_inner(&shared, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

async fn handle_inner<B>(
    shared: &Arc<Shared>,
    req: Request<B>,
) -> Result<Response<RespBody>, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: std::fmt::Display,
{
    let path = req.uri().path().to_string();
    if matches!(path.as_str(), "/healthz" | "/livez" | "/readyz") {
        return Ok(Response::new(
            Full::new(Bytes::from_static(b"ok"))
                .map_err(|never| match never {})
                .boxed(),
        ));
    }
    if path == "/version" {
        return Ok(json_response(
            200,
            &discovery::document(&path).unwrap_or_default(),
        ));
    }
    let auth_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let user = lock(&shared.auth)
        .authenticate(auth_header)
        .ok_or_else(status::unauthorized)?;
    if req.method() == Method::GET
        && let Some(doc) = discovery::document(&path)
    {
        return Ok(json_response(200, &doc));
    }
    let target = router::parse(&path).ok_or_else(|| status::no_route(&path))?;
    let q = router::query(req.uri().query());
    let (kind, namespace, name, sub) = match &target {
        Target::Collection { kind, namespace } => (*kind, namespace.clone(), String::new(), None),
        Target::Object {
            kind,
            namespace,
            name,
            subresource,
        } => (
            *kind,
            Some(namespace.clone()),
            name.clone(),
            subresource.clone(),
        ),
    };
    let k = &KINDS[kind];
    if let Some(s) = &sub
        && !(s == "status" && k.status_subresource)
    {
        return Err(status::no_route(&path));
    }
    let collection = matches!(target, Target::Collection { .. });
    let verb = match (req.method().clone(), collection) {
        (Method::GET, true) if router::flag(&q, "watch") => "watch",
        (Method::GET, true) => "list",
        (Method::GET, false) => "get",
        (Method::POST, true) if namespace.is_some() => "create",
        (Method::PUT, false) => "update",
        (Method::PATCH, false) => "patch",
        (Method::DELETE, false) => "delete",
        _ => return Err(status::method_not_allowed()),
    };
    let resource = match &sub {
        Some(s) => format!("{}/{s}", k.plural),
        None => k.plural.to_string(),
    };
    // As the apiserver's RequestInfo does: a list or watch whose field selector requires
    // `metadata.name` to equal one value is authorized as a request for that name, so a
    // rule with resourceNames can allow it.
    let selected_name = match verb {
        "list" | "watch" => q
            .get("fieldSelector")
            .and_then(|f| exact_name(f))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let attrs = Attributes {
        user: &user,
        verb,
        group: k.group,
        resource: resource.clone(),
        namespace: namespace.as_deref(),
        name: if name.is_empty() {
            &selected_name
        } else {
            &name
        },
    };
    if !lock(&shared.auth).authorize(&attrs) {
        return Err(status::forbidden(
            k,
            &name,
            &user,
            verb,
            sub.as_deref(),
            namespace.as_deref(),
        ));
    }
    shared.count(verb, k.plural);
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let selectors = || -> Result<Selectors, ApiError> {
        Ok(Selectors {
            labels: LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))
                .map_err(|e| status::bad_request(&e))?,
            fields: FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str), k)
                .map_err(|e| status::bad_request(&e))?,
        })
    };
    match verb {
        "watch" => {
            let p = WatchParams::from_query(
                kind,
                namespace,
                &q,
                selectors()?,
                shared.default_watch_timeout,
            )?;
            let body = watch::start(shared, p);
            Ok(Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "application/json")
                .header("Cache-Control", "no-cache, private")
                .body(body.boxed())
                .expect("static response parts are valid"))
        }
        "list" => {
            let (meta_v, items) = list(shared, kind, namespace.as_deref(), &q, &selectors()?)?;
            if discovery::wants_table(accept.as_deref()) {
                return Ok(json_response(200, &discovery::table(&meta_v, &items)));
            }
            let doc = json!({"apiVersion": k.api_version(), "kind": format!("{}List", k.kind), "metadata": meta_v, "items": items});
            Ok(json_response(200, &doc))
        }
        "get" => {
            let obj = lock(&shared.store)
                .get(kind, namespace.as_deref().unwrap_or_default(), &name)
                .ok_or_else(|| status::not_found(k, &name))?;
            if discovery::wants_table(accept.as_deref()) {
                return Ok(json_response(
                    200,
                    &discovery::table(
                        &json!({"resourceVersion": obj["metadata"]["resourceVersion"]}),
                        &[obj],
                    ),
                ));
            }
            Ok(json_response(200, &obj))
        }
        _ => {
            let body = req
                .into_body()
                .collect()
                .await
                .map_err(|e| status::bad_request(&format!("reading the body: {e}")))?
                .to_bytes();
            let ns = namespace.unwrap_or_default();
            let (code, obj) = write(
                shared,
                kind,
                &ns,
                &name,
                verb,
                sub.is_some(),
                &content_type,
                &body,
            )?;
            lock(&shared.writes).push(Write {
                verb: verb.to_string(),
                group: k.group.to_string(),
                resource,
                namespace: ns,
                object: obj.clone(),
            });
            Ok(json_response(code, &obj))
        }
    }
}

fn parse_body(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    if content_type.contains("yaml") {
        let text = std::str::from_utf8(body).map_err(|e| status::bad_request(&e.to_string()))?;
        return serde_saphyr::from_str(text)
            .map_err(|e| status::bad_request(&format!("error decoding YAML: {e}")));
    }
    serde_json::from_slice(body)
        .map_err(|e| status::bad_request(&format!("error decoding JSON: {e}")))
}

#[allow(clippy::too_many_arguments)]
fn write(
    shared: &Shared,
    kind: usize,
    ns: &str,
    name: &str,
    verb: &str,
    subresource: bool,
    content_type: &str,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    let k = &KINDS[kind];
    let mut store = lock(&shared.store);
    let scope = if subresource {
        Scope::Status
    } else {
        Scope::Main
    };
    match verb {
        "create" => {
            let obj = parse_body(content_type, body)?;
            if k.group == "events.k8s.io" {
                let errors = crate::validate::event(&obj, ns);
                if !errors.is_empty() {
                    let name = obj
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    return Err(status::invalid(k, name, &errors.join(", ")));
                }
            }
            Ok((201, store.create(kind, ns, obj)?))
        }
        "update" => {
            let obj = parse_body(content_type, body)?;
            if obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .is_some_and(|n| n != name)
            {
                return Err(status::bad_request(
                    "the name of the object does not match the name on the URL",
                ));
            }
            Ok((200, store.update(kind, ns, name, &obj, scope)?))
        }
        "patch" => {
            let ct = content_type.split(';').next().unwrap_or_default().trim();
            let strategic_ok = k.group.is_empty() && ct == "application/strategic-merge-patch+json";
            if !(ct == "application/merge-patch+json"
                || ct == "application/apply-patch+yaml"
                || strategic_ok)
            {
                return Err(status::unsupported_media_type(ct));
            }
            let patch = parse_body(content_type, body)?;
            let mut obj = store
                .get(kind, ns, name)
                .ok_or_else(|| status::not_found(k, name))?;
            meta::merge_patch(&mut obj, &patch);
            Ok((200, store.update(kind, ns, name, &obj, scope)?))
        }
        _ => Ok((200, store.delete(kind, ns, name)?)),
    }
}

/// A continue token, shaped like the apiserver's: base64url(JSON{v, rv, start}).
fn encode_continue(rv: u64, start: &str) -> String {
    let raw =
        json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{start}\u{0}")}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_continue(token: &str) -> Option<(u64, String)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    Some((v["rv"].as_u64()?, v["start"].as_str()?.to_string()))
}

fn item_key(o: &Value) -> String {
    let s = |p: &str| {
        o.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    format!("{}/{}", s("/metadata/namespace"), s("/metadata/name"))
}

/// A (possibly paginated) list: the list metadata and the items.
fn list(
    shared: &Shared,
    kind: usize,
    ns: Option<&str>,
    q: &HashMap<String, String>,
    sel: &Selectors,
) -> Result<(Value, Vec<Value>), ApiError> {
    let store = lock(&shared.store);
    let limit: usize = match q.get("limit") {
        Some(l) if !l.is_empty() => l
            .parse()
            .map_err(|_| status::bad_request(&format!("invalid limit: {l}")))?,
        _ => 0,
    };
    let (at, start) = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let (rv, start) = decode_continue(token).ok_or_else(|| status::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
            if rv < store.floor() {
                return Err(status::expired(status::CONTINUE_EXPIRED));
            }
            (Some(rv), Some(start))
        }
        None => {
            let rv =
                match q.get("resourceVersion").map(String::as_str) {
                    None | Some("" | "0") => None,
                    Some(r) => Some(r.parse::<u64>().map_err(|_| {
                        status::bad_request(&format!("invalid resource version: {r}"))
                    })?),
                };
            match (rv, q.get("resourceVersionMatch").map(String::as_str)) {
                (Some(rv), Some("Exact")) => (Some(rv), None),
                (Some(rv), _) if rv > store.rv() => {
                    return Err(status::too_large_rv(rv, store.rv()));
                }
                _ => (None, None),
            }
        }
    };
    let list_rv = at.unwrap_or(store.rv());
    let mut all = store.snapshot(kind, ns, at)?;
    // etcd keys (`/registry/<resource>/<ns>/<name>`) sort as strings.
    all.sort_by_key(item_key);
    let mut items: Vec<Value> = all
        .into_iter()
        .filter(|o| start.as_deref().is_none_or(|s| item_key(o).as_str() >= s))
        .filter(|o| sel.matches(o))
        .collect();
    let mut md = json!({"resourceVersion": list_rv.to_string()});
    if limit > 0 && items.len() > limit {
        let remaining = items.len() - limit;
        items.truncate(limit);
        md["continue"] = json!(encode_continue(list_rv, &item_key(&items[limit - 1])));
        if q.get("labelSelector").is_none_or(String::is_empty)
            && q.get("fieldSelector").is_none_or(String::is_empty)
        {
            md["remainingItemCount"] = json!(remaining);
        }
    }
    Ok((md, items))
}

/// The name a field selector requires exactly (`metadata.name=X` or `metadata.name==X`
/// among its comma-separated terms).
fn exact_name(selector: &str) -> Option<String> {
    selector.split(',').find_map(|term| {
        let value = term
            .strip_prefix("metadata.name==")
            .or_else(|| term.strip_prefix("metadata.name="))?;
        (!value.is_empty()).then(|| value.to_string())
    })
}
