//! Runs one scenario file: starts the upstreams, one Envoy and one wasp configured from the
//! same plan, sends every case's requests to both, and compares what came back, what the
//! upstreams and callout clusters received, the plugins' log lines and their metrics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::client::{self, Seen};
use crate::compare::{self, Mismatch, Normalizer};
use crate::observe::{self, Metrics};
use crate::pki::Pki;
use crate::plan::{self, CasePlan, Plan, free_port};
use crate::process::{self, Proxy};
use crate::report::Outcome;
use crate::scenario::{Aspect, Case, CaseLayout, ClusterKind, Layer, ScenarioFile, UpstreamReply};
use crate::{envoy, refusal, wasp};
use wasp_test_support::upstream::Upstream;

/// Time for callbacks that run after the response (on_log, on_done) before reading metrics:
/// at least this long, and then until neither proxy's log nor metrics change between two reads
/// (a loaded CI machine may run them later), up to `SETTLE_MAX`.
const SETTLE: Duration = Duration::from_millis(100);
const SETTLE_MAX: Duration = Duration::from_secs(3);

pub struct Binaries {
    pub envoy: PathBuf,
    pub wasp: PathBuf,
}

/// One side (Envoy or wasp) of a scenario file: its upstreams and its plan.
struct Side {
    case_upstreams: Vec<Upstream>,
    clusters: Vec<(String, Upstream)>,
    plan: Plan,
}

async fn side(
    file: &ScenarioFile,
    cases: &[(&Case, CaseLayout)],
    pki: Option<&std::sync::Arc<Pki>>,
    access_logs: Option<PathBuf>,
) -> anyhow::Result<Side> {
    let mut case_upstreams = Vec::new();
    let mut plans = Vec::new();
    for (case, layout) in cases {
        let upstream = Upstream::start(ClusterKind::Echo.behaviour(&case.upstream)).await?;
        plans.push(CasePlan {
            layout: layout.clone(),
            listener: free_port()?,
            upstream: upstream.address,
            tls: case.tls,
            retry_policy: case.retry_policy.clone(),
            routes: case.routes.clone(),
        });
        case_upstreams.push(upstream);
    }
    let mut clusters = Vec::new();
    for (name, kind) in &file.clusters {
        let upstream = Upstream::start(kind.behaviour(&UpstreamReply::default())).await?;
        clusters.push((name.clone(), upstream));
    }
    let plan = Plan {
        admin: free_port()?,
        cases: plans,
        clusters: clusters
            .iter()
            .map(|(n, u)| (n.clone(), u.address))
            .collect(),
        pki: pki.cloned(),
        access_logs,
    };
    Ok(Side {
        case_upstreams,
        clusters,
        plan,
    })
}

/// Everything one case produced on one side, kept until the logs are read at the end.
#[derive(Default)]
struct CaseRun {
    responses: Vec<Seen>,
    metrics: Metrics,
    /// Where the proxy's log ended when the case was over (its Lua lines are read up to here).
    log_end: u64,
    /// How many requests each extra cluster had received when the case was over.
    cluster_counts: Vec<usize>,
}

/// Runs a file's cases: the `refused` ones each alone, the others in one pair of proxies.
/// The outcomes (with their stale difference ids) come in the file's order.
pub fn run_file(
    rt: &tokio::runtime::Runtime,
    file: &ScenarioFile,
    bins: &Binaries,
    work: &Path,
) -> anyhow::Result<Vec<(Outcome, Vec<String>)>> {
    std::fs::create_dir_all(work)?;
    let mut served = Vec::new();
    let mut outcomes: Vec<Option<(Outcome, Vec<String>)>> = Vec::new();
    for (i, case) in file.cases.iter().enumerate() {
        let layout = CaseLayout::new(i, file.plugins_of(case))?;
        if case.refused {
            let outcome = refusal::run(bins, file.layer, case, &layout, &work.join(&layout.id))?;
            outcomes.push(Some(outcome));
        } else {
            served.push((case, layout));
            outcomes.push(None);
        }
    }
    let mut served_outcomes = if served.is_empty() {
        Vec::new()
    } else if file.layer == Layer::Tcp {
        crate::tcp::run_served(rt, file, &served, bins, work)?
    } else {
        run_served(rt, file, &served, bins, work)?
    }
    .into_iter();
    Ok(outcomes
        .into_iter()
        .map(|o| {
            o.or_else(|| served_outcomes.next())
                .expect("one outcome per case")
        })
        .collect())
}

