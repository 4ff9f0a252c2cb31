//! Cases whose plugins must keep both proxies from starting (`refused: true`). Envoy rejects a
//! static configuration in which a plugin fails `proxy_on_vm_start` or `proxy_on_configure`,
//! and so must `wasp run`. Each such case runs alone, with only its own listener: both proxies
//! must exit without becoming ready, and the plugins must have logged the same lines.

use std::path::Path;

use crate::compare::{self, Mismatch};
use crate::observe;
use crate::plan::{self, CasePlan, Plan, free_port};
use crate::process::{self, Start};
use crate::report::Outcome;
use crate::run::{Binaries, classify, stale};
use crate::scenario::{Aspect, Case, CaseLayout, Layer};
use crate::{envoy, wasp};

pub fn run(
    bins: &Binaries,
    layer: Layer,
    case: &Case,
    layout: &CaseLayout,
    work: &Path,
) -> anyhow::Result<(Outcome, Vec<String>)> {
    std::fs::create_dir_all(work)?;
    // Nothing is sent: the route's cluster only needs an address.
    let plan = |admin| -> anyhow::Result<Plan> {
        Ok(Plan {
            admin,
            cases: vec![CasePlan {
                layout: layout.clone(),
                listener: free_port()?,
                upstream: free_port()?,
                tls: None,
                retry_policy: None,
                routes: Vec::new(),
            }],
            clusters: Vec::new(),
            pki: None,
            access_logs: None,
        })
    };
    let (e_plan, w_plan) = (plan(free_port()?)?, plan(free_port()?)?);
    let bootstrap = work.join("envoy.json");
    std::fs::write(
        &bootstrap,
        serde_json::to_string_pretty(&envoy::bootstrap(&e_plan, layer))?,
    )?;
    let config = work.join("wasp.yaml");
    std::fs::write(
        &config,
        serde_json::to_string_pretty(&wasp::config(&w_plan, layer))?,
    )?;
    plan::release_ports();
    let (e_start, w_start) = std::thread::scope(|s| {
        let e = s.spawn(|| process::start_envoy(&bins.envoy, &bootstrap, e_plan.admin));
        let w = process::start_wasp(&bins.wasp, &config, w_plan.admin);
        (e.join().expect("envoy start thread"), w)
    });
    let (e_start, w_start) = (e_start?, w_start?);

    let mut found = Vec::new();
    let (e_said, w_said) = (said(&e_start), said(&w_start));
    if e_said != w_said {
        found.push(Mismatch {
            aspect: Aspect::Status,
            what: "startup".into(),
            envoy: vec![e_said],
            wasp: vec![w_said],
        });
    }
    let e_logs = observe::envoy_logs(&log_of(&e_start), (0, None))?;
    let w_logs = observe::wasp_logs(&log_of(&w_start), (0, None))?;
    drop((e_start, w_start));
    let keys = layout.log_keys();
    compare::plugin_logs(&keys, " while starting", &e_logs, &w_logs, &mut found);
    let stale = stale(case, &found);
    Ok((classify(case.differences.clone(), found), stale))
}

/// What a start shows, in words both sides can be compared by (exit codes differ by design).
fn said(start: &Start) -> String {
    match start {
        Start::Ready(_) => "started and served".into(),
        Start::Exited { status, .. } if status.success() => {
            "exited with success, serving nothing".into()
        }
        Start::Exited { .. } => "refused the configuration (exited with a failure)".into(),
    }
}

fn log_of(start: &Start) -> std::path::PathBuf {
    match start {
        Start::Ready(proxy) => proxy.log.clone(),
        Start::Exited { log, .. } => log.clone(),
    }
}
