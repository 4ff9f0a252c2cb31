//! Logging, the clock, randomness, the environment and stdio: what plugins see of the
//! process around them.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::*;
use wasp_host::{LogLevel, VmConfig};

const LEVELS: [(LogLevel, &str); 6] = [
    (LogLevel::Trace, "level trace"),
    (LogLevel::Debug, "level debug"),
    (LogLevel::Info, "level info"),
    (LogLevel::Warn, "level warn"),
    (LogLevel::Error, "level error"),
    (LogLevel::Critical, "level critical"),
];

fn log_levels(level: LogLevel) -> (Recorder, Option<String>) {
    let recorder = Recorder {
        level,
        ..Recorder::default()
    };
    let mut f = start_with(
        "hostcalls",
        "",
        VmConfig {
            vm_id: "log-vm".into(),
            ..VmConfig::default()
        },
        recorder,
    );
    let (_, stream, _) = f.scenario("log-levels", &[]);
    (f.recorder.clone(), header(&stream, "x-log-level"))
}

#[test]
fn every_level_reaches_the_embedder_tagged_with_vm_and_plugin() {
    let (recorder, level) = log_levels(LogLevel::Trace);
    for (level, text) in LEVELS {
        let entry = recorder.entry(text);
        assert_eq!(entry.level, level, "{text}");
        assert_eq!(entry.vm_id, "log-vm");
        assert_eq!(entry.plugin, "hostcalls");
    }
    assert_eq!(level.as_deref(), Some("Trace"));
}

#[test]
fn the_embedders_level_is_reported_but_filtering_is_the_embedders_job() {
    // proxy_get_log_level reports the embedder's level. The plugin logs these six lines with
    // the raw hostcall (and the SDK's own filter is at Trace), so all six still arrive:
    // the host passes every line on and the embedder decides what to keep.
    let (recorder, level) = log_levels(LogLevel::Warn);
    assert_eq!(level.as_deref(), Some("Warn"));
    for (level, text) in LEVELS {
        assert_eq!(recorder.entry(text).level, level, "{text}");
    }
}

#[test]
fn start_up_lines_carry_the_plugin_that_was_starting() {
    let f = start("hostcalls", "cfg");
    let entry = f.recorder.entry("configure config=cfg");
    assert_eq!(entry.level, LogLevel::Info);
    assert_eq!(entry.plugin, "hostcalls");
}

#[test]
fn time_is_the_wall_clock() {
    let mut f = start("hostcalls", "");
    let (_, stream, _) = f.scenario("time", &[]);
    let nanos: u128 = header(&stream, "x-time-ns").unwrap().parse().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let diff = now.abs_diff(nanos);
    assert!(
        diff < Duration::from_secs(5).as_nanos(),
        "plugin time {nanos}, host time {now}"
    );
}

#[test]
fn random_bytes_differ_between_requests() {
    let mut f = start("hostcalls", "");
    let mut values = Vec::new();
    for _ in 0..2 {
        let (_, stream, _) = f.scenario("random", &[]);
        let value = header(&stream, "x-random").unwrap();
        assert_eq!(value.len(), 32, "{value}");
        assert!(value.chars().all(|c| c.is_ascii_hexdigit()), "{value}");
        values.push(value);
    }
    assert_ne!(values[0], values[1]);
    assert_ne!(values[0], "0".repeat(32));
}

#[test]
fn the_environment_is_the_vms_not_the_hosts() {
    // Variables of the host process (cargo sets CARGO_MANIFEST_DIR for tests).
    let host_only = ["PATH", "CARGO_MANIFEST_DIR"];
    for name in host_only {
        assert!(std::env::var_os(name).is_some(), "the host has {name}");
    }
    let mut f = start_with(
        "hostcalls",
        "",
        VmConfig {
            env: vec![
                ("WASP_KEY".into(), "value=with=equals".into()),
                ("WASP_OTHER".into(), "2".into()),
            ],
            ..VmConfig::default()
        },
        Recorder::default(),
    );
    let mut env = |name: &str| {
        let (_, stream, _) = f.scenario("env", &[("x-env-name", name)]);
        header(&stream, "x-env-value").unwrap()
    };
    assert_eq!(env("WASP_KEY"), "value=with=equals");
    assert_eq!(env("WASP_OTHER"), "2");
    assert_eq!(env("WASP_UNKNOWN"), "missing");
    for name in host_only {
        assert_eq!(env(name), "missing", "{name} leaked into the VM");
    }
}

#[test]
fn stdout_is_info_and_stderr_is_error() {
    let mut f = start_with(
        "hostcalls",
        "",
        VmConfig {
            vm_id: "stdio-vm".into(),
            ..VmConfig::default()
        },
        Recorder::default(),
    );
    let (_, _, _) = f.scenario("stdio", &[]);
    let out = f.recorder.entry("stdout line from hostcalls");
    assert_eq!(out.level, LogLevel::Info);
    assert_eq!(
        (out.vm_id.as_str(), out.plugin.as_str()),
        ("stdio-vm", "hostcalls")
    );
    let err = f.recorder.entry("stderr line from hostcalls");
    assert_eq!(err.level, LogLevel::Error);
    assert_eq!(
        (err.vm_id.as_str(), err.plugin.as_str()),
        ("stdio-vm", "hostcalls")
    );
    // One line each, newline stripped, nothing else written.
    let stdio: Vec<_> = f
        .recorder
        .logs()
        .into_iter()
        .filter(|l| l.contains("line from hostcalls"))
        .collect();
    assert_eq!(stdio.len(), 2, "{stdio:?}");
}