/// Runs cases that serve requests, all in one Envoy and one wasp.
fn run_served(
    rt: &tokio::runtime::Runtime,
    file: &ScenarioFile,
    cases: &[(&Case, CaseLayout)],
    bins: &Binaries,
    work: &Path,
) -> anyhow::Result<Vec<(Outcome, Vec<String>)>> {
    let logs_dir = |side: &str| -> anyhow::Result<Option<PathBuf>> {
        if !file.access_log {
            return Ok(None);
        }
        let dir = work.join(format!("{side}-access-logs"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Some(dir))
    };
    let pki = if cases.iter().any(|(c, _)| c.tls.is_some()) {
        Some(std::sync::Arc::new(Pki::write(&work.join("pki"))?))
    } else {
        None
    };
    let (e_side, w_side) = rt.block_on(async {
        anyhow::Ok((
            side(file, cases, pki.as_ref(), logs_dir("envoy")?).await?,
            side(file, cases, pki.as_ref(), logs_dir("wasp")?).await?,
        ))
    })?;

    let bootstrap = work.join("envoy.json");
    std::fs::write(
        &bootstrap,
        serde_json::to_string_pretty(&envoy::bootstrap(&e_side.plan, Layer::Http))?,
    )?;
    let config = work.join("wasp.yaml");
    std::fs::write(
        &config,
        serde_json::to_string_pretty(&wasp::config(&w_side.plan, Layer::Http))?,
    )?;
    plan::release_ports();
    // Both start at once: Envoy compiles with V8 while wasp compiles with wasmtime.
    let (e_proxy, w_proxy) = std::thread::scope(|s| {
        let e = s.spawn(|| process::start_envoy(&bins.envoy, &bootstrap, e_side.plan.admin));
        let w = process::start_wasp(&bins.wasp, &config, w_side.plan.admin);
        (e.join().expect("envoy start thread"), w)
    });
    let (e_proxy, w_proxy) = (e_proxy?.ready()?, w_proxy?.ready()?);
    let (e_log_from, w_log_from) = (
        observe::log_size(&e_proxy.log),
        observe::log_size(&w_proxy.log),
    );

    let mut e_metrics = Metrics::new();
    let mut w_metrics = Metrics::new();
    let mut runs = Vec::new();
    for (i, (case, _)) in cases.iter().enumerate() {
        let (e_at, w_at) = (e_side.plan.cases[i].listener, w_side.plan.cases[i].listener);
        let mut e_run = CaseRun::default();
        let mut w_run = CaseRun::default();
        let tls = case.tls.and(pki.as_deref());
        for request in &case.requests {
            let (e, w) = rt.block_on(async {
                tokio::join!(
                    client::send(e_at, request, tls),
                    client::send(w_at, request, tls)
                )
            });
            e_run.responses.push(e);
            w_run.responses.push(w);
        }
        // The first case's delta includes the metrics plugins defined while starting.
        let (e_now, w_now) = settled(&e_proxy, &w_proxy)?;
        e_run.metrics = observe::delta(&e_metrics, &e_now);
        w_run.metrics = observe::delta(&w_metrics, &w_now);
        e_run.log_end = observe::log_size(&e_proxy.log);
        w_run.log_end = observe::log_size(&w_proxy.log);
        e_run.cluster_counts = e_side
            .clusters
            .iter()
            .map(|(_, u)| u.seen().len())
            .collect();
        w_run.cluster_counts = w_side
            .clusters
            .iter()
            .map(|(_, u)| u.seen().len())
            .collect();
        (e_metrics, w_metrics) = (e_now, w_now);
        runs.push((e_run, w_run));
    }
    std::thread::sleep(SETTLE * 3);
    let e_logs = observe::envoy_logs(&e_proxy.log, (e_log_from, None))?;
    let w_logs = observe::wasp_logs(&w_proxy.log, (w_log_from, None))?;
    let e_start = observe::distinct(observe::envoy_logs(&e_proxy.log, (0, Some(e_log_from)))?);
    let w_start = observe::distinct(observe::wasp_logs(&w_proxy.log, (0, Some(w_log_from)))?);
    // Lua lines name no case in Envoy's log: each case's are those of its own span of the log
    // (the last case's run to the end, after the final settling).
    let mut lua_logs = Vec::new();
    let (mut e_from, mut w_from) = (e_log_from, w_log_from);
    for (i, (e_run, w_run)) in runs.iter().enumerate() {
        let last = i + 1 == runs.len();
        let e_to = (!last).then_some(e_run.log_end);
        let w_to = (!last).then_some(w_run.log_end);
        lua_logs.push((
            observe::envoy_lua_logs(&e_proxy.log, (e_from, e_to))?,
            observe::wasp_lua_logs(&w_proxy.log, (w_from, w_to))?,
        ));
        (e_from, w_from) = (e_run.log_end, w_run.log_end);
    }
    drop((e_proxy, w_proxy));

    let mut outcomes = Vec::new();
    let e_clusters: Vec<_> = e_side.clusters.iter().map(|(_, u)| u.seen()).collect();
    let w_clusters: Vec<_> = w_side.clusters.iter().map(|(_, u)| u.seen()).collect();
    let mut e_counts = vec![0; e_clusters.len()];
    let mut w_counts = vec![0; w_clusters.len()];
    for (i, ((case, layout), (e_run, w_run))) in cases.iter().zip(runs).enumerate() {
        let norm = Normalizer {
            presence_only: &case.presence_only,
        };
        let mut found: Vec<Mismatch> = Vec::new();
        for (n, (e, w)) in e_run.responses.iter().zip(&w_run.responses).enumerate() {
            norm.response(&format!("request {n}"), e, w, &mut found);
        }
        norm.upstream(
            Aspect::Upstream,
            "the case's upstream",
            &e_side.case_upstreams[i].seen(),
            &w_side.case_upstreams[i].seen(),
            &mut found,
        );
        // Each case compares the callouts its own requests made.
        for (c, (name, _)) in e_side.clusters.iter().enumerate() {
            let (e_to, w_to) = (e_run.cluster_counts[c], w_run.cluster_counts[c]);
            norm.upstream(
                Aspect::Callouts,
                &format!("cluster {name}"),
                e_clusters[c].get(e_counts[c]..e_to).unwrap_or_default(),
                w_clusters[c].get(w_counts[c]..w_to).unwrap_or_default(),
                &mut found,
            );
            (e_counts[c], w_counts[c]) = (e_to, w_to);
        }
        if layout.has_lua() {
            let (e_lua, w_lua) = &lua_logs[i];
            compare::logs("lua scripts", e_lua, w_lua, &mut found);
        }
        let keys = layout.log_keys();
        compare::plugin_logs(&keys, " while starting", &e_start, &w_start, &mut found);
        compare::plugin_logs(&keys, "", &e_logs, &w_logs, &mut found);
        compare::metrics("plugin metrics", &e_run.metrics, &w_run.metrics, &mut found);
        if let (Some(e_dir), Some(w_dir)) = (&e_side.plan.access_logs, &w_side.plan.access_logs) {
            let file = format!("{}.log", layout.id);
            compare::access_log(
                &crate::access_log::read(&e_dir.join(&file)),
                &crate::access_log::read(&w_dir.join(&file)),
                &mut found,
            );
        }
        let stale = stale(case, &found);
        outcomes.push((classify(case.differences.clone(), found), stale));
    }
    Ok(outcomes)
}

/// Differences a case lists that no longer show (fixed in wasp): the id can go.
pub fn stale(case: &Case, found: &[Mismatch]) -> Vec<String> {
    case.differences
        .iter()
        .filter(|(aspect, _)| !found.iter().any(|m| m.aspect == **aspect))
        .map(|(aspect, id)| format!("{}: {id}", aspect.label()))
        .collect()
}

/// Both proxies' metrics once the case's late callbacks have run: read after `SETTLE`, then
/// again every half `SETTLE` until two reads agree on the metrics and on the log sizes.
pub(crate) fn settled(e: &Proxy, w: &Proxy) -> anyhow::Result<(Metrics, Metrics)> {
    let started = std::time::Instant::now();
    std::thread::sleep(SETTLE);
    let read = || -> anyhow::Result<_> {
        Ok((
            metrics(e)?,
            metrics(w)?,
            observe::log_size(&e.log),
            observe::log_size(&w.log),
        ))
    };
    let mut last = read()?;
    while started.elapsed() < SETTLE_MAX {
        std::thread::sleep(SETTLE / 2);
        let now = read()?;
        if now == last {
            break;
        }
        last = now;
    }
    Ok((last.0, last.1))
}

fn metrics(proxy: &Proxy) -> anyhow::Result<Metrics> {
    let read = match proxy.name {
        "envoy" => observe::envoy_metrics,
        _ => observe::wasp_metrics,
    };
    read(proxy.admin).with_context(|| format!("reading {}'s metrics", proxy.name))
}

/// Identical, documented (every mismatch in an aspect the case documents), or failed.
/// A value of `differences:` may name several ids, separated by commas.
pub fn classify(documented: BTreeMap<Aspect, String>, found: Vec<Mismatch>) -> Outcome {
    if found.is_empty() {
        return Outcome::Identical;
    }
    if found.iter().all(|m| documented.contains_key(&m.aspect)) {
        let list = found
            .into_iter()
            .map(|m| {
                let id = documented[&m.aspect].clone();
                (m, id)
            })
            .collect();
        return Outcome::Documented(list);
    }
    Outcome::Failed(
        found
            .into_iter()
            .filter(|m| !documented.contains_key(&m.aspect))
            .collect(),
    )
}

/// Where a file's generated configurations and proxy logs go (kept for reading after a run):
/// `<target>/conformance/<file>`, found from the test binary (`<target>/<profile>/deps/...`).
pub fn work_dir(file: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(std::env::temp_dir)
        .join("conformance")
        .join(file)
}
