//! The admin endpoint, on a thread of its own so that it answers even when workers are busy:
//! `/ready`, `/stats/prometheus`, `/plugins`, `/config_dump`, `/logging`.

mod plugin_metrics;
pub(crate) mod stats;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::error::StartError;
use crate::shared::Shared;

/// Changes the process's log filter at run time (installed by the binary).
pub type LogLevelSetter = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

static LOG_SETTER: std::sync::OnceLock<LogLevelSetter> = std::sync::OnceLock::new();

/// Lets `POST /logging?level=debug` change the log level.
pub fn set_log_level_setter(setter: LogLevelSetter) {
    let _ = LOG_SETTER.set(setter);
}

pub(crate) fn start(
    address: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, std::thread::JoinHandle<()>), StartError> {
    let bind_error = |source| StartError::Bind {
        name: "admin".into(),
        address,
        source,
    };
    let std_listener = std::net::TcpListener::bind(address).map_err(bind_error)?;
    std_listener.set_nonblocking(true).map_err(bind_error)?;
    let bound = std_listener.local_addr().map_err(bind_error)?;
    let thread = std::thread::Builder::new()
        .name("wasp-admin".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                tracing::error!("cannot start the admin event loop");
                return;
            };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else { return };
                loop {
                    tokio::select! {
                        Ok((tcp, _)) = listener.accept() => {
                            let shared = shared.clone();
                            tokio::spawn(async move {
                                let service = service_fn(move |req| {
                                    let shared = shared.clone();
                                    async move { Ok::<_, std::convert::Infallible>(route(&shared, req)) }
                                });
                                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
                            });
                        }
                        _ = shutdown.changed() => return,
                    }
                }
            });
        })
        .map_err(StartError::Thread)?;
    Ok((bound, thread))
}

fn text(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        response.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    response
}

fn route(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/ready") => {
            if shared.ready() {
                text(StatusCode::OK, "text/plain", "LIVE\n".into())
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "PRE_INITIALIZING\n".into())
            }
        }
        (&Method::GET, "/stats/prometheus") => {
            text(StatusCode::OK, stats::CONTENT_TYPE, stats::render(shared))
        }
        (&Method::GET, "/plugins") => {
            let body = serde_json::to_string_pretty(&shared.plugin_statuses()).unwrap_or_default();
            text(StatusCode::OK, "application/json", body + "\n")
        }
        (&Method::GET, "/config_dump") => text(StatusCode::OK, "application/json", config_dump(shared) + "\n"),
        (&Method::POST, _) if shared.generations.current().spec.admin_read_only => text(
            StatusCode::FORBIDDEN,
            "text/plain",
            "admin is read-only (admin.read_only in wasp.yaml)\n".into(),
        ),
        (&Method::POST, "/logging") => {
            let level = req.uri().query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("level=")));
            match (level, LOG_SETTER.get()) {
                (Some(level), Some(set)) => match set(level) {
                    Ok(()) => text(StatusCode::OK, "text/plain", format!("log level: {level}\n")),
                    Err(e) => text(StatusCode::BAD_REQUEST, "text/plain", format!("{e}\n")),
                },
                (None, _) => text(StatusCode::BAD_REQUEST, "text/plain", "usage: POST /logging?level=<filter>\n".into()),
                (_, None) => text(StatusCode::NOT_IMPLEMENTED, "text/plain", "log level cannot be changed in this process\n".into()),
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "admin: GET /ready, /stats/prometheus, /plugins, /config_dump; POST /logging?level=<filter>\n".into(),
        ),
    }
}

fn config_dump(shared: &Shared) -> String {
    use serde_json::json;
    let generation = shared.generations.current();
    let spec = &generation.spec;
    let listeners: Vec<_> = spec
        .listeners
        .iter()
        .zip(&generation.listeners)
        .map(|(l, bound)| {
            json!({
                "name": l.name,
                "address": l.address.to_string(),
                "bound": bound.socket.local.to_string(),
                "direction": format!("{:?}", l.direction),
                "tls": l.tls.is_some(),
                "tcp": l.tcp.as_ref().map(|t| json!({
                    "cluster": t.cluster,
                    "sni": t.sni_routes.iter().map(|r| json!({"server_names": r.server_names, "cluster": r.cluster})).collect::<Vec<_>>(),
                    "idle_timeout_ms": t.idle_timeout.map(|d| d.as_millis() as u64),
                })),
                "http": l.tcp.is_none().then(|| {
                    let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_millis() as u64);
                    json!({
                        "request_headers_timeout_ms": ms(l.http.request_headers_timeout),
                        "idle_timeout_ms": ms(l.http.idle_timeout),
                        "stream_idle_timeout_ms": ms(l.http.stream_idle_timeout),
                        "request_timeout_ms": ms(l.http.request_timeout),
                        "max_request_headers_bytes": l.http.max_request_headers_bytes,
                        "max_headers_count": l.http.max_headers_count,
                        "max_concurrent_streams": l.http.max_concurrent_streams,
                    })
                }),
                "routes": l.routes.iter().map(|r| json!({
                    "match": match &r.path {
                        crate::spec::PathMatch::Prefix(p) => json!({"prefix": p}),
                        crate::spec::PathMatch::Exact(p) => json!({"path": p}),
                        crate::spec::PathMatch::Regex(re) => json!({"regex": re.as_str()}),
                    },
                    "headers": r.headers.iter().map(|h| json!({"name": h.name, "value": h.value})).collect::<Vec<_>>(),
                    "action": match &r.action {
                        crate::spec::RouteAction::Cluster { name, timeout, .. } => json!({"cluster": name, "timeout_ms": timeout.map(|t| t.as_millis() as u64)}),
                        crate::spec::RouteAction::Direct { status, body } => json!({"direct_response": {"status": status, "body": body}}),
                    },
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let clusters: Vec<_> = spec
        .clusters
        .iter()
        .zip(&generation.clusters)
        .map(|(c, state)| {
            // Each endpoint's health as Envoy's /clusters shows it (health_flags).
            let endpoints: Vec<_> = c
                .endpoints
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let mut flags = Vec::new();
                    if state.check_failed(i) {
                        flags.push("/failed_active_hc");
                    }
                    if state.ejected_for(i).is_some() {
                        flags.push("/failed_outlier_check");
                    }
                    json!({
                        "address": e,
                        "health_flags": if flags.is_empty() { "healthy".to_string() } else { flags.concat() },
                        "ejected_for_ms": state.ejected_for(i).map(|d| d.as_millis() as u64),
                    })
                })
                .collect();
            json!({
                "name": c.name,
                "endpoints": endpoints,
                "protocol": format!("{:?}", c.protocol),
                "connect_timeout_ms": c.connect_timeout.as_millis() as u64,
                "tls": c.tls.is_some(),
                "lb_policy": format!("{:?}", c.lb_policy),
                "outlier_detection": c.outlier_detection.is_some(),
                "health_check": c.health_check.as_ref().map(|h| h.path.clone()),
            })
        })
        .collect();
    let dump = json!({
        "node": {"id": spec.node.id, "cluster": spec.node.cluster, "metadata": spec.node.metadata},
        "workers": shared.workers,
        "version": generation.version,
        "last_reload": *shared.last_reload.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
        "buffer_limit_bytes": spec.buffer_limit_bytes,
        "max_connections": spec.max_connections,
        "listeners": listeners,
        "clusters": clusters,
        "plugins": shared.plugin_statuses(),
    });
    serde_json::to_string_pretty(&dump).unwrap_or_default()
}
