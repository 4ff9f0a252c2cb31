//! What one proxy process is configured with for a scenario file: a listener per case (so
//! every case has its own plugin chain, VMs and failure state), the case's upstream cluster,
//! and the file's extra clusters. Envoy and wasp get the same plan with their own ports and
//! their own upstream instances.

use std::net::{SocketAddr, TcpListener};
use std::sync::Mutex;

use crate::pki::Pki;
use crate::scenario::{CaseLayout, DownstreamTls};

/// The node both proxies announce (`node.id`, `xds.node.id` properties).
pub const NODE_ID: &str = "conformance-node";
pub const NODE_CLUSTER: &str = "conformance";

pub struct Plan {
    pub admin: SocketAddr,
    pub cases: Vec<CasePlan>,
    /// Extra clusters by name.
    pub clusters: Vec<(String, SocketAddr)>,
    /// The certificates of the cases with `tls`, shared by both proxies.
    pub pki: Option<std::sync::Arc<Pki>>,
    /// Where each case's access log goes (`<dir>/<case id>.log`), when the file compares them.
    pub access_logs: Option<std::path::PathBuf>,
}

pub struct CasePlan {
    pub layout: CaseLayout,
    pub listener: SocketAddr,
    /// The route's cluster (named like the case) points here.
    pub upstream: SocketAddr,
    /// The listener terminates TLS with client certificates.
    pub tls: Option<DownstreamTls>,
    /// The route's retry policy, as both proxies spell it.
    pub retry_policy: Option<serde_json::Value>,
    /// Routes before the catch-all, with per-plugin settings.
    pub routes: Vec<crate::scenario::RouteDef>,
}

/// Ports handed out and still held, so that no two get the same one.
static HELD: Mutex<Vec<TcpListener>> = Mutex::new(Vec::new());

/// A port nobody listens on. Both proxies get fixed ports rather than port 0 so the harness
/// knows where to send without asking them; the port stays bound until [`release_ports`],
/// called just before the proxies start.
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(listener);
    Ok(address)
}

pub fn release_ports() {
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
}
