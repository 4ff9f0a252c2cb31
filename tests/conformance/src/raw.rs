//! Raw requests (`raw:` in a scenario): bytes no well-behaved client sends, written as they
//! are, and every HTTP/1 answer the proxy sends back until it closes or goes quiet — so a
//! request smuggled inside another shows up as a second answer (and as a second request at
//! the upstream).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::Seen;

/// How long a kept-alive connection may stay quiet before the answers are taken as complete.
const QUIET: Duration = Duration::from_millis(700);

/// Writes `bytes`, reads until close or quiet. The answers are summed up in `Seen`: the
/// first status as `status` (an error when there is none), and every status line in order as
/// the body (`HTTP/1.1 400` lines), since the proxies' own texts for the same refusal differ.
pub async fn exchange(proxy: SocketAddr, bytes: &[u8]) -> anyhow::Result<Seen> {
    let mut tcp = tokio::net::TcpStream::connect(proxy).await?;
    // The proxy may refuse before it has read everything: the answer is what counts.
    let _ = tcp.write_all(bytes).await;
    let mut received = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(QUIET, tcp.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
    let statuses = statuses(&received);
    let Some(first) = statuses.first() else {
        return Ok(Seen {
            error: Some("connection closed before a complete response".into()),
            ..Seen::default()
        });
    };
    let lines: Vec<String> = statuses.iter().map(|s| format!("HTTP/1.1 {s}")).collect();
    Ok(Seen {
        status: *first,
        body: lines.join("\n").into_bytes(),
        ..Seen::default()
    })
}

/// The status of each HTTP/1 response in `bytes`, in order (bodies skipped by their
/// `content-length` or chunking).
fn statuses(mut bytes: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    while let Some(end) = find(bytes, b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
        let Some(status) = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()) else {
            break;
        };
        out.push(status);
        let mut rest = &bytes[end + 4..];
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok());
        if head
            .lines()
            .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"))
        {
            match find(rest, b"0\r\n\r\n") {
                Some(at) => rest = &rest[at + 5..],
                None => break,
            }
        } else if let Some(n) = length {
            rest = rest.get(n..).unwrap_or_default();
        }
        bytes = rest;
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
