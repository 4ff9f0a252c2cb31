//! `url`: Istio's acceptance rule and its default scheme.
//!
//! The CRD's CEL rule (and the webhook's `validateWasmPluginURL`) accept a URL when Go's
//! `url.ParseRequestURI` parses it with a scheme in `{"", http, https, file, oci}`, or, failing
//! that, when `"http://" + url` parses (so scheme-less image references such as
//! `ghcr.io/org/plugin:1.0` pass). istiod then adds `oci://` when there is no scheme (reference
//! §1.2 `url`). The parser here reproduces the parts of Go's that decide acceptance: scheme
//! detection, the "absolute URI or absolute path" rule, the authority (userinfo, host, port) and
//! percent-escapes.

use std::path::Path;

use wasp_delivery::{ModuleSource, OciReference, UrlError};

use crate::values::parse_module_file;

const SCHEMES: &str = "url must have schema one of [http, https, file, oci]";

/// What a checked `url` stands for: the URL with Istio's default scheme, and the module
/// source parsed from it, or why its image reference cannot be pulled (Istio accepts the
/// resource and fails the fetch).
pub type ModuleUrl = (String, Result<ModuleSource, UrlError>);

/// Checks `url` as Istio does and parses it, once. `base` is only used by the file parser for
/// messages (file URLs must be absolute).
pub fn module_url(url: &str, base: &Path) -> Result<ModuleUrl, String> {
    if url.is_empty() {
        return Err("must not be empty".to_string());
    }
    match request_uri_scheme(url) {
        Some(scheme) if !["", "http", "https", "file", "oci"].contains(&scheme.as_str()) => {
            return Err(format!("invalid url `{url}`: {SCHEMES}"));
        }
        Some(_) => {}
        None if request_uri_scheme(&format!("http://{url}")).is_none() => {
            return Err(format!("invalid url `{url}`: {SCHEMES}"));
        }
        None => {}
    }
    let (scheme, rest) = match split_scheme(url) {
        Ok((Some(scheme), rest)) => (scheme.to_ascii_lowercase(), rest),
        _ => (String::new(), url),
    };
    match scheme.as_str() {
        "http" | "https" => Ok((url.to_string(), Ok(ModuleSource::Http(url.to_string())))),
        "oci" => {
            let reference = rest.strip_prefix("//").unwrap_or(rest);
            if reference.is_empty() {
                return Err(format!(
                    "invalid url `{url}`: no image reference after oci://"
                ));
            }
            Ok((url.to_string(), oci(reference)))
        }
        "file" => Ok((
            url.to_string(),
            Ok(ModuleSource::File(parse_module_file(url, base)?)),
        )),
        // No scheme, or a "scheme" that is really a registry host (`localhost:5000/p:v1`, which
        // Go reads as scheme `localhost`): an OCI image reference.
        _ => Ok((format!("oci://{url}"), oci(url))),
    }
}

fn oci(reference: &str) -> Result<ModuleSource, UrlError> {
    OciReference::parse(reference)
        .map(ModuleSource::Oci)
        .map_err(|e| UrlError(format!("image reference `{reference}`: {e}")))
}

/// Go's `getScheme`: `Ok((Some(scheme), rest))`, `Ok((None, whole))` when the text does not start
/// with a scheme, `Err` for a leading `:`.
fn split_scheme(s: &str) -> Result<(Option<&str>, &str), ()> {
    for (i, c) in s.char_indices() {
        if c.is_ascii_alphabetic() {
            continue;
        }
        if c.is_ascii_digit() || matches!(c, '+' | '-' | '.') {
            if i == 0 {
                return Ok((None, s));
            }
            continue;
        }
        if c == ':' {
            if i == 0 {
                return Err(());
            }
            return Ok((Some(&s[..i]), &s[i + 1..]));
        }
        return Ok((None, s));
    }
    Ok((None, s))
}

