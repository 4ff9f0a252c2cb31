//! Real sockets: an echo upstream, a wasp proxy built from a spec, and HTTP clients
//! (HTTP/1.1, HTTP/2 with prior knowledge, TLS with ALPN, raw TCP).
//!
//! Every client call is bounded by [`CLIENT_TIMEOUT`] so that a hung proxy fails the test
//! instead of hanging it; all traffic stays on 127.0.0.1.

#![allow(dead_code)]

mod admin;
mod clients;
mod logs_support;
mod proxy;
mod upstream;

// Each test binary uses some of these; the rest are unused there.
#[allow(unused_imports)]
pub use self::{admin::*, clients::*, logs_support::logs, proxy::*, upstream::*};

/// The longest any single client exchange may take.
pub const CLIENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
