//! `wasp plugin inspect FILE [--json]`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;
use wasp_host::{CodeSource, NoopEmbedder, Vm, VmConfig};

#[derive(clap::Args)]
pub struct Args {
    /// The plugin module (.wasm).
    file: PathBuf,
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    file: String,
    size: usize,
    sha256: String,
    abi_version: String,
    compile_ms: f64,
    instantiate_ms: f64,
    callbacks: Vec<String>,
    hostcalls: Vec<String>,
    wasi: Vec<String>,
    not_provided: Vec<String>,
    memory_bytes: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let module = crate::load_plugin(&args.file)?;
    let info = module.info();
    let started = Instant::now();
    let mut vm = Vm::new(&module, VmConfig::default(), Box::new(NoopEmbedder))
        .with_context(|| format!("{} fails to start", args.file.display()))?;
    let instantiate_ms = started.elapsed().as_secs_f64() * 1e3;
    let imports_of = |prefix: &str| {
        info.imports
            .iter()
            .filter(|i| i.provided && i.module.starts_with(prefix))
            .map(|i| format!("{}.{}", i.module, i.name))
            .collect::<Vec<_>>()
    };
    let report = Report {
        file: args.file.display().to_string(),
        size: info.size,
        sha256: info.sha256.clone(),
        abi_version: info.abi.to_string(),
        compile_ms: match info.code {
            CodeSource::Compiled(d) | CodeSource::Cache(d) => d.as_secs_f64() * 1e3,
        },
        instantiate_ms,
        callbacks: info.callbacks.clone(),
        hostcalls: imports_of("env"),
        wasi: imports_of("wasi"),
        not_provided: info
            .imports
            .iter()
            .filter(|i| !i.provided)
            .map(|i| format!("{}.{} (stubbed: returns UNIMPLEMENTED)", i.module, i.name))
            .collect(),
        memory_bytes: vm.memory_bytes(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(())
}

fn print_text(r: &Report) {
    println!("file:          {}", r.file);
    println!("size:          {} bytes", r.size);
    println!("sha256:        {}", r.sha256);
    println!("abi version:   {}", r.abi_version);
    println!("compile:       {:.1} ms", r.compile_ms);
    println!(
        "instantiate:   {:.2} ms (including start functions)",
        r.instantiate_ms
    );
    println!("memory:        {} KiB after start", r.memory_bytes / 1024);
    let list = |title: &str, items: &[String]| {
        println!("{title} ({}):", items.len());
        for item in items {
            println!("  {item}");
        }
    };
    list("callbacks", &r.callbacks);
    list("hostcalls", &r.hostcalls);
    list("wasi", &r.wasi);
    list("imports not provided by wasp", &r.not_provided);
}
