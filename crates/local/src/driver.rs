//! Who drives a job: the one `sluice` process that runs its execution, and what happens when
//! that process is gone.
//!
//! A process that starts or redrives a job's execution holds an exclusive lock on
//! `locks/<job>.lock` (holding its pid) until the execution has ended and its end has been
//! handled. The kernel drops the lock when the process dies, however it dies, so "RUNNING in the
//! job table and nobody holds the lock" is exactly a job whose process died: `sluice redrive`
//! and `sluice serve` continue such jobs, and a job whose lock is held is never driven twice.
//!
//! When an execution ends, its driver emits the "Step Functions Execution Status Change" event
//! that EventBridge emits on AWS, and hands it to the same targets the stack's rule has: the
//! execution-events handler (stops the job's tasks, records the job, releases its capacity) and,
//! for ABORTED and TIMED_OUT, the notification topic. Only then is the execution *settled*.
//!
//! `sluice cancel` from another process cannot reach the engine that runs the job; it leaves a
//! cancel request in the job table, which the driving process takes within
//! [`CANCEL_POLL`] and turns into StopExecution.

use crate::journal::Journal;
use crate::runtime::{LocalBus, SnsToFile, lock, route};
use crate::store::SqliteJobStore;
use serde_json::{Value, json};
use sluice_asl::{Engine, ExecutionHandle, ExecutionOutcome, ExecutionStatus, StateMachine};
use sluice_core::events::SFN_EXECUTION_STATUS_CHANGE;
use sluice_core::interrupt::interrupt_job;
use sluice_core::{Interruption, JobId, JobState, Services};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// How often a driving process looks for cancel requests from other processes.
pub const CANCEL_POLL: Duration = Duration::from_millis(250);
pub use sluice_core::control::CANCELLED_ERROR;

/// Who drives a job's execution right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Driver {
    /// This process.
    ThisProcess,
    /// Another live process, by pid.
    Process(u32),
    /// No live process: the job is not running, or the process running it died.
    Nobody,
}

/// Why a redrive or cancel was refused.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error("no job '{0}' in this work directory")]
    UnknownJob(String),
    #[error("job {0} has no execution to continue (it was rejected before its execution started)")]
    NoExecution(String),
    #[error("job {0} already SUCCEEDED: there is nothing to redrive")]
    Succeeded(String),
    #[error(
        "job {job} is RUNNING under a live process (pid {pid}); wait for it, or stop it with `sluice cancel {job}`"
    )]
    DrivenElsewhere { job: String, pid: u32 },
    #[error("job {0} is already {1}: there is nothing to cancel")]
    AlreadyFinal(String, &'static str),
    #[error("job {job}: {message}")]
    Engine { job: String, message: String },
    #[error(transparent)]
    Store(#[from] sluice_core::StoreError),
    #[error("{0}")]
    Io(String),
}

/// A redrive that started.
#[derive(Debug, Clone)]
pub struct RedriveStarted {
    pub execution_arn: String,
    pub redrive_count: u32,
    /// The top-level state it continues from.
    pub from_state: Option<String>,
    /// Map iterations whose results were kept (they do not run again).
    pub kept_results: usize,
    /// Attempts that were left unfinished by a dead process and are now INTERRUPTED.
    pub interrupted: usize,
}

/// What `cancel` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Cancelled {
    /// This process stopped the execution and handled its end.
    Here,
    /// The process driving it (pid) took the request and the job is now final.
    ByDriver(u32),
    /// The process driving it died: this process recorded the abort.
    Orphan,
}

/// The lock that makes a process the driver of a job (released when dropped).
pub struct Claim {
    #[allow(dead_code)] // held for its lock
    file: File,
}

pub(crate) struct Driven {
    pub(crate) job: String,
    /// Held until the execution has settled; dropping it unlocks the job.
    claim: Option<Claim>,
    pub(crate) settled: watch::Receiver<Option<ExecutionOutcome>>,
}

/// The executions this process drives, and the way to the others.
pub(crate) struct Drivers {
    pub(crate) locks: PathBuf,
    pub(crate) engine: Engine,
    pub(crate) journal: Journal,
    pub(crate) store: SqliteJobStore,
    pub(crate) notifications: Arc<SnsToFile>,
    /// Where every event is logged (`events.jsonl`).
    pub(crate) bus: Arc<LocalBus>,
    pub(crate) services: OnceLock<Services>,
    pub(crate) driven: Mutex<HashMap<String, Driven>>,
}

impl Drivers {
    /// Becomes the driver of `job`, or says who is.
    pub(crate) fn claim(&self, job: &str) -> Result<Claim, RedriveError> {
        claim(&self.locks, job)
    }

