//! Access logs (Envoy's file access loggers): a line per finished request, in Envoy's format
//! language (wasp-accesslog), written off the hot path. The stream's span (tracing) ends at
//! the same moment, here.
//!
//! A worker renders the line when the response's last byte has gone (or the stream ended
//! otherwise) and hands it to the file's writer thread through a bounded queue; the thread
//! batches writes and flushes whenever the queue runs dry. A full queue (a disk that cannot
//! keep up) drops the line and counts it (`wasp_access_log_dropped_total`) rather than slow
//! requests down.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use wasp_accesslog::{Entry, Format};
use wasp_host::HeaderMap;

use crate::error::StartError;
use crate::filter::properties::StreamRecord;
use crate::spec::{AccessLogFormat, AccessLogSpec};

/// Lines waiting per file before new ones are dropped.
const QUEUE: usize = 16 * 1024;

/// One configured access log.
pub(crate) struct AccessLog {
    spec: AccessLogSpec,
    format: Format,
    tx: SyncSender<String>,
    pub path: PathBuf,
    pub dropped: AtomicU64,
}

/// Opens access logs for a generation: one writer thread per distinct file, the logs (and
/// writers) of the previous generation reused where their settings did not change, so that a
/// reload neither reopens a file nor restarts its drop counter.
pub(crate) struct LogWriters<'a> {
    previous: Vec<&'a Arc<AccessLog>>,
    writers: HashMap<PathBuf, SyncSender<String>>,
}

impl<'a> LogWriters<'a> {
    pub fn from_previous(previous: Option<impl Iterator<Item = &'a Arc<AccessLog>>>) -> Self {
        let previous: Vec<_> = previous.into_iter().flatten().collect();
        let writers = previous
            .iter()
            .map(|log| (log.path.clone(), log.tx.clone()))
            .collect();
        LogWriters { previous, writers }
    }

    /// A listener's logs.
    pub fn open(&mut self, specs: &[AccessLogSpec]) -> Result<Arc<[Arc<AccessLog>]>, StartError> {
        let mut logs = Vec::with_capacity(specs.len());
        for spec in specs {
            if let Some(same) = self.previous.iter().find(|log| log.spec == *spec) {
                logs.push(Arc::clone(same));
                continue;
            }
            let format = match &spec.format {
                AccessLogFormat::EnvoyDefault => Ok(Format::envoy_default()),
                AccessLogFormat::IstioDefault => Ok(Format::istio_default()),
                AccessLogFormat::Text(t) => Format::text(t),
                AccessLogFormat::Json(j) => Format::json(j),
            }
            .map_err(|e| StartError::AccessLog {
                path: spec.path.clone(),
                reason: e.to_string(),
            })?;
            let tx = match self.writers.get(&spec.path) {
                Some(tx) => tx.clone(),
                None => {
                    let tx = writer(&spec.path)?;
                    self.writers.insert(spec.path.clone(), tx.clone());
                    tx
                }
            };
            logs.push(Arc::new(AccessLog {
                spec: spec.clone(),
                format,
                tx,
                path: spec.path.clone(),
                dropped: AtomicU64::new(0),
            }));
        }
        Ok(Arc::from(logs))
    }
}

/// The writer thread of one file.
fn writer(path: &PathBuf) -> Result<SyncSender<String>, StartError> {
    let error = |e: std::io::Error| StartError::AccessLog {
        path: path.clone(),
        reason: e.to_string(),
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(error)?;
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
    std::thread::Builder::new()
        .name("wasp-access-log".into())
        .spawn(move || write_lines(file, &rx))
        .map_err(error)?;
    Ok(tx)
}

fn write_lines(file: std::fs::File, rx: &Receiver<String>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, file);
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                let _ = out.write_all(line.as_bytes());
                // Whatever else is queued goes in the same write; flush when it runs dry.
                while let Ok(line) = rx.try_recv() {
                    let _ = out.write_all(line.as_bytes());
                }
                if let Err(e) = out.flush() {
                    tracing::warn!("cannot write the access log: {e}");
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// This machine's name, for `%HOSTNAME%`.
fn hostname() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|n| n.trim().to_string())
            .unwrap_or_else(|_| "-".to_string())
    })
}

