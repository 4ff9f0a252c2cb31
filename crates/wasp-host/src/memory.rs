//! Bounds-checked access to a guest's linear memory.
//!
//! Every pointer and length a plugin hands the host goes through these functions. They do the
//! arithmetic in 64 bits so that `ptr + len` can never wrap, and they answer with
//! [`OutOfBounds`] instead of panicking: a bad pointer is a bug of the plugin, reported back to
//! it as `INVALID_MEMORY_ACCESS` (or a WASI `EFAULT`), never a crash of the proxy.

use wasmtime::{Caller, Extern, Memory};

/// A guest pointer/length pair that does not lie inside the guest's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("guest memory access out of bounds: {len} bytes at {ptr:#x}")]
pub struct OutOfBounds {
    /// The guest address the access started at.
    pub ptr: u32,
    /// The number of bytes it covered.
    pub len: u64,
}

/// The exported `memory` of the instance behind `caller`, if it has one.
pub(crate) fn exported_memory<T>(caller: &mut Caller<'_, T>) -> Option<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Some(memory),
        _ => None,
    }
}

/// `len` bytes at `ptr`.
pub(crate) fn slice(data: &[u8], ptr: u32, len: u32) -> Result<&[u8], OutOfBounds> {
    let start = ptr as usize;
    let end = start as u64 + u64::from(len);
    if end > data.len() as u64 {
        return Err(OutOfBounds {
            ptr,
            len: u64::from(len),
        });
    }
    Ok(&data[start..end as usize])
}

/// `len` writable bytes at `ptr`.
pub(crate) fn slice_mut(data: &mut [u8], ptr: u32, len: u32) -> Result<&mut [u8], OutOfBounds> {
    let start = ptr as usize;
    let end = start as u64 + u64::from(len);
    if end > data.len() as u64 {
        return Err(OutOfBounds {
            ptr,
            len: u64::from(len),
        });
    }
    Ok(&mut data[start..end as usize])
}

/// Copies `bytes` to `ptr`.
pub(crate) fn write(data: &mut [u8], ptr: u32, bytes: &[u8]) -> Result<(), OutOfBounds> {
    let len = u32::try_from(bytes.len()).map_err(|_| OutOfBounds {
        ptr,
        len: bytes.len() as u64,
    })?;
    slice_mut(data, ptr, len)?.copy_from_slice(bytes);
    Ok(())
}

/// Writes a little-endian u32 (pointers and sizes are 32-bit on wasm32).
pub(crate) fn write_u32(data: &mut [u8], ptr: u32, value: u32) -> Result<(), OutOfBounds> {
    write(data, ptr, &value.to_le_bytes())
}

/// Writes a little-endian u64.
pub(crate) fn write_u64(data: &mut [u8], ptr: u32, value: u64) -> Result<(), OutOfBounds> {
    write(data, ptr, &value.to_le_bytes())
}

/// Reads a little-endian u32.
pub(crate) fn read_u32(data: &[u8], ptr: u32) -> Result<u32, OutOfBounds> {
    let bytes = slice(data, ptr, 4)?;
    Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_ranges_past_the_end_without_wrapping() {
        let data = vec![0u8; 16];
        assert!(slice(&data, 0, 16).is_ok());
        assert!(slice(&data, 16, 0).is_ok());
        assert_eq!(
            slice(&data, 8, 9).unwrap_err(),
            OutOfBounds { ptr: 8, len: 9 }
        );
        // 0xFFFF_FFF0 + 0x20 wraps in 32 bits; it must still be rejected.
        assert!(slice(&data, 0xFFFF_FFF0, 0x20).is_err());
        assert!(slice(&data, 17, 0).is_err());
    }

    #[test]
    fn writes_little_endian_words() {
        let mut data = vec![0u8; 12];
        write_u32(&mut data, 0, 0x0403_0201).unwrap();
        write_u64(&mut data, 4, 0x0807_0605_0403_0201).unwrap();
        assert_eq!(&data[..4], &[1, 2, 3, 4]);
        assert_eq!(read_u32(&data, 0).unwrap(), 0x0403_0201);
        assert_eq!(&data[4..12], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(write_u32(&mut data, 10, 1).is_err());
    }
}
