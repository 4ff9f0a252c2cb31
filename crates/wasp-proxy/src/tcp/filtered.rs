//! The relay with network plugins in the way: each direction's bytes go through the chain
//! before they are written, held while a plugin stops them, and a plugin can close the
//! connection from any callback (its own, a timer's, a callout answer's).

use std::cell::{Cell, RefCell};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use wasp_host::PeerType;

use super::chain::{NetworkChain, Verdict};
use super::relay::{CHUNK, Relayed, until_done_or_idle};
use crate::filter::signals::Direction;

/// A direction stopped early: a plugin closed the connection (or failed closed), or a socket
/// failed (reset). Either way the whole connection ends.
struct Stop;

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
    // Whether the client's end came after the proxy had ended its side (then the client
    // closed the connection: REMOTE; else the proxy did: LOCAL).
    let client_ended_last = Cell::new(false);
    let client_done = Cell::new(false);
    // The pumps borrow the chain: they end (and are dropped) before it is taken back.
    let relayed = {
        let up = pump_up(
            &mut client_read,
            &mut up_write,
            &chain,
            &last_active,
            (&client_done, &client_ended_last),
        );
        let down = pump_down(
            &mut up_read,
            &mut client_write,
            &chain,
            &last_active,
            &client_done,
        );
        until_done_or_idle(async { tokio::try_join!(up, down) }, idle, &last_active).await
    };
    let mut chain = chain.into_inner();
    // Envoy: REMOTE when the client's end closed the connection (the proxy had ended its
    // side already), LOCAL when the proxy's did (the upstream finished last, a plugin's
    // close, the idle timeout).
    let peer = if client_ended_last.get() && !relayed.idle_timeout {
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
    (client_done, client_ended_last): (&Cell<bool>, &Cell<bool>),
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
            read = read_available(from, &mut buf), if !ended => {
                let (n, eof) = read.map_err(|_| Stop)?;
                last_active.set(Instant::now());
                ended = eof;
                if ended && client_done.get() {
                    client_ended_last.set(true);
                }
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
        // Held: the next read, or the plugin's resume, goes on.
        moved += pass_on(verdict, to, last_active).await?;
        if ended && chain.borrow().held_down.is_none() {
            break;
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
    client_done: &Cell<bool>,
) -> Result<u64, Stop>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    let mut moved = 0u64;
    loop {
        let signals = chain.borrow().signals.clone();
        let (n, ended) = tokio::select! {
            read = read_available(from, &mut buf) => read.map_err(|_| Stop)?,
            _ = signals.interrupted() => return Err(Stop),
        };
        last_active.set(Instant::now());
        // Taken out of the borrow before any await: the other pump borrows the chain too.
        let verdict = chain.borrow_mut().upstream(&buf[..n], ended);
        moved += pass_on(verdict, to, last_active).await?;
        if ended {
            let _ = to.shutdown().await;
            client_done.set(true);
            return Ok(moved);
        }
    }
}

/// Carries out the chain's verdict on bytes: writes what it passes on (returns how many),
/// nothing while it holds them, `Stop` when it closes the connection.
async fn pass_on<W: AsyncWrite + Unpin>(
    verdict: Verdict,
    to: &mut W,
    last_active: &Cell<Instant>,
) -> Result<u64, Stop> {
    let bytes = match verdict {
        Verdict::Close => return Err(Stop),
        Verdict::Hold => return Ok(0),
        Verdict::Forward(bytes) => bytes,
    };
    if !bytes.is_empty() {
        to.write_all(&bytes).await.map_err(|_| Stop)?;
        to.flush().await.map_err(|_| Stop)?;
        last_active.set(Instant::now());
    }
    Ok(bytes.len() as u64)
}

/// Reads what is there: waits for the first bytes, then takes whatever else is already
/// available, up to the buffer's size, as Envoy reads a socket until it would block. An end
/// of stream that is already there comes with the bytes (Envoy hands both to one callback).
/// Returns the bytes read into `buf` and whether the peer ended.
async fn read_available<R: AsyncRead + Unpin>(
    from: &mut R,
    buf: &mut [u8],
) -> std::io::Result<(usize, bool)> {
    use futures_util::FutureExt as _;
    let mut n = from.read(buf).await?;
    if n == 0 {
        return Ok((0, true));
    }
    while n < buf.len() {
        match from.read(&mut buf[n..]).now_or_never() {
            Some(Ok(0)) => return Ok((n, true)),
            Some(Ok(more)) => n += more,
            Some(Err(e)) => return Err(e),
            None => break,
        }
    }
    Ok((n, false))
}
