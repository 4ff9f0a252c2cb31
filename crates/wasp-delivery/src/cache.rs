//! The on-disk module cache.
//!
//! ```text
//! <cache_dir>/modules/sha256/<hex>.wasm   module bytes, named by their own SHA-256
//! <cache_dir>/index.json                  url → {digest, manifest_digest, fetched_at, last_used}
//! <cache_dir>/tmp/                        files being written
//! ```
//!
//! Unlike istio-agent, whose index lives in memory (a restart re-downloads everything), the index
//! is a file, so a restarted proxy serves IfNotPresent modules without the network.
//!
//! Nothing half-written is ever served: files are written under `tmp/`, fsynced and renamed into
//! place (the index too), and a module read back is hashed again — a file that no longer matches
//! its name is deleted and counted as a miss, so the caller fetches it afresh.
//!
//! One process per cache directory: the index is guarded by an in-process lock only.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const INDEX_VERSION: u32 = 1;

/// What the cache remembers about one URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// Hex SHA-256 of the module bytes (the file name under `modules/sha256`).
    pub digest: String,
    /// For OCI: the manifest digest the URL resolved to (`sha256:<hex>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub fetched_at_ms: u64,
    /// When a fetch last served or stored this entry, in milliseconds since the Unix epoch;
    /// entries unused for longer than `FetcherConfig::expiry` are purged.
    pub last_used_ms: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    version: u32,
    entries: BTreeMap<String, CacheEntry>,
}

pub(crate) struct Cache {
    dir: PathBuf,
    index: Mutex<Index>,
    expiry: Duration,
    tmp_counter: AtomicU64,
}

pub(crate) fn now_ms() -> u64 {
    to_ms(SystemTime::now())
}

pub(crate) fn to_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Deletes files in `tmp/` whose writer is gone — a process killed in the middle of a write
/// (`kill -9`, OOM) leaves its `.part` file behind, and nothing else would ever remove it before
/// the hourly purge. A temp file is named `<pid>-<n>-<random>.part`: one whose process still
/// runs (on Linux, `/proc/<pid>` exists) is left alone in case two processes share the
/// directory after all.
fn remove_leftovers_of_dead_writers(tmp: &Path) -> io::Result<()> {
    let me = std::process::id();
    for dirent in fs::read_dir(tmp)? {
        let dirent = dirent?;
        let name = dirent.file_name();
        let writer = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let alive = writer.is_some_and(|pid| {
            pid == me
                || (Path::new("/proc/self").exists()
                    && Path::new("/proc").join(pid.to_string()).exists())
        });
        if !alive {
            tracing::debug!(path = %dirent.path().display(), "removing a partial write of a dead process");
            let _ = fs::remove_file(dirent.path());
        }
    }
    Ok(())
}

