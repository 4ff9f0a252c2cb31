//! The client side of a case: one case request sent to a proxy on a fresh connection
//! (HTTP/1.1, or HTTP/2 with prior knowledge) by wasp-test-support's client, with a fixed
//! authority, so that both proxies see identical requests whatever port they listen on.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use wasp_test_support::body::FrameBody;
use wasp_test_support::clients::{Proto, answer, boxed, exchange_on, request_for};
use wasp_test_support::trailer_map;

use crate::pki::Pki;
use crate::scenario::{Pair, RequestDef};

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

/// Sends one request; `tls`: over TLS with the test PKI (a case with `tls`).
pub async fn send(proxy: SocketAddr, def: &RequestDef, tls: Option<&Pki>) -> Seen {
    match tokio::time::timeout(EXCHANGE_TIMEOUT, exchange(proxy, def, tls)).await {
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

async fn exchange(proxy: SocketAddr, def: &RequestDef, tls: Option<&Pki>) -> anyhow::Result<Seen> {
    if let Some(bytes) = &def.raw {
        return crate::raw::exchange(proxy, bytes.as_bytes()).await;
    }
    let tcp = tokio::net::TcpStream::connect(proxy).await?;
    let pieces: Vec<Bytes> = if def.chunks.is_empty() {
        vec![Bytes::from(def.body.clone())]
    } else {
        def.chunks.iter().map(|c| Bytes::from(c.clone())).collect()
    };
    // A plain body announces its length; pieces and trailers stream (chunked on HTTP/1.1).
    let sized = def.chunks.is_empty() && def.trailers.is_empty();
    let body = FrameBody::new(pieces, trailer_map(&def.trailers), sized);
    let proto = if def.http2 { Proto::H2 } else { Proto::H1 };
    let headers: Vec<(&str, &str)> = def
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let req = request_for(
        AUTHORITY,
        proto,
        &def.method,
        &def.path,
        &headers,
        boxed(body),
    )?;
    let response = match tls {
        None => exchange_on(tcp, proto, req).await,
        Some(pki) => {
            let config = pki.client_config(def.client_certificate, def.http2)?;
            let name = rustls_pki_types::ServerName::try_from(AUTHORITY)?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            exchange_on(stream, proto, req).await
        }
    }
    .map_err(anyhow::Error::from_boxed)?;
    let answer = answer(response).await.map_err(anyhow::Error::from_boxed)?;
    Ok(Seen {
        status: answer.status.as_u16(),
        headers: answer.headers,
        body: answer.body_bytes.to_vec(),
        trailers: answer.trailers,
        error: None,
    })
}
