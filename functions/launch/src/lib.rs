//! Launch: start one attempt of a task and leave the state machine waiting on its token.
//!
//! Invoked by the fan-out Map with `lambda:invoke.waitForTaskToken`. The attempt is recorded
//! with its task token *before* the container starts, so the task-events handler can always
//! find whom to report to, however fast the container stops. The attempt runs on Spot unless
//! the task has already lost too many attempts to Spot reclaims. A Lambda retry of the same
//! invocation (same token) does not launch a second container, but does launch the one a
//! first invocation recorded and died before starting. A new token for a task whose previous
//! attempt is still live (its Task state timed out) stops that attempt first.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_core::error::{ErrorName, StepError};
use sluice_core::events::{
    ENV_ATTEMPT, ENV_JOB_ID, ENV_OUTPUT, ENV_OUTPUT_KEEP, ENV_RESULT_URI, ENV_TASK_ID,
};
use sluice_core::interrupt::interrupt;
use sluice_core::model::{Attempt, AttemptKey, AttemptState, AttemptUpdate};
use sluice_core::ports::PortCall;
use sluice_core::ports::{ComputeError, LaunchRequest, TaskUpdate, Transition, fail_task};
use sluice_core::stage::{
    item_of, output_location, render_command, require_stage_of, result_stage,
};
use sluice_core::{Capacity, Interruption, JobId, Services, TaskId, TaskState};

/// Every port call this handler's code can make (see [`PortCall`]): the IAM permission
/// contract test derives the function's role from this list, and the decision tests refuse
/// any other call.
pub const PORT_CALLS: &[PortCall] = &[
    PortCall::ObjectGet,
    PortCall::PipelineGet,
    PortCall::JobRead,
    PortCall::JobCreate,
    PortCall::JobUpdate,
    PortCall::ComputeLaunch,
    PortCall::ComputeStop,
    PortCall::WorkflowAnswer,
];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchInput {
    pub job_id: JobId,
    pub task_id: TaskId,
    pub task_token: String,
}

/// What a launch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LaunchStatus {
    /// A new attempt was started on compute.
    Launched,
    /// The same invocation was delivered again: nothing was launched twice.
    AlreadyLaunched,
    /// The task had already succeeded (a redriven Map): reported back, not run.
    AlreadySucceeded,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchOutput {
    pub attempt: u32,
    pub status: LaunchStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
}

