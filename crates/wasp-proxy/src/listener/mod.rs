//! Accepting connections and serving HTTP/1.1 and HTTP/2 (prior knowledge, or ALPN over
//! TLS) on a worker.

mod accept;
mod clock;
pub(crate) mod tls;

pub(crate) use self::accept::accept_all;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use tokio::sync::watch;

use self::clock::{ConnClock, Timed};
use crate::filter::properties::ConnInfo;
use crate::routes::Listener;
use crate::worker::Worker;
use crate::worker::local::LocalGeneration;

static CONNECTION_IDS: AtomicU64 = AtomicU64::new(1);

/// Runs futures on the worker's own thread: streams never move between workers, and the
/// request futures hold the worker's (non-`Send`) VMs.
#[derive(Clone, Copy)]
pub(crate) struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: Future + 'static,
{
    fn execute(&self, fut: F) {
        tokio::task::spawn_local(fut);
    }
}

/// How long connections of replaced listener settings may stay open: Envoy's default drain
/// time (`--drain-time-s`). HTTP/2 connections go at once (GOAWAY lets their streams finish);
/// an HTTP/1 connection closes after its next response, or when this runs out if it stays
/// idle (closing it earlier could race a request the client is sending).
const DRAIN_TIME: Duration = Duration::from_secs(600);

pub(super) async fn serve_connection(
    worker: Rc<Worker>,
    generation: Rc<LocalGeneration>,
    listener: Rc<Listener>,
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    local: std::net::SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    let stats = &worker.shared.stats;
    stats.connections.fetch_add(1, Relaxed);
    stats.active_connections.fetch_add(1, Relaxed);
    let own = listener.shared.stats.clone();
    own.connections.fetch_add(1, Relaxed);
    own.active.fetch_add(1, Relaxed);
    let id = CONNECTION_IDS.fetch_add(1, Relaxed);
    let tls = listener.shared.tls.clone();
    let conn = |sni, tls| ConnInfo {
        id,
        peer,
        local,
        listener: listener.spec.name.clone(),
        direction: listener.spec.direction,
        sni,
        tls,
    };
    // The TCP proxy's and the TLS handshake's futures are boxed: a task's future is as large
    // as its largest branch (18 KiB with them inline, against 4 KiB for plain HTTP), and every
    // connection holds its task for as long as it is open.
    if let Some(routes) = &listener.tcp {
        let conn = conn(None, None);
        Box::pin(crate::tcp::serve(
            &worker,
            &generation,
            &listener,
            routes,
            tcp,
            conn,
            tls,
        ))
        .await;
    } else {
        let clock = ConnClock::new(&listener.spec.http);
        match tls {
            None => {
                let conn = Arc::new(conn(None, None));
                let io = TokioIo::new(Timed::new(tcp, clock.clone(), worker.shared.clone()));
                serve_http(
                    worker.clone(),
                    generation,
                    listener.clone(),
                    (conn, clock.clone()),
                    io,
                    shutdown,
                )
                .await;
            }
            Some(context) => match Box::pin(tls::accept(&context, tcp)).await {
                Ok((stream, session)) => {
                    let conn = Arc::new(conn(session.sni.clone(), Some(Arc::new(session))));
                    let io = TokioIo::new(Timed::new(stream, clock.clone(), worker.shared.clone()));
                    Box::pin(serve_http(
                        worker.clone(),
                        generation,
                        listener.clone(),
                        (conn, clock.clone()),
                        io,
                        shutdown,
                    ))
                    .await;
                }
                Err(e) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
            },
        }
    }
    stats.active_connections.fetch_sub(1, Relaxed);
    own.active.fetch_sub(1, Relaxed);
}

/// What a connection knows of its draining: set when its listener's settings were replaced,
/// and whether it has carried HTTP/2 (which can go at once, with GOAWAY).
#[derive(Default)]
struct Draining {
    asked: Cell<bool>,
    http2: Cell<bool>,
    /// Wakes the connection when an HTTP/2 request arrives while it drains.
    http2_seen: tokio::sync::Notify,
}

