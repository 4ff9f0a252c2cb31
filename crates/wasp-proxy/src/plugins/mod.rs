//! The plugins every worker runs: the published set, and each worker's VMs of it.

pub(crate) mod embedder;
pub(crate) mod recovery;
pub(crate) mod set;
pub(crate) mod vms;
