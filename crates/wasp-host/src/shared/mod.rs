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
    pub data: SharedData,
    pub queues: SharedQueues,
    pub metrics: Metrics,
}
