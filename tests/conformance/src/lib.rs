//! The Envoy conformance suite: every scenario file in `scenarios/` runs through the real
//! Envoy (V8) and through the real `wasp` binary, with the same plugins, requests and
//! upstreams; anything the two do differently fails, unless the case names a documented
//! difference (a section of docs/compatibility.md).

pub mod access_log;
pub mod client;
pub mod compare;
pub mod envoy;
pub mod observe;
pub mod pki;
pub mod plan;
pub mod process;
pub mod raw;
pub mod refusal;
pub mod report;
pub mod run;
pub mod scenario;
pub mod tcp;
pub mod wasp;

use std::io::Write as _;

use anyhow::{Context as _, bail};

use crate::report::{Outcome, Summary};

/// Runs every scenario file and returns the summary. The report goes straight to stderr (not
/// through `eprintln!`, which the test harness captures), so `cargo test` shows it.
pub fn run_all() -> anyhow::Result<Summary> {
    let root = process::repo_root();
    let mut files = scenario::all(&root.join("tests/conformance/scenarios"))?;
    // CONFORMANCE_ONLY=lua,headers runs those scenario files only.
    if let Ok(only) = std::env::var("CONFORMANCE_ONLY") {
        let names: Vec<&str> = only
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        if let Some(unknown) = names.iter().find(|n| !files.iter().any(|f| f.name == **n)) {
            bail!("CONFORMANCE_ONLY names `{unknown}`, which is no scenario file");
        }
        files.retain(|f| names.contains(&f.name.as_str()));
    }
    let documented = std::fs::read_to_string(root.join("docs/compatibility.md"))
        .context("reading docs/compatibility.md")?;
    for file in &files {
        for case in &file.cases {
            for id in case
                .differences
                .values()
                .flat_map(|ids| ids.split(','))
                .map(str::trim)
            {
                if !documented.lines().any(|l| l.trim() == format!("### {id}")) {
                    bail!(
                        "{}.yaml: case {}: difference `{id}` has no `### {id}` section in docs/compatibility.md",
                        file.name,
                        case.name
                    );
                }
            }
        }
    }
    let bins = run::Binaries {
        envoy: process::locate_envoy()?,
        wasp: process::build_wasp()?,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut summary = Summary::default();
    let mut out = std::io::stderr();
    for file in &files {
        let started = std::time::Instant::now();
        let work = run::work_dir(&file.name);
        let outcomes = run::run_file(&rt, file, &bins, &work).with_context(|| {
            format!(
                "scenario file {}.yaml (logs in {})",
                file.name,
                work.display()
            )
        })?;
        let _ = writeln!(
            out,
            "conformance: {} — {} ({} cases, {:.1}s; configs and logs in {})",
            file.name,
            file.description,
            outcomes.len(),
            started.elapsed().as_secs_f64(),
            work.display()
        );
        summary.scenarios += 1;
        for (case, (outcome, stale)) in file.cases.iter().zip(&outcomes) {
            summary.add(&file.name, &case.name, outcome);
            let _ = out.write_all(report::case_report(&file.name, &case.name, outcome).as_bytes());
            for s in stale {
                let _ = writeln!(
                    out,
                    "    note: lists `{s}` but that aspect is identical now"
                );
            }
        }
        if outcomes
            .iter()
            .any(|(o, _)| matches!(o, Outcome::Failed(_)))
        {
            let _ = writeln!(out, "    (proxy logs: {})", work.display());
        }
    }
    let _ = writeln!(out, "{}", summary.line());
    Ok(summary)
}
