//! The engine's public face: start executions, wait for them, stop them, redrive them, and
//! deliver task-token callbacks — the local equivalent of the Step Functions API
//! (StartExecution, DescribeExecution, StopExecution, RedriveExecution, SendTask*).
//!
//! An [`Engine`] is cheap to clone (an `Arc` inside) and `Send + Sync`, so a host can hand it to
//! worker tasks that call [`Engine::send_task_success`] while an execution waits. Executions run
//! as tokio tasks; the state-by-state interpretation lives in the private `exec` module.

pub use crate::config::EngineConfig;
pub use crate::outcome::{ExecutionOutcome, ExecutionStatus};

use crate::checkpoint::PersistedExecution;
use crate::clock::WorkMark;
use crate::error::StatesError;
use crate::exec::record::{ExecutionRecord, RedrivePoint, TokenDelivery, TokenMessage, lock};
use crate::exec::{self, Host};
use crate::history::{HistoryEvent, HistoryLog};
use crate::model::StateMachine;
use crate::resource::TaskMocks;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};

/// DescribeExecution.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionDescription {
    pub execution_arn: String,
    pub state_machine_arn: String,
    pub name: String,
    pub status: ExecutionStatus,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub start_date: DateTime<Utc>,
    pub stop_date: Option<DateTime<Utc>>,
    pub redrive_count: u32,
}

/// Options for [`Engine::start_execution_with`].
#[derive(Clone, Default)]
pub struct StartOptions {
    /// Execution name; a UUID when absent.
    pub name: Option<String>,
    /// Mocked task responses for this execution (overrides [`EngineConfig::mocks`]).
    pub mocks: Option<Arc<dyn TaskMocks>>,
}

/// Why StartExecution was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// An execution with this name exists with a different input, or has already closed.
    #[error("ExecutionAlreadyExists: Execution Already Exists: '{0}'")]
    ExecutionAlreadyExists(String),
    #[error("InvalidName: {0}")]
    InvalidName(String),
    /// Executions run on tokio; `start_execution` was called outside a runtime.
    #[error("no tokio runtime is running, so the execution cannot be started")]
    NoRuntime,
}

/// Why SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat was refused (AWS's names).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// The token was never issued by this engine.
    #[error("InvalidToken: Invalid Token: '{0}'")]
    InvalidToken(String),
    /// The task the token belongs to has already closed (succeeded, failed, timed out or
    /// its execution stopped).
    #[error("TaskTimedOut: Task Timed Out: '{0}'")]
    TaskTimedOut(String),
}

/// Why DescribeExecution / StopExecution / RedriveExecution was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecutionError {
    #[error("ExecutionDoesNotExist: Execution Does Not Exist: '{0}'")]
    ExecutionDoesNotExist(String),
    /// Redrive of an execution that is running or succeeded.
    #[error("ExecutionNotRedrivable: Execution '{0}' is {1} and cannot be redriven")]
    ExecutionNotRedrivable(String, ExecutionStatus),
    #[error("no tokio runtime is running, so the execution cannot be redriven")]
    NoRuntime,
}

enum TokenSlot {
    Open(mpsc::UnboundedSender<TokenDelivery>),
    Closed,
}

/// A running or finished execution.
#[derive(Clone)]
pub struct ExecutionHandle {
    record: Arc<ExecutionRecord>,
}

impl std::fmt::Debug for ExecutionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutionHandle")
            .field("arn", &self.record.arn)
            .finish()
    }
}

impl ExecutionHandle {
    /// The execution ARN.
    pub fn arn(&self) -> &str {
        &self.record.arn
    }

    /// The execution name.
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// Waits until the execution has ended (a redriven execution: until its redrive ends).
    pub async fn wait(&self) -> ExecutionOutcome {
        self.record.wait().await
    }

    /// The outcome if the execution has ended.
    pub fn outcome(&self) -> Option<ExecutionOutcome> {
        self.record.outcome.borrow().clone()
    }

    /// The history recorded so far.
    pub fn history(&self) -> Vec<HistoryEvent> {
        self.record.history.events()
    }
}

struct EngineInner {
    config: EngineConfig,
    executions: Mutex<HashMap<String, Arc<ExecutionRecord>>>,
    tokens: Mutex<HashMap<String, TokenSlot>>,
    machines: Mutex<HashMap<String, Arc<StateMachine>>>,
}

/// The States Language engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Default for Engine {
    fn default() -> Self {
        Self::new(EngineConfig::default())
    }
}

fn valid_name(name: &str) -> bool {
    // AWS: 1-80 characters, no whitespace, brackets, wildcards, special or control characters.
    !name.is_empty()
        && name.chars().count() <= 80
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c))
}

