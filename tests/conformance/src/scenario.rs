//! The scenario files (`tests/conformance/scenarios/*.yaml`): one file per feature group, each
//! with cases that name the plugin chain, what the upstream answers, the requests to send, and
//! the documented differences the comparison tolerates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::Deserialize;
use wasp_test_support::upstream::{Behaviour, Reply};

/// One header (or trailer) as `[name, value]`; a list keeps order and repetitions.
pub type Pair = (String, String);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// What the file covers (printed in the report).
    pub description: String,
    /// The chain of cases that do not give their own `plugins`.
    #[serde(default)]
    pub plugins: Vec<PluginDef>,
    /// Extra clusters (for callouts), by name; each proxy gets its own instance of each.
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterKind>,
    pub cases: Vec<Case>,
    /// `http` (the default): HTTP listeners and HTTP plugins; `tcp`: TCP listeners (Envoy's
    /// tcp_proxy) with the plugins as network filters, and cases that script a TCP client.
    #[serde(default)]
    pub layer: Layer,
    /// Both proxies write an access log per case listener (Istio's default fields as JSON),
    /// compared line by line with times, durations, ports and request ids masked.
    #[serde(default)]
    pub access_log: bool,
    /// Set after loading: the file's stem (`headers` for headers.yaml).
    #[serde(skip)]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginDef {
    /// A test plugin name for `wasp_test_plugins::path` (`hostcalls`, `as_hostcalls`, ...).
    /// Exactly one of `module` and `lua`.
    pub module: Option<String>,
    /// An Envoy-style Lua filter's source (`envoy_on_request` / `envoy_on_response`): Envoy's
    /// `envoy.filters.http.lua` with `default_source_code`, wasp's inline `lua.inlineCode`.
    /// Only `fail` applies to it besides (wasp's `failStrategy`; Envoy's Lua filter has none).
    pub lua: Option<String>,
    /// The root id; defaults to the module name (the AssemblyScript SDK matches on it).
    pub root_id: Option<String>,
    /// Shared by plugins that must share a VM (and its shared data); defaults to one per plugin;
    /// `""` is Envoy's default (no vm_id).
    pub vm_id: Option<String>,
    /// `{case}` in it becomes the case's id (`c03`), which prefixes the case's vm ids: a plugin
    /// that names another VM writes `{case}-receiver` for `vm_id: receiver`.
    #[serde(default)]
    pub config: String,
    #[serde(default)]
    pub vm_config: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub fail: FailStrategy,
}

/// What a scenario file's listeners speak.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    #[default]
    Http,
    Tcp,
}

/// One step of a TCP case's client.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpStep {
    /// Write these bytes.
    Send(String),
    /// Wait this many milliseconds (so that the next bytes come in a read of their own).
    Wait(u64),
    /// Half-close: shut down the writing side (the proxy sees end of stream).
    HalfClose,
}

/// What a TCP case's upstream does with a connection.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TcpUpstream {
    /// Writes back what it reads, as it reads it; half-closes after the client's end.
    #[default]
    Echo,
    /// Reads to the end, then answers `done: N bytes` and closes.
    CountAtEnd,
    /// Answers the first bytes with `bye` and closes at once (before the client ends).
    ByeAtOnce,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum FailStrategy {
    #[default]
    #[serde(rename = "FAIL_CLOSE")]
    Close,
    #[serde(rename = "FAIL_OPEN")]
    Open,
    #[serde(rename = "FAIL_RELOAD")]
    Reload,
}

/// How a cluster's upstream behaves.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClusterKind {
    /// Records the request and answers 200 with the request body.
    Echo,
    /// Accepts connections and never answers (callout timeouts).
    Blackhole,
    /// Reads the request, then closes the connection without a response.
    Reset,
}

