//! The stream's answer to a client's faulty body (`crate::body::client`): 400 for bad framing,
//! 408 for a body too slow, flagged and counted as Envoy does.

use std::sync::atomic::Ordering::Relaxed;

use crate::body::client::ClientFault;
use crate::filter::{Stop, StreamCx};
use crate::flags;

/// The fault the client's body was found with, if any.
pub(super) fn found(cx: &StreamCx) -> Option<ClientFault> {
    cx.info.client_fault()
}

/// The local reply for `fault`.
pub(super) fn reply(fault: ClientFault, cx: &StreamCx, chain_len: usize) -> Stop {
    let limits = &cx.shared.stats.client_limits;
    match fault {
        ClientFault::Malformed => {
            cx.info.add_flags(flags::DOWNSTREAM_PROTOCOL_ERROR);
            Stop::proxy(400, "http1.codec_error", "Bad Request", chain_len)
        }
        ClientFault::Stalled => {
            limits.stream_idle_timeouts.fetch_add(1, Relaxed);
            cx.info.add_flags(flags::STREAM_IDLE_TIMEOUT);
            Stop::proxy(408, "stream_idle_timeout", "stream timeout", chain_len)
        }
        ClientFault::TooSlow => {
            limits.request_timeouts.fetch_add(1, Relaxed);
            Stop::proxy(408, "request_overall_timeout", "request timeout", chain_len)
        }
    }
}
