//! A value built from files, rebuilt when the files change.
//!
//! Istio's agent (and cert-manager, and Kubernetes secret volumes) rotate certificates by
//! replacing files. A [`Watched`] value is checked at most once per [`RECHECK`] when it is
//! used (a TLS handshake), by the files' modification time, size and inode; a change rebuilds
//! it. A rebuild that fails (a key written before its certificate, say) keeps the last good
//! value, logs why once, and is tried again at the next check. Connections already open keep
//! the value they were set up with: nothing is dropped.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::error::TlsError;

/// How often the files are looked at, at most.
pub const RECHECK: Duration = Duration::from_secs(1);

/// What identifies one version of a file; `None`: the file is missing.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &PathBuf) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    // metadata() follows symlinks: Kubernetes swaps the `..data` link of a secret volume.
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

type Loader<T> = Box<dyn Fn() -> Result<T, TlsError> + Send + Sync>;

/// A value built from `files` by `load`, kept current with them.
pub struct Watched<T> {
    files: Vec<PathBuf>,
    load: Loader<T>,
    state: Mutex<State<T>>,
}

struct State<T> {
    value: Arc<T>,
    stamps: Vec<Stamp>,
    checked: Instant,
    /// The stamps of a version that failed to load: reported once, not every check.
    failed: Option<Vec<Stamp>>,
}

impl<T> Watched<T> {
    /// Builds the value now; an error here is a configuration error.
    pub fn new(
        files: Vec<PathBuf>,
        load: impl Fn() -> Result<T, TlsError> + Send + Sync + 'static,
    ) -> Result<Watched<T>, TlsError> {
        let stamps = files.iter().map(stamp).collect();
        let value = Arc::new(load()?);
        Ok(Watched {
            files,
            load: Box::new(load),
            state: Mutex::new(State {
                value,
                stamps,
                checked: Instant::now(),
                failed: None,
            }),
        })
    }

    /// The current value, rebuilt first when the files changed since the last check.
    pub fn current(&self) -> Arc<T> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.checked.elapsed() >= RECHECK {
            state.checked = Instant::now();
            let stamps: Vec<Stamp> = self.files.iter().map(stamp).collect();
            if stamps != state.stamps && state.failed.as_ref() != Some(&stamps) {
                match (self.load)() {
                    Ok(value) => {
                        tracing::info!(files = ?self.files, "TLS files changed: reloaded");
                        state.value = Arc::new(value);
                        state.stamps = stamps;
                        state.failed = None;
                    }
                    Err(e) => {
                        tracing::warn!(
                            "TLS files changed but cannot be used, keeping the previous ones: {e}"
                        );
                        state.failed = Some(stamps);
                    }
                }
            }
        }
        state.value.clone()
    }
}

impl<T> std::fmt::Debug for Watched<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}
