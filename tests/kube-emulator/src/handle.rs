//! [`KubeEmulator`], the test's handle: start the servers, change objects (each change bumps the
//! global resourceVersion and reaches open watches), cut watches, compact, set RBAC rules, stop
//! and restart, and read what clients did.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::auth::Rule;
use crate::kinds;
use crate::server::Listener;
use crate::state::{Shared, Write, lock};
use crate::status::{self, ApiError};
use crate::store::Scope;
use crate::tls::{Pki, TlsError};

/// Errors starting or restarting the emulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding a port failed.
    #[error("binding: {0}")]
    Io(#[from] std::io::Error),
    /// Generating certificates failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// How to start the emulator.
#[derive(Debug, Clone)]
pub struct Options {
    /// The bearer token clients must send.
    pub token: String,
    /// The user that token authenticates (shown in 403 messages).
    pub user: String,
    /// The HTTPS port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// Also serve plain HTTP on another port (0: any free port).
    pub plain_http_port: Option<u16>,
    /// Send a BOOKMARK to watches that allow them this often (the apiserver's is about a
    /// minute); None: only when [`KubeEmulator::bookmark`] is called.
    pub bookmark_interval: Option<Duration>,
    /// How long a watch without `timeoutSeconds` lasts.
    pub default_watch_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token: "wasp-test-token".to_string(),
            user: "system:serviceaccount:istio-system:wasp".to_string(),
            port: 0,
            plain_http_port: None,
            bookmark_interval: Some(Duration::from_secs(60)),
            default_watch_timeout: Duration::from_secs(1800),
        }
    }
}

/// A running emulator. Dropping it stops the servers.
#[derive(Debug)]
pub struct KubeEmulator {
    shared: Arc<Shared>,
    pki: Pki,
    token: String,
    https_addr: SocketAddr,
    plain_addr: Option<SocketAddr>,
    /// The listeners while serving (taken out by `stop`, so that it can be called through `&self`
    /// from any thread the emulator is shared with).
    https: std::sync::Mutex<Option<Listener>>,
    plain: std::sync::Mutex<Option<Listener>>,
    ticker: Option<JoinHandle<()>>,
}

fn kind_of(obj: &Value) -> Result<usize, ApiError> {
    let av = obj["apiVersion"].as_str().unwrap_or_default();
    let k = obj["kind"].as_str().unwrap_or_default();
    kinds::find_by_object(av, k).ok_or_else(|| {
        status::bad_request(&format!(
            "no kind \"{k}\" is registered for version \"{av}\""
        ))
    })
}

fn ns_name(obj: &Value) -> (String, String) {
    let s = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let ns = s("/metadata/namespace");
    (
        if ns.is_empty() {
            "default".to_string()
        } else {
            ns
        },
        s("/metadata/name"),
    )
}

