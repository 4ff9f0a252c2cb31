//! Registry authentication: Docker's token flow.
//!
//! A request answered 401 carries `WWW-Authenticate`. `Basic` → resend with the credentials.
//! `Bearer realm=…,service=…,scope=…` → GET the realm with `service` and `scope` (with the basic
//! credentials if there are any, anonymously otherwise), take `token` / `access_token` from the
//! JSON answer and resend with `Authorization: Bearer …`.
//!
//! The realm is chosen by the registry, so it is checked before anything is sent to it (the SSRF
//! concern behind Istio's 2026 realm check): http(s) only, plain http only when that host is in
//! the insecure list, and never a link-local / cloud-metadata address.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http::Method;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use tokio::time::Instant;

use crate::error::{ErrorContext, FetchError, describe_body};
use crate::http::{HttpClient, Req};
use crate::secret::RegistryAuth;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses one `WWW-Authenticate` value: `Scheme k=v, k="quoted, with commas"`.
pub(crate) fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.is_empty() {
        return None;
    }
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next().is_none() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            val.push(n);
                        }
                    }
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                val.push(c);
                chars.next();
            }
        }
        params.push((key.trim().to_string(), val.trim().to_string()));
    }
    Some(Challenge {
        scheme: scheme.to_string(),
        params,
    })
}

pub(crate) fn basic_header(username: &str, password: &str) -> String {
    format!("Basic {}", B64.encode(format!("{username}:{password}")))
}

/// Answers a challenge: returns the `Authorization` value to resend with.
pub(crate) async fn answer(
    http: &HttpClient,
    challenge: &Challenge,
    creds: Option<&RegistryAuth>,
    default_scope: &str,
    deadline: Instant,
    at: &ErrorContext,
) -> Result<String, FetchError> {
    let unauthorized = |reason: String| FetchError::Unauthorized {
        at: at.clone(),
        reason,
    };
    if challenge.scheme.eq_ignore_ascii_case("basic") {
        return match creds {
            Some(RegistryAuth::Basic { username, password }) => {
                Ok(basic_header(username, password))
            }
            Some(_) => Err(unauthorized(
                "the registry asks for a username and password, and the pull secret holds a token"
                    .into(),
            )),
            None => Err(unauthorized(
                "the registry requires credentials (HTTP Basic) and none were given".into(),
            )),
        };
    }
    if !challenge.scheme.eq_ignore_ascii_case("bearer") {
        return Err(unauthorized(format!(
            "unsupported authentication scheme {:?}",
            challenge.scheme
        )));
    }
    if let Some(RegistryAuth::RegistryToken(token)) = creds {
        return Ok(format!("Bearer {token}"));
    }
    let realm = challenge
        .param("realm")
        .ok_or_else(|| unauthorized("bearer challenge without a realm".into()))?;
    check_realm(http, realm).map_err(unauthorized)?;
    let scope = challenge.param("scope").unwrap_or(default_scope);
    let service = challenge.param("service");

    let mut query = Vec::new();
    if let Some(s) = service {
        query.push(format!("service={}", encode(s)));
    }
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        query.push(format!("scope={}", encode(s)));
    }
    let req = match creds {
        // An identity token is an OAuth2 refresh token: POST it to the same endpoint.
        Some(RegistryAuth::IdentityToken(refresh)) => {
            let mut form = vec![
                "grant_type=refresh_token".to_string(),
                format!("refresh_token={}", encode(refresh)),
                "client_id=wasp".to_string(),
            ];
            form.extend(query);
            let mut r = Req::new(Method::POST, realm)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
            r.body = form.join("&").into();
            r
        }
        _ => {
            let sep = if realm.contains('?') { '&' } else { '?' };
            let url = if query.is_empty() {
                realm.to_string()
            } else {
                format!("{realm}{sep}{}", query.join("&"))
            };
            let mut r = Req::new(Method::GET, url);
            if let Some(RegistryAuth::Basic { username, password }) = creds {
                r.set_header(AUTHORIZATION, &basic_header(username, password));
            }
            r
        }
    };
    let resp = http
        .send(&req, 1 << 20, deadline)
        .await
        .map_err(|e| FetchError::Download {
            at: at.clone(),
            reason: format!("token service {realm}: {e}"),
        })?;
    if !resp.status.is_success() {
        return Err(unauthorized(format!(
            "token service {realm} answered HTTP {} for scope {scope:?}{}: {}",
            resp.status.as_u16(),
            if creds.is_some() {
                " with the given credentials"
            } else {
                " without credentials"
            },
            describe_body(&resp.body)
        )));
    }
    let answer: TokenAnswer = serde_json::from_slice(&resp.body).map_err(|e| {
        unauthorized(format!(
            "token service {realm} answered something other than JSON: {e}"
        ))
    })?;
    let token = answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized(format!("token service {realm} returned no token")))?;
    Ok(format!("Bearer {token}"))
}

fn check_realm(http: &HttpClient, realm: &str) -> Result<(), String> {
    let uri: http::Uri = realm
        .parse()
        .map_err(|e| format!("bearer realm {realm:?} is not a URL: {e}"))?;
    let authority = uri
        .authority()
        .map(http::uri::Authority::as_str)
        .ok_or_else(|| format!("bearer realm {realm:?} has no host"))?;
    let host = uri.host().unwrap_or("").trim_matches(['[', ']']);
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if http.insecure().contains(authority) => {}
        Some("http") => {
            return Err(format!(
                "bearer realm {realm:?} is plain http and {authority} is not in the insecure registries"
            ));
        }
        _ => return Err(format!("bearer realm {realm:?} is not an http(s) URL")),
    }
    let blocked = host.eq_ignore_ascii_case("metadata.google.internal")
        || match host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) => ip.is_link_local(),
            Ok(std::net::IpAddr::V6(ip)) => (ip.segments()[0] & 0xffc0) == 0xfe80,
            Err(_) => false,
        };
    if blocked {
        return Err(format!(
            "bearer realm {realm:?} points at a link-local / metadata address"
        ));
    }
    Ok(())
}

/// Percent-encoding for query values (scopes contain ':' and ',').
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("service"), Some("registry.docker.io"));
        assert_eq!(c.param("scope"), Some("repository:a/b:pull,push"));
        let c = parse_challenge(r#"Basic realm="x""#).unwrap();
        assert_eq!(c.scheme, "Basic");
        assert_eq!(c.param("realm"), Some("x"));
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}

/// A token service's answer (Docker's `token`, OAuth's `access_token`).
#[derive(serde::Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
}
