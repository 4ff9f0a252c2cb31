//! How plugin effects reach the stream they concern.
//!
//! A plugin resumes, resets or answers a stream from any callback (often a root-context one:
//! a callout answer, a timer). The worker looks the stream up by (plugin, context id) and
//! raises the matching signal here; the stream's task, waiting at a pause, wakes up.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;

use tokio::sync::Notify;
use wasp_host::LocalResponse;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Request,
    Response,
}

/// Why a wait ended without a resume.
#[derive(Debug)]
pub enum Interrupt {
    /// A plugin answered the stream (chain position, response).
    LocalReply(usize, LocalResponse),
    /// A plugin reset the stream.
    Reset,
}

#[derive(Default)]
pub struct StreamSignals {
    continued: RefCell<HashSet<(usize, Direction)>>,
    local_reply: RefCell<Option<(usize, LocalResponse)>>,
    reset: Cell<bool>,
    notify: Notify,
}

impl StreamSignals {
    pub fn resume(&self, position: usize, direction: Direction) {
        self.continued.borrow_mut().insert((position, direction));
        self.notify.notify_waiters();
    }

    pub fn local_reply(&self, position: usize, response: LocalResponse) {
        let mut slot = self.local_reply.borrow_mut();
        // The first answer wins, as in Envoy.
        if slot.is_none() {
            *slot = Some((position, response));
        }
        drop(slot);
        self.notify.notify_waiters();
    }

    pub fn reset(&self) {
        self.reset.set(true);
        self.notify.notify_waiters();
    }

    /// An interrupt raised so far, taken (a local reply is handed out once).
    pub fn interrupt(&self) -> Option<Interrupt> {
        if self.reset.get() {
            return Some(Interrupt::Reset);
        }
        self.local_reply
            .borrow_mut()
            .take()
            .map(|(pos, r)| Interrupt::LocalReply(pos, r))
    }

    /// Forgets a resume that came while the stream was not paused there (a harmless no-op
    /// in Envoy too).
    pub fn clear_resume(&self, position: usize, direction: Direction) {
        self.continued.borrow_mut().remove(&(position, direction));
    }

    /// Waits until the plugin at `position` resumes `direction`, or the stream is
    /// interrupted. Single-threaded: nothing can run between a check and the wait.
    pub async fn wait(&self, position: usize, direction: Direction) -> Result<(), Interrupt> {
        loop {
            if let Some(i) = self.interrupt() {
                return Err(i);
            }
            if self.continued.borrow_mut().remove(&(position, direction)) {
                return Ok(());
            }
            self.notify.notified().await;
        }
    }

    /// Waits until the stream is interrupted (a local reply or a reset from any phase).
    pub async fn interrupted(&self) -> Interrupt {
        loop {
            if let Some(i) = self.interrupt() {
                return i;
            }
            self.notify.notified().await;
        }
    }
}
