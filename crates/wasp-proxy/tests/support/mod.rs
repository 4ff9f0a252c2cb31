//! Real sockets: an echo upstream, a wasp proxy built from a spec, and HTTP clients
//! (HTTP/1.1, HTTP/2 with prior knowledge, TLS with ALPN, raw TCP).
//!
//! The upstream and the clients are wasp-test-support's (shared with the conformance suite),
//! re-exported here. Every client call is bounded by [`CLIENT_TIMEOUT`] so that a hung proxy
//! fails the test instead of hanging it; all traffic stays on 127.0.0.1.

#![allow(dead_code)]

mod admin;
mod logs_support;
mod proxy;

// Each test binary uses some of these; the rest are unused there.
#[allow(unused_imports)]
pub use self::{admin::*, logs_support::logs, proxy::*};
#[allow(unused_imports)]
pub use wasp_test_support::{
    BoxError,
    body::Generated,
    clients::*,
    raw::{raw, raw_status},
    upstream::{Upstream, blackhole, upstream},
};