    pub(crate) fn driver_of(&self, job: &str) -> Driver {
        if lock(&self.driven).values().any(|d| d.job == job) {
            return Driver::ThisProcess;
        }
        match self.claim(job) {
            Ok(_claim) => Driver::Nobody,
            Err(RedriveError::DrivenElsewhere { pid, .. }) => Driver::Process(pid),
            Err(_) => Driver::Nobody,
        }
    }

    pub(crate) fn settled(&self, arn: &str) -> Option<ExecutionOutcome> {
        lock(&self.driven)
            .get(arn)
            .and_then(|d| d.settled.borrow().clone())
    }

    /// Follows an execution this process started or redrove until it has ended and its end
    /// has been handled; then lets go of the job.
    pub(crate) fn drive(self: &Arc<Self>, handle: ExecutionHandle, job: &str, claim: Claim) {
        let (tx, rx) = watch::channel(None);
        lock(&self.driven).insert(
            handle.arn().to_string(),
            Driven {
                job: job.to_string(),
                claim: Some(claim),
                settled: rx,
            },
        );
        let drivers = self.clone();
        tokio::spawn(async move {
            let outcome = handle.wait().await;
            drivers.journal.flushed().await;
            if matches!(
                outcome.status,
                ExecutionStatus::Aborted | ExecutionStatus::TimedOut | ExecutionStatus::Failed
            ) {
                let redrives = drivers
                    .engine
                    .describe_execution(handle.arn())
                    .map(|d| d.redrive_count)
                    .unwrap_or(0);
                let event = status_change_event(
                    &drivers.engine,
                    handle.arn(),
                    handle.name(),
                    outcome.status,
                    outcome.error.as_deref(),
                    outcome.cause.as_deref(),
                    redrives,
                );
                drivers.deliver_status_change(event).await;
            }
            // Settled means committed: whoever reads the job next, in this process or another
            // (a redrive once the lock is let go), sees how it ended.
            if let Err(e) = drivers.store.flushed().await {
                tracing::error!(error = %e, "could not commit the job table");
            }
            tx.send_replace(Some(outcome));
            // Let go of the job (the lock) only after the end is handled; keep the settled
            // outcome for whoever follows it.
            if let Some(d) = lock(&drivers.driven).get_mut(handle.arn()) {
                d.claim.take();
            }
        });
    }

