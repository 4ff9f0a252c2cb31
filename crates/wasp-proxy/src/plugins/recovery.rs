//! Replacing failed VMs, whatever the plugin's failure strategy (wasp's difference from Envoy,
//! where a failed VM stays failed under FAIL_CLOSE and FAIL_OPEN): a trap, the CPU deadline or
//! the memory cap is a bug of the plugin met by one request, and must not turn into an outage
//! that one client can cause for everyone. The strategy only decides what requests get while
//! no healthy VM exists.
//!
//! The first replacement of a run of failures comes with the next request; the next ones after
//! a backoff that doubles (with jitter, so workers do not rebuild in step); a VM that keeps
//! failing is parked for a while, its reason on `/plugins`, then tried again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::spec::RecoveryPolicy;

/// What one VM slot of one worker knows of its failures.
#[derive(Debug, Default)]
pub(crate) struct Recovery {
    /// Failures within the policy's window, oldest first.
    recent: VecDeque<Instant>,
    /// No replacement before this.
    not_before: Option<Instant>,
    /// Parked: no replacement before `not_before`, and the reason said so.
    pub parked: bool,
}

/// What a failure leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A fresh VM once this much time has passed.
    Replace(Duration),
    /// Too many failures in the window: parked for this long.
    Park(Duration),
}

impl Recovery {
    /// Records a failure at `now`.
    pub fn failed(&mut self, policy: &RecoveryPolicy, now: Instant) -> Verdict {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > policy.park_window)
        {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        let n = self.recent.len();
        if n >= policy.park_after as usize {
            self.recent.clear();
            self.parked = true;
            self.not_before = Some(now + policy.park_for);
            return Verdict::Park(policy.park_for);
        }
        self.parked = false;
        let wait = backoff(policy, n, jitter());
        self.not_before = Some(now + wait);
        Verdict::Replace(wait)
    }

    /// Whether a replacement may be tried at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|t| now >= t)
    }

    /// A replacement was made: the VM runs again (failures still count in the window).
    pub fn replaced(&mut self) {
        self.parked = false;
        self.not_before = None;
    }
}

/// The wait before replacing after the `n`th failure in the window: none after the first,
/// then `base`, `2 × base`, … up to `max`, scaled by `jitter` (0.8 to 1.2).
fn backoff(policy: &RecoveryPolicy, n: usize, jitter: f64) -> Duration {
    if n <= 1 {
        return Duration::ZERO;
    }
    let doublings = u32::try_from(n - 2).unwrap_or(u32::MAX).min(20);
    let wait = policy
        .backoff_base
        .saturating_mul(1 << doublings)
        .min(policy.backoff_max);
    wait.mul_f64(jitter)
}

/// A factor in 0.8..1.2 from a per-thread xorshift, seeded once from the OS.
fn jitter() -> f64 {
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new({
            let mut seed = [0u8; 8];
            let _ = getrandom::fill(&mut seed);
            u64::from_le_bytes(seed) | 1
        });
    }
    let x = STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    });
    0.8 + (x >> 11) as f64 / (1u64 << 53) as f64 * 0.4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RecoveryPolicy {
        RecoveryPolicy {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            park_after: 5,
            park_window: Duration::from_secs(10),
            park_for: Duration::from_secs(30),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let p = policy();
        let waits: Vec<u128> = (1..=7).map(|n| backoff(&p, n, 1.0).as_millis()).collect();
        assert_eq!(waits, [0, 100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(&p, 3, 1.2).as_millis(), 240);
    }

    #[test]
    fn failures_in_the_window_park_then_the_count_restarts() {
        let p = policy();
        let mut r = Recovery::default();
        let t0 = Instant::now();
        assert_eq!(r.failed(&p, t0), Verdict::Replace(Duration::ZERO));
        assert!(r.due(t0));
        for i in 1..4 {
            assert!(
                matches!(r.failed(&p, t0 + Duration::from_secs(i)), Verdict::Replace(w) if w > Duration::ZERO)
            );
        }
        assert_eq!(
            r.failed(&p, t0 + Duration::from_secs(4)),
            Verdict::Park(p.park_for)
        );
        assert!(r.parked);
        assert!(!r.due(t0 + Duration::from_secs(20)));
        assert!(r.due(t0 + Duration::from_secs(35)));
        r.replaced();
        // Failures older than the window do not count.
        assert_eq!(
            r.failed(&p, t0 + Duration::from_secs(60)),
            Verdict::Replace(Duration::ZERO)
        );
        for j in 0..4 {
            let _ = jitter();
            assert!((0.8..1.2).contains(&jitter()), "{j}");
        }
    }
}
