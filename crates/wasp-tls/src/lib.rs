//! TLS for wasp's listeners and clusters, on rustls.
//!
//! - [`ServerContext`]: a listener's certificate and, for mTLS, the CAs client certificates
//!   are verified against (required or optional, as Envoy's `require_client_certificate`).
//! - [`client_config`]: a cluster's trust (CA file or web PKI), the subject alt names the
//!   server must carry (SPIFFE URIs as Istio issues them), the client certificate to present.
//! - Files are re-read when they change ([`watched`]), without closing connections: this is
//!   how Istio's agent and cert-manager rotate certificates.
//! - [`Session`] and [`CertInfo`]: what a handshake established, in the formats of Envoy's
//!   `connection.*` attributes and Lua's `ssl()` object.

#![deny(missing_docs)]

mod cert;
mod client;
mod error;
mod pem;
mod server;
mod session;
pub mod watched;

pub use cert::CertInfo;
pub use client::client_config;
pub use error::TlsError;
pub use server::ServerContext;
pub use session::Session;
