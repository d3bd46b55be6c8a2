//! Durable executions: what the engine tells a host as an execution runs, so that another
//! process can continue it after this one is gone.
//!
//! The engine keeps executions in memory. A host that wants them to outlive the process (the
//! local runtime persists them in its SQLite job table) gives the engine a [`CheckpointSink`].
//! The engine reports, as they happen:
//!
//! - an execution starting or being redriven (its name, input and redrive count);
//! - every **top-level** state it enters, with that state's input: the point a redrive
//!   continues from (AWS RedriveExecution restarts the unsuccessful top-level state with the
//!   same input);
//! - every succeeded iteration of a **top-level** Map, with its output: a redriven Map runs only
//!   the iterations that did not succeed;
//! - the execution closing, with its status.
//!
//! Nothing below top level is checkpointed: states inside a Map iteration or a Parallel branch
//! are re-run from the iteration's or branch's start, as AWS re-runs unsuccessful iterations and
//! branches. The host reads the checkpoints back into a [`PersistedExecution`], hands it to
//! [`crate::Engine::restore`], and calls [`crate::Engine::redrive`].
//!
//! How often a host makes the checkpoints durable is its decision: a state entry is rare, a Map
//! iteration can be one of 100,000. Losing the last few iteration results to a crash only means
//! those iterations run again on redrive, so a host may batch them.

use crate::outcome::{ExecutionOutcome, ExecutionStatus};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// An execution as it starts or is redriven.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionCheckpoint<'a> {
    pub execution_arn: &'a str,
    pub name: &'a str,
    pub state_machine: &'a str,
    pub input: &'a Value,
    pub start_date: DateTime<Utc>,
    /// 0 for a start, n for the n-th redrive.
    pub redrive_count: u32,
}

/// Receives an execution's checkpoints as it runs. Calls come from the executing tasks and must
/// not block for long: a host that writes to disk should queue.
pub trait CheckpointSink: Send + Sync {
    /// The execution started (redrive count 0) or was redriven; its status is RUNNING.
    fn execution_started(&self, execution: &ExecutionCheckpoint<'_>);
    /// A top-level state was entered with `input`. `resumed` is true when a redrive re-enters
    /// the state it continues from (its Map results stay); otherwise a Map entered anew
    /// starts without results.
    fn state_entered(&self, execution_arn: &str, state: &str, input: &Value, resumed: bool);
    /// Iteration `index` of the top-level Map `state` succeeded with `output`.
    fn map_iteration_succeeded(
        &self,
        execution_arn: &str,
        state: &str,
        index: usize,
        output: &Value,
    );
    /// The execution ended.
    fn execution_closed(
        &self,
        execution_arn: &str,
        outcome: &ExecutionOutcome,
        stop_date: DateTime<Utc>,
    );
}

/// An execution read back from a host's checkpoints, to be continued by
/// [`crate::Engine::restore`] and [`crate::Engine::redrive`].
#[derive(Debug, Clone, PartialEq)]
pub struct PersistedExecution {
    pub execution_arn: String,
    pub name: String,
    pub input: Value,
    pub start_date: DateTime<Utc>,
    pub redrive_count: u32,
    /// RUNNING for an execution whose process died while it ran: restored, it can be
    /// redriven like a failed one.
    pub status: ExecutionStatus,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub stop_date: Option<DateTime<Utc>>,
    /// Id of the last history event recorded; the history continues after it.
    pub last_event_id: u64,
    /// The last top-level state entered and its input.
    pub state: Option<(String, Value)>,
    /// Outputs of the succeeded iterations of that state, when it is a Map (by index).
    pub map_results: Vec<Option<Value>>,
}
