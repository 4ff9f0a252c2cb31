//! The server name of a TLS ClientHello, read without consuming it (TLS passthrough routes by
//! it, then relays the handshake untouched). RFC 8446 §4.1.2 (ClientHello) and RFC 6066 §3
//! (`server_name`).

/// A ClientHello longer than this is not waited for (the largest sane ones are a few KiB).
pub const MAX_HELLO: usize = 16 * 1024;

/// What the first bytes of a connection say.
#[derive(Debug, PartialEq, Eq)]
pub enum Hello {
    /// More bytes are needed.
    Incomplete,
    /// Not a TLS ClientHello (plain TCP, or something else).
    NotTls,
    /// A ClientHello; its server name, lower-cased, if it sends one.
    Tls(Option<String>),
}

/// Reads the ClientHello at the start of `data` (one TLS record; a hello split across
/// records counts as not TLS, as Envoy's tls_inspector gives up too).
pub fn parse(data: &[u8]) -> Hello {
    // Record header: type 22 (handshake), version 3.x, length.
    if data.is_empty() {
        return Hello::Incomplete;
    }
    if data[0] != 22 {
        return Hello::NotTls;
    }
    if data.len() < 5 {
        return Hello::Incomplete;
    }
    if data[1] != 3 {
        return Hello::NotTls;
    }
    let record_len = usize::from(u16::from_be_bytes([data[3], data[4]]));
    if data.len() < 5 + record_len {
        return if 5 + record_len > MAX_HELLO {
            Hello::NotTls
        } else {
            Hello::Incomplete
        };
    }
    match client_hello(&data[5..5 + record_len]) {
        Some(name) => Hello::Tls(name),
        None => Hello::NotTls,
    }
}

/// A reader of big-endian length-prefixed fields that fails (None) past the end.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<usize> {
        Some(usize::from(self.take(1)?[0]))
    }

    fn u16(&mut self) -> Option<usize> {
        let b = self.take(2)?;
        Some(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn u24(&mut self) -> Option<usize> {
        let b = self.take(3)?;
        Some((usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
    }
}

/// The handshake message: `Some(name)` for a ClientHello (`None` inside: no server name),
/// `None` when it is not one or does not parse.
fn client_hello(handshake: &[u8]) -> Option<Option<String>> {
    let mut c = Cursor(handshake);
    if c.u8()? != 1 {
        return None; // not a ClientHello
    }
    let len = c.u24()?;
    let mut c = Cursor(c.take(len)?);
    c.take(2 + 32)?; // legacy_version, random
    let session = c.u8()?;
    c.take(session)?;
    let suites = c.u16()?;
    c.take(suites)?;
    let compression = c.u8()?;
    c.take(compression)?;
    if c.0.is_empty() {
        return Some(None); // no extensions
    }
    let len = c.u16()?;
    let mut extensions = Cursor(c.take(len)?);
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let len = extensions.u16()?;
        let body = extensions.take(len)?;
        if kind == 0 {
            return Some(server_name(body));
        }
    }
    Some(None)
}

/// The `host_name` entry of a `server_name` extension.
fn server_name(body: &[u8]) -> Option<String> {
    let mut c = Cursor(body);
    let len = c.u16()?;
    let mut list = Cursor(c.take(len)?);
    while !list.0.is_empty() {
        let kind = list.u8()?;
        let len = list.u16()?;
        let name = list.take(len)?;
        if kind == 0 {
            return std::str::from_utf8(name).ok().map(str::to_ascii_lowercase);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::tcp::matches;

    /// A ClientHello as rustls sends it, for `name`.
    fn hello(name: &str) -> Vec<u8> {
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let server = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
        let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), server).unwrap();
        let mut out = Vec::new();
        conn.write_tls(&mut out).unwrap();
        out
    }

    #[test]
    fn the_server_name_of_a_real_client_hello() {
        let bytes = hello("DB.Example.com");
        assert_eq!(parse(&bytes), Hello::Tls(Some("db.example.com".into())));
        // Cut anywhere: more is needed.
        for cut in [1, 4, 5, bytes.len() / 2, bytes.len() - 1] {
            assert_eq!(parse(&bytes[..cut]), Hello::Incomplete, "cut at {cut}");
        }
    }

    #[test]
    fn plain_bytes_are_not_tls() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Hello::NotTls);
        assert_eq!(parse(&[22, 9, 9, 0, 1, 0]), Hello::NotTls);
        // A handshake record that is not a ClientHello.
        assert_eq!(parse(&[22, 3, 1, 0, 4, 2, 0, 0, 0]), Hello::NotTls);
    }

    #[test]
    fn wildcards_need_a_label_before_the_suffix() {
        assert!(matches("*.example.com", "db.example.com"));
        assert!(matches("*.example.com", "a.b.example.com"));
        assert!(!matches("*.example.com", "example.com"));
        assert!(!matches("*.example.com", "dbexample.com"));
        assert!(matches("db.example.com", "db.example.com"));
    }
}