    /// The stack's rule on "Step Functions Execution Status Change": the execution-events
    /// handler, and the notification topic for ABORTED and TIMED_OUT. Retried like an
    /// EventBridge target.
    async fn deliver_status_change(&self, event: Value) {
        let Some(services) = self.services.get() else {
            return;
        };
        self.bus.log(&event);
        let status = event["detail"]["status"].as_str().unwrap_or("").to_string();
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=4 {
            match route(services, &event).await {
                Ok(report) => {
                    tracing::info!(%report, "execution event handled");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "execution event delivery failed");
                    tokio::time::sleep(delay).await;
                    delay *= 4;
                }
            }
        }
        if status == "ABORTED" || status == "TIMED_OUT" {
            let job = event["detail"]["name"].as_str().unwrap_or("?");
            let message = json!({
                "jobId": job,
                "status": status,
                "executionArn": event["detail"]["executionArn"],
                "error": event["detail"]["error"],
                "cause": event["detail"]["cause"],
            });
            let publish = json!({
                "TopicArn": crate::runtime::NOTIFICATION_TOPIC_ARN,
                "Subject": format!("sluice job {job}"),
                "Message": message.to_string(),
            });
            if let Err(e) = self.notifications.publish(publish) {
                tracing::error!(error = %e, "could not write the notification");
            }
        }
    }

    /// The runtime's ports and the job, or why not.
    async fn job(&self, id: &JobId) -> Result<(&Services, sluice_core::Job), RedriveError> {
        let services = self
            .services
            .get()
            .ok_or_else(|| RedriveError::Io("the runtime is still starting".into()))?;
        let job = services
            .jobs
            .get_job(id)
            .await?
            .ok_or_else(|| RedriveError::UnknownJob(id.to_string()))?;
        Ok((services, job))
    }

    /// See [`crate::LocalRuntime::redrive`].
    pub(crate) async fn redrive(
        self: &Arc<Self>,
        machine: &Arc<StateMachine>,
        job_id: &JobId,
    ) -> Result<RedriveStarted, RedriveError> {
        let (services, job) = self.job(job_id).await?;
        if job.state == JobState::Succeeded {
            return Err(RedriveError::Succeeded(job.id.to_string()));
        }
        let claim = self.claim(job.id.as_str())?;
        let arn = job
            .execution_arn
            .clone()
            .ok_or_else(|| RedriveError::NoExecution(job.id.to_string()))?;
        // What this process ran last may still be in the journal's queue.
        self.journal.flushed().await;
        let mut persisted = self
            .store
            .persisted_execution(&arn)?
            .ok_or_else(|| RedriveError::NoExecution(job.id.to_string()))?;
        // An execution that ended in a Fail state (the pipeline's own failure path: tasks
        // failed, or a step's error was caught and recorded) would only fail there again.
        // Continue the job instead from the start, with its input: every step is idempotent,
        // finished tasks are reported straight back and failed ones run again.
        let ended_in_fail_state = persisted.state.as_ref().is_some_and(|(name, _)| {
            machine
                .graph
                .state(name)
                .is_some_and(|st| matches!(st.kind, sluice_asl::model::StateKind::Fail(_)))
        });
        if ended_in_fail_state {
            persisted.state = None;
            persisted.map_results.clear();
            // If this process ran it, the engine still holds it with its own redrive point
            // (the Fail state): let go of it so that the adjusted checkpoint is what continues.
            self.engine.forget_execution(&arn);
        }
        // Attempts a dead process left LAUNCHING or RUNNING: its tasks died with it (or are
        // stopped now). Retried as a lost host, never against the application-error budget.
        let interrupted = interrupt_job(
            services,
            &job.id,
            None,
            Interruption::RunnerLost,
            "the sluice process running the job stopped before the attempt ended",
        )
        .await?;
        let redrive_count = persisted.redrive_count + 1;
        let from_state = persisted.state.as_ref().map(|(s, _)| s.clone());
        let kept_results = persisted.map_results.iter().flatten().count();
        // The job counts the redrive (and gets its capacity back) before anything runs.
        let running = status_change_event(
            &self.engine,
            &arn,
            &persisted.name,
            ExecutionStatus::Running,
            None,
            None,
            redrive_count,
        );
        self.bus.log(&running);
        route(services, &running)
            .await
            .map_err(|e| RedriveError::Engine {
                job: job.id.to_string(),
                message: e.to_string(),
            })?;
        self.engine.restore(machine.clone(), persisted);
        let handle = self
            .engine
            .redrive(&arn)
            .map_err(|e| RedriveError::Engine {
                job: job.id.to_string(),
                message: e.to_string(),
            })?;
        self.drive(handle, job.id.as_str(), claim);
        Ok(RedriveStarted {
            execution_arn: arn,
            redrive_count,
            from_state,
            kept_results,
            interrupted: interrupted.attempts.len(),
        })
    }

    /// See [`crate::LocalRuntime::cancel`].
    pub(crate) async fn cancel(
        self: &Arc<Self>,
        job_id: &JobId,
        reason: &str,
    ) -> Result<Cancelled, RedriveError> {
        let (services, job) = self.job(job_id).await?;
        if job.state.is_final() {
            return Err(RedriveError::AlreadyFinal(
                job.id.to_string(),
                job.state.as_str(),
            ));
        }
        let arn = job.execution_arn.clone();
        let here = arn
            .as_deref()
            .filter(|a| lock(&self.driven).contains_key(*a));
        if let Some(arn) = here {
            let _ = self.engine.stop_execution(
                arn,
                Some(CANCELLED_ERROR.into()),
                Some(reason.to_string()),
            );
            return Ok(Cancelled::Here);
        }
        match self.claim(job.id.as_str()) {
            Err(RedriveError::DrivenElsewhere { pid, .. }) => {
                self.store.request_cancel(&job.id, reason)?;
                // The driver takes the request within CANCEL_POLL and then stops the tasks
                // (up to their stop grace period).
                for _ in 0..240 {
                    tokio::time::sleep(CANCEL_POLL).await;
                    let now = services.jobs.get_job(&job.id).await?;
                    if now.is_some_and(|j| j.state.is_final()) {
                        return Ok(Cancelled::ByDriver(pid));
                    }
                }
                Err(RedriveError::Io(format!(
                    "asked process {pid} to cancel job {}, but the job is not final after 60 s",
                    job.id
                )))
            }
            Err(e) => Err(e),
            Ok(_claim) => {
                // Nobody drives it: record the abort here, as the driver would have.
                let (name, redrives) = match &arn {
                    Some(a) => match self.store.persisted_execution(a)? {
                        Some(p) => {
                            self.journal_abort(a, &p, reason).await;
                            (p.name, p.redrive_count)
                        }
                        None => (job.id.to_string(), job.redrive_count),
                    },
                    None => (job.id.to_string(), job.redrive_count),
                };
                let event = status_change_event(
                    &self.engine,
                    arn.as_deref().unwrap_or(""),
                    &name,
                    ExecutionStatus::Aborted,
                    Some(CANCELLED_ERROR),
                    Some(reason),
                    redrives,
                );
                self.deliver_status_change(event).await;
                Ok(Cancelled::Orphan)
            }
        }
    }

    /// Records that an orphaned execution was aborted: its status in the journal and an
    /// `ExecutionAborted` event at the end of its history.
    async fn journal_abort(&self, arn: &str, p: &sluice_asl::PersistedExecution, reason: &str) {
        use sluice_asl::CheckpointSink;
        let now = chrono::Utc::now();
        let event = json!({
            "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "type": "ExecutionAborted",
            "id": p.last_event_id + 1,
            "previousEventId": p.last_event_id,
            "executionAbortedEventDetails": {"error": CANCELLED_ERROR, "cause": reason},
        });
        if let Err(e) = self.store.append_history(arn, p.last_event_id + 1, &event) {
            tracing::error!(error = %e, "could not record ExecutionAborted");
        }
        self.journal.execution_closed(
            arn,
            &ExecutionOutcome {
                status: ExecutionStatus::Aborted,
                output: None,
                error: Some(CANCELLED_ERROR.into()),
                cause: Some(reason.into()),
            },
            now,
        );
        self.journal.flushed().await;
    }
}