async fn serve_http<I>(
    worker: Rc<Worker>,
    accepted: Rc<LocalGeneration>,
    listener: Rc<Listener>,
    (conn, clock): (Arc<ConnInfo>, Rc<ConnClock>),
    io: I,
    mut shutdown: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let mut drain = listener.shared.epoch.drained();
    let draining = Rc::new(Draining::default());
    let state = draining.clone();
    let options = listener.spec.http;
    let serving: Serving = RefCell::new((accepted, listener));
    let requests = clock.clone();
    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let in_flight = requests.request_began();
        let (generation, listener) = current_listener(&worker, &serving);
        let http1 = req.version() < http::Version::HTTP_2;
        if !http1 && !state.http2.replace(true) && state.asked.get() {
            state.http2_seen.notify_one();
        }
        let close = http1 && (state.asked.get() || listener.shared.epoch.is_retired());
        // Boxed: the stream's future is large (the plugin chain, the upstream exchange, the
        // response), and hyper moves the future it is given more than once; a pointer moves
        // for free where the whole state machine was copied (memmove was ~10 % of a request's
        // CPU in profiles).
        let response = Box::pin(crate::stream::handle(
            worker.clone(),
            generation,
            listener,
            conn.clone(),
            req,
        ));
        async move {
            let mut response = response.await?;
            drop(in_flight);
            if close {
                // Envoy's drain of HTTP/1: the client learns to reconnect without a race.
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            Ok::<_, crate::body::BoxError>(response)
        }
    });
    let mut builder = auto::Builder::new(LocalExec);
    builder
        .http1()
        .max_buf_size(options.max_request_headers_bytes.max(8192))
        .max_headers(options.max_headers_count)
        .timer(hyper_util::rt::TokioTimer::new())
        // The clock (clock.rs) times request heads: hyper's timer would also close a
        // kept-alive connection waiting for its next request.
        .header_read_timeout(None);
    builder
        .http2()
        .max_header_list_size(options.max_request_headers_bytes as u32)
        .max_concurrent_streams(options.max_concurrent_streams);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    // Until the listener's settings are replaced; then until the drain time runs out.
    let mut drain_deadline = None;
    let mut epoch_open = true;
    if *drain.borrow() {
        // Accepted just as its listener was replaced.
        draining.asked.set(true);
        drain_deadline = Some(tokio::time::Instant::now() + DRAIN_TIME);
    }
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!("connection ended: {e}");
                }
                return;
            }
            _ = shutdown.changed() => break,
            changed = drain.changed(), if epoch_open && drain_deadline.is_none() => {
                // The sender lives as long as the listener this connection holds; an error
                // would only mean nobody can ask any more.
                epoch_open = changed.is_ok();
                if !epoch_open || !*drain.borrow() {
                    continue;
                }
                draining.asked.set(true);
                if draining.http2.get() {
                    break;
                }
                drain_deadline = Some(tokio::time::Instant::now() + DRAIN_TIME);
            }
            () = draining.http2_seen.notified(), if drain_deadline.is_some() => break,
            () = clock.idle_expired() => break,
            () = sleep_until(drain_deadline), if drain_deadline.is_some() => break,
        }
    }
    // Finish in-flight requests, refuse new ones, then close.
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The generation and listener a connection serves its requests by.
type Serving = RefCell<(Rc<LocalGeneration>, Rc<Listener>)>;

/// The generation and listener a new request on a connection is served by: the current ones
/// while the listener's connection settings stand (so route and cluster changes reach open
/// connections, as Envoy's route updates do), otherwise the last ones it had, while it drains.
fn current_listener(worker: &Rc<Worker>, serving: &Serving) -> (Rc<LocalGeneration>, Rc<Listener>) {
    let now = worker.generation();
    let mut serving = serving.borrow_mut();
    if Rc::ptr_eq(&now, &serving.0) {
        return serving.clone();
    }
    if let Some(successor) = now.successor(&serving.1).cloned() {
        *serving = (now, successor);
    }
    serving.clone()
}
