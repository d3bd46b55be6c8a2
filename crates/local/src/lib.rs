//! sluice-local: the embedded runtime — the whole pipeline on one machine, no AWS account and
//! no Docker.
//!
//! - [`bucket`]: directory buckets (the ObjectStore port).
//! - [`store`]: the SQLite job table (the JobStore port), leases and execution history.
//! - [`capacity`]: the process pool's size, moved by capacity leases (the CapacityPool port).
//! - [`compute`]: processes as "ECS" tasks emitting ECS Task State Change events (the Compute port).
//! - [`driver`]: which process drives a job; redrive, cancel, execution status changes.
//! - [`events`]: the local event bus.
//! - [`eventlog`]: `events.jsonl`, every event on the bus, written in batches.
//! - [`inbox`]: starting jobs from files (a watched folder's CSVs, schedule inputs).
//! - [`journal`]: the engine's history and checkpoints, batched into the job table.
//! - [`pipelines`]: loading a pipeline file with the checks that need the file system.
//! - [`spawn`]: starting a task process without forking sluice, tied to its life.
//! - [`tasklog`]: an attempt's log, made on its first byte.
//! - [`runtime`]: the wiring — the sluice-asl engine running `statemachines/pipeline.asl.json`
//!   with Lambda resources served by the in-process handlers (the Workflows port).

pub mod bucket;
pub mod capacity;
pub mod compute;
pub mod driver;
pub mod eventlog;
pub mod events;
pub mod inbox;
pub mod journal;
pub mod pipelines;
pub mod runtime;
pub mod spawn;
pub mod store;
pub mod tasklog;

pub use driver::{Cancelled, Driver, RedriveError, RedriveStarted};
pub use runtime::{LocalRuntime, RuntimeOptions};
