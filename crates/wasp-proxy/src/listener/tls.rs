//! TLS for listeners: the handshake over a generation's server context (wasp-tls: certificate
//! rotation, client certificates, ALPN h2 and http/1.1 for HTTP listeners).

use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use wasp_tls::{ServerContext, Session};

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
