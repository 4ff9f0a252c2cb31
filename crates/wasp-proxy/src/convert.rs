//! Between `http` types (what hyper speaks) and the plugin-facing [`HeaderMap`].
//!
//! Plugins see HTTP/2-style pseudo-headers for every protocol, as in Envoy: `:method`,
//! `:scheme`, `:authority`, `:path` on requests and `:status` on responses, first, followed
//! by the regular headers in arrival order.

use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use wasp_host::HeaderMap;

/// Why plugin-edited headers cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// `:method` is no HTTP method.
    #[error("invalid :method {0:?}")]
    Method(String),
    /// `:path` (with `:authority`) makes no URI.
    #[error("invalid :path {0:?}")]
    Path(String),
    /// `:status` is no status code.
    #[error("invalid :status {0:?}")]
    Status(String),
    /// A header name or value HTTP cannot carry.
    #[error("invalid header {0:?}")]
    Header(String),
}

/// The request's headers as plugins see them.
pub fn request_headers<B>(req: &Request<B>, scheme: &str) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(req.headers().len() + 4);
    let authority = authority(req);
    let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    // Envoy's order: HTTP/1's codec builds :authority, :path, :method, :scheme; HTTP/2 keeps
    // the order clients send (:method, :scheme, :authority, :path), and the client's :scheme
    // (an h2 client may say `http` over TLS: Envoy passes that on).
    if req.version() == http::Version::HTTP_2 {
        map.add(b":method", req.method().as_str().as_bytes());
        map.add(
            b":scheme",
            req.uri().scheme_str().unwrap_or(scheme).as_bytes(),
        );
        map.add(b":authority", authority.as_bytes());
        map.add(b":path", path.as_bytes());
    } else {
        map.add(b":authority", authority.as_bytes());
        map.add(b":path", path.as_bytes());
        map.add(b":method", req.method().as_str().as_bytes());
        map.add(b":scheme", scheme.as_bytes());
    }
    for (name, value) in req.headers() {
        // HTTP/1 Host becomes :authority, and the codec consumes Transfer-Encoding (the body
        // is framed again on the way out), as in Envoy.
        if name == http::header::HOST || name == http::header::TRANSFER_ENCODING {
            continue;
        }
        map.add(name.as_str().as_bytes(), value.as_bytes());
    }
    map
}

fn authority<B>(req: &Request<B>) -> String {
    if let Some(a) = req.uri().authority() {
        return a.to_string();
    }
    req.headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// A response's headers as plugins see them.
pub fn response_headers<B>(res: &Response<B>) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(res.headers().len() + 1);
    map.add(b":status", res.status().as_str().as_bytes());
    append_regular(&mut map, res.headers());
    map
}

/// Trailers as plugins see them.
pub fn trailers(headers: &http::HeaderMap) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(headers.len());
    append_regular(&mut map, headers);
    map
}

fn append_regular(map: &mut HeaderMap, headers: &http::HeaderMap) {
    for (name, value) in headers {
        map.add(name.as_str().as_bytes(), value.as_bytes());
    }
}

/// Headers that describe one hop and must not be forwarded (RFC 9110 §7.6.1).
fn hop_by_hop(name: &[u8]) -> bool {
    matches!(
        name,
        b"connection"
            | b"keep-alive"
            | b"proxy-connection"
            | b"transfer-encoding"
            | b"upgrade"
            | b"te"
    )
}

/// Regular headers of a plugin map as `http` headers (pseudo-headers and hop-by-hop headers
/// left out).
pub fn to_http_headers(
    map: &HeaderMap,
    keep_te_trailers: bool,
) -> Result<http::HeaderMap, ConvertError> {
    let mut out = http::HeaderMap::with_capacity(map.len());
    append_http_headers(map, keep_te_trailers, &mut out)?;
    Ok(out)
}

/// As [`to_http_headers`], appended to `out` (`host` left out when `out` has it already).
fn append_http_headers(
    map: &HeaderMap,
    keep_te_trailers: bool,
    out: &mut http::HeaderMap,
) -> Result<(), ConvertError> {
    let has_host = out.contains_key(http::header::HOST);
    for (name, value) in map.iter() {
        if name.starts_with(b":") || (has_host && name.eq_ignore_ascii_case(b"host")) {
            continue;
        }
        if hop_by_hop(name) && !(keep_te_trailers && name == b"te" && value == b"trailers") {
            continue;
        }
        let n = HeaderName::from_bytes(name)
            .map_err(|_| ConvertError::Header(String::from_utf8_lossy(name).into()))?;
        let v = HeaderValue::from_bytes(value)
            .map_err(|_| ConvertError::Header(String::from_utf8_lossy(name).into()))?;
        out.append(n, v);
    }
    Ok(())
}

/// Builds the upstream request from the (plugin-edited) request headers.
pub fn upstream_request<B>(
    map: &HeaderMap,
    body: B,
    scheme: &str,
    authority_override: Option<&str>,
) -> Result<Request<B>, ConvertError> {
    let method = map.get_str(":method").unwrap_or("GET");
    let method =
        Method::from_bytes(method.as_bytes()).map_err(|_| ConvertError::Method(method.into()))?;
    let path = map.get_str(":path").unwrap_or("/");
    let authority = authority_override
        .or(map.get_str(":authority"))
        .unwrap_or("");
    let uri = Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query(path)
        .build()
        .map_err(|_| ConvertError::Path(path.into()))?;
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    // `host` first (RFC 9110 §7.2: "a user agent SHOULD generate Host as the first field"),
    // where Envoy's HTTP/1 codec writes it; hyper writes fields in the map's order.
    let mut headers = http::HeaderMap::with_capacity(map.len() + 1);
    if let Some(host) = map.get_str(":authority")
        && let Ok(value) = HeaderValue::from_str(host)
    {
        headers.insert(http::header::HOST, value);
    }
    append_http_headers(map, true, &mut headers)?;
    *req.headers_mut() = headers;
    Ok(req)
}

/// Builds the downstream response from the (plugin-edited) response headers.
pub fn downstream_response<B>(map: &HeaderMap, body: B) -> Result<Response<B>, ConvertError> {
    let status = map.get_str(":status").unwrap_or("200");
    let status = status
        .parse::<u16>()
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| ConvertError::Status(status.into()))?;
    let mut res = Response::new(body);
    *res.status_mut() = status;
    *res.headers_mut() = to_http_headers(map, false)?;
    Ok(res)
}
