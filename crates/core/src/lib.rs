//! sluice-core: the domain of a sluice pipeline and the ports its adapters implement.
//!
//! A *job* is one run of a pipeline over one input CSV; the plan step turns each CSV row into a
//! *task*; every time a task is launched on compute it gets a new *attempt*. This crate knows
//! what those are, which state changes are legal, how a finished container is classified
//! (success, Spot reclaim, launch failure, out of memory, application error), how a CSV becomes
//! tasks and how task results are aggregated. It knows nothing of AWS, SQLite or processes:
//! handlers (`functions/*`) talk to the outside world only through the traits in [`ports`], which
//! the local runtime (`sluice-local`) and the AWS adapters (`sluice-aws`) implement.
//!
//! Data flows ingest → plan → launch → task-events → aggregate → finish, one module each where
//! the step has domain logic of its own.

pub mod aggregate;
pub mod classify;
pub mod control;
pub mod error;
pub mod events;
pub mod ids;
pub mod ingest;
pub mod interrupt;
pub mod model;
pub mod notify;
pub mod pipeline;
pub mod plan;
pub mod ports;
pub mod schedule;
pub mod stage;
pub mod stats;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::{ErrorName, StoreError};
pub use ids::{JobId, TaskId};
pub use model::{
    Attempt, AttemptState, Capacity, Interruption, Job, JobState, Task, TaskState, TaskTally,
};
pub use pipeline::PipelineConfig;
pub use ports::Services;

#[cfg(test)]
mod contract_tests {
    #[tokio::test]
    async fn the_in_memory_store_keeps_the_job_store_contract() {
        let store = crate::testing::MemoryJobStore::default();
        crate::testing::contract::job_store(&store, "mem").await;
    }

    #[tokio::test]
    async fn the_in_memory_capacity_keeps_the_capacity_contract() {
        let pool = crate::testing::MemoryCapacity::default();
        crate::testing::contract::capacity(&pool, "mem").await;
    }
}
