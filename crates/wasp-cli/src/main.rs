//! The `wasp` command line.

mod inspect;
mod logging;
mod registry;
mod run;
mod start_check;
mod try_plugin;
mod validate;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use clap::{Parser, Subcommand};

/// mimalloc, set up to return what it frees (see wasp-alloc).
#[global_allocator]
static ALLOCATOR: wasp_alloc::Allocator = wasp_alloc::Allocator;

#[derive(Parser)]
#[command(name = "wasp", version, about = "A proxy that runs Proxy-Wasm plugins")]
struct Cli {
    /// Log lines as JSON objects instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy: `wasp run -c wasp.yaml`, or try a plugin with
    /// `wasp run --listen 127.0.0.1:8080 [--upstream 127.0.0.1:9000] --plugin hello.wasm`.
    Run(run::Args),
    /// Check a configuration file (and the plugins it names) without starting.
    Validate(validate::Args),
    /// Work with plugin modules.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Compile and instantiate a plugin for real, run its start function, and report its ABI,
    /// callbacks, imports and digest.
    Inspect(inspect::Args),
    /// Run a plugin in front of a built-in response (no sockets) and show what it did.
    Try(try_plugin::Args),
    /// Fetch a module into the cache (OCI, http(s) or file) and print its digests.
    Pull(registry::PullArgs),
    /// Publish a module to an OCI registry.
    Push(registry::PushArgs),
}

fn main() -> ExitCode {
    wasp_alloc::tune();
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Run(_)) {
        "info"
    } else {
        "warn"
    };
    logging::init(default_level, cli.log_json);
    tracing::debug!(
        before_main = wasp_alloc::tuned_before_main(),
        "allocator set to return freed memory"
    );
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Plugin {
            command: PluginCommand::Inspect(args),
        } => inspect::run(args),
        Command::Plugin {
            command: PluginCommand::Try(args),
        } => try_plugin::run(args),
        Command::Plugin {
            command: PluginCommand::Pull(args),
        } => registry::pull(args),
        Command::Plugin {
            command: PluginCommand::Push(args),
        } => registry::push(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reads and loads a plugin for a one-shot command: a host without the instance pool (one VM
/// needs no up-front reservation) and no compiled-module cache.
fn load_plugin(path: &Path) -> anyhow::Result<Arc<wasp_host::PluginModule>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let host = wasp_host::Host::new(wasp_host::HostConfig {
        pooling_instances: None,
        ..wasp_host::HostConfig::default()
    })?;
    host.load_module(&bytes)
        .with_context(|| format!("{} cannot be loaded", path.display()))
}