impl ClusterKind {
    /// How wasp-test-support's upstream behaves for this kind; `reply` is what an echo
    /// cluster answers.
    pub fn behaviour(self, reply: &UpstreamReply) -> Behaviour {
        match self {
            ClusterKind::Echo => Behaviour::Reply(Reply {
                status: reply.status,
                headers: reply.headers.clone(),
                body: reply.body.clone(),
                chunks: reply.chunks.clone(),
                trailers: reply.trailers.clone(),
            }),
            ClusterKind::Blackhole => Behaviour::Blackhole,
            ClusterKind::Reset => Behaviour::Reset,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// Overrides the file's chain.
    pub plugins: Option<Vec<PluginDef>>,
    /// What this case's upstream answers (default: 200 echoing the request body).
    #[serde(default)]
    pub upstream: UpstreamReply,
    /// The requests to send; none when the case is `refused` (or in a `tcp` file).
    #[serde(default)]
    pub requests: Vec<RequestDef>,
    /// `tcp` files: what the client does, in order; it reads all the while.
    #[serde(default)]
    pub tcp: Vec<TcpStep>,
    /// `tcp` files: what the upstream does.
    #[serde(default)]
    pub tcp_upstream: TcpUpstream,
    /// The route's `retry_policy`, given to both proxies as written (wasp's field names are
    /// Envoy's: `retry_on`, `num_retries`, `per_try_timeout`, `retriable_status_codes`,
    /// `retry_back_off`).
    pub retry_policy: Option<serde_json::Value>,
    /// Routes before the catch-all (all to the case's cluster), each with settings for plugins
    /// of the chain by position: Envoy's `typed_per_filter_config` (`FilterConfig`,
    /// `LuaPerRoute`), wasp's route `plugins`.
    #[serde(default)]
    pub routes: Vec<RouteDef>,
    /// The case's listener terminates TLS with client certificates (mTLS): both proxies get
    /// the same certificates (`pki.rs`), and the client presents one unless a request says
    /// `client_certificate: false`.
    pub tls: Option<DownstreamTls>,
    /// Both proxies must refuse to start with this case's plugins (Envoy rejects a static
    /// configuration whose plugin fails to start): the case runs alone, sends nothing, and
    /// compares the refusal and the plugins' log lines.
    #[serde(default)]
    pub refused: bool,
    /// Headers whose values depend on the proxy's sockets (ports): compared by presence.
    #[serde(default)]
    pub presence_only: Vec<String>,
    /// Documented differences this case shows, by aspect (`logs: log-critical-level`); the id
    /// must be a section of docs/compatibility.md (several: separated by commas). Any other
    /// mismatch fails the case.
    #[serde(default)]
    pub differences: BTreeMap<Aspect, String>,
}

/// A route of a case: a path prefix and per-plugin settings by chain position.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteDef {
    pub prefix: String,
    #[serde(default)]
    pub plugins: BTreeMap<usize, RouteSetting>,
}

/// What a route does with one plugin of the chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteSetting {
    /// Off (Envoy's `FilterConfig { disabled: true }`).
    Disabled,
    /// A Lua filter runs this script instead (Envoy's `LuaPerRoute.source_code`).
    SourceCode(String),
}

/// A case listener's TLS: the CA is always configured; the client certificate is required or
/// optional (verified when sent), as Envoy's `require_client_certificate`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownstreamTls {
    pub require_client_certificate: bool,
}

/// The parts of an exchange the comparison looks at.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Aspect {
    Status,
    ResponseHeaders,
    ResponseBody,
    ResponseTrailers,
    Upstream,
    Callouts,
    Logs,
    Metrics,
    AccessLog,
}

impl Aspect {
    pub fn label(self) -> &'static str {
        match self {
            Aspect::Status => "status",
            Aspect::ResponseHeaders => "response_headers",
            Aspect::ResponseBody => "response_body",
            Aspect::ResponseTrailers => "response_trailers",
            Aspect::Upstream => "upstream",
            Aspect::Callouts => "callouts",
            Aspect::Logs => "logs",
            Aspect::Metrics => "metrics",
            Aspect::AccessLog => "access_log",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamReply {
    pub status: Option<u16>,
    #[serde(default)]
    pub headers: Vec<Pair>,
    /// The body; without it the request body is echoed.
    pub body: Option<String>,
    /// Send the body in these pieces, 50 ms apart, without a content-length.
    #[serde(default)]
    pub chunks: Vec<String>,
    #[serde(default)]
    pub trailers: Vec<Pair>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestDef {
    #[serde(default = "get")]
    pub method: String,
    #[serde(default = "root")]
    pub path: String,
    #[serde(default)]
    pub headers: Vec<Pair>,
    #[serde(default)]
    pub body: String,
    /// Send the body in these pieces, 50 ms apart (chunked on HTTP/1.1); replaces `body`.
    #[serde(default)]
    pub chunks: Vec<String>,
    #[serde(default)]
    pub trailers: Vec<Pair>,
    /// HTTP/2 with prior knowledge instead of HTTP/1.1 (by ALPN on a TLS listener).
    #[serde(default)]
    pub http2: bool,
    /// On a TLS case: present the client certificate (default) or not.
    #[serde(default = "yes")]
    pub client_certificate: bool,
    /// Bytes written as they are on a new plain connection instead of a request built from
    /// the fields above (malformed and smuggling shapes); every answer read until the proxy
    /// closes or goes quiet is compared by status.
    pub raw: Option<String>,
}

fn yes() -> bool {
    true
}

fn get() -> String {
    "GET".into()
}

fn root() -> String {
    "/".into()
}

impl ScenarioFile {
    pub fn load(path: &Path) -> anyhow::Result<ScenarioFile> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut file: ScenarioFile =
            serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        file.name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        for case in &file.cases {
            let plugins = case.plugins.as_ref().unwrap_or(&file.plugins);
            // Only the proxies' own HTTP handling is compared without plugins: raw requests.
            let raw_only =
                !case.requests.is_empty() && case.requests.iter().all(|r| r.raw.is_some());
            if plugins.is_empty() && !raw_only {
                bail!("{}: case {}: no plugins", path.display(), case.name);
            }
            for p in plugins {
                if p.module.is_some() == p.lua.is_some() {
                    bail!(
                        "{}: case {}: a plugin needs exactly one of `module` and `lua`",
                        path.display(),
                        case.name
                    );
                }
            }
            let (sends, what) = match file.layer {
                Layer::Http => (!case.requests.is_empty(), "requests"),
                Layer::Tcp => (!case.tcp.is_empty(), "tcp steps"),
            };
            if sends == case.refused {
                bail!(
                    "{}: case {}: a case has {what} unless it is `refused`",
                    path.display(),
                    case.name
                );
            }
            if file.layer == Layer::Tcp && !case.requests.is_empty() {
                bail!(
                    "{}: case {}: a tcp file's cases send `tcp` steps, not requests",
                    path.display(),
                    case.name
                );
            }
        }
        Ok(file)
    }

    pub fn plugins_of<'a>(&'a self, case: &'a Case) -> &'a [PluginDef] {
        case.plugins.as_deref().unwrap_or(&self.plugins)
    }
}

/// Every scenario file, sorted by name.
pub fn all(dir: &Path) -> anyhow::Result<Vec<ScenarioFile>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| ScenarioFile::load(p)).collect()
}

