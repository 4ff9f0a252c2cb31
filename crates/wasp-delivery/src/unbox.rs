//! Getting the Wasm binary out of what a server sent: a bare module, gzip, tar or tar.gz (HTTP
//! URLs, like istio-agent's `unboxIfPossible`), and the tar.gz layers of Docker/OCI "compat"
//! images.
//!
//! Every step is bounded by the module size limit (a gzip bomb stops at the limit), and an
//! archive with an entry that climbs out (`..`) or is absolute is refused as a whole, even if the
//! entry we would take is harmless: such an archive is hostile or broken.

use std::io::Read;
use std::path::{Component, Path};

use crate::error::{ErrorContext, FetchError};

pub(crate) const WASM_MAGIC: &[u8; 4] = b"\0asm";
const GZIP_MAGIC: &[u8; 2] = &[0x1f, 0x8b];

#[derive(Debug)]
pub(crate) enum UnboxError {
    TooLarge(String),
    Archive(String),
    NotWasm(String),
}

impl UnboxError {
    /// The crate error, `what` naming the thing unpacked (a URL's body, a layer).
    pub(crate) fn into_fetch_error(self, at: &ErrorContext, limit: u64, what: &str) -> FetchError {
        let at = at.clone();
        match self {
            UnboxError::TooLarge(w) => FetchError::TooLarge {
                at,
                limit,
                what: format!("{what}: {w}"),
            },
            UnboxError::Archive(r) => FetchError::Archive {
                at,
                reason: format!("{what}: {r}"),
            },
            UnboxError::NotWasm(r) => FetchError::InvalidModule {
                at,
                reason: format!("{what}: {r}"),
            },
        }
    }
}

/// Peels gzip and tar layers until a Wasm binary appears (at most a few levels).
pub(crate) fn unbox(mut data: Vec<u8>, limit: u64) -> Result<Vec<u8>, UnboxError> {
    for _ in 0..4 {
        if data.starts_with(WASM_MAGIC) {
            check_wasm(&data).map_err(UnboxError::NotWasm)?;
            return Ok(data);
        }
        if data.starts_with(GZIP_MAGIC) {
            data = gunzip(&data, limit)?;
        } else if is_tar(&data) {
            data = module_from_tar(&data, limit)?;
        } else {
            break;
        }
    }
    check_wasm(&data).map_err(UnboxError::NotWasm)?;
    Ok(data)
}

/// A core WebAssembly module: the magic and version 1. (Istio only checks the magic, so a
/// component would get through it and fail later in the VM; saying so here is clearer.)
pub(crate) fn check_wasm(data: &[u8]) -> Result<(), String> {
    if data.len() < 8 || !data.starts_with(WASM_MAGIC) {
        let head: Vec<String> = data.iter().take(8).map(|b| format!("{b:02x}")).collect();
        return Err(format!(
            "{} bytes starting with [{}], expected the Wasm magic 00 61 73 6d",
            data.len(),
            head.join(" ")
        ));
    }
    if data[4..8] != [1, 0, 0, 0] {
        return Err(format!(
            "Wasm binary version/layer {:02x?} is not a core module (version 1); components are not supported",
            &data[4..8]
        ));
    }
    Ok(())
}

fn is_tar(data: &[u8]) -> bool {
    data.len() >= 262 && &data[257..262] == b"ustar"
}

pub(crate) fn gunzip(data: &[u8], limit: u64) -> Result<Vec<u8>, UnboxError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| UnboxError::Archive(format!("gunzip: {e}")))?;
    if out.len() as u64 > limit {
        return Err(UnboxError::TooLarge("after gunzip".into()));
    }
    Ok(out)
}

