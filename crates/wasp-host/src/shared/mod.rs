//! State shared by every VM of the process, across workers: the key/value store, the queues
//! and the metrics. Everything here is `Sync`; hostcalls reach it through an `Arc<Shared>`.

pub mod data;
pub mod metrics;
pub mod queue;

pub use data::{SharedData, SharedDataError};
pub use metrics::{MetricError, MetricSnapshot, MetricValue, Metrics};
pub use queue::{QueueError, QueueNotifier, SharedQueues};

/// The process-wide stores, one per host.
#[derive(Default)]
pub struct Shared {
    /// The key/value stores behind `proxy_get_shared_data` / `proxy_set_shared_data`.
    pub data: SharedData,
    /// The queues behind `proxy_register_shared_queue` and friends.
    pub queues: SharedQueues,
    /// Metrics plugins define, with the admin endpoint's view of them.
    pub metrics: Metrics,
}
