//! `wasp-kube-emulator --port N --token T [--fixtures DIR] [--plain-port M]`: serves the
//! apiserver list/watch EMULATOR with objects loaded from YAML/JSON files, for manual checks
//! (`kubectl --server https://127.0.0.1:N --token T --insecure-skip-tls-verify get wasmplugins`).
//! Prints `listening on https://...` once ready, and the CA PEM path when `--ca-out` is given.

use std::path::PathBuf;
use std::process::ExitCode;

use wasp_kube_emulator::{KubeEmulator, Options, fixtures};

struct Args {
    port: u16,
    token: String,
    fixtures: Option<PathBuf>,
    plain_port: Option<u16>,
    ca_out: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        port: 6443,
        token: "wasp-test-token".into(),
        fixtures: None,
        plain_port: None,
        ca_out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => a.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--token" => a.token = value()?,
            "--fixtures" => a.fixtures = Some(value()?.into()),
            "--plain-port" => {
                a.plain_port = Some(value()?.parse().map_err(|e| format!("--plain-port: {e}"))?);
            }
            "--ca-out" => a.ca_out = Some(value()?.into()),
            "-h" | "--help" => {
                return Err("usage: wasp-kube-emulator --port N --token T [--fixtures DIR] [--plain-port M] [--ca-out FILE]".into());
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

async fn run(a: Args) -> Result<(), String> {
    let opts = Options {
        port: a.port,
        token: a.token,
        plain_http_port: a.plain_port,
        ..Options::default()
    };
    let emu = KubeEmulator::start(opts).await.map_err(|e| e.to_string())?;
    if let Some(dir) = &a.fixtures {
        for obj in fixtures::load_dir(dir).map_err(|e| e.to_string())? {
            emu.apply(obj).map_err(|e| e.to_string())?;
        }
    }
    if let Some(p) = &a.ca_out {
        std::fs::write(p, emu.ca_pem()).map_err(|e| format!("writing {}: {e}", p.display()))?;
    }
    println!("listening on {}", emu.base_url());
    if let Some(u) = emu.plain_url() {
        println!("listening on {u}");
    }
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasp-kube-emulator: {e}");
            ExitCode::FAILURE
        }
    }
}