pub async fn handle(services: &Services, input: LaunchInput) -> Result<LaunchOutput, StepError> {
    // The job, the task and its attempts in one read of the table.
    let (job, found) = services
        .jobs
        .get_job_task(&input.job_id, &input.task_id)
        .await?
        .ok_or_else(|| StepError::invalid_input(format!("unknown job '{}'", input.job_id)))?;
    let pipeline = services.job_pipeline(&job).await?;
    let (task, attempts) = found.ok_or_else(|| {
        StepError::invalid_input(format!("job {} has no task '{}'", job.id, input.task_id))
    })?;
    let stage = require_stage_of(&pipeline, &task)?;
    let data = services.buckets.data.clone();

    // A task that already succeeded (a redriven Map re-running an iteration) is reported
    // straight back: its result is counted once, never recomputed.
    if task.state == TaskState::Succeeded {
        let result = task.result.clone().or_else(|| {
            output_location(&data, &job.id, stage, item_of(&task)).map(|l| l.object().clone())
        });
        let output = json!({"taskId": task.id, "result": result, "attempt": task.attempts});
        services
            .workflows
            .send_task_success(&input.task_token, &output)
            .await
            .or_else(ignore_closed_token)?;
        return Ok(LaunchOutput {
            attempt: task.attempts,
            status: LaunchStatus::AlreadySucceeded,
            compute_id: None,
            capacity: None,
        });
    }

    let previous = attempts.iter().find(|a| a.task_token == input.task_token);
    // The same invocation delivered twice carries the same token: don't launch twice. Unless
    // the first delivery recorded the attempt and died before compute started it (LAUNCHING,
    // no compute id): then this delivery launches it. Compute launches are idempotent per
    // attempt (ECS RunTask's clientToken), so a first launch that did start the task before
    // dying is not started again.
    let relaunch = match previous {
        Some(p) if p.state == AttemptState::Launching && p.compute_id.is_none() => Some(p.clone()),
        Some(p) => {
            return Ok(LaunchOutput {
                attempt: p.key.number,
                status: LaunchStatus::AlreadyLaunched,
                compute_id: p.compute_id.clone(),
                capacity: Some(p.capacity),
            });
        }
        None => None,
    };
    if relaunch.is_none() {
        // A new token for a task with a live attempt: its Task state timed out (or its
        // callback was lost) and was retried. The old attempt must not run on beside the new.
        let live: Vec<_> = attempts
            .iter()
            .filter(|a| !a.state.is_final())
            .cloned()
            .collect();
        interrupt(
            services,
            live,
            Interruption::Superseded,
            "a new attempt of the task was launched (its Task state timed out or its callback was lost)",
        )
        .await?;
    }

    let number = match &relaunch {
        Some(p) => p.key.number,
        None => {
            attempts
                .iter()
                .map(|a| a.key.number)
                .max()
                .unwrap_or(0)
                .max(task.attempts)
                + 1
        }
    };
    let capacity = match &relaunch {
        Some(p) => p.capacity,
        None if task.spot_interruptions >= pipeline.retry.on_demand_after_spot_interruptions => {
            Capacity::OnDemand
        }
        None => Capacity::Spot,
    };
    // A command that cannot be rendered fails the task for good, with the reason on it. The
    // pipeline's check at load makes this rare: a location compute cannot provide.
    let path_for =
        |l: &sluice_core::ports::Location| services.compute.path_for(l).map_err(|e| e.to_string());
    let rendered = match render_command(&pipeline, stage, &job, &task, number, &data, &path_for) {
        Ok(r) => r,
        Err(e) => {
            let reason = format!("pipeline '{}': {e}", pipeline.name);
            fail_task(services.jobs.as_ref(), &job.id, &task.id, &reason).await?;
            return Err(StepError::invalid_input(reason));
        }
    };
    let key = AttemptKey {
        job_id: job.id.clone(),
        task_id: task.id.clone(),
        number,
    };
    // A new attempt on a compute that names its tasks ahead is recorded RUNNING under that
    // name at once (one write instead of two); a relaunch keeps the attempt it found.
    let ahead = match &relaunch {
        Some(_) => None,
        None => services.compute.compute_id_ahead(&key),
    };
    let attempt = Attempt {
        key: key.clone(),
        state: match ahead {
            Some(_) => AttemptState::Running,
            None => AttemptState::Launching,
        },
        capacity,
        task_token: input.task_token.clone(),
        compute_id: ahead.clone(),
        exit_code: None,
        stop_code: None,
        stopped_reason: None,
        event_version: None,
        started_at: Utc::now(),
        stopped_at: None,
        reclaim_notice: None,
        answer: None,
        answered: false,
    };
    let running = TaskUpdate {
        attempts: Some(number),
        ..Default::default()
    };
    if relaunch.is_some() {
        services
            .jobs
            .transition_task(&job.id, &task.id, TaskState::Running, running)
            .await?;
    } else if !services
        .jobs
        .start_attempt(&attempt, TaskState::Running, running)
        .await?
    {
        return Err(StepError::internal(format!(
            "attempt {key} was recorded concurrently"
        )));
    }

    let mut env = stage.env.clone();
    env.insert(ENV_JOB_ID.into(), job.id.to_string());
    env.insert(ENV_TASK_ID.into(), task.id.to_string());
    env.insert(ENV_ATTEMPT.into(), number.to_string());
    if let Some(output) = &rendered.output {
        env.insert(ENV_OUTPUT.into(), output.path.clone());
        env.insert(ENV_RESULT_URI.into(), output.location.object().to_string());
        // The job's result is kept; other task outputs expire (infra: ExpireTaskResults).
        if result_stage(&pipeline).is_some_and(|r| r.name == stage.name) {
            env.insert(ENV_OUTPUT_KEEP.into(), "1".into());
        }
    }
    let request = LaunchRequest {
        attempt: key.clone(),
        capacity,
        command: rendered.command,
        env,
        inputs: rendered.inputs,
        output: rendered.output,
        working_dir: pipeline.directory.clone(),
        image: stage.image.clone(),
        cpu: stage.cpu,
        memory_mib: stage.memory_mib,
        timeout_seconds: Some(stage.attempt_timeout_seconds()),
        compute_id: ahead.clone(),
    };

    match services.compute.launch(&request).await {
        Ok(launched) => {
            // Recorded already when compute named the task ahead (and kept the name).
            if ahead.as_deref() != Some(launched.compute_id.as_str()) {
                let update = AttemptUpdate {
                    compute_id: Some(launched.compute_id.clone()),
                    ..Default::default()
                };
                // If the container already stopped and task-events finished the attempt,
                // this is rejected, which is right: the final state stands. Record the
                // compute id anyway.
                if let Transition::Rejected(current) = services
                    .jobs
                    .transition_attempt(&key, AttemptState::Running, update)
                    .await?
                {
                    tracing::info!(attempt = %key, state = current.state.as_str(), "attempt finished before launch returned");
                }
            }
            tracing::info!(attempt = %key, compute = %launched.compute_id, capacity = capacity.as_str(), "launched");
            Ok(LaunchOutput {
                attempt: number,
                status: LaunchStatus::Launched,
                compute_id: Some(launched.compute_id),
                capacity: Some(capacity),
            })
        }
        Err(e) => {
            let (name, state) = match &e {
                ComputeError::LaunchFailed(_) => (ErrorName::LaunchFailed, TaskState::Retrying),
                ComputeError::Invalid(_) => (ErrorName::InvalidInput, TaskState::Failed),
            };
            let reason = e.to_string();
            services
                .jobs
                .transition_attempt(
                    &key,
                    AttemptState::LaunchFailed,
                    AttemptUpdate {
                        stopped_reason: Some(reason.clone()),
                        stopped_at: Some(Utc::now()),
                        ..Default::default()
                    },
                )
                .await?;
            services
                .jobs
                .transition_task(
                    &job.id,
                    &task.id,
                    state,
                    TaskUpdate {
                        last_error: Some(Some(reason.clone())),
                        ..Default::default()
                    },
                )
                .await?;
            // Raised from the Lambda, this fails the waiting Task state with `name`, which the
            // state machine's Retry matches.
            Err(StepError::new(name, format!("attempt {key}: {reason}")))
        }
    }
}

fn ignore_closed_token(e: sluice_core::ports::WorkflowError) -> Result<(), StepError> {
    match e {
        sluice_core::ports::WorkflowError::TokenClosed(msg) => {
            tracing::warn!(%msg, "task token already closed");
            Ok(())
        }
        other => Err(StepError::internal(other)),
    }
}
