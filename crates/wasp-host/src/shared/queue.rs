//! Shared queues (`proxy_register_shared_queue` and friends).
//!
//! A queue is named by (vm_id, name) and has a process-wide non-zero id. As in cpp-host, the
//! VM that registered it last is its subscriber: an enqueue from any worker schedules
//! `on_queue_ready(root_context, id)` on that VM through its [`QueueNotifier`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Told when a queue a VM subscribed to has data. Runs inside another VM's hostcall, possibly
/// on another thread: it must only schedule the delivery (e.g. send on a channel).
pub trait QueueNotifier: Send + Sync {
    /// Schedules `on_queue_ready(root_context, queue_id)` on the subscribing VM.
    fn queue_ready(&self, root_context: u32, queue_id: u32);
}

/// Why a queue operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// A queue id that was never registered; the plugin gets `NOT_FOUND`.
    #[error("no such queue")]
    NotFound,
}

/// Every shared queue of a host, keyed by (vm_id, name), each with its latest subscriber.
#[derive(Default)]
pub struct SharedQueues {
    inner: Mutex<Queues>,
}

#[derive(Default)]
struct Queues {
    ids: HashMap<(String, Vec<u8>), u32>,
    queues: HashMap<u32, Queue>,
    last_id: u32,
}

struct Queue {
    items: VecDeque<Vec<u8>>,
    subscriber: Option<Subscriber>,
}

struct Subscriber {
    notifier: Arc<dyn QueueNotifier>,
    root_context: u32,
}

impl SharedQueues {
    /// Creates or opens the queue and makes the caller its subscriber.
    pub fn register(
        &self,
        vm_id: &str,
        name: &[u8],
        root_context: u32,
        notifier: Option<Arc<dyn QueueNotifier>>,
    ) -> u32 {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (vm_id.to_owned(), name.to_vec());
        let id = match inner.ids.get(&key) {
            Some(id) => *id,
            None => {
                inner.last_id += 1;
                let id = inner.last_id;
                inner.ids.insert(key, id);
                inner.queues.insert(
                    id,
                    Queue {
                        items: VecDeque::new(),
                        subscriber: None,
                    },
                );
                id
            }
        };
        if let Some(queue) = inner.queues.get_mut(&id) {
            queue.subscriber = notifier.map(|notifier| Subscriber {
                notifier,
                root_context,
            });
        }
        id
    }

    /// The id of the queue `name` registered under `vm_id`, if any (`proxy_resolve_shared_queue`).
    pub fn resolve(&self, vm_id: &str, name: &[u8]) -> Option<u32> {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.ids.get(&(vm_id.to_owned(), name.to_vec())).copied()
    }

    /// Appends `value` to queue `id` and notifies its subscriber, outside the lock
    /// (`proxy_enqueue_shared_queue`).
    pub fn enqueue(&self, id: u32, value: Vec<u8>) -> Result<(), QueueError> {
        let notify = {
            let mut inner = self
                .inner
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let queue = inner.queues.get_mut(&id).ok_or(QueueError::NotFound)?;
            queue.items.push_back(value);
            queue
                .subscriber
                .as_ref()
                .map(|s| (s.notifier.clone(), s.root_context))
        };
        // Notify outside the lock: the notifier may take locks of its own.
        if let Some((notifier, root_context)) = notify {
            notifier.queue_ready(root_context, id);
        }
        Ok(())
    }

    /// Pops the oldest item; `Ok(None)` when the queue is empty.
    pub fn dequeue(&self, id: u32) -> Result<Option<Vec<u8>>, QueueError> {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let queue = inner.queues.get_mut(&id).ok_or(QueueError::NotFound)?;
        Ok(queue.items.pop_front())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Default)]
    struct Count(AtomicU32);
    impl QueueNotifier for Count {
        fn queue_ready(&self, _root: u32, _id: u32) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn register_resolve_enqueue_dequeue() {
        let queues = SharedQueues::default();
        let first = Arc::new(Count::default());
        let second = Arc::new(Count::default());
        let id = queues.register("vm", b"q", 1, Some(first.clone()));
        assert_ne!(id, 0);
        assert_eq!(queues.resolve("vm", b"q"), Some(id));
        assert_eq!(queues.resolve("other", b"q"), None);
        // Re-registering keeps the id and moves the subscription.
        assert_eq!(queues.register("vm", b"q", 1, Some(second.clone())), id);
        queues.enqueue(id, b"a".to_vec()).unwrap();
        queues.enqueue(id, b"b".to_vec()).unwrap();
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 2);
        assert_eq!(queues.dequeue(id).unwrap(), Some(b"a".to_vec()));
        assert_eq!(queues.dequeue(id).unwrap(), Some(b"b".to_vec()));
        assert_eq!(queues.dequeue(id).unwrap(), None);
        assert_eq!(queues.dequeue(999), Err(QueueError::NotFound));
        assert_eq!(queues.enqueue(999, vec![]), Err(QueueError::NotFound));
    }
}
