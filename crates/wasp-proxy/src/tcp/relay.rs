//! Bytes both ways between a client and an upstream connection, as Envoy's tcp_proxy relays
//! them: each direction on its own, a FIN from one side passed on as a half-close of the other
//! (the other direction goes on), a bounded buffer per direction (a slow reader slows the
//! writer down: no unbounded buffering), and the connection closed when nothing moved either
//! way for the idle timeout.

use std::cell::Cell;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Bytes read at once in each direction (Envoy's default per-connection buffer is 1 MiB of
/// watermark; a fixed chunk keeps memory per connection small and bounded).
pub(super) const CHUNK: usize = 16 * 1024;

/// How a relay ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Relayed {
    /// Bytes from the client to the upstream.
    pub sent_up: u64,
    /// Bytes from the upstream to the client.
    pub sent_down: u64,
    /// Closed for being idle.
    pub idle_timeout: bool,
}

/// Relays until both directions ended (each side sent its FIN and it was passed on), one of
/// them failed (reset), or nothing moved for `idle`.
pub async fn relay<C, U>(client: C, upstream: U, idle: Option<Duration>) -> Relayed
where
    C: AsyncRead + AsyncWrite,
    U: AsyncRead + AsyncWrite,
{
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut up_read, mut up_write) = tokio::io::split(upstream);
    let last_active = Cell::new(Instant::now());
    let up = pump(&mut client_read, &mut up_write, &last_active);
    let down = pump(&mut up_read, &mut client_write, &last_active);
    // A failed direction ends the connection (Envoy closes both sides on a reset).
    until_done_or_idle(async { tokio::try_join!(up, down) }, idle, &last_active).await
}

/// Waits for both directions (`both`: their byte counts, or the first failure), or until
/// nothing moved for `idle` since `last_active`.
pub(super) async fn until_done_or_idle<E>(
    both: impl Future<Output = Result<(u64, u64), E>>,
    idle: Option<Duration>,
    last_active: &Cell<Instant>,
) -> Relayed {
    tokio::pin!(both);
    let mut relayed = Relayed::default();
    loop {
        let deadline = idle.map(|d| last_active.get() + d);
        tokio::select! {
            result = &mut both => {
                if let Ok((up, down)) = result {
                    relayed.sent_up = up;
                    relayed.sent_down = down;
                }
                return relayed;
            }
            () = sleep_until(deadline) => {
                if idle.is_some_and(|d| last_active.get().elapsed() >= d) {
                    relayed.idle_timeout = true;
                    return relayed;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One direction: read, write all of it, repeat; at end of stream shut the writer down (a
/// half-close of the other side). Returns the bytes moved.
async fn pump<R, W>(from: &mut R, to: &mut W, last_active: &Cell<Instant>) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    let mut moved = 0u64;
    loop {
        let n = from.read(&mut buf).await?;
        last_active.set(Instant::now());
        if n == 0 {
            to.shutdown().await?;
            return Ok(moved);
        }
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
        last_active.set(Instant::now());
        moved += n as u64;
    }
}
