//! `wasp plugin try FILE`: runs a plugin in front of a built-in response, without sockets.
//!
//! A request goes through the plugin's request callbacks, a built-in upstream answers
//! `200 hello from wasp`, and the response goes back through the response callbacks; the
//! command prints what the upstream received, what the client gets, and what the plugin
//! logged. It is the quickest way to see a plugin do its work.

use std::path::PathBuf;

use anyhow::bail;
use wasp_host::{
    Effect, HeaderMap, HeadersAction, HttpStream, LogRecord, PluginConfig, Vm, VmConfig,
};

#[derive(clap::Args)]
pub struct Args {
    /// The plugin module (.wasm).
    file: PathBuf,
    /// The plugin configuration (handed to proxy_on_configure).
    #[arg(long, default_value = "")]
    config: String,
    /// The plugin's root id (Istio's pluginName).
    #[arg(long, default_value = "")]
    root_id: String,
    /// The request path.
    #[arg(long, default_value = "/")]
    path: String,
    /// Extra request headers, `name: value`.
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
}

/// Prints plugin log lines as they come.
struct PrintLogs;

impl wasp_host::Embedder for PrintLogs {
    fn log(&self, record: LogRecord<'_>) {
        println!("  [plugin {}] {}", record.level.as_str(), record.message);
    }

    fn log_level(&self) -> wasp_host::LogLevel {
        wasp_host::LogLevel::Debug
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let module = crate::load_plugin(&args.file)?;
    println!(
        "plugin {} (ABI {}, sha256 {})",
        args.file.display(),
        module.abi(),
        &module.info().sha256[..16]
    );
    let mut vm = Vm::new(&module, VmConfig::default(), Box::new(PrintLogs))?;
    let root = vm.start_plugin(&PluginConfig {
        name: args.root_id.clone(),
        root_id: args.root_id.clone(),
        configuration: args.config.into_bytes(),
        allow_headers_stop_iteration: false,
    })?;

    let mut request = HeaderMap::from_pairs([
        (":method", "GET"),
        (":path", args.path.as_str()),
        (":authority", "example.local"),
        (":scheme", "http"),
        ("user-agent", "wasp-try"),
    ]);
    for header in &args.headers {
        let Some((name, value)) = header.split_once(':') else {
            bail!("--header {header:?} is not `name: value`");
        };
        request.add(name.trim().as_bytes(), value.trim().as_bytes());
    }
    let stream = HttpStream::shared(request);
    let ctx = vm.create_http_stream(root, stream.clone())?;

    println!("-> request through the plugin");
    let action = vm.on_request_headers(ctx, true)?;
    if let Some(reply) = local_reply(vm.take_effects()) {
        print_local_reply(&reply);
        vm.finish_stream(ctx)?;
        return Ok(());
    }
    if action != HeadersAction::Continue {
        println!(
            "   (the plugin paused the request: {action:?}; wasp plugin try has no callouts to resume it)"
        );
    }
    {
        let mut s = stream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.request_headers_sent = true;
        println!("== the upstream receives");
        print_headers(s.request_headers.as_ref());
        s.response_headers = Some(HeaderMap::from_pairs([
            (":status", "200"),
            ("content-type", "text/plain"),
            ("content-length", "16"),
        ]));
        s.response_body = b"hello from wasp\n".to_vec();
    }
    println!("<- response through the plugin");
    vm.on_response_headers(ctx, false)?;
    vm.on_response_body(ctx, true)?;
    if let Some(reply) = local_reply(vm.take_effects()) {
        print_local_reply(&reply);
        vm.finish_stream(ctx)?;
        return Ok(());
    }
    {
        let s = stream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        println!("== the client receives");
        print_headers(s.response_headers.as_ref());
        println!("\n{}", String::from_utf8_lossy(&s.response_body));
    }
    vm.finish_stream(ctx)?;
    Ok(())
}

fn local_reply(effects: Vec<Effect>) -> Option<wasp_host::LocalResponse> {
    effects.into_iter().find_map(|e| match e {
        Effect::LocalResponse { response, .. } => Some(response),
        _ => None,
    })
}

fn print_local_reply(reply: &wasp_host::LocalResponse) {
    println!("== the plugin answered locally ({})", reply.details);
    println!("  :status: {}", reply.status);
    print_headers(Some(&reply.headers));
    println!("\n{}", String::from_utf8_lossy(&reply.body));
}

fn print_headers(headers: Option<&HeaderMap>) {
    for (k, v) in headers.into_iter().flat_map(HeaderMap::iter) {
        println!(
            "  {}: {}",
            String::from_utf8_lossy(k),
            String::from_utf8_lossy(v)
        );
    }
}
