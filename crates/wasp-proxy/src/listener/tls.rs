//! TLS for listeners: wasp-tls's server context (certificate rotation, client certificates)
//! with ALPN h2 and http/1.1 for HTTP listeners.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use wasp_tls::{ServerContext, Session};

use crate::spec::ServerTls;

/// A listener's TLS, shared by the workers.
pub type ServerTlsContext = Arc<ServerContext>;

/// The listener's TLS context, or why its files cannot be used. `http`: offer h2 and
/// http/1.1 by ALPN (a TCP listener offers nothing).
pub fn context(tls: &ServerTls, http: bool) -> Result<ServerTlsContext, String> {
    let alpn: &[&[u8]] = if http { &[b"h2", b"http/1.1"] } else { &[] };
    ServerContext::new(tls, alpn)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// Runs the handshake; the stream and what it established.
pub async fn accept(
    context: &ServerContext,
    tcp: TcpStream,
) -> std::io::Result<(TlsStream<TcpStream>, Session)> {
    let stream = tokio_rustls::TlsAcceptor::from(context.config())
        .accept(tcp)
        .await?;
    let session = context.session(stream.get_ref().1);
    Ok((stream, session))
}
