//! Execution events: what happens to a job when its execution ends without running the
//! pipeline's own failure path.
//!
//! An execution that is stopped (StopExecution, the console's "Stop", `sluice cancel`, Ctrl-C
//! of `sluice run`) or times out runs no Catch: without this handler its tasks would keep
//! running, its capacity lease would be held forever and the job would stay RUNNING. The
//! handler gets "Step Functions Execution Status Change" events (an EventBridge rule on AWS, the
//! local runtime's bus on one machine):
//!
//! - ABORTED, TIMED_OUT, FAILED: every live attempt of the job is stopped on compute and recorded
//!   INTERRUPTED (`JobStopped`), the job's lease is released (the cluster scales down), and the
//!   job is recorded ABORTED (stopped) or FAILED (timed out, or failed without recording why).
//!   A job the pipeline already recorded keeps its outcome.
//! - RUNNING with a redrive count above the job's: a redrive started outside `sluice redrive`
//!   (the console's "Redrive"); the job is RUNNING again and counts the redrive.
//! - Anything older than the job's latest redrive, or from an execution the job has moved on
//!   from (a re-run), is stale and changes nothing, so events may arrive late, twice or out of
//!   order.
//!
//! The check that an event is not stale is a read, and a re-run or redrive may start between
//! that read and the writes: the end of the run before would then stop the new run's tasks,
//! take its capacity (its execution waiting forever for slots) and fail the job under it. So
//! each write holds its own condition: attempts are stopped and the lease released only if
//! they were started or acquired by the time the execution stopped (`stopDate`), and the job
//! is recorded only while it is still on this run ([`ExecutionRun`]).

use serde::Serialize;
use serde_json::Value;
use sluice_core::error::StepError;
use sluice_core::events::{
    EventEnvelope, ExecutionStatus, ExecutionStatusChange, SFN_EXECUTION_STATUS_CHANGE,
};
use sluice_core::interrupt::interrupt_job;
use sluice_core::model::{ExecutionRun, JobUpdate, Lease};
use sluice_core::ports::PortCall;
use sluice_core::ports::Transition;
use sluice_core::{Interruption, JobState, Services};

/// Every port call this handler's code can make (see [`PortCall`]): the IAM permission
/// contract test derives the function's role from this list, and the decision tests refuse
/// any other call.
pub const PORT_CALLS: &[PortCall] = &[
    PortCall::ObjectGet,
    PortCall::PipelineGet,
    PortCall::JobRead,
    PortCall::JobUpdate,
    PortCall::ComputeStop,
    PortCall::CapacityLease,
];

/// What the handler did; `sluice invoke execution-events` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionEventReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    pub status: ExecutionStatus,
    /// What was done, in words.
    pub action: String,
    /// The job's state afterwards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_state: Option<JobState>,
    /// Attempts stopped.
    pub interrupted: u32,
}

pub fn parse(event: Value) -> Result<ExecutionStatusChange, StepError> {
    let envelope: EventEnvelope<Value> = serde_json::from_value(event).map_err(|e| {
        StepError::invalid_input(format!("execution-events: not an EventBridge event: {e}"))
    })?;
    if envelope.detail_type != SFN_EXECUTION_STATUS_CHANGE {
        return Err(StepError::invalid_input(format!(
            "execution-events: unsupported event type '{}'",
            envelope.detail_type
        )));
    }
    serde_json::from_value(envelope.detail).map_err(|e| {
        StepError::invalid_input(format!(
            "execution-events: malformed Execution Status Change detail: {e}"
        ))
    })
}