/// wasp-host's header map as the format language reads it.
struct Headers<'a>(&'a HeaderMap);

impl wasp_accesslog::Headers for Headers<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get_str(name)
    }
}

/// What is known of a request when its response starts, kept until the response ends.
pub(crate) struct Pending {
    pub logs: Arc<[Arc<AccessLog>]>,
    pub record: Arc<StreamRecord>,
    pub started: Instant,
    pub request_headers: HeaderMap,
    pub response_headers: HeaderMap,
    pub status: u16,
}

impl Pending {
    /// Logs the request; `sent` is the response body's size as it went to the client.
    pub fn finish(self, sent: u64) {
        let r = &self.record;
        let (upstream_host, upstream_cluster) = {
            let picked = r
                .upstream
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let picked = picked.as_ref();
            (
                picked.map(|p| p.endpoint.to_string()),
                // The route's cluster when no endpoint was picked (a plugin answered), as
                // Envoy logs it.
                picked
                    .map(|p| p.cluster.to_string())
                    .or_else(|| r.route_cluster.lock().ok()?.as_deref().map(str::to_string)),
            )
        };
        let flags = crate::flags::short_names(r.flags.load(Relaxed));
        if let Some(mut span) = r.take_span() {
            use wasp_trace::keys;
            span.set_status_code(self.status);
            if let Some(cluster) = &upstream_cluster {
                span.set_attribute(keys::UPSTREAM_CLUSTER, cluster.clone());
            }
            if !flags.is_empty() {
                span.set_attribute(keys::RESPONSE_FLAGS, flags.clone());
            }
            span.end(SystemTime::now());
        }
        if self.logs.is_empty() {
            return;
        }
        let details = r.code_details.lock().ok().and_then(|d| d.clone());
        let tls = r.conn.tls.as_deref();
        let peer_uri = tls.and_then(|t| t.peer.as_ref()?.uri_sans.first().cloned());
        let local_uri = tls.and_then(|t| t.local.as_ref()?.uri_sans.first().cloned());
        let peer_subject = tls.and_then(|t| Some(t.peer.as_ref()?.subject.clone()));
        let headers = Headers(&self.request_headers);
        let response = Headers(&self.response_headers);
        let entry = Entry {
            start_time: r.start,
            request_headers: &headers,
            response_headers: &response,
            protocol: Some(r.protocol),
            response_code: Some(self.status),
            response_flags: &flags,
            response_code_details: details.as_deref(),
            bytes_received: r.request_body_bytes.load(Relaxed),
            bytes_sent: sent,
            duration: Some(self.started.elapsed()),
            upstream_host: upstream_host.as_deref(),
            upstream_cluster: upstream_cluster.as_deref(),
            upstream_request_attempt_count: Some(r.attempts.load(Relaxed)),
            downstream_local_address: Some(r.conn.local),
            downstream_remote_address: Some(r.remote),
            requested_server_name: r.conn.sni.as_deref(),
            connection_id: Some(r.conn.id),
            downstream_peer_uri_san: peer_uri.as_deref(),
            downstream_local_uri_san: local_uri.as_deref(),
            downstream_peer_subject: peer_subject.as_deref(),
            downstream_tls_version: tls.map(|t| t.version.as_str()),
            hostname: hostname(),
            ..Entry::new(SystemTime::UNIX_EPOCH)
        };
        for log in self.logs.iter() {
            let line = log.format.render(&entry);
            if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                log.tx.try_send(line)
            {
                log.dropped.fetch_add(1, Relaxed);
            }
        }
    }
}
