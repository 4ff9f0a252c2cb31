//! What a finished TLS handshake established, for attributes, Lua and access logs.

use std::sync::Arc;

use rustls::CipherSuite;

use crate::cert::CertInfo;

/// One TLS session (downstream or upstream), as Envoy's `Ssl::ConnectionInfo` shows it.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// The server name the client sent (SNI).
    pub sni: Option<String>,
    /// `TLSv1.2`, `TLSv1.3`.
    pub version: String,
    /// The IANA number of the cipher suite.
    pub cipher_id: u16,
    /// The cipher suite's OpenSSL name (`ECDHE-RSA-AES128-GCM-SHA256`, `TLS_AES_128_GCM_SHA256`).
    pub cipher_name: String,
    /// The peer's leaf certificate, when it sent one.
    pub peer: Option<Arc<CertInfo>>,
    /// The peer's certificate was verified against the configured CAs.
    pub peer_validated: bool,
    /// The certificate this side presented.
    pub local: Option<Arc<CertInfo>>,
}

impl Session {
    /// Version and cipher suite of a connection; the caller fills in the rest.
    pub(crate) fn of_common<D>(conn: &rustls::ConnectionCommon<D>) -> Session {
        let suite = conn.negotiated_cipher_suite().map(|s| s.suite());
        Session {
            version: conn
                .protocol_version()
                .and_then(|v| v.as_str())
                .map(|v| v.replace("TLSv1_", "TLSv1."))
                .unwrap_or_default(),
            cipher_id: suite.map_or(0, u16::from),
            cipher_name: suite.map(openssl_name).unwrap_or_default(),
            ..Session::default()
        }
    }

    /// Envoy's `connection.mtls`: the peer presented a certificate.
    pub fn mtls(&self) -> bool {
        self.peer.is_some()
    }
}

/// OpenSSL's name for the suites rustls implements.
fn openssl_name(suite: CipherSuite) -> String {
    let name = match suite {
        CipherSuite::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => {
            "ECDHE-ECDSA-CHACHA20-POLY1305"
        }
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        other => return other.as_str().unwrap_or_default().to_string(),
    };
    name.to_string()
}