impl Engine {
    pub fn new(config: EngineConfig) -> Self {
        Self {
            inner: Arc::new(EngineInner {
                config,
                executions: Mutex::new(HashMap::new()),
                tokens: Mutex::new(HashMap::new()),
                machines: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The configuration the engine was built with.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// `arn:aws:states:<region>:<account>:stateMachine:<name>`.
    pub fn state_machine_arn(&self, name: &str) -> String {
        self.inner.config.state_machine_arn(name)
    }

    /// `arn:aws:states:<region>:<account>:execution:<machine>:<name>`: the ARN StartExecution
    /// gives an execution named `name`.
    pub fn execution_arn(&self, machine: &str, name: &str) -> String {
        self.inner.config.execution_arn(machine, name)
    }

    /// Makes a state machine startable by `states:startExecution` tasks (by name or ARN).
    pub fn register_state_machine(&self, machine: Arc<StateMachine>) {
        let arn = self.state_machine_arn(&machine.name);
        let mut m = lock(&self.inner.machines);
        m.insert(machine.name.clone(), machine.clone());
        m.insert(arn, machine);
    }

    /// A registered state machine by name or ARN.
    pub fn state_machine(&self, name_or_arn: &str) -> Option<Arc<StateMachine>> {
        lock(&self.inner.machines).get(name_or_arn).cloned()
    }

    /// StartExecution. Must be called inside a tokio runtime.
    ///
    /// As in AWS (standard workflows), starting a name that is still running with the same
    /// input returns the running execution; a different input, or a name whose execution has
    /// closed, is [`StartError::ExecutionAlreadyExists`].
    pub fn start_execution(
        &self,
        machine: Arc<StateMachine>,
        name: Option<String>,
        input: Value,
    ) -> Result<ExecutionHandle, StartError> {
        self.start_execution_with(machine, input, StartOptions { name, mocks: None })
    }

    /// StartExecution with per-execution options (mocks).
    pub fn start_execution_with(
        &self,
        machine: Arc<StateMachine>,
        input: Value,
        options: StartOptions,
    ) -> Result<ExecutionHandle, StartError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;
        let name = options
            .name
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if !valid_name(&name) {
            return Err(StartError::InvalidName(format!(
                "Invalid Name: '{name}' (1-80 characters, no whitespace or special characters)"
            )));
        }
        let c = &self.inner.config;
        let arn = self.execution_arn(&machine.name, &name);
        let record = {
            let mut executions = lock(&self.inner.executions);
            if let Some(existing) = executions.get(&arn) {
                let running = existing.outcome.borrow().is_none();
                if running && existing.input == input {
                    return Ok(ExecutionHandle {
                        record: existing.clone(),
                    });
                }
                return Err(StartError::ExecutionAlreadyExists(arn));
            }
            let (tx, _rx) = watch::channel(None);
            let record = Arc::new(ExecutionRecord {
                arn: arn.clone(),
                name,
                machine,
                input,
                start_date: c.clock.now(),
                history: Arc::new(HistoryLog::new(
                    arn.clone(),
                    c.history_sink.clone(),
                    c.keep_history,
                    0,
                )),
                outcome: tx,
                stop_date: Mutex::new(None),
                stop: Mutex::new(None),
                redrive_count: Mutex::new(0),
                redrive: Mutex::new(RedrivePoint::default()),
                mocks: options.mocks.or_else(|| c.mocks.clone()),
                orphaned: AtomicBool::new(false),
            });
            executions.insert(arn, record.clone());
            record
        };
        exec::launch(Arc::new(self.clone()), record.clone(), &runtime, None);
        Ok(ExecutionHandle { record })
    }

    /// Brings back an execution that another engine (another process) ran, from the host's
    /// checkpoints, so that [`Engine::redrive`] can continue it: from the last top-level state
    /// entered, with that state's input, a Map running only the iterations without a result.
    /// The history continues after `last_event_id`. An execution this engine already knows is
    /// returned as it is.
    ///
    /// A persisted status of RUNNING means the process running it died: the restored execution
    /// runs nowhere (it has no outcome to wait for) until it is redriven.
    pub fn restore(
        &self,
        machine: Arc<StateMachine>,
        persisted: PersistedExecution,
    ) -> ExecutionHandle {
        let c = &self.inner.config;
        let mut executions = lock(&self.inner.executions);
        if let Some(existing) = executions.get(&persisted.execution_arn) {
            return ExecutionHandle {
                record: existing.clone(),
            };
        }
        let running = persisted.status == ExecutionStatus::Running;
        let outcome = (!running).then(|| ExecutionOutcome {
            status: persisted.status,
            output: None,
            error: persisted.error.clone(),
            cause: persisted.cause.clone(),
        });
        let (tx, _rx) = watch::channel(outcome);
        let map_results = persisted.state.as_ref().and_then(|(state, _)| {
            (!persisted.map_results.is_empty())
                .then(|| (state.clone(), Arc::new(Mutex::new(persisted.map_results))))
        });
        let record = Arc::new(ExecutionRecord {
            arn: persisted.execution_arn.clone(),
            name: persisted.name,
            machine,
            input: persisted.input,
            start_date: persisted.start_date,
            history: Arc::new(HistoryLog::new(
                persisted.execution_arn.clone(),
                c.history_sink.clone(),
                c.keep_history,
                persisted.last_event_id,
            )),
            outcome: tx,
            stop_date: Mutex::new(persisted.stop_date),
            stop: Mutex::new(None),
            redrive_count: Mutex::new(persisted.redrive_count),
            redrive: Mutex::new(RedrivePoint {
                state: persisted.state,
                map_results,
            }),
            mocks: c.mocks.clone(),
            orphaned: AtomicBool::new(running),
        });
        executions.insert(persisted.execution_arn, record.clone());
        ExecutionHandle { record }
    }

    /// A handle on an existing execution.
    pub fn execution(&self, arn: &str) -> Option<ExecutionHandle> {
        lock(&self.inner.executions)
            .get(arn)
            .map(|r| ExecutionHandle { record: r.clone() })
    }

    /// ListExecutions: every execution this engine knows, most recently started first.
    pub fn list_executions(&self) -> Vec<ExecutionDescription> {
        let arns: Vec<String> = lock(&self.inner.executions).keys().cloned().collect();
        let mut out: Vec<ExecutionDescription> = arns
            .iter()
            .filter_map(|arn| self.describe_execution(arn).ok())
            .collect();
        out.sort_by(|a, b| b.start_date.cmp(&a.start_date).then(a.name.cmp(&b.name)));
        out
    }

    /// Drops a closed execution (and its history) from memory, for long-running hosts that
    /// persist histories through their [`crate::history::HistorySink`]. Running executions are kept; returns
    /// whether the execution was removed.
    pub fn forget_execution(&self, arn: &str) -> bool {
        let mut executions = lock(&self.inner.executions);
        let closed = executions
            .get(arn)
            .is_some_and(|r| r.outcome.borrow().is_some());
        if closed {
            executions.remove(arn);
        }
        closed
    }

    /// DescribeExecution.
    pub fn describe_execution(&self, arn: &str) -> Result<ExecutionDescription, ExecutionError> {
        let record = lock(&self.inner.executions)
            .get(arn)
            .cloned()
            .ok_or_else(|| ExecutionError::ExecutionDoesNotExist(arn.to_string()))?;
        let outcome = record.outcome.borrow().clone();
        Ok(ExecutionDescription {
            execution_arn: record.arn.clone(),
            state_machine_arn: self.state_machine_arn(&record.machine.name),
            name: record.name.clone(),
            status: outcome
                .as_ref()
                .map(|o| o.status)
                .unwrap_or(ExecutionStatus::Running),
            input: record.input.clone(),
            output: outcome.as_ref().and_then(|o| o.output.clone()),
            error: outcome.as_ref().and_then(|o| o.error.clone()),
            cause: outcome.as_ref().and_then(|o| o.cause.clone()),
            start_date: record.start_date,
            stop_date: *lock(&record.stop_date),
            redrive_count: *lock(&record.redrive_count),
        })
    }

    /// StopExecution: the execution ends ABORTED with the given error and cause. Stopping an
    /// execution that has already ended is a no-op, as in AWS.
    pub fn stop_execution(
        &self,
        arn: &str,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<(), ExecutionError> {
        let record = lock(&self.inner.executions)
            .get(arn)
            .cloned()
            .ok_or_else(|| ExecutionError::ExecutionDoesNotExist(arn.to_string()))?;
        if let Some(tx) = lock(&record.stop).take() {
            let _ = tx.send((error, cause));
        }
        Ok(())
    }

    /// RedriveExecution: restarts a FAILED, TIMED_OUT or ABORTED execution from the top-level
    /// state that was running when it stopped, with that state's input. A top-level Map re-runs
    /// only the iterations that did not succeed. The ARN stays the same; the history continues
    /// with an `ExecutionRedriven` event and `$$.Execution.RedriveCount` goes up by one.
    pub fn redrive(&self, arn: &str) -> Result<ExecutionHandle, ExecutionError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| ExecutionError::NoRuntime)?;
        let record = lock(&self.inner.executions)
            .get(arn)
            .cloned()
            .ok_or_else(|| ExecutionError::ExecutionDoesNotExist(arn.to_string()))?;
        let status = record
            .outcome
            .borrow()
            .as_ref()
            .map(|o| o.status)
            .unwrap_or(ExecutionStatus::Running);
        let orphaned = record.orphaned.load(Ordering::SeqCst);
        if status == ExecutionStatus::Succeeded || (status == ExecutionStatus::Running && !orphaned)
        {
            return Err(ExecutionError::ExecutionNotRedrivable(
                arn.to_string(),
                status,
            ));
        }
        if orphaned && record.orphaned.swap(false, Ordering::SeqCst) != orphaned {
            // Another caller redrove the orphan first.
            return Err(ExecutionError::ExecutionNotRedrivable(
                arn.to_string(),
                ExecutionStatus::Running,
            ));
        }
        let point = lock(&record.redrive).clone();
        {
            let mut n = lock(&record.redrive_count);
            *n += 1;
        }
        *lock(&record.stop_date) = None;
        record.outcome.send_replace(None);
        exec::launch(
            Arc::new(self.clone()),
            record.clone(),
            &runtime,
            Some(point),
        );
        Ok(ExecutionHandle { record })
    }

    fn deliver(&self, token: &str, msg: TokenMessage, closes: bool) -> Result<(), CallbackError> {
        let mut tokens = lock(&self.inner.tokens);
        match tokens.get_mut(token) {
            None => Err(CallbackError::InvalidToken(token.to_string())),
            Some(TokenSlot::Closed) => Err(CallbackError::TaskTimedOut(token.to_string())),
            Some(TokenSlot::Open(tx)) => {
                let delivery = TokenDelivery {
                    message: msg,
                    work: WorkMark::new(self.inner.config.clock.clone()),
                };
                if tx.send(delivery).is_err() {
                    // The waiting task is gone (execution stopped or timed out).
                    tokens.insert(token.to_string(), TokenSlot::Closed);
                    return Err(CallbackError::TaskTimedOut(token.to_string()));
                }
                if closes {
                    tokens.insert(token.to_string(), TokenSlot::Closed);
                }
                Ok(())
            }
        }
    }

    /// SendTaskSuccess.
    pub fn send_task_success(&self, token: &str, output: Value) -> Result<(), CallbackError> {
        self.deliver(token, TokenMessage::Success(output), true)
    }

    /// SendTaskFailure: the task fails with `error` and `cause` (Retry/Catch match `error`).
    pub fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), CallbackError> {
        self.deliver(
            token,
            TokenMessage::Failure(StatesError::new(error, cause)),
            true,
        )
    }

    /// SendTaskHeartbeat: restarts the task's HeartbeatSeconds countdown.
    pub fn send_task_heartbeat(&self, token: &str) -> Result<(), CallbackError> {
        self.deliver(token, TokenMessage::Heartbeat, false)
    }
}

/// The engine as the interpreter sees it.
impl Host for Engine {
    fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    fn issue_token(&self) -> (String, mpsc::UnboundedReceiver<TokenDelivery>) {
        let token = format!("sluice-tt-{}", uuid::Uuid::new_v4().simple());
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.inner.tokens).insert(token.clone(), TokenSlot::Open(tx));
        (token, rx)
    }

    /// Later callbacks get [`CallbackError::TaskTimedOut`].
    fn close_token(&self, token: &str) {
        if let Some(slot) = lock(&self.inner.tokens).get_mut(token) {
            *slot = TokenSlot::Closed;
        }
    }

    fn state_machine(&self, name_or_arn: &str) -> Option<Arc<StateMachine>> {
        Engine::state_machine(self, name_or_arn)
    }

    fn start_execution(
        &self,
        machine: Arc<StateMachine>,
        input: Value,
        name: Option<String>,
        mocks: Option<Arc<dyn TaskMocks>>,
    ) -> Result<Arc<ExecutionRecord>, StatesError> {
        self.start_execution_with(machine, input, StartOptions { name, mocks })
            .map(|h| h.record)
            .map_err(|e| {
                StatesError::new(
                    "StepFunctions.ExecutionAlreadyExistsException",
                    e.to_string(),
                )
            })
    }

    fn stop_execution(&self, arn: &str, error: Option<String>, cause: Option<String>) {
        // A missing execution is nothing to stop.
        let _ = Engine::stop_execution(self, arn, error, cause);
    }
}
