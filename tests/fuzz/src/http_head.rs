//! A client's request head, parsed as hyper parses it (httparse), turned into the header map
//! plugins see, and turned back into the request sent upstream.

use http::{HeaderName, HeaderValue, Method, Request, Uri, Version};
use wasp_proxy::convert;

/// A request head from a client: when it parses, plugins see `:method`, `:path`,
/// `:authority` and `:scheme` first, and the upstream request is built or refused with an
/// error (never a panic), as HTTP/1.1 and as HTTP/2.
pub fn http_head(data: &[u8]) {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut parsed = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = parsed.parse(data) else {
        return;
    };
    let (Some(method), Some(path), Some(version)) = (parsed.method, parsed.path, parsed.version)
    else {
        return;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let Ok(uri) = path.parse::<Uri>() else {
        return;
    };
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    for header in parsed.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.name.as_bytes()),
            HeaderValue::from_bytes(header.value),
        ) else {
            return; // hyper answers 400
        };
        request.headers_mut().append(name, value);
    }
    for version in [
        if version == 0 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        },
        Version::HTTP_2,
    ] {
        *request.version_mut() = version;
        let map = convert::request_headers(&request, "http");
        for pseudo in [":method", ":path", ":authority", ":scheme"] {
            assert!(
                map.get_str(pseudo).is_some() || map.get(pseudo.as_bytes()).is_some(),
                "{pseudo}"
            );
        }
        let _ = convert::upstream_request(&map, (), "http", None);
        let _ = convert::to_http_headers(&map, false);
    }
}
