//! The client: sends one case request to a proxy on a fresh connection (HTTP/1.1, or HTTP/2
//! with prior knowledge) with a fixed authority, so that both proxies see identical requests
//! whatever port they listen on.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::body::FrameBody;
use crate::scenario::{Pair, RequestDef};
use crate::upstream::{pairs, trailer_map};

/// The authority every request carries (`Host` on HTTP/1.1, `:authority` on HTTP/2).
pub const AUTHORITY: &str = "conformance.local";

/// The longest one exchange may take: a hung proxy fails the case instead of the suite.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the client saw; `error` is set when no complete response arrived (reset, timeout).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    pub status: u16,
    pub headers: Vec<Pair>,
    pub body: Vec<u8>,
    pub trailers: Vec<Pair>,
    pub error: Option<String>,
}

pub async fn send(proxy: SocketAddr, def: &RequestDef) -> Seen {
    match tokio::time::timeout(EXCHANGE_TIMEOUT, exchange(proxy, def)).await {
        Ok(Ok(seen)) => seen,
        // Error texts differ between hyper's view of two proxies' resets: keep the class only.
        Ok(Err(e)) => Seen {
            error: Some(classify(&e)),
            ..Seen::default()
        },
        Err(_) => Seen {
            error: Some("timeout".into()),
            ..Seen::default()
        },
    }
}

fn classify(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    if text.contains("connect") && text.contains("refused") {
        "connection refused".into()
    } else {
        "connection closed before a complete response".into()
    }
}

async fn exchange(proxy: SocketAddr, def: &RequestDef) -> anyhow::Result<Seen> {
    let tcp = tokio::net::TcpStream::connect(proxy).await?;
    let io = TokioIo::new(tcp);
    let pieces: Vec<Bytes> = if def.chunks.is_empty() {
        vec![Bytes::from(def.body.clone())]
    } else {
        def.chunks.iter().map(|c| Bytes::from(c.clone())).collect()
    };
    // A plain body announces its length; pieces and trailers stream (chunked on HTTP/1.1).
    let sized = def.chunks.is_empty() && def.trailers.is_empty();
    let body = FrameBody::new(pieces, trailer_map(&def.trailers), sized);
    let mut req = Request::builder().method(def.method.as_str());
    req = if def.http2 {
        req.uri(format!("http://{AUTHORITY}{}", def.path))
            .version(http::Version::HTTP_2)
    } else {
        req.uri(def.path.as_str()).header("host", AUTHORITY)
    };
    for (k, v) in &def.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req.body(body)?;

    let response = if def.http2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(conn);
        sender.send_request(req).await?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(conn);
        sender.send_request(req).await?
    };
    let status = response.status().as_u16();
    let headers = pairs(response.headers());
    let collected = response.into_body().collect().await?;
    let trailers = collected.trailers().map(pairs).unwrap_or_default();
    Ok(Seen {
        status,
        headers,
        body: collected.to_bytes().to_vec(),
        trailers,
        error: None,
    })
}
