//! The run-time records of executions, which the interpreter writes and the API layer
//! ([`crate::engine`]) reads: one [`ExecutionRecord`] per execution (its input, history,
//! outcome, stop signal and redrive point), the messages task-token callbacks deliver, and the
//! lock helper both sides use.

use crate::clock::WorkMark;
use crate::error::StatesError;
use crate::history::HistoryLog;
use crate::model::StateMachine;
use crate::outcome::{ExecutionOutcome, ExecutionStatus};
use crate::resource::TaskMocks;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// A message delivered to a task waiting on its token.
#[derive(Debug)]
pub(crate) enum TokenMessage {
    Success(Value),
    Failure(StatesError),
    Heartbeat,
}

/// A callback on its way to the waiting Task state, with the work it hands over: the clock
/// counts it as work until the Task state has taken it up (see [`WorkMark`]).
#[derive(Debug)]
pub(crate) struct TokenDelivery {
    pub(crate) message: TokenMessage,
    pub(crate) work: WorkMark,
}

/// Results of a Map's iterations by index (`None`: not succeeded), shared with a redrive.
pub(crate) type MapResults = Arc<Mutex<Vec<Option<Value>>>>;

/// StopExecution's error and cause, sent to the running execution.
pub(crate) type StopSignal = tokio::sync::oneshot::Sender<(Option<String>, Option<String>)>;

/// Where a redrive restarts: the top-level state that was running, with its input.
#[derive(Debug, Clone, Default)]
pub(crate) struct RedrivePoint {
    pub(crate) state: Option<(String, Value)>,
    /// For a top-level Map: the results of iterations that succeeded (by index).
    pub(crate) map_results: Option<(String, MapResults)>,
}

/// One execution, shared by the runner task and every handle.
pub(crate) struct ExecutionRecord {
    pub(crate) arn: String,
    pub(crate) name: String,
    pub(crate) machine: Arc<StateMachine>,
    pub(crate) input: Value,
    pub(crate) start_date: DateTime<Utc>,
    pub(crate) history: Arc<HistoryLog>,
    pub(crate) outcome: watch::Sender<Option<ExecutionOutcome>>,
    pub(crate) stop_date: Mutex<Option<DateTime<Utc>>>,
    pub(crate) stop: Mutex<Option<StopSignal>>,
    pub(crate) redrive_count: Mutex<u32>,
    pub(crate) redrive: Mutex<RedrivePoint>,
    pub(crate) mocks: Option<Arc<dyn TaskMocks>>,
    /// Restored from checkpoints while RUNNING: the process that ran it is gone, so it runs
    /// nowhere and may be redriven although its status says RUNNING.
    pub(crate) orphaned: AtomicBool,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ExecutionRecord {
    /// Waits until the execution has ended (a redriven execution: until its redrive ends).
    pub(crate) async fn wait(&self) -> ExecutionOutcome {
        let mut rx = self.outcome.subscribe();
        loop {
            if let Some(o) = rx.borrow_and_update().clone() {
                return o;
            }
            if rx.changed().await.is_err() {
                // The sender lives in this record, which the caller holds, so this cannot
                // happen; report it as an aborted execution rather than hang.
                return ExecutionOutcome {
                    status: ExecutionStatus::Aborted,
                    output: None,
                    error: Some(crate::error::names::RUNTIME.into()),
                    cause: Some("the execution record was dropped".into()),
                };
            }
        }
    }
}
