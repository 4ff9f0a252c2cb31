//! The on-disk cache of compiled modules.
//!
//! Compiling a large plugin takes seconds (a 2.5 MB Go module: over a second even with
//! parallel compilation), so compiled code is kept across restarts. Entries are keyed by the
//! module's sha256 and a fingerprint of the engine (wasmtime version and every setting that
//! affects generated code), so a wasp upgrade or a changed setting never loads stale code.
//!
//! An entry is two files: `<sha256>-<fingerprint>.cwasm`, the serialized module exactly as
//! wasmtime wrote it, and `….cwasm.sum`, the sha256 of that file, checked before the code is
//! used: wasmtime checks the header and the ELF structure, not the machine code, so a flipped
//! bit on disk would otherwise run as corrupt code. The digest lives beside the code rather
//! than in it because the code file is mapped into memory as it is: its pages are shared with
//! the page cache (and with every other wasp on the node that maps the same entry), and only
//! the pages a plugin executes become resident — a copy on the heap would keep all of them.
//!
//! Both files are written to temporary files and renamed into place, the digest first: a
//! reader never sees a partial file, and code without its digest is a miss, not an error.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

/// Compiled modules on disk, one entry per module digest and engine fingerprint, so that a
/// restart skips compilation. Owned by the [`crate::Host`] when a cache directory is set.
#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: PathBuf,
    fingerprint: String,
}

impl ModuleCache {
    /// Opens (creating it if needed) the cache in `dir` for code compiled by `engine`.
    pub fn new(dir: impl Into<PathBuf>, engine: &Engine) -> std::io::Result<ModuleCache> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        remove_leftovers(&dir);
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        Ok(ModuleCache {
            dir,
            fingerprint: format!("{:016x}", hasher.finish()),
        })
    }

    /// The directory the entries live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256}-{}.cwasm", self.fingerprint))
    }

    fn sum_path(&self, sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256}-{}.cwasm.sum", self.fingerprint))
    }

    /// The compiled module for `sha256`, if cached, its code mapped from the entry's file. A
    /// corrupt entry is removed.
    pub fn load(&self, engine: &Engine, sha256: &str) -> Option<Module> {
        let path = self.path(sha256);
        let mut file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot read compiled-module cache entry: {e}");
                return None;
            }
        };
        // No digest yet: a store was interrupted between the two renames (or an older layout).
        let Ok(expected) = std::fs::read(self.sum_path(sha256)) else {
            return None;
        };
        let drop_entry = |why: &dyn std::fmt::Display| {
            tracing::warn!(path = %path.display(), "dropping unusable compiled-module cache entry: {why}");
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(self.sum_path(sha256));
        };
        match digest_of(&mut file) {
            Ok(actual) if actual.as_slice() == expected.as_slice() => {}
            Ok(_) => {
                drop_entry(&"checksum mismatch");
                return None;
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot read compiled-module cache entry: {e}");
                return None;
            }
        }
        // SAFETY: the file is exactly what `store` below wrote from `Module::serialize` of an
        // engine with the same fingerprint (the digest just read through this same open file
        // says so), in a directory wasp owns, where files are only ever replaced by a rename —
        // never written in place — so the mapping cannot change under the running code.
        // wasmtime additionally checks the header and version before using the code.
        #[allow(unsafe_code)]
        let module = unsafe { Module::deserialize_open_file(engine, file) };
        match module {
            Ok(module) => Some(module),
            Err(e) => {
                drop_entry(&e);
                None
            }
        }
    }

    /// Stores a serialized module (`Module::serialize`, `Engine::precompile_module`) for
    /// `sha256`: its digest, then its code.
    pub fn store(&self, serialized: &[u8], sha256: &str) -> std::io::Result<()> {
        self.write_atomically(&self.sum_path(sha256), &Sha256::digest(serialized))?;
        self.write_atomically(&self.path(sha256), serialized)?;
        // The renames themselves, durable (a power cut could otherwise lose the entry; never
        // half of it).
        std::fs::File::open(&self.dir)?.sync_all()
    }

    fn write_atomically(&self, target: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let (tmp, mut file) = tempfile_in(&self.dir)?;
        let written = file
            .write_all(bytes)
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&tmp, target));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }
}

/// The sha256 of what `file` holds, read through it (leaving it at its start).
fn digest_of(file: &mut std::fs::File) -> std::io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    file.rewind()?;
    Ok(hasher.finalize().into())
}

/// Removes the temporary files of writes a process did not finish (killed while storing):
/// they were never renamed into place, so nothing reads them; they only take space. One
/// process uses a cache directory at a time, as the module cache of `wasp-delivery`.
fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(".tmp-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A uniquely named file in `dir` (no tempfile dependency in the library).
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    for attempt in 0..16u32 {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
        let path = dir.join(format!(".tmp-{}-{attempt}", hex::encode(bytes)));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("could not create a temporary file"))
}
