//! The facts about a certificate that Envoy's attributes and Lua's `ssl()` object expose, in
//! Envoy's formats: distinguished names as OpenSSL prints them with `XN_FLAG_RFC2253`
//! (most specific first, comma-separated), serial numbers in lowercase hex without leading
//! zeros, the SHA-256 of the DER in lowercase hex.

use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate, X509Name};

/// What one certificate says about its holder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject, RFC 2253 (`CN=client,O=example`).
    pub subject: String,
    /// Issuer, RFC 2253.
    pub issuer: String,
    /// URI subject alternative names in certificate order (SPIFFE ids live here).
    pub uri_sans: Vec<String>,
    /// DNS subject alternative names in certificate order.
    pub dns_sans: Vec<String>,
    /// Lowercase hex of the serial number.
    pub serial: String,
    /// Lowercase hex SHA-256 of the DER encoding.
    pub sha256: String,
    /// Validity, seconds since the Unix epoch.
    pub not_before: i64,
    /// Expiry, seconds since the Unix epoch.
    pub not_after: i64,
}

impl CertInfo {
    /// Reads a DER certificate; `None` when it does not parse (rustls accepted it, so this
    /// would be an X.509 feature x509-parser lacks: the attributes are then absent).
    pub fn of(der: &CertificateDer<'_>) -> Option<CertInfo> {
        let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
        let mut uri_sans = Vec::new();
        let mut dns_sans = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::URI(uri) => uri_sans.push((*uri).to_string()),
                    GeneralName::DNSName(dns) => dns_sans.push((*dns).to_string()),
                    _ => {}
                }
            }
        }
        Some(CertInfo {
            subject: rfc2253(cert.subject()),
            issuer: rfc2253(cert.issuer()),
            uri_sans,
            dns_sans,
            serial: cert.tbs_certificate.serial.to_str_radix(16),
            sha256: hex::encode(Sha256::digest(der.as_ref())),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }

    /// Whether the certificate names `name` as a URI or DNS subject alternative name.
    pub fn has_san(&self, name: &str) -> bool {
        self.uri_sans.iter().any(|s| s == name)
            || self.dns_sans.iter().any(|s| s.eq_ignore_ascii_case(name))
    }
}

/// A distinguished name as OpenSSL's `X509_NAME_print_ex(.., XN_FLAG_RFC2253)` prints it:
/// the last RDN first, `,` between RDNs, `+` within one, RFC 2253 escapes.
fn rfc2253(name: &X509Name<'_>) -> String {
    let registry = x509_parser::objects::oid_registry();
    let mut rdns: Vec<String> = Vec::new();
    for rdn in name.iter_rdn() {
        let parts: Vec<String> = rdn
            .iter()
            .map(|attr| {
                let oid = attr.attr_type();
                let key = x509_parser::objects::oid2abbrev(oid, registry)
                    .or_else(|_| x509_parser::objects::oid2sn(oid, registry))
                    .map_or_else(|_| oid.to_id_string(), str::to_string);
                match attr.as_str() {
                    Ok(value) => format!("{key}={}", escape(value)),
                    // Not a string type: OpenSSL prints the DER as #hex.
                    Err(_) => format!("{key}=#{}", hex::encode(attr.attr_value().data)),
                }
            })
            .collect();
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    rdns.join(",")
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let edge_space = c == ' ' && (i == 0 || i == last);
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || edge_space
            || (i == 0 && c == '#')
        {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_spiffe_certificate_as_envoy_prints_it() {
        let mut params = rcgen::CertificateParams::new(vec!["client.example".to_string()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://cluster.local/ns/default/sa/sleep"
                .try_into()
                .unwrap(),
        ));
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "US");
        dn.push(rcgen::DnType::OrganizationName, "Acme, Inc");
        dn.push(rcgen::DnType::CommonName, "sleep");
        params.distinguished_name = dn;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x00, 0x0a, 0xbc]));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let info = CertInfo::of(cert.der()).unwrap();
        assert_eq!(info.subject, r"CN=sleep,O=Acme\, Inc,C=US");
        assert_eq!(info.issuer, info.subject);
        assert_eq!(
            info.uri_sans,
            ["spiffe://cluster.local/ns/default/sa/sleep"]
        );
        assert_eq!(info.dns_sans, ["client.example"]);
        assert_eq!(info.serial, "abc");
        assert_eq!(info.sha256.len(), 64);
        assert!(info.has_san("spiffe://cluster.local/ns/default/sa/sleep"));
        assert!(info.has_san("CLIENT.example"));
        assert!(!info.has_san("spiffe://cluster.local/ns/default/sa/other"));
        assert!(info.not_after > info.not_before);
    }

    #[test]
    fn escapes_as_rfc_2253() {
        assert_eq!(escape(" a+b;c "), r"\ a\+b\;c\ ");
        assert_eq!(escape("#x"), r"\#x");
        assert_eq!(escape("plain"), "plain");
    }
}
