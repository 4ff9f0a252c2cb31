//! Listening sockets: one per worker and listener address (SO_REUSEPORT), bound once and kept
//! across configuration generations for as long as some generation listens on the address.

use std::net::SocketAddr;
use std::sync::Mutex;

use crate::error::StartError;
use crate::spec::ListenerSpec;

/// The sockets of one listener address, one per worker: the kernel spreads connections over
/// them and a connection stays on the worker that accepted it.
pub(crate) struct BoundSocket {
    /// The address as configured (port 0 included): what a later generation is matched on.
    pub configured: SocketAddr,
    /// The address actually bound.
    pub local: SocketAddr,
    /// Emptied by [`BoundSocket::close`].
    sockets: Mutex<Vec<std::net::TcpListener>>,
}

impl BoundSocket {
    /// Binds `workers` sockets for `listener`'s address.
    pub fn bind(listener: &ListenerSpec, workers: usize) -> Result<BoundSocket, StartError> {
        let error = |source| StartError::Bind {
            name: listener.name.clone(),
            address: listener.address,
            source,
        };
        let mut address = listener.address;
        let mut sockets = Vec::with_capacity(workers);
        for _ in 0..workers.max(1) {
            let socket = reuseport_socket(address).map_err(error)?;
            // Port 0: the first socket picks the port, the others join it.
            address = socket.local_addr().map_err(error)?;
            sockets.push(socket);
        }
        Ok(BoundSocket {
            configured: listener.address,
            local: address,
            sockets: Mutex::new(sockets),
        })
    }

    /// Worker `worker`'s socket, as a descriptor of its own (the same socket and accept queue:
    /// the original stays open here for the generations that follow).
    pub fn for_worker(&self, worker: usize) -> std::io::Result<tokio::net::TcpListener> {
        let sockets = self.lock();
        if sockets.is_empty() {
            return Err(std::io::Error::other("the listener was removed"));
        }
        let socket = sockets[worker % sockets.len()].try_clone()?;
        drop(sockets);
        socket.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(socket)
    }
}

impl BoundSocket {
    /// Closes the sockets kept here (no generation listens on the address any more): once
    /// the workers' accept loops have let go of theirs, the port is closed, even while old
    /// connections still hold the generation that bound it.
    pub fn close(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<std::net::TcpListener>> {
        self.sockets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn reuseport_socket(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let domain = if address.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}
