//! An ordered, multi-valued header map as plugins see it.
//!
//! Envoy keeps headers in arrival order, keys lower-cased, pseudo-headers (`:method`, `:path`,
//! `:authority`, `:scheme`, `:status`) first. Values are bytes: plugins may store anything.

/// Header names and values as plugins see them: ordered, repeated keys allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl HeaderMap {
    /// An empty map.
    pub fn new() -> HeaderMap {
        HeaderMap::default()
    }

    /// An empty map with room for `capacity` entries.
    pub fn with_capacity(capacity: usize) -> HeaderMap {
        HeaderMap {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// Builds a map from pairs, lower-casing keys.
    pub fn from_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.add(k.as_ref(), v.as_ref());
        }
        map
    }

    /// The number of entries, counting each value of a repeated key.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry as (name, value), in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    /// The entries themselves, in order, names lower-cased.
    pub fn entries(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.entries
    }

    /// The first value of `key` (Envoy's `get_header_map_value` returns only the first).
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(k, _)| eq_ignore_case(k, key))
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of `key` as UTF-8, if it is.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key.as_bytes())
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// All values of `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.entries
            .iter()
            .filter(move |(k, _)| eq_ignore_case(k, key))
            .map(|(_, v)| v.as_slice())
    }

    /// Appends a value, keeping existing ones. Pseudo-headers go after the last pseudo-header
    /// instead: Envoy's header maps always list them first.
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        let entry = (key.to_ascii_lowercase(), value.to_vec());
        if key.first() == Some(&b':') {
            let at = self
                .entries
                .iter()
                .position(|(k, _)| k.first() != Some(&b':'))
                .unwrap_or(self.entries.len());
            self.entries.insert(at, entry);
        } else {
            self.entries.push(entry);
        }
    }

    /// Sets `key` to `value`: every entry of `key` is removed and the new one appended.
    pub fn replace(&mut self, key: &[u8], value: &[u8]) {
        // Envoy's HeaderMap::setCopy: remove every entry, then append. Plugins that list the
        // headers see the replaced one last, as in Envoy.
        self.remove(key);
        self.add(key, value);
    }

    /// Removes every entry of `key`.
    pub fn remove(&mut self, key: &[u8]) {
        self.entries.retain(|(k, _)| !eq_ignore_case(k, key));
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Envoy's `HeaderMap::byteSize()`: the sum of key and value lengths, which is what
    /// `proxy_get_header_map_size` reports (not the serialized size).
    pub fn byte_size(&self) -> usize {
        self.entries.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(K, V)> for HeaderMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        HeaderMap::from_pairs(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_repeated_keys() {
        let mut map = HeaderMap::from_pairs([(":path", "/"), ("Set-Cookie", "a"), ("x", "1")]);
        map.add(b"set-cookie", b"b");
        assert_eq!(map.get(b"SET-COOKIE"), Some(&b"a"[..]));
        assert_eq!(
            map.get_all(b"set-cookie").collect::<Vec<_>>(),
            vec![&b"a"[..], b"b"]
        );
        assert_eq!(map.entries()[1].0, b"set-cookie");

        map.replace(b"set-cookie", b"c");
        assert_eq!(
            map.get_all(b"set-cookie").collect::<Vec<_>>(),
            vec![&b"c"[..]]
        );
        // Replacing removes every entry and appends (Envoy's setCopy).
        assert_eq!(map.entries().last().unwrap().0, b"set-cookie");
        map.replace(b"new", b"v");
        assert_eq!(map.entries().last().unwrap().0, b"new");

        map.remove(b"X");
        assert_eq!(map.get(b"x"), None);
        assert_eq!(map.byte_size(), ":path/set-cookiecnewv".len());
    }
}
