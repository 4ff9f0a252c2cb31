//! The relay with network plugins in the way: each direction's bytes go through the chain
//! before they are written, held while a plugin stops them, and a plugin can close the
//! connection from any callback (its own, a timer's, a callout answer's).

use std::cell::{Cell, RefCell};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use wasp_host::PeerType;

use super::chain::{NetworkChain, Verdict};
use super::relay::{CHUNK, Relayed, sleep_until};
use crate::filter::signals::Direction;

/// Why a direction stopped early.
enum Stop {
    /// A plugin closed the connection (or failed closed).
    Closed,
    /// A socket failed (reset).
    Io,
}

/// Relays through `chain` until both directions ended, a plugin closed the connection, a
/// socket failed, or nothing moved for `idle`; then reports the closes and ends the plugins'
/// contexts.
pub async fn relay<C, U>(
    client: C,
    upstream: U,
    idle: Option<Duration>,
    chain: NetworkChain,
) -> Relayed
where
    C: AsyncRead + AsyncWrite,
    U: AsyncRead + AsyncWrite,
{
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut up_read, mut up_write) = tokio::io::split(upstream);
    let chain = RefCell::new(chain);
    let last_active = Cell::new(Instant::now());
    let client_ended = Cell::new(false);
    // The pumps borrow the chain: they end (and are dropped) before it is taken back.
    let relayed = {
        let up = pump_up(
            &mut client_read,
            &mut up_write,
            &chain,
            &last_active,
            &client_ended,
        );
        let down = pump_down(&mut up_read, &mut client_write, &chain, &last_active);
        let both = async { tokio::try_join!(up, down) };
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
                    break;
                }
                () = sleep_until(deadline) => {
                    if idle.is_some_and(|d| last_active.get().elapsed() >= d) {
                        relayed.idle_timeout = true;
                        break;
                    }
                }
            }
        }
        relayed
    };
    let mut chain = chain.into_inner();
    // Envoy: REMOTE when the client closed, LOCAL when the proxy did (upstream gone, a
    // plugin's close, the idle timeout).
    let peer = if client_ended.get() && !relayed.idle_timeout {
        PeerType::Remote
    } else {
        PeerType::Local
    };
    chain.downstream_closed(peer);
    chain.finish();
    relayed
}

/// Client → upstream through the chain's read filters.
async fn pump_up<R, W>(
    from: &mut R,
    to: &mut W,
    chain: &RefCell<NetworkChain>,
    last_active: &Cell<Instant>,
    client_ended: &Cell<bool>,
) -> Result<u64, Stop>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    let mut moved = 0u64;
    let mut ended = false;
    loop {
        let (signals, held) = {
            let c = chain.borrow();
            (c.signals.clone(), c.held_down)
        };
        let verdict = tokio::select! {
            read = from.read(&mut buf), if !ended => {
                let n = read.map_err(|_| Stop::Io)?;
                last_active.set(Instant::now());
                ended = n == 0;
                client_ended.set(ended);
                chain.borrow_mut().downstream(&buf[..n], ended)
            }
            resumed = async { signals.wait(held.unwrap_or(0), Direction::Request).await }, if held.is_some() => {
                match resumed {
                    Ok(()) => chain.borrow_mut().resume_downstream(held.unwrap_or(0), ended),
                    Err(_) => Verdict::Close,
                }
            }
            _ = signals.interrupted(), if held.is_none() => Verdict::Close,
        };
        match verdict {
            Verdict::Close => return Err(Stop::Closed),
            // Held: the next read, or the plugin's resume, goes on.
            Verdict::Hold => {}
            Verdict::Forward(bytes) => {
                if !bytes.is_empty() {
                    to.write_all(&bytes).await.map_err(|_| Stop::Io)?;
                    to.flush().await.map_err(|_| Stop::Io)?;
                    last_active.set(Instant::now());
                    moved += bytes.len() as u64;
                }
                if ended {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
    Ok(moved)
}

/// Upstream → client through the chain's write filters (reverse order).
async fn pump_down<R, W>(
    from: &mut R,
    to: &mut W,
    chain: &RefCell<NetworkChain>,
    last_active: &Cell<Instant>,
) -> Result<u64, Stop>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    let mut moved = 0u64;
    loop {
        let signals = chain.borrow().signals.clone();
        let n = tokio::select! {
            read = from.read(&mut buf) => read.map_err(|_| Stop::Io)?,
            _ = signals.interrupted() => return Err(Stop::Closed),
        };
        last_active.set(Instant::now());
        let ended = n == 0;
        // Taken out of the borrow before any await: the other pump borrows the chain too.
        let verdict = chain.borrow_mut().upstream(&buf[..n], ended);
        match verdict {
            Verdict::Close => return Err(Stop::Closed),
            Verdict::Hold => {}
            Verdict::Forward(bytes) => {
                if !bytes.is_empty() {
                    to.write_all(&bytes).await.map_err(|_| Stop::Io)?;
                    to.flush().await.map_err(|_| Stop::Io)?;
                    last_active.set(Instant::now());
                    moved += bytes.len() as u64;
                }
            }
        }
        if ended {
            let _ = to.shutdown().await;
            return Ok(moved);
        }
    }
}