/// What a plugin runs.
#[derive(Debug, Clone)]
pub enum Code {
    /// A Proxy-Wasm module.
    Wasm(PathBuf),
    /// An Envoy-style Lua script's source.
    Lua(String),
}

/// A plugin as both proxies are configured with it: the names are unique in the process.
#[derive(Debug, Clone)]
pub struct PluginInstance {
    pub name: String,
    /// Wasm plugins only (empty for Lua).
    pub root_id: String,
    pub vm_id: String,
    pub code: Code,
    pub def: PluginDef,
}

impl PluginInstance {
    pub fn is_lua(&self) -> bool {
        matches!(self.code, Code::Lua(_))
    }
}

/// One case's listener, upstream cluster and plugins (identical names in both proxies).
#[derive(Debug, Clone)]
pub struct CaseLayout {
    /// `c03`: the listener, route cluster and plugin-name prefix of the case.
    pub id: String,
    pub plugins: Vec<PluginInstance>,
}

impl CaseLayout {
    pub fn new(index: usize, plugins: &[PluginDef]) -> anyhow::Result<CaseLayout> {
        let id = format!("c{index:02}");
        let plugins = plugins
            .iter()
            .enumerate()
            .map(|(i, def)| {
                let (Some(module), None) = (&def.module, &def.lua) else {
                    return Ok(PluginInstance {
                        name: format!("{id}-p{i}-lua"),
                        root_id: String::new(),
                        vm_id: String::new(),
                        code: Code::Lua(def.lua.clone().unwrap_or_default()),
                        def: def.clone(),
                    });
                };
                let wasm = wasp_test_plugins::path(module);
                if !wasm.exists() {
                    bail!(
                        "test plugin {module} is missing ({}); run scripts/build-foreign-plugins.sh or ./scripts/test",
                        wasm.display()
                    );
                }
                Ok(PluginInstance {
                    name: format!("{id}-p{i}-{module}"),
                    root_id: def.root_id.clone().unwrap_or_else(|| module.clone()),
                    vm_id: def
                        .vm_id
                        .as_ref()
                        .map_or_else(
                            || format!("{id}-vm{i}"),
                            // `vm_id: ""` is Envoy's default, an empty id.
                            |v| if v.is_empty() { String::new() } else { format!("{id}-{v}") },
                        ),
                    code: Code::Wasm(wasm),
                    def: PluginDef {
                        config: def.config.replace("{case}", &id),
                        ..def.clone()
                    },
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(CaseLayout { id, plugins })
    }

    /// How both proxies tag the log lines of the case's Wasm plugins: `<root_id> <vm_id>`.
    pub fn log_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .plugins
            .iter()
            .filter(|p| !p.is_lua())
            .map(|p| format!("{} {}", p.root_id, p.vm_id))
            .collect();
        keys.dedup();
        keys
    }

    /// Whether any plugin of the case is a Lua script (its script log lines are compared).
    pub fn has_lua(&self) -> bool {
        self.plugins.iter().any(PluginInstance::is_lua)
    }
}
