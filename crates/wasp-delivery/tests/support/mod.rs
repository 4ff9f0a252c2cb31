//! Test fixtures: a real registry (Debian's `docker-registry`, CNCF distribution 2.8) started per
//! test, an in-process HTTP server whose answers the test scripts, a token issuer for the bearer
//! flow, and small Wasm modules.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use wasp_delivery::{Fetcher, FetcherConfig, HttpConfig};

/// A minimal valid module whose content varies with `tag` (a custom section carries it).
pub fn module(tag: &str) -> Vec<u8> {
    module_with_payload(tag.as_bytes())
}

pub fn module_with_payload(payload: &[u8]) -> Vec<u8> {
    let name = b"wasp-test";
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(payload);
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    m.push(0); // custom section
    leb128(&mut m, section.len() as u64);
    m.extend_from_slice(&section);
    m
}

fn leb128(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A fetcher with fast retries (the production backoff would make failure tests slow).
pub fn fetcher(dir: &Path, insecure: &[&str]) -> Fetcher {
    Fetcher::new(config(dir, insecure)).unwrap()
}

pub fn config(dir: &Path, insecure: &[&str]) -> FetcherConfig {
    let mut c = FetcherConfig::new(dir);
    c.insecure_registries = insecure
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    c.http = HttpConfig {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(20),
        attempt_timeout: Duration::from_secs(5),
        overall_timeout: Duration::from_secs(20),
        max_redirects: 10,
    };
    c
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------------------
// The registry.

pub enum RegistryAuth {
    Anonymous,
    /// htpasswd with one bcrypt user (distribution only accepts bcrypt).
    Htpasswd {
        user: String,
        pass: String,
    },
    /// distribution's `auth: token:` — tokens signed by `issuer`'s certificate.
    Token {
        realm: String,
        issuer: Arc<TokenIssuer>,
    },
}

pub struct Registry {
    /// `127.0.0.1:<port>`
    pub host: String,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

fn registry_binary() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("docker-registry"))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => p,
        None => panic!(
            "docker-registry is not on PATH: these tests run a real registry. \
             Install it with `apt-get install docker-registry apache2-utils` \
             (scripts/setup-toolchains.sh does)"
        ),
    }
}

impl Registry {
    pub fn start(auth: RegistryAuth) -> Registry {
        let binary = registry_binary();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let auth_yaml = match &auth {
            RegistryAuth::Anonymous => String::new(),
            RegistryAuth::Htpasswd { user, pass } => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, pass])
                    .output()
                    .unwrap_or_else(|e| {
                        panic!(
                            "htpasswd not runnable ({e}): `apt-get install docker-registry apache2-utils`"
                        )
                    });
                assert!(out.status.success(), "htpasswd failed");
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: wasp-test\n    path: {}\n",
                    path.display()
                )
            }
            RegistryAuth::Token { realm, issuer } => {
                let path = dir.path().join("token-root.pem");
                std::fs::write(&path, &issuer.cert_pem).unwrap();
                format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    TokenIssuer::SERVICE,
                    TokenIssuer::ISSUER,
                    path.display()
                )
            }
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {host}\n  secret: wasp-test-secret\n{auth_yaml}",
            dir.path().join("storage").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cannot start docker-registry");
        let mut reg = Registry {
            host,
            dir,
            child: Some(child),
        };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&mut self) {
        for _ in 0..200 {
            if TcpStream::connect(&self.host).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("docker-registry exited ({status}): {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "docker-registry did not listen on {}: {}",
            self.host,
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    pub fn url(&self, repo_and_tag: &str) -> String {
        format!("oci://{}/{repo_and_tag}", self.host)
    }

    /// Where the filesystem driver keeps a blob's bytes.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// An in-process HTTP server.

#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply::status(200, body)
    }
    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: vec![],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn delayed(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
}

/// What the handler sees of a request.
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub headers: http::HeaderMap,
}

pub type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

pub struct TestServer {
    pub addr: SocketAddr,
    /// Requests received so far.
    pub hits: Arc<AtomicUsize>,
    pub log: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> TestServer {
        let handler: Handler = Arc::new(handler);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (h2, l2) = (hits.clone(), log.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (handler, hits, log) = (handler.clone(), h2.clone(), l2.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let (handler, hits, log) = (handler.clone(), hits.clone(), log.clone());
                        async move {
                            hits.fetch_add(1, Ordering::SeqCst);
                            let seen = Seen {
                                method: req.method().to_string(),
                                target: req
                                    .uri()
                                    .path_and_query()
                                    .map(std::string::ToString::to_string)
                                    .unwrap_or_default(),
                                headers: req.headers().clone(),
                            };
                            log.lock()
                                .unwrap()
                                .push(format!("{} {}", seen.method, seen.target));
                            let reply = handler(&seen);
                            if !reply.delay.is_zero() {
                                tokio::time::sleep(reply.delay).await;
                            }
                            let mut resp = http::Response::builder().status(reply.status);
                            for (k, v) in &reply.headers {
                                resp = resp.header(k, v);
                            }
                            Ok::<_, std::convert::Infallible>(
                                resp.body(Full::new(Bytes::from(reply.body))).unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        TestServer {
            addr,
            hits,
            log,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// Bearer tokens for distribution's `auth: token:`: an ES256 JWT whose `x5c` header carries a
// self-signed certificate that the registry trusts (`rootcertbundle`).

pub struct TokenIssuer {
    pub cert_pem: String,
    cert_der_b64: String,
    key: ring::signature::EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
}

impl TokenIssuer {
    pub const SERVICE: &'static str = "wasp-test-registry";
    pub const ISSUER: &'static str = "wasp-test-issuer";

    pub fn new() -> TokenIssuer {
        use base64::Engine;
        let ck = rcgen::generate_simple_self_signed(vec!["wasp-token-issuer".into()]).unwrap();
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &ck.signing_key.serialize_der(),
            &rng,
        )
        .unwrap();
        TokenIssuer {
            cert_pem: ck.cert.pem(),
            cert_der_b64: base64::engine::general_purpose::STANDARD.encode(ck.cert.der()),
            key,
            rng,
        }
    }

    /// A token granting every action asked for in `scope` (`repository:name:pull,push`).
    pub fn issue(&self, scope: &str) -> String {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let access: Vec<serde_json::Value> = scope
            .split(' ')
            .filter_map(|s| {
                let mut parts = s.splitn(3, ':');
                let (ty, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                Some(serde_json::json!({
                    "type": ty, "name": name,
                    "actions": actions.split(',').collect::<Vec<_>>()
                }))
            })
            .collect();
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [self.cert_der_b64]});
        let claims = serde_json::json!({
            "iss": Self::ISSUER, "sub": "user", "aud": Self::SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now - 10,
            "jti": format!("{now}-{}", rand_u32()), "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self.key.sign(&self.rng, signing_input.as_bytes()).unwrap();
        format!("{signing_input}.{}", b64(sig.as_ref()))
    }
}

fn rand_u32() -> u32 {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed) as u32
}

/// Parses `a=b&c=d` (values percent-decoded).
pub fn query_param(target: &str, name: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A `kubernetes.io/dockerconfigjson` Secret for one registry.
pub fn secret_yaml(registry: &str, user: &str, pass: &str) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let config = serde_json::json!({"auths": {registry: {"auth": b64(&format!("{user}:{pass}"))}}});
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: reg-cred\n  namespace: apps\n\
         type: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {}\n",
        b64(&config.to_string())
    )
}
