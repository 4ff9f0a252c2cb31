//! `wasp plugin pull` and `wasp plugin push`: fill the module cache from a URL, or publish a
//! module to an OCI registry in a layout the fetchers (wasp's and Istio's) can pull.

use std::path::PathBuf;

use anyhow::Context as _;
use wasp_delivery::{Credentials, FetchRequest, Fetcher, PullPolicy, PushFormat};

#[derive(clap::Args)]
pub struct PullArgs {
    /// `oci://host/repo:tag` (or without scheme), `https://...`, or a file.
    url: String,
    /// A `kubernetes.io/dockerconfigjson` Secret (YAML or JSON) or a docker config.json.
    #[arg(long)]
    secret: Option<PathBuf>,
    /// The namespace the secret must be in (a Secret naming another one is refused).
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Reach the registry over plain HTTP (and accept any certificate for https URLs).
    #[arg(long)]
    insecure: bool,
    /// Expected sha256: the manifest digest for OCI, the module's hash otherwise.
    #[arg(long)]
    sha256: Option<String>,
    /// Where the module cache is (as `wasp run --cache-dir`).
    #[arg(long, env = "WASP_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct PushArgs {
    /// The module to publish.
    file: PathBuf,
    /// Where: `oci://host/repo:tag`.
    reference: String,
    /// Layout: `oci` (Istio's Wasm artifact, the default), `docker` (a Docker image with
    /// `plugin.wasm`), `oci-image`, `wasm-to-oci` or `cncf`.
    #[arg(long, default_value = "oci")]
    format: String,
    /// Credentials as a Secret or docker config.json (its entry for the registry is used).
    #[arg(long, conflicts_with = "username")]
    secret: Option<PathBuf>,
    /// Basic credentials (with `--password` or `WASP_REGISTRY_PASSWORD`).
    #[arg(long, requires = "password")]
    username: Option<String>,
    #[arg(long, env = "WASP_REGISTRY_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Reach the registry over plain HTTP.
    #[arg(long)]
    insecure: bool,
}

pub fn pull(args: PullArgs) -> anyhow::Result<()> {
    let fetcher = open_fetcher(args.cache_dir, &args.url, args.insecure)?;
    let pull_secret = args
        .secret
        .as_ref()
        .map(|path| read_secret(path, &args.namespace))
        .transpose()?;
    let request = FetchRequest {
        sha256: args.sha256,
        // `pull` is asked for explicitly: always check the source.
        pull_policy: PullPolicy::Always,
        pull_secret,
        resource: "wasp plugin pull".into(),
        ..FetchRequest::parse(&args.url)?
    };
    let fetched = runtime()?.block_on(fetcher.fetch(&request))?;
    println!("{}", fetched.source_url);
    println!(
        "module sha256:{} ({} bytes)",
        fetched.digest,
        fetched.bytes.len()
    );
    if let Some(manifest) = &fetched.manifest_digest {
        println!("manifest {manifest}");
    }
    println!(
        "{}",
        if fetched.cache_hit {
            "already cached"
        } else {
            "downloaded into the cache"
        }
    );
    Ok(())
}

pub fn push(args: PushArgs) -> anyhow::Result<()> {
    let wasm = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let format: PushFormat = args
        .format
        .parse()
        .map_err(|e| anyhow::anyhow!("--format: {e}"))?;
    let creds = match (&args.secret, args.username) {
        (Some(path), _) => Some(read_secret(path, "default")?),
        (None, Some(user)) => Some(Credentials::basic(user, args.password.unwrap_or_default())),
        (None, None) => None,
    };
    // Pushing needs no cache; a throwaway one keeps the user's untouched.
    let scratch = tempfile::tempdir()?;
    let fetcher = open_fetcher(Some(scratch.path().into()), &args.reference, args.insecure)?;
    let digest =
        runtime()?.block_on(fetcher.push(&wasm, &args.reference, format, creds.as_ref()))?;
    println!("pushed {} as {}", args.file.display(), args.reference);
    println!("manifest {digest}");
    Ok(())
}

fn open_fetcher(cache_dir: Option<PathBuf>, url: &str, insecure: bool) -> anyhow::Result<Fetcher> {
    let root = cache_dir
        .or_else(crate::run::default_cache_dir)
        .unwrap_or_else(|| std::env::temp_dir().join("wasp"));
    let insecure: Vec<String> = match insecure {
        true => vec![registry_host(url)],
        false => Vec::new(),
    };
    wasp_config::follow::fetcher(&root, &insecure).context("cannot open the plugin module cache")
}

/// `host[:port]` of an OCI reference or URL, for `--insecure`.
fn registry_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest).to_string()
}

fn read_secret(path: &PathBuf, namespace: &str) -> anyhow::Result<Credentials> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Credentials::from_secret_yaml(&text, namespace)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
