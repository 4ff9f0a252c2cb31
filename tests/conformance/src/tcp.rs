//! `layer: tcp` scenario files: each case's plugins as network filters in front of a TCP
//! proxy (Envoy's `envoy.filters.network.wasm` + `tcp_proxy`, wasp's `protocol: tcp` listener
//! with `type: NETWORK` plugins). A scripted client runs against both proxies at once; the
//! comparison covers the bytes the client got back and how its connection ended, the bytes
//! the upstream received, the plugins' log lines and their metrics.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::compare::{self, Mismatch};
use crate::observe;
use crate::plan::{self, CasePlan, Plan, free_port};
use crate::process;
use crate::report::Outcome;
use crate::run::{Binaries, classify, settled, stale};
use crate::scenario::{
    Aspect, Case, CaseLayout, Layer, ScenarioFile, TcpStep, TcpUpstream, UpstreamReply,
};
use crate::{envoy, wasp};

/// A side's extra clusters (callout targets) by name.
type Clusters = Vec<(String, wasp_test_support::upstream::Upstream)>;

/// How long the client reads after its last step before it gives up on the proxy closing.
const LINGER: Duration = Duration::from_millis(1500);

/// An upstream for one case: what each connection sent it, in order.
struct Upstream {
    address: SocketAddr,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Upstream {
    fn start(kind: TcpUpstream) -> anyhow::Result<Upstream> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let record = received.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let record = record.clone();
                std::thread::spawn(move || serve(conn, kind, &record));
            }
        });
        Ok(Upstream { address, received })
    }

    fn received(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .enumerate()
            .map(|(i, bytes)| format!("#{i} {:?}", String::from_utf8_lossy(bytes)))
            .collect()
    }
}

fn serve(mut conn: TcpStream, kind: TcpUpstream, record: &Mutex<Vec<Vec<u8>>>) {
    let slot = {
        let mut all = record
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.push(Vec::new());
        all.len() - 1
    };
    let mut buf = [0u8; 16384];
    let mut total = 0usize;
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 {
            break;
        }
        total += n;
        record
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)[slot]
            .extend_from_slice(&buf[..n]);
        if kind == TcpUpstream::Echo && conn.write_all(&buf[..n]).is_err() {
            return;
        }
        if kind == TcpUpstream::ByeAtOnce {
            let _ = conn.write_all(b"bye");
            std::thread::sleep(Duration::from_millis(100));
            let _ = conn.shutdown(Shutdown::Both);
            return;
        }
    }
    if kind == TcpUpstream::CountAtEnd {
        let _ = conn.write_all(format!("done: {total} bytes").as_bytes());
        // Apart from the answer: whether bytes and end arrive in one read is up to the
        // network, in Envoy as in wasp.
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = conn.shutdown(Shutdown::Write);
}

/// What the client saw: the bytes it got back, and how the connection ended.
struct Seen {
    received: Vec<u8>,
    ended: &'static str,
}

/// Runs `steps` against `address` while reading everything that comes back.
fn client(address: SocketAddr, steps: &[TcpStep]) -> Seen {
    let failed = |ended| Seen {
        received: Vec::new(),
        ended,
    };
    let Ok(conn) = TcpStream::connect(address) else {
        return failed("refused");
    };
    let _ = conn.set_read_timeout(Some(LINGER));
    let Ok(mut reader) = conn.try_clone() else {
        return failed("error");
    };
    let read = std::thread::spawn(move || {
        let mut received = Vec::new();
        let mut buf = [0u8; 16384];
        let ended = loop {
            match reader.read(&mut buf) {
                Ok(0) => break "closed by the proxy",
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    break "still open";
                }
                Err(_) => break "reset",
            }
        };
        (received, ended)
    });
    let mut writer = conn;
    for step in steps {
        match step {
            TcpStep::Send(text) => {
                let _ = writer.write_all(text.as_bytes());
            }
            TcpStep::Wait(ms) => std::thread::sleep(Duration::from_millis(*ms)),
            TcpStep::HalfClose => {
                let _ = writer.shutdown(Shutdown::Write);
            }
        }
    }
    let (received, ended) = read.join().unwrap_or_default();
    Seen { received, ended }
}

