//! Just enough protobuf to read the argument messages of Envoy's foreign functions
//! (`DeclarePropertyArguments`, `SetEnvoyFilterStateArguments`): a field iterator over the
//! wire format, no schema, no allocation.

/// One field of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    /// Wire type 0: field number and the decoded varint.
    Varint(u32, u64),
    /// Wire type 1: field number and the 8 bytes as a little-endian integer.
    Fixed64(u32, u64),
    /// Wire type 2: field number and the length-delimited bytes (strings, bytes, sub-messages).
    Bytes(u32, &'a [u8]),
    /// Wire type 5: field number and the 4 bytes as a little-endian integer.
    Fixed32(u32, u32),
}

/// The input is not a well-formed protobuf message: a truncated field, an overlong varint or
/// an unsupported wire type (groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed protobuf message")]
pub struct Malformed;

/// Reads every field of `data`, in order.
pub fn fields(mut data: &[u8]) -> Result<Vec<Field<'_>>, Malformed> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let key = varint(&mut data)?;
        let number = u32::try_from(key >> 3).map_err(|_| Malformed)?;
        let field = match key & 7 {
            0 => Field::Varint(number, varint(&mut data)?),
            1 => Field::Fixed64(
                number,
                u64::from_le_bytes(take(&mut data, 8)?.try_into().map_err(|_| Malformed)?),
            ),
            2 => {
                let len = usize::try_from(varint(&mut data)?).map_err(|_| Malformed)?;
                Field::Bytes(number, take(&mut data, len)?)
            }
            5 => Field::Fixed32(
                number,
                u32::from_le_bytes(take(&mut data, 4)?.try_into().map_err(|_| Malformed)?),
            ),
            _ => return Err(Malformed),
        };
        out.push(field);
    }
    Ok(out)
}

fn take<'a>(data: &mut &'a [u8], len: usize) -> Result<&'a [u8], Malformed> {
    if data.len() < len {
        return Err(Malformed);
    }
    let (head, tail) = data.split_at(len);
    *data = tail;
    Ok(head)
}

fn varint(data: &mut &[u8]) -> Result<u64, Malformed> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = data.split_first().ok_or(Malformed)?;
        *data = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Malformed)
}

/// Encodes a length-delimited field (for tests and for building messages).
pub fn encode_bytes(number: u32, bytes: &[u8], out: &mut Vec<u8>) {
    encode_varint(u64::from(number) << 3 | 2, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// Encodes a varint field.
pub fn encode_varint_field(number: u32, value: u64, out: &mut Vec<u8>) {
    encode_varint(u64::from(number) << 3, out);
    encode_varint(value, out);
}

fn encode_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_what_it_writes() {
        let mut msg = Vec::new();
        encode_bytes(1, b"name", &mut msg);
        encode_varint_field(2, 1, &mut msg);
        encode_varint_field(3, 300, &mut msg);
        assert_eq!(
            fields(&msg).unwrap(),
            vec![
                Field::Bytes(1, b"name"),
                Field::Varint(2, 1),
                Field::Varint(3, 300)
            ]
        );
        assert_eq!(fields(&msg[..msg.len() - 1]), Err(Malformed));
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = fields(&data);
        }
    }
}
