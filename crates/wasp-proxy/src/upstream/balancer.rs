//! Picking a cluster's endpoint for one attempt, per worker, with Envoy's policies: round
//! robin, least request (the less loaded of two random choices), random, ring hash on a
//! header. Ejected or unhealthy endpoints are skipped unless fewer than half are left, when
//! Envoy's panic threshold (50 %) sends traffic to all of them.

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering::Relaxed;

use crate::spec::LbPolicy;

use super::health::ClusterState;

/// Points per endpoint on the hash ring (Envoy's minimum ring is 1024 entries).
const RING_POINTS: usize = 128;

pub struct Balancer {
    policy: LbPolicy,
    next: Cell<usize>,
    rng: Cell<u64>,
    /// Sorted `(hash, endpoint)`, for `RingHash`.
    ring: Vec<(u64, usize)>,
}

fn hash(bytes: &[u8]) -> u64 {
    // SipHash with fixed keys: the same endpoint for the same value on every worker and run.
    let mut h = std::hash::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

impl Balancer {
    pub fn new(policy: LbPolicy, endpoints: &[String]) -> Balancer {
        let mut ring = Vec::new();
        if policy == LbPolicy::RingHash {
            for (i, e) in endpoints.iter().enumerate() {
                for point in 0..RING_POINTS {
                    ring.push((hash(format!("{e}_{point}").as_bytes()), i));
                }
            }
            ring.sort_unstable();
        }
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        Balancer {
            policy,
            next: Cell::new(0),
            rng: Cell::new(u64::from_le_bytes(seed) | 1),
            ring,
        }
    }

    fn random(&self, below: usize) -> usize {
        // xorshift64*: load balancing needs spread, not secrecy.
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) % below as u64) as usize
    }

    /// The endpoint for the next attempt. `key`: the route's hash header value (ring hash);
    /// `avoid`: the endpoint the previous attempt failed on, skipped when another is usable.
    pub fn pick(&self, state: &ClusterState, key: Option<&[u8]>, avoid: Option<usize>) -> usize {
        let total = state.endpoints.len();
        let available = state.available_count();
        // Envoy's panic threshold: below 50 % available, balance over all endpoints.
        let panic = available * 2 < total || available == 0;
        let usable = |i: usize| panic || state.available(i);
        let preferred = |i: usize| usable(i) && (Some(i) != avoid || available <= 1);
        match self.policy {
            LbPolicy::RingHash if key.is_some() && !self.ring.is_empty() => {
                let h = hash(key.unwrap_or_default());
                let start = self.ring.partition_point(|(p, _)| *p < h);
                (0..self.ring.len())
                    .map(|k| self.ring[(start + k) % self.ring.len()].1)
                    .find(|&i| preferred(i))
                    .unwrap_or(self.ring[start % self.ring.len()].1)
            }
            LbPolicy::RoundRobin => {
                let from = self.next.get();
                for k in 0..total {
                    let i = (from + k) % total;
                    if preferred(i) {
                        self.next.set(i + 1);
                        return i;
                    }
                }
                self.next.set(from + 1);
                from % total
            }
            LbPolicy::LeastRequest => {
                let a = self.random_usable(total, &preferred);
                let b = self.random_usable(total, &preferred);
                let load = |i: usize| state.endpoints[i].active.load(Relaxed);
                if load(b) < load(a) { b } else { a }
            }
            LbPolicy::Random | LbPolicy::RingHash => self.random_usable(total, &preferred),
        }
    }

    /// A random endpoint that `ok` accepts (any, when none does).
    fn random_usable(&self, total: usize, ok: &dyn Fn(usize) -> bool) -> usize {
        let start = self.random(total);
        (0..total)
            .map(|k| (start + k) % total)
            .find(|&i| ok(i))
            .unwrap_or(start)
    }
}
