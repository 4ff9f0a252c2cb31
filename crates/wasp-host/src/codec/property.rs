//! Property paths and values as Envoy encodes them for `proxy_get_property`.
//!
//! A path is its segments joined by single NUL bytes (`request\0headers\0user-agent`).
//! Values use Envoy's `serializeValue`: strings and bytes raw, integers and doubles as 8
//! little-endian bytes, booleans as one byte, timestamps and durations as int64 nanoseconds,
//! messages as protobuf bytes, maps as pairs of recursively serialized keys and values, and
//! lists as pairs whose keys are the elements and whose values are empty.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::pairs;

/// A typed attribute value, as an embedder supplies it.
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyValue {
    /// UTF-8 text, sent raw.
    String(String),
    /// Arbitrary bytes, sent raw.
    Bytes(Vec<u8>),
    /// A signed integer, sent as 8 little-endian bytes.
    Int(i64),
    /// An unsigned integer, sent as 8 little-endian bytes.
    UInt(u64),
    /// A double, sent as 8 little-endian bytes.
    Double(f64),
    /// A boolean, sent as one byte (0 or 1).
    Bool(bool),
    /// A point in time, sent as int64 nanoseconds since the Unix epoch.
    Timestamp(SystemTime),
    /// A span of time, sent as int64 nanoseconds.
    Duration(Duration),
    /// An already serialized protobuf message (e.g. `xds.node`).
    Protobuf(Vec<u8>),
    /// Key/value entries, sent as pairs of their serialized keys and values.
    Map(Vec<(PropertyValue, PropertyValue)>),
    /// Elements, sent as pairs whose keys are the serialized elements and values are empty.
    List(Vec<PropertyValue>),
}

impl PropertyValue {
    /// The bytes a plugin receives for this value.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            PropertyValue::String(s) => s.as_bytes().to_vec(),
            PropertyValue::Bytes(b) | PropertyValue::Protobuf(b) => b.clone(),
            PropertyValue::Int(i) => i.to_le_bytes().to_vec(),
            PropertyValue::UInt(u) => u.to_le_bytes().to_vec(),
            PropertyValue::Double(d) => d.to_le_bytes().to_vec(),
            PropertyValue::Bool(b) => vec![u8::from(*b)],
            PropertyValue::Timestamp(t) => {
                let nanos = match t.duration_since(UNIX_EPOCH) {
                    Ok(d) => d.as_nanos() as i64,
                    Err(e) => -(e.duration().as_nanos() as i64),
                };
                nanos.to_le_bytes().to_vec()
            }
            PropertyValue::Duration(d) => (d.as_nanos() as i64).to_le_bytes().to_vec(),
            PropertyValue::Map(entries) => {
                let encoded: Vec<(Vec<u8>, Vec<u8>)> = entries
                    .iter()
                    .map(|(k, v)| (k.encode(), v.encode()))
                    .collect();
                pairs::encode(&encoded)
            }
            PropertyValue::List(items) => {
                let encoded: Vec<(Vec<u8>, &[u8])> =
                    items.iter().map(|item| (item.encode(), &[][..])).collect();
                pairs::encode(&encoded)
            }
        }
    }

    /// A map of strings, the common shape of `request.headers` and friends.
    pub fn string_map<K: Into<String>, V: Into<String>>(
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> PropertyValue {
        PropertyValue::Map(
            entries
                .into_iter()
                .map(|(k, v)| {
                    (
                        PropertyValue::String(k.into()),
                        PropertyValue::String(v.into()),
                    )
                })
                .collect(),
        )
    }
}

impl From<&str> for PropertyValue {
    fn from(value: &str) -> Self {
        PropertyValue::String(value.to_owned())
    }
}

impl From<String> for PropertyValue {
    fn from(value: String) -> Self {
        PropertyValue::String(value)
    }
}

/// Splits a NUL-separated path into its segments. An empty path has no segments.
pub fn split_path(path: &[u8]) -> Vec<&[u8]> {
    if path.is_empty() {
        return Vec::new();
    }
    path.split(|b| *b == 0).collect()
}

/// Joins segments with NUL bytes, the inverse of [`split_path`].
pub fn join_path<S: AsRef<[u8]>>(segments: &[S]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(segment.as_ref());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn scalars_use_envoys_binary_forms() {
        assert_eq!(PropertyValue::Int(-2).encode(), (-2i64).to_le_bytes());
        assert_eq!(PropertyValue::UInt(200).encode(), 200u64.to_le_bytes());
        assert_eq!(PropertyValue::Bool(true).encode(), vec![1]);
        assert_eq!(PropertyValue::Double(1.5).encode(), 1.5f64.to_le_bytes());
        assert_eq!(
            PropertyValue::Duration(Duration::from_millis(3)).encode(),
            3_000_000i64.to_le_bytes()
        );
        assert_eq!(
            PropertyValue::Timestamp(UNIX_EPOCH + Duration::from_secs(2)).encode(),
            2_000_000_000i64.to_le_bytes()
        );
        assert_eq!(PropertyValue::from("abc").encode(), b"abc");
    }

    #[test]
    fn maps_and_lists_are_pairs() {
        let map = PropertyValue::string_map([("a", "1"), ("b", "2")]);
        let bytes = map.encode();
        let decoded = pairs::decode(&bytes).unwrap();
        assert_eq!(
            decoded,
            vec![(&b"a"[..], &b"1"[..]), (&b"b"[..], &b"2"[..])]
        );

        let list = PropertyValue::List(vec!["x".into(), "y".into()]);
        let bytes = list.encode();
        let decoded = pairs::decode(&bytes).unwrap();
        assert_eq!(decoded, vec![(&b"x"[..], &b""[..]), (&b"y"[..], &b""[..])]);
    }

    #[test]
    fn paths_split_on_nul() {
        assert_eq!(
            split_path(b"request\0headers\0user-agent"),
            vec![&b"request"[..], b"headers", b"user-agent"]
        );
        assert!(split_path(b"").is_empty());
        assert_eq!(split_path(b"a\0"), vec![&b"a"[..], b""]);
    }

    proptest! {
        #[test]
        fn paths_round_trip(segments in proptest::collection::vec("[a-z_.-]{1,12}", 1..6)) {
            let joined = join_path(&segments);
            let split: Vec<String> = split_path(&joined)
                .into_iter()
                .map(|s| String::from_utf8(s.to_vec()).unwrap())
                .collect();
            prop_assert_eq!(split, segments);
        }

        #[test]
        fn split_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let segments = split_path(&data);
            prop_assert_eq!(join_path(&segments), data);
        }
    }
}