/// Picks the module from a tar archive: the entry whose file name is `plugin.wasm` (at any depth,
/// as Istio does for compat images); else the only `*.wasm` file; else the only regular file.
pub(crate) fn module_from_tar(data: &[u8], limit: u64) -> Result<Vec<u8>, UnboxError> {
    let mut archive = tar::Archive::new(data);
    let entries = archive
        .entries()
        .map_err(|e| UnboxError::Archive(format!("tar: {e}")))?;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut names = Vec::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| UnboxError::Archive(format!("tar: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| UnboxError::Archive(format!("tar entry name: {e}")))?
            .into_owned();
        let shown = path.display().to_string();
        check_entry_path(&path)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        names.push(shown.clone());
        let interesting = path.file_name().is_some_and(|n| n == "plugin.wasm")
            || path.extension().is_some_and(|e| e == "wasm")
            || files.is_empty();
        if !interesting {
            continue;
        }
        if entry.header().size().unwrap_or(0) > limit {
            return Err(UnboxError::TooLarge(format!("tar entry {shown}")));
        }
        let mut content = Vec::new();
        (&mut entry)
            .take(limit + 1)
            .read_to_end(&mut content)
            .map_err(|e| UnboxError::Archive(format!("tar entry {shown}: {e}")))?;
        if content.len() as u64 > limit {
            return Err(UnboxError::TooLarge(format!("tar entry {shown}")));
        }
        // Only keep what may be chosen, so memory stays bounded by a few modules.
        files.push((shown, content));
    }
    let by_name = |pred: &dyn Fn(&Path) -> bool| -> Vec<usize> {
        files
            .iter()
            .enumerate()
            .filter(|(_, (n, _))| pred(Path::new(n)))
            .map(|(i, _)| i)
            .collect()
    };
    let plugin = by_name(&|p| p.file_name().is_some_and(|n| n == "plugin.wasm"));
    let wasm = by_name(&|p| p.extension().is_some_and(|e| e == "wasm"));
    let pick = match (plugin.as_slice(), wasm.as_slice(), names.len()) {
        ([i], _, _) => *i,
        ([], [i], _) => *i,
        ([], [], 1) => 0,
        _ => {
            return Err(UnboxError::Archive(format!(
                "tar archive has no single plugin.wasm or *.wasm entry to take (files: {names:?})"
            )));
        }
    };
    Ok(files.swap_remove(pick).1)
}

fn check_entry_path(path: &Path) -> Result<(), UnboxError> {
    for c in path.components() {
        match c {
            Component::ParentDir => {
                return Err(UnboxError::Archive(format!(
                    "tar entry {} climbs out of the archive with '..'",
                    path.display()
                )));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(UnboxError::Archive(format!(
                    "tar entry {} has an absolute path",
                    path.display()
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE: &[u8] = b"\0asm\x01\0\0\0";

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            // Write the name bytes directly: Builder::append_data refuses `..` and leading `/`,
            // and the point here is to build exactly such archives.
            let name_bytes = name.as_bytes();
            h.as_old_mut().name[..name_bytes.len()].copy_from_slice(name_bytes);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn picks_the_module() {
        let t = tar_of(&[("README", b"hi"), ("dir/plugin.wasm", MODULE)]);
        assert_eq!(unbox(t, 1000).unwrap(), MODULE);
        let t = tar_of(&[("a.txt", b"hi"), ("x.wasm", MODULE)]);
        assert_eq!(unbox(t, 1000).unwrap(), MODULE);
        let t = tar_of(&[("anything", MODULE)]);
        assert_eq!(unbox(t, 1000).unwrap(), MODULE);
        let t = tar_of(&[("a.wasm", MODULE), ("b.wasm", MODULE)]);
        assert!(matches!(unbox(t, 1000), Err(UnboxError::Archive(_))));
    }

    #[test]
    fn refuses_escaping_entries() {
        for name in ["../plugin.wasm", "/plugin.wasm", "a/../../plugin.wasm"] {
            let t = tar_of(&[(name, MODULE)]);
            match unbox(t, 1000) {
                Err(UnboxError::Archive(m)) => assert!(m.contains("tar entry"), "{m}"),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn gzip_bomb_stops_at_the_limit() {
        let mut big = MODULE.to_vec();
        big.resize(1 << 20, 0);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut enc, &big).unwrap();
        let gz = enc.finish().unwrap();
        assert!(matches!(
            unbox(gz.clone(), 1000),
            Err(UnboxError::TooLarge(_))
        ));
        assert_eq!(unbox(gz, 1 << 20).unwrap().len(), 1 << 20);
    }

    #[test]
    fn not_wasm() {
        assert!(matches!(
            unbox(b"hello world".to_vec(), 100),
            Err(UnboxError::NotWasm(_))
        ));
        assert!(matches!(
            unbox(b"\0asm\x0d\0\x01\0".to_vec(), 100),
            Err(UnboxError::NotWasm(_))
        ));
    }
}
