//! Raw-socket HTTP/1 clients: bytes written as given (for what a well-behaved client cannot
//! send), answers read as text.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Writes `bytes` on a raw TCP connection and reads until the peer closes or `wait` passes.
///
/// # Panics
/// When the connection cannot be made.
pub fn raw(address: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    let mut tcp = TcpStream::connect(address).unwrap();
    tcp.set_read_timeout(Some(wait)).unwrap();
    // The proxy may answer and close before it read everything (e.g. 431): a failed write
    // is not the test's concern, the answer is.
    let _ = tcp.write_all(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of a raw HTTP/1 answer (`HTTP/1.1 400 Bad Request` → 400).
pub fn raw_status(answer: &str) -> Option<u16> {
    answer.split_whitespace().nth(1)?.parse().ok()
}

/// An HTTP/1 answer read whole from a connection the server closed.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    /// The status code.
    pub status: u16,
    /// The status line and the headers, as received (without the blank line).
    pub head: String,
    /// Everything after the head, as received (not de-chunked).
    pub body: String,
}

impl RawAnswer {
    /// The first value of a header (the name compared without case), trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// `GET path` with `host: test` and `connection: close` on a new connection, read to the end
/// (5 s at most between reads). `None` when nothing listens, the read fails or times out, or
/// the answer is no HTTP/1 answer in UTF-8: made for polling a server until it is up.
pub fn raw_get(address: SocketAddr, path: &str) -> Option<RawAnswer> {
    let mut tcp = TcpStream::connect(address).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    tcp.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(RawAnswer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    })
}
