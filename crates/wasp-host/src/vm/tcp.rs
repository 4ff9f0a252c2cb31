//! The TCP (network) stream callbacks, driven in Envoy's order: `on_context_create` and
//! `on_new_connection` when the connection is accepted, `on_downstream_data` /
//! `on_upstream_data` as bytes arrive, the close callbacks, and done, log, delete once both
//! sides are closed.

use super::{CallError, Vm};
use crate::abi::{NetworkAction, PeerType};
use crate::connection::SharedConnection;
use crate::state::{Context, ContextKind, Phase};

impl Vm {
    /// Creates a TCP stream context under `root` (`on_context_create(id, root)`), then calls
    /// `on_new_connection`. Returns the context and what `on_new_connection` answered.
    pub fn create_tcp_stream(
        &mut self,
        root: u32,
        connection: SharedConnection,
    ) -> Result<(u32, NetworkAction), CallError> {
        self.check_root(root)?;
        let id = self.new_context_id();
        self.store.data_mut().contexts.insert(
            id,
            Context {
                root,
                kind: ContextKind::Tcp(connection),
            },
        );
        if let Some(f) = self.callbacks.context_create.clone() {
            self.call("proxy_on_context_create", id, Phase::Other, |s| {
                f.call(s, (id, root))
            })?;
        }
        let action = match self.callbacks.new_connection.clone() {
            Some(f) => NetworkAction::from_guest(self.call(
                "proxy_on_new_connection",
                id,
                Phase::Network,
                |s| f.call(s, id),
            )?),
            None => NetworkAction::Continue,
        };
        Ok((id, action))
    }

    /// `proxy_on_downstream_data`: `downstream_data` holds every byte from the client not yet
    /// passed on; `end_of_stream` once the client half-closed.
    pub fn on_downstream_data(
        &mut self,
        context: u32,
        end_of_stream: bool,
    ) -> Result<NetworkAction, CallError> {
        self.data_callback(context, end_of_stream, true)
    }

    /// `proxy_on_upstream_data`: as [`Vm::on_downstream_data`] for bytes from the upstream.
    pub fn on_upstream_data(
        &mut self,
        context: u32,
        end_of_stream: bool,
    ) -> Result<NetworkAction, CallError> {
        self.data_callback(context, end_of_stream, false)
    }

    /// `proxy_on_downstream_connection_close(context, peer)`.
    pub fn on_downstream_connection_close(
        &mut self,
        context: u32,
        peer: PeerType,
    ) -> Result<(), CallError> {
        self.close_callback(context, peer, true)
    }

    /// `proxy_on_upstream_connection_close(context, peer)`.
    pub fn on_upstream_connection_close(
        &mut self,
        context: u32,
        peer: PeerType,
    ) -> Result<(), CallError> {
        self.close_callback(context, peer, false)
    }

    /// Ends a TCP stream the way Envoy does once both sides are closed (`onCloseTCP`):
    /// `on_done`, `on_log`, `on_delete`, then forgets the context.
    pub fn finish_tcp_stream(&mut self, context: u32) -> Result<(), CallError> {
        self.connection_of(context)?;
        let result = self.end_context(context, false);
        self.store.data_mut().contexts.remove(&context);
        result
    }

    fn data_callback(
        &mut self,
        context: u32,
        end_of_stream: bool,
        downstream: bool,
    ) -> Result<NetworkAction, CallError> {
        let connection = self.connection_of(context)?;
        let f = if downstream {
            &self.callbacks.downstream_data
        } else {
            &self.callbacks.upstream_data
        };
        let Some(f) = f.clone() else {
            return Ok(NetworkAction::Continue);
        };
        let size = {
            let c = connection
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if downstream {
                c.downstream_data.len()
            } else {
                c.upstream_data.len()
            }
        } as u32;
        let name = if downstream {
            "proxy_on_downstream_data"
        } else {
            "proxy_on_upstream_data"
        };
        let value = self.call(name, context, Phase::Network, |s| {
            f.call(s, (context, size, u32::from(end_of_stream)))
        })?;
        Ok(NetworkAction::from_guest(value))
    }

    fn close_callback(
        &mut self,
        context: u32,
        peer: PeerType,
        downstream: bool,
    ) -> Result<(), CallError> {
        self.connection_of(context)?;
        let (f, name) = if downstream {
            (
                self.callbacks.downstream_close.clone(),
                "proxy_on_downstream_connection_close",
            )
        } else {
            (
                self.callbacks.upstream_close.clone(),
                "proxy_on_upstream_connection_close",
            )
        };
        match f {
            Some(f) => self.call(name, context, Phase::Network, |s| {
                f.call(s, (context, peer as u32))
            }),
            None => Ok(()),
        }
    }

    fn connection_of(&self, context: u32) -> Result<SharedConnection, CallError> {
        match self.store.data().contexts.get(&context) {
            Some(Context {
                kind: ContextKind::Tcp(connection),
                ..
            }) => Ok(connection.clone()),
            _ => Err(CallError::UnknownContext(context)),
        }
    }
}
