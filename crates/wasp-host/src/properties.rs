//! Answers `proxy_get_property` with Envoy's attribute names and encodings.
//!
//! Lookup order: the plugin's own identity (`plugin_name`, `plugin_root_id`, `plugin_vm_id`),
//! values the stream's plugins stored with `proxy_set_property`, attributes derived from the
//! stream's headers (`request.path`, `response.code`, …), then the embedder: first the stream's
//! [`StreamProperties`](crate::stream::StreamProperties), then the VM's
//! [`Embedder::property`](crate::embedder::Embedder::property).

use crate::codec::property::PropertyValue;
use crate::headers::HeaderMap;
use crate::state::VmState;
use crate::stream::HttpStream;

/// The encoded value at `path`, or `None` (`NOT_FOUND`).
pub(crate) fn get(state: &VmState, path: &[&[u8]]) -> Option<Vec<u8>> {
    let active = state.active_context();
    if let [name] = path
        && let Some(root) = state.root_of(active)
    {
        match *name {
            b"plugin_name" => return Some(root.plugin_name.as_bytes().to_vec()),
            b"plugin_root_id" => return Some(root.root_id.as_bytes().to_vec()),
            b"plugin_vm_id" => return Some(state.vm_id.as_bytes().to_vec()),
            _ => {}
        }
    }
    if let Some(stream) = state.active_stream() {
        let stream = stream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Envoy stores a set property under its whole path but looks a read up by the path's
        // first segment only: what was set at a multi-segment path cannot be read back.
        if let [name] = path
            && let Some(value) = stream.filter_state.get(*name)
        {
            return Some(value.clone());
        }
        if let Some(value) = from_headers(&stream, path) {
            return Some(value.encode());
        }
        if let Some(props) = &stream.properties
            && let Some(value) = props.property(path, &stream)
        {
            return Some(value.encode());
        }
    }
    if let Some(connection) = state.active_connection() {
        let connection = connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let [name] = path
            && let Some(value) = connection.filter_state.get(*name)
        {
            return Some(value.clone());
        }
        if let Some(props) = &connection.properties
            && let Some(value) = props.property(path, &connection)
        {
            return Some(value.encode());
        }
    }
    state.embedder.property(path).map(|value| value.encode())
}

/// `request.*` and `response.*` attributes that follow from the headers alone.
pub fn from_headers(stream: &HttpStream, path: &[&[u8]]) -> Option<PropertyValue> {
    match path {
        [b"request", rest @ ..] => request_attribute(stream.request_headers.as_ref()?, rest),
        [b"response", b"code"] => {
            let status = stream.response_headers.as_ref()?.get_str(":status")?;
            Some(PropertyValue::Int(status.parse().ok()?))
        }
        [b"response", b"headers", rest @ ..] => {
            header_attribute(stream.response_headers.as_ref()?, rest)
        }
        [b"response", b"trailers", rest @ ..] => {
            header_attribute(stream.response_trailers.as_ref()?, rest)
        }
        _ => None,
    }
}

fn request_attribute(headers: &HeaderMap, rest: &[&[u8]]) -> Option<PropertyValue> {
    let text = |name: &str| headers.get_str(name).map(PropertyValue::from);
    match rest {
        [b"path"] => text(":path"),
        [b"url_path"] => {
            let path = headers.get_str(":path")?;
            Some(path.split_once('?').map_or(path, |(p, _)| p).into())
        }
        [b"query"] => {
            let path = headers.get_str(":path")?;
            Some(path.split_once('?').map_or("", |(_, q)| q).into())
        }
        [b"host"] => text(":authority"),
        [b"scheme"] => text(":scheme"),
        [b"method"] => text(":method"),
        [b"referer"] => text("referer"),
        [b"useragent"] => text("user-agent"),
        [b"id"] => text("x-request-id"),
        [b"headers", rest @ ..] => header_attribute(headers, rest),
        _ => None,
    }
}

/// A whole header map (`request.headers`) or one header (`request.headers.<name>`); repeated
/// headers are joined with commas, as Envoy does.
fn header_attribute(headers: &HeaderMap, rest: &[&[u8]]) -> Option<PropertyValue> {
    match rest {
        [] => {
            let mut merged: Vec<(String, String)> = Vec::new();
            for (k, v) in headers.iter() {
                let k = String::from_utf8_lossy(k).into_owned();
                let v = String::from_utf8_lossy(v);
                match merged.iter_mut().find(|(mk, _)| *mk == k) {
                    Some((_, mv)) => {
                        mv.push(',');
                        mv.push_str(&v);
                    }
                    None => merged.push((k, v.into_owned())),
                }
            }
            Some(PropertyValue::string_map(merged))
        }
        [name] => {
            let values: Vec<&[u8]> = headers.get_all(name).collect();
            if values.is_empty() {
                return None;
            }
            Some(PropertyValue::Bytes(values.join(&b","[..])))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::pairs;

    #[test]
    fn request_and_response_attributes() {
        let mut stream = HttpStream::new();
        stream.request_headers = Some(HeaderMap::from_pairs([
            (":method", "GET"),
            (":path", "/a/b?x=1"),
            (":authority", "example.com"),
            ("x-dup", "1"),
            ("x-dup", "2"),
        ]));
        stream.response_headers = Some(HeaderMap::from_pairs([(":status", "404")]));
        let get = |path: &[&[u8]]| from_headers(&stream, path);
        assert_eq!(get(&[b"request", b"url_path"]), Some("/a/b".into()));
        assert_eq!(get(&[b"request", b"query"]), Some("x=1".into()));
        assert_eq!(get(&[b"request", b"host"]), Some("example.com".into()));
        assert_eq!(
            get(&[b"request", b"headers", b"x-dup"]),
            Some(PropertyValue::Bytes(b"1,2".to_vec()))
        );
        assert_eq!(get(&[b"request", b"headers", b"nope"]), None);
        assert_eq!(get(&[b"response", b"code"]), Some(PropertyValue::Int(404)));
        let all = get(&[b"request", b"headers"]).unwrap().encode();
        let decoded = pairs::decode(&all).unwrap();
        assert_eq!(decoded.len(), 4);
        assert_eq!(decoded[3], (&b"x-dup"[..], &b"1,2"[..]));
        assert_eq!(get(&[b"request", b"nothing"]), None);
    }
}
