//! `proxy_get_shared_data` / `proxy_set_shared_data`: a key/value store per vm_id, shared by
//! every VM with that id on every worker, with compare-and-swap.
//!
//! CAS rules follow cpp-host: every write stores a new, process-wide increasing CAS value; a
//! write with cas 0 is unconditional; a non-zero cas must equal the stored one. Unlike Envoy,
//! writing an empty value deletes the key (Envoy keeps an empty value forever, and users have
//! no other way to delete: proxy-wasm/spec#32, envoyproxy/envoy#17217). The Rust SDK's
//! `remove_shared_data` sends exactly that.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// Why a write to shared data was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SharedDataError {
    /// The write carried a non-zero CAS that is not the key's current one (or the key is absent);
    /// the plugin gets `CAS_MISMATCH`.
    #[error("compare-and-swap value does not match")]
    CasMismatch,
}

/// The shared key/value stores of a host, one per vm_id, each entry with its CAS value.
#[derive(Default)]
pub struct SharedData {
    stores: Mutex<HashMap<String, HashMap<Vec<u8>, Entry>>>,
    next_cas: AtomicU32,
}

struct Entry {
    value: Vec<u8>,
    cas: u32,
}

impl SharedData {
    /// The value and CAS of `key` in `vm_id`'s store.
    pub fn get(&self, vm_id: &str, key: &[u8]) -> Option<(Vec<u8>, u32)> {
        let stores = self
            .stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        stores
            .get(vm_id)
            .and_then(|store| store.get(key))
            .map(|entry| (entry.value.clone(), entry.cas))
    }

    /// Writes (or, with an empty value, deletes) `key`.
    pub fn set(
        &self,
        vm_id: &str,
        key: &[u8],
        value: &[u8],
        cas: u32,
    ) -> Result<(), SharedDataError> {
        let mut stores = self
            .stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let store = stores.entry(vm_id.to_owned()).or_default();
        if cas != 0 {
            match store.get(key) {
                Some(entry) if entry.cas == cas => {}
                _ => return Err(SharedDataError::CasMismatch),
            }
        }
        if value.is_empty() {
            store.remove(key);
            return Ok(());
        }
        let cas = self.new_cas();
        store.insert(
            key.to_vec(),
            Entry {
                value: value.to_vec(),
                cas,
            },
        );
        Ok(())
    }

    /// The keys of `vm_id`'s store (for the admin endpoint).
    pub fn keys(&self, vm_id: &str) -> Vec<Vec<u8>> {
        let stores = self
            .stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        stores
            .get(vm_id)
            .map(|store| store.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn new_cas(&self) -> u32 {
        // 0 means "no CAS", so skip it when the counter wraps.
        loop {
            let cas = self
                .next_cas
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_add(1);
            if cas != 0 {
                return cas;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_rules() {
        let data = SharedData::default();
        assert_eq!(data.get("vm", b"k"), None);
        data.set("vm", b"k", b"v1", 0).unwrap();
        let (value, cas) = data.get("vm", b"k").unwrap();
        assert_eq!(value, b"v1");
        assert_ne!(cas, 0);
        assert_eq!(
            data.set("vm", b"k", b"v2", cas + 1),
            Err(SharedDataError::CasMismatch)
        );
        data.set("vm", b"k", b"v2", cas).unwrap();
        let (value, cas2) = data.get("vm", b"k").unwrap();
        assert_eq!(value, b"v2");
        assert!(cas2 > cas);
        // The old CAS is stale now.
        assert_eq!(
            data.set("vm", b"k", b"v3", cas),
            Err(SharedDataError::CasMismatch)
        );
        // A CAS on a missing key never matches.
        assert_eq!(
            data.set("vm", b"nope", b"v", 7),
            Err(SharedDataError::CasMismatch)
        );
        // Stores are per vm_id.
        assert_eq!(data.get("other", b"k"), None);
        // An empty value deletes.
        data.set("vm", b"k", b"", 0).unwrap();
        assert_eq!(data.get("vm", b"k"), None);
    }
}
