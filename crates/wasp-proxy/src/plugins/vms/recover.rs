//! A worker's failed VMs replaced under every failure strategy (see `plugins::recovery` for
//! the policy): failures recorded per VM slot, fresh VMs built when due, and what requests get
//! meanwhile.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use wasp_host::CallError;

use super::{Step, VmSlot, WorkerVms};
use crate::plugins::recovery::Verdict;
use crate::spec::FailStrategy;

impl WorkerVms {
    /// Whether `plugin` started here: false when its module did not load, its VM did not
    /// start, or it refused its configuration.
    pub(super) fn can_run(&self, plugin: usize) -> bool {
        let (v, member) = self.placement[plugin];
        matches!(&*self.vms[v].borrow(), VmSlot::Ready { roots, .. } if roots[member].is_some())
    }

    /// What a stream gets from a plugin that cannot serve it: FAIL_OPEN skips it; otherwise
    /// 403 when it never loaded (Istio's answer) and 503 while a failed VM awaits its
    /// replacement (Envoy's `wasm_fail_stream`).
    pub fn unavailable<T>(&self, plugin: usize) -> Step<T> {
        let v = self.placement[plugin].0;
        match self.plugin(plugin).spec.fail_strategy {
            FailStrategy::FailOpen => Step::Skip,
            _ if self.recovery.borrow().contains_key(&v) => Step::Fail(503),
            FailStrategy::FailClose | FailStrategy::FailReload => Step::Fail(403),
        }
    }

    /// A call into `plugin` failed: a trap failed its VM (with every plugin in it), which is
    /// recorded for replacement; the request gets what the failure strategy says.
    pub(super) fn failed<T>(&self, plugin: usize, error: CallError) -> Step<T> {
        let p = self.plugin(plugin);
        if matches!(error, CallError::Trap { .. }) {
            p.stats.failures.fetch_add(1, Relaxed);
            tracing::error!(plugin = %p.spec.name, worker = self.link.id, "{error}");
            self.record_failure(self.placement[plugin].0, &error.to_string());
        }
        match p.spec.fail_strategy {
            FailStrategy::FailOpen => Step::Skip,
            // Envoy fails the stream with 503 (wasm_fail_stream).
            FailStrategy::FailClose | FailStrategy::FailReload => Step::Fail(503),
        }
    }

    /// Records that VM `v` failed with `error`, and says on `/plugins` what comes next.
    fn record_failure(&self, v: usize, error: &str) {
        let verdict = self
            .recovery
            .borrow_mut()
            .entry(v)
            .or_default()
            .failed(&self.link.recovery, Instant::now());
        let members = &self.set.vm_groups[v].members;
        let (state, reason) = match verdict {
            Verdict::Replace(wait) => (
                "recovering",
                format!(
                    "{error} (a fresh VM replaces it in {} ms)",
                    wait.as_millis()
                ),
            ),
            Verdict::Park(parked) => {
                let first = &self.plugin(members[0]).spec.name;
                tracing::error!(
                    plugin = %first,
                    worker = self.link.id,
                    "the VM keeps failing ({} times within {:?}): parked for {parked:?}, then tried again",
                    self.link.recovery.park_after,
                    self.link.recovery.park_window
                );
                (
                    "parked",
                    format!(
                        "failed {} times within {:?}, parked for {parked:?}; last failure: {error}",
                        self.link.recovery.park_after, self.link.recovery.park_window
                    ),
                )
            }
        };
        for &member in members {
            self.plugin(member).set_state(state, Some(&reason));
        }
    }

    /// Replaces `plugin`'s VM with a fresh one (with every plugin that shares it) if it failed
    /// and its replacement is due.
    pub(super) fn maybe_recover(&self, plugin: usize) {
        let v = self.placement[plugin].0;
        let failed = match &*self.vms[v].borrow() {
            VmSlot::Ready { vm, .. } => vm.failure().is_some(),
            // A replacement that did not start; a module that never loaded has no record.
            VmSlot::Unavailable => self.recovery.borrow().contains_key(&v),
        };
        if !failed
            || !self
                .recovery
                .borrow()
                .get(&v)
                .is_none_or(|r| r.due(Instant::now()))
        {
            return;
        }
        let generation = self.next_generation.get() + 1;
        self.next_generation.set(generation);
        let slot = self.build_vm(v, generation);
        let ready = matches!(slot, VmSlot::Ready { .. });
        let old = std::mem::replace(&mut *self.vms[v].borrow_mut(), slot);
        self.uncount(&old);
        let members = &self.set.vm_groups[v].members;
        if ready {
            if let Some(r) = self.recovery.borrow_mut().get_mut(&v) {
                r.replaced();
            }
            for &member in members {
                let p = self.plugin(member);
                p.stats.replacements.fetch_add(1, Relaxed);
                p.set_state("ready", None);
            }
            tracing::warn!(plugin = %self.plugin(members[0]).spec.name, worker = self.link.id, "a fresh VM replaced the failed one");
        } else {
            self.record_failure(v, "the fresh VM did not start");
        }
        self.after_call(v);
    }
}
