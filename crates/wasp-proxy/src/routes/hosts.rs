//! Which virtual host a request's authority picks, by Envoy's rules: an exact domain first,
//! then suffix wildcards (`*.example.com`, the longest first), then prefix wildcards
//! (`shop.*`, the longest first), then `*`; compared without case, the port included (a
//! domain without a port does not match an authority with one, as Envoy's default).

use std::collections::HashMap;

use crate::spec::VirtualHostSpec;

#[derive(Default)]
pub(super) struct Hosts {
    exact: HashMap<String, usize>,
    /// (what follows the `*`, host), longest first.
    suffixes: Vec<(String, usize)>,
    /// (what precedes the `*`, host), longest first.
    prefixes: Vec<(String, usize)>,
    any: Option<usize>,
}

impl Hosts {
    pub fn new(hosts: &[VirtualHostSpec]) -> Hosts {
        let mut out = Hosts::default();
        for (i, h) in hosts.iter().enumerate() {
            for d in &h.domains {
                let d = d.to_ascii_lowercase();
                if d == "*" {
                    out.any = Some(i);
                } else if let Some(suffix) = d.strip_prefix('*') {
                    out.suffixes.push((suffix.to_string(), i));
                } else if let Some(prefix) = d.strip_suffix('*') {
                    out.prefixes.push((prefix.to_string(), i));
                } else {
                    out.exact.insert(d, i);
                }
            }
        }
        out.suffixes
            .sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        out.prefixes
            .sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        out
    }

    /// The host for `authority`; `None`: the listener's default routes.
    pub fn pick(&self, authority: Option<&[u8]>) -> Option<usize> {
        if self.exact.is_empty() && self.suffixes.is_empty() && self.prefixes.is_empty() {
            return self.any;
        }
        let authority = String::from_utf8_lossy(authority.unwrap_or_default()).to_ascii_lowercase();
        if let Some(&i) = self.exact.get(&authority) {
            return Some(i);
        }
        // A wildcard stands for at least one character.
        let by_suffix = self
            .suffixes
            .iter()
            .find(|(s, _)| authority.len() > s.len() && authority.ends_with(s.as_str()));
        let by_prefix = || {
            self.prefixes
                .iter()
                .find(|(p, _)| authority.len() > p.len() && authority.starts_with(p.as_str()))
        };
        by_suffix.or_else(by_prefix).map(|(_, i)| *i).or(self.any)
    }
}

/// Whether `authority` (without its port) matches `pattern` as a [`Hosts`] domain does: for
/// plugin rules (Higress `domain`), which ignore the port.
pub(crate) fn domain_matches(pattern: &str, authority: &str) -> bool {
    let host = strip_port(authority).to_ascii_lowercase();
    let pattern = pattern.to_ascii_lowercase();
    if pattern == "*" {
        return true;
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        return host.len() > suffix.len() && host.ends_with(suffix);
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return host.len() > prefix.len() && host.starts_with(prefix);
    }
    host == pattern
}

/// `host:port` without the port (`[v6]:port` included).
fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, domains: &[&str]) -> VirtualHostSpec {
        VirtualHostSpec {
            name: name.into(),
            domains: domains.iter().map(ToString::to_string).collect(),
            routes: Vec::new(),
            plugins: Default::default(),
        }
    }

    #[test]
    fn envoy_order_exact_then_suffix_then_prefix_then_any() {
        let hosts = Hosts::new(&[
            host("any", &["*"]),
            host("prefix", &["shop.*"]),
            host("suffix", &["*.example.com"]),
            host("longer", &["*.api.example.com"]),
            host("exact", &["shop.example.com", "shop.example.com:8080"]),
        ]);
        let pick = |a: &str| hosts.pick(Some(a.as_bytes()));
        assert_eq!(pick("shop.example.com"), Some(4));
        assert_eq!(pick("SHOP.Example.com"), Some(4));
        assert_eq!(pick("shop.example.com:8080"), Some(4));
        assert_eq!(pick("v1.api.example.com"), Some(3));
        assert_eq!(pick("www.example.com"), Some(2));
        assert_eq!(pick("shop.local"), Some(1));
        assert_eq!(pick("other.org"), Some(0));
        // `*.example.com` needs something before `.example.com`.
        assert_eq!(pick("example.com"), Some(0));
        // A port the exact domain does not name: the wildcards decide.
        assert_eq!(pick("shop.example.com:9090"), Some(1));
        assert_eq!(
            Hosts::new(&[host("only", &["a.test"])]).pick(Some(b"b.test")),
            None
        );
    }

    #[test]
    fn rule_domains_ignore_the_port() {
        assert!(domain_matches("*.example.com", "a.example.com:8080"));
        assert!(domain_matches("shop.example.com", "shop.example.com:80"));
        assert!(!domain_matches("*.example.com", "example.com"));
        assert!(domain_matches("*", "anything"));
        assert!(domain_matches("[::1]", "[::1]:80"));
    }
}