impl KubeEmulator {
    /// Generates the PKI and starts serving (on the current Tokio runtime).
    pub async fn start(opts: Options) -> Result<KubeEmulator, Error> {
        let pki = Pki::generate()?;
        let mut shared = Shared::new(&opts.token, &opts.user);
        shared.default_watch_timeout = opts.default_watch_timeout;
        let shared = Arc::new(shared);
        let acceptor = TlsAcceptor::from(pki.server_config.clone());
        let https = Listener::start(
            shared.clone(),
            SocketAddr::from(([127, 0, 0, 1], opts.port)),
            Some(acceptor),
        )
        .await?;
        let plain = match opts.plain_http_port {
            Some(p) => Some(
                Listener::start(shared.clone(), SocketAddr::from(([127, 0, 0, 1], p)), None)
                    .await?,
            ),
            None => None,
        };
        let ticker = opts.bookmark_interval.map(|every| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    lock(&shared.store).bookmark();
                }
            })
        });
        Ok(KubeEmulator {
            shared,
            pki,
            token: opts.token,
            https_addr: https.addr,
            plain_addr: plain.as_ref().map(|l| l.addr),
            https: std::sync::Mutex::new(Some(https)),
            plain: std::sync::Mutex::new(plain),
            ticker,
        })
    }

    /// `https://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.https_addr)
    }

    /// `http://127.0.0.1:PORT` when plain HTTP is served.
    pub fn plain_url(&self) -> Option<String> {
        self.plain_addr.map(|a| format!("http://{a}"))
    }

    /// The HTTPS address.
    pub fn addr(&self) -> SocketAddr {
        self.https_addr
    }

    /// The CA certificate (PEM) that signed the server certificate.
    pub fn ca_pem(&self) -> &str {
        &self.pki.ca_pem
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> &[u8] {
        &self.pki.ca_der
    }

    /// The bearer token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Adds another token for another user.
    pub fn add_token(&self, token: &str, user: &str) {
        lock(&self.shared.auth).add_token(token, user);
    }

    /// Creates an object (its `apiVersion`/`kind` pick the resource; namespace defaults to
    /// `default`). Returns it as stored.
    pub fn create(&self, obj: Value) -> Result<Value, ApiError> {
        let kind = kind_of(&obj)?;
        let (ns, _) = ns_name(&obj);
        lock(&self.shared.store).create(kind, &ns, obj)
    }

    /// Replaces an object, status included (a test plays every writer).
    pub fn replace(&self, obj: Value) -> Result<Value, ApiError> {
        let kind = kind_of(&obj)?;
        let (ns, name) = ns_name(&obj);
        lock(&self.shared.store).update(kind, &ns, &name, &obj, Scope::All)
    }

    /// Creates the object, or replaces it if it exists.
    pub fn apply(&self, obj: Value) -> Result<Value, ApiError> {
        let kind = kind_of(&obj)?;
        let (ns, name) = ns_name(&obj);
        let exists = lock(&self.shared.store).get(kind, &ns, &name).is_some();
        let mut obj = obj;
        if exists {
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
            self.replace(obj)
        } else {
            self.create(obj)
        }
    }

    /// Deletes an object.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let k = kinds::find_by_object(api_version, kind)
            .ok_or_else(|| status::bad_request("unknown kind"))?;
        lock(&self.shared.store).delete(k, namespace, name)
    }

    /// One object as stored.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let k = kinds::find_by_object(api_version, kind)?;
        lock(&self.shared.store).get(k, namespace, name)
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared.store).rv()
    }

    /// Cuts every open watch mid-stream (the connection is aborted, no final chunk).
    pub fn drop_watches(&self) {
        self.shared.cut.send_modify(|g| *g += 1);
    }

    /// Forgets all history: watches and continue tokens from older resourceVersions get 410.
    pub fn compact(&self) {
        lock(&self.shared.store).compact();
    }

    /// Sends a BOOKMARK at the current resourceVersion to every watch that allows them.
    pub fn bookmark(&self) {
        lock(&self.shared.store).bookmark();
    }

    /// Sets the RBAC rules (until then everything is allowed).
    pub fn set_rules(&self, rules: Vec<Rule>) {
        lock(&self.shared.auth).set_rules(rules);
    }

    /// Allows everything again.
    pub fn allow_all(&self) {
        lock(&self.shared.auth).allow_all();
    }

    /// Requests made with `verb` (`list`, `watch`, `get`, `create`, ...) on any resource.
    pub fn requests(&self, verb: &str) -> u64 {
        lock(&self.shared.counters)
            .iter()
            .filter(|((v, _), _)| v == verb)
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests made with `verb` on `resource` (the plural, e.g. `wasmplugins`).
    pub fn requests_for(&self, verb: &str, resource: &str) -> u64 {
        lock(&self.shared.counters)
            .get(&(verb.to_string(), resource.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Every write clients made over HTTP, in order.
    pub fn writes(&self) -> Vec<Write> {
        lock(&self.shared.writes).clone()
    }

    /// The Events clients created (core `v1` and `events.k8s.io/v1`), as stored.
    pub fn events(&self) -> Vec<Value> {
        self.writes()
            .into_iter()
            .filter(|w| w.verb == "create" && w.resource == "events")
            .map(|w| w.object)
            .collect()
    }

    /// The status subresource writes (update or patch), each the object as stored after it.
    pub fn status_writes(&self) -> Vec<Write> {
        self.writes()
            .into_iter()
            .filter(|w| w.resource.ends_with("/status"))
            .collect()
    }

    /// Stops serving: the listeners close and every connection is cut. Objects are kept.
    pub async fn stop(&self) {
        let https = lock(&self.https).take();
        let plain = lock(&self.plain).take();
        for l in [https, plain].into_iter().flatten() {
            l.stop().await;
        }
    }

    /// Serves again on the same ports (after [`KubeEmulator::stop`]).
    pub async fn restart(&self) -> Result<(), Error> {
        self.stop().await;
        let acceptor = TlsAcceptor::from(self.pki.server_config.clone());
        let https = Listener::start(self.shared.clone(), self.https_addr, Some(acceptor)).await?;
        *lock(&self.https) = Some(https);
        if let Some(a) = self.plain_addr {
            let plain = Listener::start(self.shared.clone(), a, None).await?;
            *lock(&self.plain) = Some(plain);
        }
        Ok(())
    }
}

impl Drop for KubeEmulator {
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
    }
}
