//! The "pairs" encoding used for header maps, trailers, gRPC metadata, local-response headers
//! and callout headers (cpp-host `pairs_util.cc`, the SDKs' `serialize_map`):
//!
//! ```text
//! u32 N | N × (u32 key_len, u32 value_len) | N × (key bytes, 0x00, value bytes, 0x00)
//! ```
//! All integers little-endian; lengths exclude the NUL terminators.

/// cpp-host refuses maps with more pairs than this (`PROXY_WASM_HOST_PAIRS_MAX_COUNT`).
pub const MAX_PAIRS: usize = 1024;
/// cpp-host refuses serialized maps larger than this (`PROXY_WASM_HOST_PAIRS_MAX_BYTES`).
pub const MAX_BYTES: usize = 1 << 20;

/// Why a serialized map was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairsError {
    /// The input ends before a count, size or entry it announces.
    #[error("serialized map is truncated")]
    Truncated,
    /// More pairs than [`MAX_PAIRS`] (the count found).
    #[error("serialized map has {0} pairs, more than the limit of {MAX_PAIRS}")]
    TooManyPairs(usize),
    /// Larger than [`MAX_BYTES`] (the size found).
    #[error("serialized map is {0} bytes, more than the limit of {MAX_BYTES}")]
    TooLarge(usize),
    /// A key or value is not followed by its NUL byte.
    #[error("serialized map entry is missing its NUL terminator")]
    MissingTerminator,
    /// Bytes left over after the last entry (how many).
    #[error("serialized map has {0} bytes after its last entry")]
    TrailingBytes(usize),
}

/// The exact number of bytes [`encode`] produces.
pub fn encoded_len<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> usize {
    4 + pairs
        .iter()
        .map(|(k, v)| 8 + k.as_ref().len() + 1 + v.as_ref().len() + 1)
        .sum::<usize>()
}

/// Serializes `pairs` into `out` (appending).
pub fn encode_into<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)], out: &mut Vec<u8>) {
    out.reserve(encoded_len(pairs));
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.as_ref().len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.as_ref().len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
}

/// Serializes `pairs`. An empty map encodes as the 4-byte count 0; hosts hand the guest
/// nothing at all for an empty map, which callers decide (see `hostcalls::headers`).
pub fn encode<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(pairs, &mut out);
    out
}

/// A key and its value, borrowed from serialized data.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

/// Parses a serialized map, borrowing keys and values from `data`.
///
/// Empty input is an empty map (SDKs send either nothing or four zero bytes for one).
pub fn decode(data: &[u8]) -> Result<Vec<Pair<'_>>, PairsError> {
    if data.is_empty() {
        return Ok(Vec::new());
    }
    if data.len() > MAX_BYTES {
        return Err(PairsError::TooLarge(data.len()));
    }
    let count = read_u32(data, 0)? as usize;
    if count > MAX_PAIRS {
        return Err(PairsError::TooManyPairs(count));
    }
    // The size table must fit before any entry is read; this also bounds `count`.
    let table_end = 4 + count * 8;
    if table_end > data.len() {
        return Err(PairsError::Truncated);
    }
    let mut pairs = Vec::with_capacity(count);
    let mut pos = table_end;
    for i in 0..count {
        let key_len = read_u32(data, 4 + i * 8)? as usize;
        let value_len = read_u32(data, 8 + i * 8)? as usize;
        let key = take_terminated(data, &mut pos, key_len)?;
        let value = take_terminated(data, &mut pos, value_len)?;
        pairs.push((key, value));
    }
    if pos != data.len() {
        return Err(PairsError::TrailingBytes(data.len() - pos));
    }
    Ok(pairs)
}

fn read_u32(data: &[u8], at: usize) -> Result<u32, PairsError> {
    let bytes = data.get(at..at + 4).ok_or(PairsError::Truncated)?;
    Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn take_terminated<'a>(
    data: &'a [u8],
    pos: &mut usize,
    len: usize,
) -> Result<&'a [u8], PairsError> {
    let end = pos.checked_add(len).ok_or(PairsError::Truncated)?;
    let bytes = data.get(*pos..end).ok_or(PairsError::Truncated)?;
    match data.get(end) {
        Some(0) => {}
        Some(_) => return Err(PairsError::MissingTerminator),
        None => return Err(PairsError::Truncated),
    }
    *pos = end + 1;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_the_spec_example() {
        let bytes = encode(&[(":method", "GET")]);
        let mut expected = vec![1, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0];
        expected.extend_from_slice(b":method\0GET\0");
        assert_eq!(bytes, expected);
        assert_eq!(encoded_len(&[(":method", "GET")]), expected.len());
    }

    #[test]
    fn empty_input_and_zero_count_are_empty_maps() {
        assert!(decode(&[]).unwrap().is_empty());
        assert!(decode(&[0, 0, 0, 0]).unwrap().is_empty());
    }

    #[test]
    fn rejects_malformed_input() {
        let good = encode(&[("a", "b")]);
        // Truncated at every length.
        for cut in 1..good.len() {
            assert!(decode(&good[..cut]).is_err(), "accepted a cut at {cut}");
        }
        let mut no_nul = good.clone();
        let last = no_nul.len() - 1;
        no_nul[last] = b'x';
        assert_eq!(decode(&no_nul), Err(PairsError::MissingTerminator));
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(decode(&trailing), Err(PairsError::TrailingBytes(1)));
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff]),
            Err(PairsError::TooManyPairs(u32::MAX as usize))
        );
        // A length field pointing far past the end must not overflow.
        let mut huge = vec![1, 0, 0, 0];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&0u32.to_le_bytes());
        huge.extend_from_slice(b"k\0\0");
        assert_eq!(decode(&huge), Err(PairsError::Truncated));
    }

    proptest! {
        #[test]
        fn round_trips(pairs in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..40), proptest::collection::vec(any::<u8>(), 0..80)),
            0..20,
        )) {
            let bytes = encode(&pairs);
            prop_assert_eq!(bytes.len(), encoded_len(&pairs));
            let decoded = decode(&bytes).unwrap();
            prop_assert_eq!(decoded.len(), pairs.len());
            for ((k, v), (dk, dv)) in pairs.iter().zip(decoded) {
                prop_assert_eq!(k.as_slice(), dk);
                prop_assert_eq!(v.as_slice(), dv);
            }
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&data);
        }

        #[test]
        fn never_panics_on_corrupted_encodings(
            pairs in proptest::collection::vec(("[a-z]{0,8}", "[ -~]{0,16}"), 1..6),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = encode(&pairs);
            let i = at.index(bytes.len());
            bytes[i] = byte;
            if let Ok(decoded) = decode(&bytes) {
                // Whatever is accepted must re-encode to the same bytes.
                prop_assert_eq!(encode(&decoded), bytes);
            }
        }
    }
}