/// Becomes the driver of `job` (the lock `locks/<job>.lock` under the work directory's
/// `locks_dir`), or says which live process is.
pub fn claim(locks_dir: &Path, job: &str) -> Result<Claim, RedriveError> {
    std::fs::create_dir_all(locks_dir)
        .map_err(|e| RedriveError::Io(format!("{}: {e}", locks_dir.display())))?;
    let path = locks_dir.join(format!("{job}.lock"));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| RedriveError::Io(format!("{}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => {
            let _ = file.set_len(0);
            let _ = file.rewind();
            let _ = write!(file, "{}", std::process::id());
            let _ = file.flush();
            Ok(Claim { file })
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Err(RedriveError::DrivenElsewhere {
                job: job.to_string(),
                pid: text.trim().parse().unwrap_or(0),
            })
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(RedriveError::Io(format!("locking {}: {e}", path.display())))
        }
    }
}

/// The pid of the live process driving `job` in the work directory `workdir`, if any.
pub fn live_driver(workdir: &Path, job: &str) -> Option<u32> {
    match claim(&workdir.join("locks"), job) {
        Err(RedriveError::DrivenElsewhere { pid, .. }) => Some(pid),
        _ => None,
    }
}

/// The "Step Functions Execution Status Change" event EventBridge delivers for `arn`.
pub(crate) fn status_change_event(
    engine: &Engine,
    arn: &str,
    name: &str,
    status: ExecutionStatus,
    error: Option<&str>,
    cause: Option<&str>,
    redrive_count: u32,
) -> Value {
    let described = engine.describe_execution(arn).ok();
    let now = chrono::Utc::now();
    let machine_arn = arn
        .rsplit_once(':')
        .map(|(prefix, _)| prefix.replacen(":execution:", ":stateMachine:", 1))
        .unwrap_or_default();
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": SFN_EXECUTION_STATUS_CHANGE,
        "source": "aws.states",
        "account": "000000000000",
        "time": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "local",
        "resources": [arn],
        "detail": {
            "executionArn": arn,
            "stateMachineArn": machine_arn,
            "name": name,
            "status": status.as_str(),
            "startDate": described.as_ref().map(|d| d.start_date.timestamp_millis()),
            // When the execution stopped, not when this event was made: execution-events
            // stops only what was started by then (see its module doc).
            "stopDate": (status != ExecutionStatus::Running).then(|| {
                described
                    .as_ref()
                    .and_then(|d| d.stop_date)
                    .unwrap_or(now)
                    .timestamp_millis()
            }),
            "input": described.as_ref().map(|d| d.input.to_string()),
            "inputDetails": {"included": true},
            "output": null,
            "outputDetails": null,
            "error": error,
            "cause": cause,
            "redriveCount": redrive_count,
        }
    })
}

/// Takes cancel requests for the jobs this process drives, until the runtime is dropped.
pub(crate) async fn take_cancel_requests(drivers: Weak<Drivers>) {
    loop {
        tokio::time::sleep(CANCEL_POLL).await;
        let Some(d) = drivers.upgrade() else {
            return;
        };
        let driven: Vec<(String, String)> = lock(&d.driven)
            .iter()
            .filter(|(_, x)| x.settled.borrow().is_none())
            .map(|(arn, x)| (x.job.clone(), arn.clone()))
            .collect();
        if driven.is_empty() {
            continue;
        }
        let jobs: Vec<String> = driven.iter().map(|(j, _)| j.clone()).collect();
        match d.store.take_cancel_requests(&jobs) {
            Ok(requests) => {
                for (job, reason) in requests {
                    if let Some((_, arn)) = driven.iter().find(|(j, _)| j == job.as_str()) {
                        let _ = d.engine.stop_execution(
                            arn,
                            Some(CANCELLED_ERROR.into()),
                            Some(reason),
                        );
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read cancel requests"),
        }
    }
}
