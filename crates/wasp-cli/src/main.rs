//! The `wasp` command line.

mod inspect;
mod try_plugin;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "wasp", version, about = "A proxy that runs Proxy-Wasm plugins")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WASP_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plugin {
            command: PluginCommand::Inspect(args),
        } => inspect::run(args),
        Command::Plugin {
            command: PluginCommand::Try(args),
        } => try_plugin::run(args),
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
