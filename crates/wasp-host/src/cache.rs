//! The on-disk cache of compiled modules.
//!
//! Compiling a large plugin takes seconds (a 2.5 MB Go module: over a second even with
//! parallel compilation), so compiled code is kept across restarts. Entries are keyed by the
//! module's sha256 and a fingerprint of the engine (wasmtime version and every setting that
//! affects generated code), so a wasp upgrade or a changed setting never loads stale code.
//! Entries are written to a temporary file and renamed into place: a reader never sees a
//! partial file. Each entry starts with the sha256 of the serialized module after it, checked
//! before the code is used: wasmtime checks the header and the ELF structure, not the machine
//! code, so a flipped bit on disk would otherwise run as corrupt code.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

/// Length of the digest that starts every entry.
const DIGEST_LEN: usize = 32;

/// Compiled modules on disk, one file per module digest and engine fingerprint, so that a
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

    /// The compiled module for `sha256`, if cached. A corrupt entry is removed.
    pub fn load(&self, engine: &Engine, sha256: &str) -> Option<Module> {
        let path = self.path(sha256);
        let entry = match std::fs::read(&path) {
            Ok(entry) => entry,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot read compiled-module cache entry: {e}");
                return None;
            }
        };
        let drop_entry = |why: &dyn std::fmt::Display| {
            tracing::warn!(path = %path.display(), "dropping unusable compiled-module cache entry: {why}");
            let _ = std::fs::remove_file(&path);
        };
        let intact = entry.len() > DIGEST_LEN
            && Sha256::digest(&entry[DIGEST_LEN..]).as_slice() == &entry[..DIGEST_LEN];
        if !intact {
            drop_entry(&"checksum mismatch");
            return None;
        }
        // SAFETY: the bytes are exactly what `store` below wrote from `Module::serialize` of
        // an engine with the same fingerprint (the digest says so), into a directory wasp
        // owns; wasmtime additionally checks the header and version before using the code.
        #[allow(unsafe_code)]
        let module = unsafe { Module::deserialize(engine, &entry[DIGEST_LEN..]) };
        match module {
            Ok(module) => Some(module),
            Err(e) => {
                drop_entry(&e);
                None
            }
        }
    }

    /// Stores `module` for `sha256`.
    pub fn store(&self, module: &Module, sha256: &str) -> std::io::Result<()> {
        let bytes = module.serialize().map_err(std::io::Error::other)?;
        let mut tmp = tempfile_in(&self.dir)?;
        tmp.1.write_all(&Sha256::digest(&bytes))?;
        tmp.1.write_all(&bytes)?;
        tmp.1.sync_all()?;
        std::fs::rename(&tmp.0, self.path(sha256))?;
        // The rename itself, durable (a power cut could otherwise lose the entry; never half
        // of it).
        std::fs::File::open(&self.dir)?.sync_all()
    }
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
