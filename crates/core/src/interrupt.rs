//! Stopping attempts that must not run on: sluice's side of "nothing is done twice".
//!
//! An attempt is *live* while it is LAUNCHING or RUNNING. Three things end live attempts that
//! their container did not end itself, each with its [`Interruption`]:
//!
//! - the process that ran the job died, and a new one continues the job (`RunnerLost`);
//! - the job's execution was stopped, aborted or timed out (`JobStopped`);
//! - a newer attempt of the same task is being launched, because the Task state timed out or
//!   its callback was lost (`Superseded`).
//!
//! Each live attempt is moved to INTERRUPTED with a conditional write (so its STOPPED event
//! finds it final and changes nothing), then stopped on compute (a no-op for a process that is
//! already gone), and its task, if still RUNNING, goes to RETRYING: the next
//! launch or redrive runs it again without spending the application-error budget. A task that
//! SUCCEEDED is never touched.

use crate::error::StoreError;
use crate::ids::{JobId, TaskId};
use crate::model::{Attempt, AttemptState, AttemptUpdate, Interruption, TaskState};
use crate::ports::{Services, TaskUpdate, Transition};
use chrono::{DateTime, Utc};

/// Attempts that were live and are now INTERRUPTED.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Interrupted {
    pub attempts: Vec<Attempt>,
    /// Live attempts whose stop on compute failed (they were still recorded INTERRUPTED; the
    /// error says why the container may still be running).
    pub stop_errors: Vec<String>,
}

/// The attempts of `task` that are still live, oldest first.
pub async fn live_attempts(
    services: &Services,
    job: &JobId,
    task: &TaskId,
) -> Result<Vec<Attempt>, StoreError> {
    Ok(services
        .jobs
        .list_attempts(job, task)
        .await?
        .into_iter()
        .filter(|a| !a.state.is_final())
        .collect())
}

/// Interrupts the given live attempts (see the module doc). `detail` is the human reason
/// recorded on each attempt and task.
pub async fn interrupt(
    services: &Services,
    attempts: Vec<Attempt>,
    why: Interruption,
    detail: &str,
) -> Result<Interrupted, StoreError> {
    let mut out = Interrupted::default();
    for attempt in attempts {
        if attempt.state.is_final() {
            continue;
        }
        // Record the interruption before stopping: the container's STOPPED event, which may
        // arrive while the stop is still waiting for it, must find the attempt final and not
        // take the kill for an application error.
        let update = AttemptUpdate {
            stop_code: Some(why.as_str().to_string()),
            stopped_reason: Some(detail.to_string()),
            stopped_at: Some(Utc::now()),
            ..Default::default()
        };
        let applied = services
            .jobs
            .transition_attempt(&attempt.key, AttemptState::Interrupted, update)
            .await?;
        let Transition::Applied(attempt) = applied else {
            // It reached a final state on its own meanwhile: that outcome stands.
            continue;
        };
        if let Some(id) = &attempt.compute_id
            && let Err(e) = services.compute.stop(id, detail).await
        {
            out.stop_errors
                .push(format!("attempt {}: stopping {id}: {e}", attempt.key));
        }
        services
            .jobs
            .transition_task(
                &attempt.key.job_id,
                &attempt.key.task_id,
                TaskState::Retrying,
                TaskUpdate {
                    last_error: Some(Some(format!(
                        "attempt {} interrupted ({}): {detail}",
                        attempt.key,
                        why.as_str()
                    ))),
                    ..Default::default()
                },
            )
            .await?;
        out.attempts.push(attempt);
    }
    Ok(out)
}

/// Interrupts every live attempt of the job. Any task but a SUCCEEDED one can have one: a task
/// the state machine gave up on (its Task state timed out for good) is recorded FAILED by the
/// aggregate step while its last attempt may still run.
///
/// With `started_by`, only attempts started at or before that time: the end of one run of the
/// job stops what that run started, not the attempts of a newer run (a re-run, a redrive)
/// that began after it, however late its event is handled.
pub async fn interrupt_job(
    services: &Services,
    job: &JobId,
    started_by: Option<DateTime<Utc>>,
    why: Interruption,
    detail: &str,
) -> Result<Interrupted, StoreError> {
    let mut live = Vec::new();
    for task in services.jobs.list_tasks(job).await? {
        if matches!(
            task.state,
            TaskState::Running | TaskState::Retrying | TaskState::Failed
        ) {
            live.extend(
                live_attempts(services, job, &task.id)
                    .await?
                    .into_iter()
                    .filter(|a| started_by.is_none_or(|by| a.started_at <= by)),
            );
        }
    }
    interrupt(services, live, why, detail).await
}
