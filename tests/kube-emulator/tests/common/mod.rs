//! A minimal HTTPS client for the tests: trusts only the emulator's CA, speaks HTTP/1.1 (so the
//! chunked framing of watches is visible), and reads watch streams line by line.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio_rustls::TlsConnector;
use wasp_kube_emulator::{KubeEmulator, Options, tls};

pub async fn emulator() -> KubeEmulator {
    let opts = Options {
        bookmark_interval: None,
        plain_http_port: Some(0),
        ..Options::default()
    };
    KubeEmulator::start(opts).await.expect("emulator starts")
}

pub fn plugin(ns: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"url": format!("oci://registry.example/{name}:1"), "phase": "AUTHN"},
    })
}

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Incoming,
}

/// Sends one request over a fresh HTTPS/1.1 connection.
pub async fn send(
    emu: &KubeEmulator,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, Value)>,
) -> Resp {
    let cfg = tls::client_config(emu.ca_der(), &[b"http/1.1"]).unwrap();
    let tcp = tokio::net::TcpStream::connect(emu.addr()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let stream = TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", emu.addr().to_string());
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let data = match body {
        Some((ct, v)) => {
            b = b.header("content-type", ct);
            Bytes::from(serde_json::to_vec(&v).unwrap())
        }
        None => Bytes::new(),
    };
    let resp = sender
        .send_request(b.body(Full::new(data)).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    Resp {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// GET with the emulator's token; the status and the JSON body.
pub async fn get(emu: &KubeEmulator, path: &str) -> (u16, Value) {
    let r = send(emu, "GET", path, Some(emu.token()), None).await;
    (r.status, json_body(r.body).await)
}

pub async fn json_body(body: Incoming) -> Value {
    let bytes = body.collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

/// A watch stream read line by line.
pub struct Watch {
    pub headers: HeaderMap,
    body: Incoming,
    buf: Vec<u8>,
}

#[derive(Debug, PartialEq)]
pub enum Next {
    Event(Value),
    /// The body ended cleanly (terminating chunk).
    End,
    /// The connection broke mid-stream.
    Broken(String),
    /// Nothing within the wait.
    Idle,
}

impl Watch {
    pub async fn open(emu: &KubeEmulator, path: &str) -> Watch {
        let r = send(emu, "GET", path, Some(emu.token()), None).await;
        assert_eq!(r.status, 200, "watch {path}");
        Watch {
            headers: r.headers,
            body: r.body,
            buf: Vec::new(),
        }
    }

    pub async fn next(&mut self, wait: Duration) -> Next {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Next::Event(serde_json::from_slice(&line).unwrap());
            }
            match tokio::time::timeout(wait, self.body.frame()).await {
                Err(_) => return Next::Idle,
                Ok(None) => return Next::End,
                Ok(Some(Err(e))) => return Next::Broken(e.to_string()),
                Ok(Some(Ok(f))) => {
                    if let Ok(d) = f.into_data() {
                        self.buf.extend_from_slice(&d);
                    }
                }
            }
        }
    }

    /// The next event, which must arrive within 5 s.
    pub async fn event(&mut self) -> Value {
        match self.next(Duration::from_secs(5)).await {
            Next::Event(v) => v,
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

/// `(type, name, resourceVersion)` of an event.
pub fn summary(ev: &Value) -> (String, String, String) {
    let s = |p: &str| {
        ev.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (
        s("/type"),
        s("/object/metadata/name"),
        s("/object/metadata/resourceVersion"),
    )
}

pub const WP: &str = "/apis/extensions.istio.io/v1alpha1/namespaces/default/wasmplugins";
