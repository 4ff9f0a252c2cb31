//! Watch streams: HTTP 200 with a chunked body of one JSON `{"type","object"}` per line, from a
//! resourceVersion, through label/field selectors, with bookmarks, `timeoutSeconds`, the 410
//! `ERROR` event for an expired resourceVersion, and abortive cuts for `drop_watches`.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::kinds::KINDS;
use crate::selectors::Selectors;
use crate::state::{Shared, lock};
use crate::status::{self, ApiError};
use crate::store::{Change, EventType, Msg};

/// A response body fed line by line by the watch task. An `Err` item aborts the connection
/// (no terminating chunk), which is how a cut looks to the client.
#[derive(Debug)]
pub struct ChannelBody(pub mpsc::Receiver<Result<Bytes, io::Error>>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.0.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

/// What the watch request asked for.
#[derive(Debug, Clone)]
pub struct WatchParams {
    /// Index in [`KINDS`].
    pub kind: usize,
    /// One namespace, or all.
    pub namespace: Option<String>,
    /// Start after this resourceVersion; None = current state first.
    pub since: Option<u64>,
    /// The selectors.
    pub selectors: Selectors,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// `sendInitialEvents=true`: end the initial ADDED events with an annotated bookmark.
    pub send_initial_events: bool,
    /// How long the stream lasts.
    pub timeout: Duration,
}

impl WatchParams {
    /// Reads the watch parameters from the query.
    pub fn from_query(
        kind: usize,
        namespace: Option<String>,
        q: &HashMap<String, String>,
        selectors: Selectors,
        default_timeout: Duration,
    ) -> Result<WatchParams, ApiError> {
        let flag = |n: &str| crate::router::flag(q, n);
        let since = match q.get("resourceVersion").map(String::as_str) {
            None | Some("" | "0") => None,
            Some(rv) => Some(
                rv.parse::<u64>()
                    .map_err(|_| status::bad_request(&format!("invalid resource version: {rv}")))?,
            ),
        };
        let send_initial_events = flag("sendInitialEvents");
        if send_initial_events && !flag("allowWatchBookmarks") {
            return Err(status::bad_request(
                "allowWatchBookmarks: Required value: allowWatchBookmarks must be set to true when sendInitialEvents is set",
            ));
        }
        let timeout = match q.get("timeoutSeconds") {
            Some(t) => Duration::from_secs(
                t.parse()
                    .map_err(|_| status::bad_request(&format!("invalid timeoutSeconds: {t}")))?,
            ),
            None => default_timeout,
        };
        Ok(WatchParams {
            kind,
            namespace,
            // With sendInitialEvents the state is sent first whatever the resourceVersion.
            since: if send_initial_events { None } else { since },
            selectors,
            bookmarks: flag("allowWatchBookmarks"),
            send_initial_events,
            timeout,
        })
    }
}

fn line(ty: &str, object: &Value) -> Bytes {
    let mut s = serde_json::to_string(&json!({"type": ty, "object": object})).unwrap_or_default();
    s.push('\n');
    Bytes::from(s)
}

fn bookmark(kind: usize, rv: u64, initial_end: bool) -> Bytes {
    let k = &KINDS[kind];
    let mut md = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        md["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": k.kind, "apiVersion": k.api_version(), "metadata": md}),
    )
}

/// The event a change becomes for this watcher, if any: a MODIFIED that leaves the selector is
/// a DELETED (of the previous state at the change's resourceVersion), one that enters it an
/// ADDED, as the apiserver's watch cache does.
fn event_for(p: &WatchParams, c: &Change) -> Option<Bytes> {
    if c.kind != p.kind || p.namespace.as_deref().is_some_and(|ns| ns != c.namespace) {
        return None;
    }
    let now = p.selectors.matches(&c.object);
    let before = c.prev.as_ref().is_some_and(|o| p.selectors.matches(o));
    match c.ty {
        EventType::Added => now.then(|| line("ADDED", &c.object)),
        EventType::Deleted => (before || now).then(|| line("DELETED", &c.object)),
        EventType::Modified => match (before, now) {
            (true, true) => Some(line("MODIFIED", &c.object)),
            (false, true) => Some(line("ADDED", &c.object)),
            (true, false) => {
                let mut old = c.prev.clone().unwrap_or_default();
                old["metadata"]["resourceVersion"] = json!(c.rv.to_string());
                Some(line("DELETED", &old))
            }
            (false, false) => None,
        },
    }
}

/// Starts the watch and returns its body; the stream is produced by a spawned task.
pub fn start(shared: &Arc<Shared>, p: WatchParams) -> ChannelBody {
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(1024);
    let sub = lock(&shared.store).subscribe(p.kind, p.namespace.as_deref(), p.since);
    let mut cut = shared.cut.subscribe();
    let shared = shared.clone();
    tokio::spawn(async move {
        let mut sub = match sub {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Ok(line("ERROR", &e.body))).await;
                return;
            }
        };
        let deadline = tokio::time::sleep(p.timeout);
        tokio::pin!(deadline);
        for c in &sub.replay {
            if let Some(b) = event_for(&p, c)
                && tx.send(Ok(b)).await.is_err()
            {
                return;
            }
        }
        if p.send_initial_events {
            let _ = tx.send(Ok(bookmark(p.kind, sub.start_rv, true))).await;
        }
        let floor = p.since.unwrap_or(0);
        loop {
            let out = tokio::select! {
                () = &mut deadline => return,
                _ = cut.changed() => {
                    let _ = tx.send(Err(io::Error::new(io::ErrorKind::ConnectionAborted, "watch cut"))).await;
                    return;
                }
                () = tx.closed() => return,
                m = sub.rx.recv() => match m {
                    Ok(Msg::Change(c)) if c.rv > floor => event_for(&p, &c),
                    Ok(Msg::Change(_)) => None,
                    Ok(Msg::Bookmark(rv)) => (p.bookmarks && rv > floor).then(|| bookmark(p.kind, rv, false)),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let floor = lock(&shared.store).floor();
                        let e = status::expired(&status::too_old_message(floor, floor));
                        let _ = tx.send(Ok(line("ERROR", &e.body))).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if let Some(b) = out
                && tx.send(Ok(b)).await.is_err()
            {
                return;
            }
        }
    });
    ChannelBody(rx)
}