impl Cache {
    pub(crate) fn open(dir: &Path, expiry: Duration) -> io::Result<Self> {
        fs::create_dir_all(dir.join("modules").join("sha256"))?;
        fs::create_dir_all(dir.join("tmp"))?;
        remove_leftovers_of_dead_writers(&dir.join("tmp"))?;
        let index_path = dir.join("index.json");
        let index = match fs::read(&index_path) {
            Ok(bytes) => match serde_json::from_slice::<Index>(&bytes) {
                Ok(i) if i.version == INDEX_VERSION => i,
                Ok(i) => {
                    tracing::warn!(path = %index_path.display(), version = i.version, "unknown cache index version; starting empty");
                    Index::default()
                }
                Err(e) => {
                    // Keep the bad file for a post-mortem; the modules are re-verified anyway.
                    let aside = dir.join("index.json.corrupt");
                    let _ = fs::rename(&index_path, &aside);
                    tracing::warn!(path = %index_path.display(), error = %e, "unreadable cache index moved aside; starting empty");
                    Index::default()
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Index::default(),
            Err(e) => return Err(e),
        };
        Ok(Cache {
            dir: dir.to_path_buf(),
            index: Mutex::new(Index {
                version: INDEX_VERSION,
                entries: index.entries,
            }),
            expiry,
            tmp_counter: AtomicU64::new(0),
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        // A panic while holding the lock cannot leave the map half-updated in a way that matters
        // (every update is one insert/remove), so a poisoned lock is still usable.
        self.index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn module_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("modules")
            .join("sha256")
            .join(format!("{digest}.wasm"))
    }

    pub(crate) fn entry(&self, url: &str) -> Option<CacheEntry> {
        self.lock().entries.get(url).cloned()
    }

    /// Any entry that resolved to this manifest digest (a digest names the content, whichever
    /// tag or URL it came through).
    pub(crate) fn entry_by_manifest(&self, manifest_digest: &str) -> Option<CacheEntry> {
        self.lock()
            .entries
            .values()
            .find(|e| e.manifest_digest.as_deref() == Some(manifest_digest))
            .cloned()
    }

    /// The module with this hash if it is on disk and intact. A damaged file is deleted.
    pub(crate) fn read_module(&self, digest: &str) -> io::Result<Option<Vec<u8>>> {
        let path = self.module_path(digest);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if sha256_hex(&bytes) != digest {
            tracing::warn!(path = %path.display(), "cached module does not match its hash; deleting it");
            let _ = fs::remove_file(&path);
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    /// Stores module bytes under their hash: temp file, fsync, rename, fsync the directory.
    pub(crate) fn write_module(&self, digest: &str, bytes: &[u8]) -> io::Result<()> {
        let target = self.module_path(digest);
        self.write_atomically(&target, bytes)
    }

    fn write_atomically(&self, target: &Path, bytes: &[u8]) -> io::Result<()> {
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let mut rnd = [0u8; 8];
        let _ = getrandom::fill(&mut rnd);
        let tmp = self.dir.join("tmp").join(format!(
            "{}-{n}-{}.part",
            std::process::id(),
            hex::encode(rnd)
        ));
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, target)?;
            if let Some(parent) = target.parent() {
                File::open(parent)?.sync_all()?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Records (or replaces) the entry for a URL and writes the index.
    pub(crate) fn record(&self, url: &str, entry: CacheEntry) -> io::Result<()> {
        let mut index = self.lock();
        index.entries.insert(url.to_string(), entry);
        self.persist(&index)
    }

    /// Marks the entry for a URL used now.
    pub(crate) fn touch(&self, url: &str) -> io::Result<()> {
        let mut index = self.lock();
        if let Some(e) = index.entries.get_mut(url) {
            e.last_used_ms = now_ms();
            self.persist(&index)?;
        }
        Ok(())
    }

    fn persist(&self, index: &Index) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(index).map_err(io::Error::other)?;
        self.write_atomically(&self.dir.join("index.json"), &bytes)
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Drops entries unused for longer than the expiry, deletes module files no entry refers to
    /// any more, and leftovers in `tmp/`. Returns how many entries were dropped.
    ///
    /// An unreferenced file younger than the expiry is kept: a concurrent fetch may have written
    /// it and not yet recorded its entry.
    pub(crate) fn purge_expired(&self) -> io::Result<usize> {
        let now = now_ms();
        let expiry_ms = self.expiry.as_millis() as u64;
        let mut index = self.lock();
        let before = index.entries.len();
        let mut dropped_digests = BTreeSet::new();
        index.entries.retain(|url, e| {
            let keep = now.saturating_sub(e.last_used_ms) <= expiry_ms;
            if !keep {
                tracing::info!(url, digest = %e.digest, "cache entry expired");
                dropped_digests.insert(e.digest.clone());
            }
            keep
        });
        let removed = before - index.entries.len();
        if removed > 0 {
            self.persist(&index)?;
        }
        let live: BTreeSet<String> = index.entries.values().map(|e| e.digest.clone()).collect();
        drop(index);

        let old = |path: &Path, age: Duration| {
            fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|d| d > age)
        };
        for dirent in fs::read_dir(self.dir.join("modules").join("sha256"))? {
            let path = dirent?.path();
            let Some(digest) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".wasm"))
            else {
                continue;
            };
            if live.contains(digest) {
                continue;
            }
            if dropped_digests.contains(digest) || old(&path, self.expiry) {
                let _ = fs::remove_file(&path);
            }
        }
        for dirent in fs::read_dir(self.dir.join("tmp"))? {
            let path = dirent?.path();
            if old(&path, Duration::from_secs(3600)) {
                let _ = fs::remove_file(&path);
            }
        }
        Ok(removed)
    }

    pub(crate) fn entries(&self) -> Vec<(String, CacheEntry)> {
        self.lock()
            .entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), Duration::from_secs(60)).unwrap();
        let bytes = b"\0asm\x01\0\0\0".to_vec();
        let digest = sha256_hex(&bytes);
        cache.write_module(&digest, &bytes).unwrap();
        assert_eq!(cache.read_module(&digest).unwrap().unwrap(), bytes);
        fs::write(cache.module_path(&digest), b"tampered").unwrap();
        assert_eq!(cache.read_module(&digest).unwrap(), None);
        assert!(!cache.module_path(&digest).exists());

        let entry = CacheEntry {
            digest: digest.clone(),
            manifest_digest: Some("sha256:x".into()),
            fetched_at_ms: now_ms(),
            last_used_ms: now_ms(),
        };
        cache.record("u", entry.clone()).unwrap();
        let reopened = Cache::open(dir.path(), Duration::from_secs(60)).unwrap();
        assert_eq!(reopened.entry("u"), Some(entry.clone()));
        assert_eq!(reopened.entry_by_manifest("sha256:x"), Some(entry));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn partial_writes_of_dead_processes_are_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("tmp")).unwrap();
        // A pid above the kernel's maximum (4194304) never runs; ours does.
        let dead = dir.path().join("tmp/4294967-0-00.part");
        let ours = dir
            .path()
            .join(format!("tmp/{}-9-00.part", std::process::id()));
        let unnamed = dir.path().join("tmp/garbage");
        for f in [&dead, &ours, &unnamed] {
            fs::write(f, b"half").unwrap();
        }
        Cache::open(dir.path(), Duration::from_secs(60)).unwrap();
        assert!(!dead.exists());
        assert!(!unnamed.exists());
        assert!(ours.exists());
    }

    #[test]
    fn corrupt_index_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("index.json"), b"{not json").unwrap();
        let cache = Cache::open(dir.path(), Duration::from_secs(60)).unwrap();
        assert_eq!(cache.len(), 0);
        assert!(dir.path().join("index.json.corrupt").exists());
    }
}