/// Runs a `tcp` file's served cases in one Envoy and one wasp.
pub fn run_served(
    rt: &tokio::runtime::Runtime,
    file: &ScenarioFile,
    cases: &[(&Case, CaseLayout)],
    bins: &Binaries,
    work: &Path,
) -> anyhow::Result<Vec<(Outcome, Vec<String>)>> {
    let cluster_kinds = &file.clusters;
    let side = || -> anyhow::Result<(Vec<Upstream>, Clusters, Plan)> {
        let mut upstreams = Vec::new();
        let mut plans = Vec::new();
        for (case, layout) in cases {
            let upstream = Upstream::start(case.tcp_upstream)?;
            plans.push(CasePlan {
                layout: layout.clone(),
                listener: free_port()?,
                upstream: upstream.address,
                tls: None,
                retry_policy: None,
                routes: Vec::new(),
            });
            upstreams.push(upstream);
        }
        // The file's extra clusters (callouts), HTTP echo upstreams as in HTTP files.
        let mut clusters = Vec::new();
        for (name, kind) in cluster_kinds {
            let upstream = rt.block_on(wasp_test_support::upstream::Upstream::start(
                kind.behaviour(&UpstreamReply::default()),
            ))?;
            clusters.push((name.clone(), upstream));
        }
        let plan = Plan {
            admin: free_port()?,
            cases: plans,
            clusters: clusters
                .iter()
                .map(|(n, u)| (n.clone(), u.address))
                .collect(),
            pki: None,
            access_logs: None,
        };
        Ok((upstreams, clusters, plan))
    };
    let (e_upstreams, _e_clusters, e_plan) = side()?;
    let (w_upstreams, _w_clusters, w_plan) = side()?;
    let bootstrap = work.join("envoy.json");
    std::fs::write(
        &bootstrap,
        serde_json::to_string_pretty(&envoy::bootstrap(&e_plan, Layer::Tcp))?,
    )?;
    let config = work.join("wasp.yaml");
    std::fs::write(
        &config,
        serde_json::to_string_pretty(&wasp::config(&w_plan, Layer::Tcp))?,
    )?;
    plan::release_ports();
    let (e_proxy, w_proxy) = std::thread::scope(|s| {
        let e = s.spawn(|| process::start_envoy(&bins.envoy, &bootstrap, e_plan.admin));
        let w = process::start_wasp(&bins.wasp, &config, w_plan.admin);
        (e.join().expect("envoy start thread"), w)
    });
    let (e_proxy, w_proxy) = (e_proxy?.ready()?, w_proxy?.ready()?);
    let e_from = observe::log_size(&e_proxy.log);
    let w_from = observe::log_size(&w_proxy.log);
    let mut e_metrics = observe::Metrics::new();
    let mut w_metrics = observe::Metrics::new();
    let mut outcomes = Vec::new();
    for (i, (case, layout)) in cases.iter().enumerate() {
        let (e_at, w_at) = (e_plan.cases[i].listener, w_plan.cases[i].listener);
        let (e_seen, w_seen) = std::thread::scope(|s| {
            let e = s.spawn(|| client(e_at, &case.tcp));
            let w = client(w_at, &case.tcp);
            (e.join().expect("client thread"), w)
        });
        let (e_now, w_now) = settled(&e_proxy, &w_proxy)?;
        let e_delta = observe::delta(&e_metrics, &e_now);
        let w_delta = observe::delta(&w_metrics, &w_now);
        (e_metrics, w_metrics) = (e_now, w_now);
        let mut found: Vec<Mismatch> = Vec::new();
        let push =
            |found: &mut Vec<Mismatch>, aspect, what: &str, e: Vec<String>, w: Vec<String>| {
                if e != w {
                    found.push(Mismatch {
                        aspect,
                        what: what.into(),
                        envoy: e,
                        wasp: w,
                    });
                }
            };
        push(
            &mut found,
            Aspect::Status,
            "the client's connection",
            vec![e_seen.ended.into()],
            vec![w_seen.ended.into()],
        );
        push(
            &mut found,
            Aspect::ResponseBody,
            "the bytes the client received",
            vec![format!("{:?}", String::from_utf8_lossy(&e_seen.received))],
            vec![format!("{:?}", String::from_utf8_lossy(&w_seen.received))],
        );
        push(
            &mut found,
            Aspect::Upstream,
            "the bytes the upstream received",
            e_upstreams[i].received(),
            w_upstreams[i].received(),
        );
        // Logs of this case: its plugins' keys pick them out of the whole log.
        let e_logs = observe::envoy_logs(&e_proxy.log, (e_from, None))?;
        let w_logs = observe::wasp_logs(&w_proxy.log, (w_from, None))?;
        let keys = layout.log_keys();
        compare::plugin_logs(&keys, "", &e_logs, &w_logs, &mut found);
        compare::metrics("plugin metrics", &e_delta, &w_delta, &mut found);
        let stale = stale(case, &found);
        outcomes.push((classify(case.differences.clone(), found), stale));
    }
    drop((e_proxy, w_proxy));
    Ok(outcomes)
}