/// The (lowercase) scheme if Go's `url.ParseRequestURI` accepts `s`, `""` for an absolute path.
fn request_uri_scheme(s: &str) -> Option<String> {
    if s.chars().any(|c| c.is_ascii_control()) {
        return None;
    }
    let (scheme, rest) = split_scheme(s).ok()?;
    // "Absolute URI or absolute path": without a leading slash, the rest is opaque, which a
    // request URI cannot be.
    if !rest.starts_with('/') {
        return None;
    }
    let rest = rest.split_once('?').map_or(rest, |(path, _)| path);
    let path = if scheme.is_some() && rest.starts_with("//") && !rest.starts_with("///") {
        let after = &rest[2..];
        let (authority, path) = after.find('/').map_or((after, ""), |i| after.split_at(i));
        if !valid_authority(authority) {
            return None;
        }
        path
    } else {
        rest
    };
    if !valid_escapes(path) {
        return None;
    }
    Some(scheme.unwrap_or("").to_ascii_lowercase())
}

fn valid_authority(authority: &str) -> bool {
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    if let Some(userinfo) = userinfo
        && !userinfo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c) || !c.is_ascii())
    {
        return false;
    }
    let port = if let Some(bracketed) = host.strip_prefix('[') {
        let Some(close) = bracketed.find(']') else {
            return false;
        };
        let after = &bracketed[close + 1..];
        if !after.is_empty() && !after.starts_with(':') {
            return false;
        }
        after
    } else {
        let port = host.rfind(':').map_or("", |i| &host[i..]);
        let name = &host[..host.len() - port.len()];
        if !name.chars().all(|c| {
            c.is_ascii_alphanumeric() || "-_.~!$&'()*+,;=\"<>%".contains(c) || !c.is_ascii()
        }) || !valid_escapes(name)
        {
            return false;
        }
        port
    };
    port.strip_prefix(':')
        .is_none_or(|p| p.chars().all(|c| c.is_ascii_digit()))
}

/// Every `%` followed by two hex digits.
fn valid_escapes(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if i + 2 >= bytes.len() {
                return false;
            }
            if !(bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str) -> Result<ModuleUrl, String> {
        module_url(url, Path::new("/etc/wasp"))
    }

    fn oci_ref(reference: &str) -> Result<ModuleSource, UrlError> {
        Ok(ModuleSource::Oci(OciReference::parse(reference).unwrap()))
    }

    /// Istio's `wasm-valid.yaml` / `wasm-invalid.yaml` URL cases, plus the scheme defaults.
    #[test]
    fn istio_url_rule() {
        assert_eq!(
            check("file:///opt/filters/openid.wasm").unwrap().1,
            Ok(ModuleSource::File("/opt/filters/openid.wasm".into()))
        );
        assert_eq!(
            check("http://test").unwrap().1,
            Ok(ModuleSource::Http("http://test".into()))
        );
        assert_eq!(
            check("test").unwrap(),
            ("oci://test".into(), oci_ref("test"))
        );
        assert_eq!(
            check("ghcr.io/org/plugin:1.0").unwrap().0,
            "oci://ghcr.io/org/plugin:1.0"
        );
        // Accepted, as by Istio, but it cannot be pulled: the fetch fails with the reason.
        let (url, module) = check("oci://ghcr.io/org/p@sha256:abcd").unwrap();
        assert_eq!(url, "oci://ghcr.io/org/p@sha256:abcd");
        assert!(module.unwrap_err().to_string().contains("sha256:abcd"));
        // Go reads `localhost` as the scheme; Istio accepts it (http:// fallback) and then
        // fails to fetch. wasp reads it as the registry it is.
        assert_eq!(
            check("localhost:5000/plugin:v1").unwrap().0,
            "oci://localhost:5000/plugin:v1"
        );
        assert_eq!(
            check("HTTPS://x/y.wasm").unwrap().1,
            Ok(ModuleSource::Http("HTTPS://x/y.wasm".into()))
        );
        for bad in [
            "",
            "#%blah$#@",
            "fake://example.com",
            "ftp://x/y",
            "http://x/%zz",
            "a b\u{7}",
            "oci://",
        ] {
            assert!(check(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(
            check("fake://example.com")
                .unwrap_err()
                .contains("url must have schema one of")
        );
        // file:// URLs must be absolute in wasp.
        assert!(check("file://fake.wasm").is_err());
    }
}
