//! The on-disk cache of compiled modules.
//!
//! Compiling a large plugin takes seconds (a 2.5 MB Go module: over a second even with
//! parallel compilation), so compiled code is kept across restarts. Entries are keyed by the
//! module's sha256 and a fingerprint of the engine (wasmtime version and every setting that
//! affects generated code), so a wasp upgrade or a changed setting never loads stale code.
//! Entries are written to a temporary file and renamed into place: a reader never sees a
//! partial file.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::{Engine, Module};

#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: PathBuf,
    fingerprint: String,
}

impl ModuleCache {
    pub fn new(dir: impl Into<PathBuf>, engine: &Engine) -> std::io::Result<ModuleCache> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        Ok(ModuleCache {
            dir,
            fingerprint: format!("{:016x}", hasher.finish()),
        })
    }

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
        if !path.exists() {
            return None;
        }
        // SAFETY: the file was written by `store` below from `Module::serialize` of an engine
        // with the same fingerprint, into a directory wasp owns; wasmtime additionally checks
        // its header and version before using the code.
        match unsafe { Module::deserialize_file(engine, &path) } {
            Ok(module) => Some(module),
            Err(e) => {
                tracing::warn!(path = %path.display(), "dropping unusable compiled-module cache entry: {e}");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores `module` for `sha256`.
    pub fn store(&self, module: &Module, sha256: &str) -> std::io::Result<()> {
        let bytes = module.serialize().map_err(std::io::Error::other)?;
        let mut tmp = tempfile_in(&self.dir)?;
        tmp.1.write_all(&bytes)?;
        tmp.1.sync_all()?;
        std::fs::rename(&tmp.0, self.path(sha256))
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