pub async fn handle(services: &Services, event: Value) -> Result<ExecutionEventReport, StepError> {
    let detail = parse(event)?;
    let mut report = ExecutionEventReport {
        job_id: None,
        status: detail.status,
        action: String::new(),
        job_state: None,
        interrupted: 0,
    };
    let Some(job_id) = detail.job_id() else {
        report.action = "ignored: the execution names no sluice job".into();
        return Ok(report);
    };
    report.job_id = Some(job_id.to_string());
    let Some(job) = services.jobs.get_job(&job_id).await? else {
        report.action = format!("ignored: no job '{job_id}'");
        return Ok(report);
    };
    report.job_state = Some(job.state);
    // A re-run (a new execution with the job's input, as from the console) records its own
    // execution on the job: the events of the execution before it are stale, however late
    // they come.
    if let Some(current) = job.execution_arn.as_deref()
        && current != detail.execution_arn
    {
        report.action = format!(
            "ignored: stale event of execution {} (the job's execution is now {current})",
            detail.execution_arn
        );
        return Ok(report);
    }
    if detail.redrive_count < job.redrive_count {
        report.action = format!(
            "ignored: stale event of run {} (the job has been redriven {} times)",
            detail.redrive_count, job.redrive_count
        );
        return Ok(report);
    }
    let (to, reason) = match detail.status {
        ExecutionStatus::Succeeded | ExecutionStatus::PendingRedrive => {
            report.action = "ignored: nothing to do for this status".into();
            return Ok(report);
        }
        ExecutionStatus::Running => {
            if detail.redrive_count == job.redrive_count {
                report.action = "ignored: the job already counts this run".into();
                return Ok(report);
            }
            let update = JobUpdate {
                redrive_count: Some(detail.redrive_count),
                execution_arn: Some(detail.execution_arn.clone()),
                ..Default::default()
            };
            let t = services
                .jobs
                .transition_job(&job.id, JobState::Running, update)
                .await?;
            // A redrive that continues after ScaleUp needs the capacity the job had; its lease
            // may have been released when the execution stopped. Acquiring is idempotent.
            if t.applied() && job.task_count > 0 {
                let pipeline = services.job_pipeline(&job).await?;
                let lease = Lease {
                    job_id: job.id.clone(),
                    slots: pipeline.parallelism.max.min(job.task_count).max(1),
                    acquired_at: chrono::Utc::now(),
                };
                services.capacity.acquire(&lease).await?;
            }
            report.action = match &t {
                Transition::Applied(_) => format!(
                    "job RUNNING again (redrive {}), capacity leased",
                    detail.redrive_count
                ),
                Transition::Rejected(j) => format!("ignored: job is {}", j.state.as_str()),
                Transition::Missing => "ignored: the job vanished".into(),
            };
            report.job_state = job_state(&t).or(report.job_state);
            return Ok(report);
        }
        ExecutionStatus::Aborted => (
            JobState::Aborted,
            format!(
                "the execution was stopped{}",
                explain(detail.error.as_deref(), detail.cause.as_deref())
            ),
        ),
        ExecutionStatus::TimedOut => (
            JobState::Failed,
            format!(
                "the execution timed out{}",
                explain(detail.error.as_deref(), detail.cause.as_deref())
            ),
        ),
        ExecutionStatus::Failed => (
            JobState::Failed,
            format!(
                "the execution failed{}",
                explain(detail.error.as_deref(), detail.cause.as_deref())
            ),
        ),
    };
    // What this run started: everything up to the end of the millisecond it stopped in
    // (`stopDate` has milliseconds; an attempt it launched in its last one is its own). An
    // event without one (not sent by Step Functions) bounds nothing.
    let stopped_by = detail
        .stop_date
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|ms| ms + chrono::Duration::nanoseconds(999_999));
    // Stop the tasks first: a task must not run on for a job that is over.
    let interrupted = interrupt_job(
        services,
        &job.id,
        stopped_by,
        Interruption::JobStopped,
        &reason,
    )
    .await?;
    for e in &interrupted.stop_errors {
        tracing::warn!(job = %job.id, error = %e, "a task may still be running");
    }
    report.interrupted = interrupted.attempts.len() as u32;
    services.capacity.release(&job.id, stopped_by).await?;
    let run = ExecutionRun {
        execution_arn: detail.execution_arn.clone(),
        redrive_count: detail.redrive_count,
    };
    let t = services
        .jobs
        .transition_job(
            &job.id,
            to,
            JobUpdate {
                reason: Some(reason.clone()),
                only_in_run: Some(run.clone()),
                ..Default::default()
            },
        )
        .await?;
    report.job_state = job_state(&t).or(report.job_state);
    if let Transition::Applied(j) = &t {
        let tally = services.jobs.tally_tasks(&j.id).await?;
        let succeeded = tally.in_state(sluice_core::TaskState::Succeeded);
        let delivered =
            sluice_core::notify::announce(services, j, tally.total().tasks, succeeded).await;
        for failure in &delivered.failed {
            tracing::warn!(job = %j.id, %failure, "notification not delivered");
        }
    }
    report.action = match &t {
        Transition::Applied(j) => format!(
            "job {}: {reason}; {} attempt(s) stopped, capacity released",
            j.state.as_str(),
            report.interrupted
        ),
        Transition::Rejected(j) if !run.is_current_for(j) => format!(
            "job left as it is: a newer run started meanwhile ({} attempt(s) of this run \
             stopped; a lease acquired since it stopped kept)",
            report.interrupted
        ),
        Transition::Rejected(j) => format!(
            "job already {} (kept); {} attempt(s) stopped, capacity released",
            j.state.as_str(),
            report.interrupted
        ),
        Transition::Missing => "the job vanished".into(),
    };
    tracing::info!(job = %job.id, status = detail.status.as_str(), action = %report.action, "execution event");
    Ok(report)
}

fn job_state(t: &Transition<sluice_core::Job>) -> Option<JobState> {
    match t {
        Transition::Applied(j) | Transition::Rejected(j) => Some(j.state),
        Transition::Missing => None,
    }
}

fn explain(error: Option<&str>, cause: Option<&str>) -> String {
    match (error, cause) {
        (Some(e), Some(c)) if !c.is_empty() => format!(" ({e}: {c})"),
        (Some(e), _) => format!(" ({e})"),
        (None, Some(c)) if !c.is_empty() => format!(" ({c})"),
        _ => String::new(),
    }
}
