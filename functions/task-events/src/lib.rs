//! Task events: how a container stopped, reported to the state machine waiting on it.
//!
//! Receives ECS "Task State Change" and Batch "Job State Change" events (EventBridge on AWS, the
//! local process pool on one machine), classifies them with one classification for both back
//! ends, moves the attempt to its final state with a conditional write (a duplicate or stale
//! event changes nothing), and answers the attempt's task token: SendTaskSuccess with the
//! result location, or SendTaskFailure with the typed `Sluice.*` error the state machine
//! retries on. A token that is already closed is logged and ignored — an error here would make
//! EventBridge redeliver forever.

use chrono::Utc;
use serde::Serialize;
use serde_json::{Value, json};
use sluice_core::classify::{Classification, Stop, classify_batch, classify_ecs};
use sluice_core::error::{ErrorName, StepError};
use sluice_core::events::{
    BATCH_JOB_STATE_CHANGE, BatchJobStateChange, ECS_TASK_STATE_CHANGE, EcsTaskStateChange,
    EventEnvelope,
};
use sluice_core::model::{AttemptKey, AttemptState, AttemptUpdate};
use sluice_core::ports::{Location, TaskUpdate, Transition, WorkflowError};
use sluice_core::stage::{item_of, output_location, require_stage_of};
use sluice_core::{Services, TaskState};

/// What the handler concluded and did; `sluice invoke task-events` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskEventReport {
    pub classification: &'static str,
    /// What was done, in words.
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub reason: String,
}

struct Parsed {
    stop: Stop,
    key: Option<AttemptKey>,
    compute_id: Option<String>,
    version: Option<u64>,
}

fn parse(event: Value) -> Result<Parsed, StepError> {
    let envelope: EventEnvelope<Value> = serde_json::from_value(event).map_err(|e| {
        StepError::invalid_input(format!("task-events: not an EventBridge event: {e}"))
    })?;
    match envelope.detail_type.as_str() {
        ECS_TASK_STATE_CHANGE => {
            let d: EcsTaskStateChange = serde_json::from_value(envelope.detail).map_err(|e| {
                StepError::invalid_input(format!(
                    "task-events: malformed ECS Task State Change detail: {e}"
                ))
            })?;
            Ok(Parsed {
                stop: classify_ecs(&d),
                key: d.attempt_key(),
                compute_id: d.task_arn.clone(),
                version: d.version,
            })
        }
        BATCH_JOB_STATE_CHANGE => {
            let d: BatchJobStateChange = serde_json::from_value(envelope.detail).map_err(|e| {
                StepError::invalid_input(format!(
                    "task-events: malformed Batch Job State Change detail: {e}"
                ))
            })?;
            Ok(Parsed {
                stop: classify_batch(&d),
                key: d.attempt_key(),
                compute_id: d.job_id.clone(),
                version: None,
            })
        }
        other => Err(StepError::invalid_input(format!(
            "task-events: unsupported event type '{other}'"
        ))),
    }
}

pub async fn handle(services: &Services, event: Value) -> Result<TaskEventReport, StepError> {
    let Parsed {
        mut stop,
        key,
        compute_id,
        version,
    } = parse(event)?;
    let mut report = TaskEventReport {
        classification: stop.classification.label(),
        action: String::new(),
        attempt: None,
        compute_id: compute_id.clone(),
        error: None,
        reason: stop.reason.clone(),
    };
    if stop.classification == Classification::NotFinal {
        report.action = "ignored: the task has not stopped; nothing changed".into();
        return Ok(report);
    }

    let attempt = match &key {
        Some(k) => services.jobs.get_attempt(k).await?,
        None => match &compute_id {
            Some(id) => services.jobs.find_attempt_by_compute_id(id).await?,
            None => None,
        },
    };
    let Some(attempt) = attempt else {
        report.action = "ignored: not a task sluice knows; nothing changed".into();
        return Ok(report);
    };
    report.attempt = Some(attempt.key.to_string());
    if attempt.state.is_final() {
        report.action = format!(
            "ignored: duplicate event, attempt already {}; nothing changed",
            attempt.state.as_str()
        );
        return Ok(report);
    }
    let job = services.job(&attempt.key.job_id).await?;
    let pipeline = services.job_pipeline(&job).await?;
    let task = services
        .jobs
        .get_task(&job.id, &attempt.key.task_id)
        .await?
        .ok_or_else(|| {
            StepError::internal(format!("attempt {} has no task record", attempt.key))
        })?;
    let stage = require_stage_of(&pipeline, &task)?;
    let output = output_location(&services.buckets.data, &job.id, stage, item_of(&task));

    // "Exited 0" is not success unless the output file is where it must be. A stage that
    // writes a directory (possibly empty) or nothing has nothing to check.
    let mut output_missing = false;
    if stop.classification == Classification::Succeeded
        && let Some(Location::File { object }) = &output
        && !services.objects.exists(object).await?
    {
        output_missing = true;
        stop.classification = Classification::TaskFailed;
        stop.reason = format!("exited 0 but wrote no output at {object}");
        report.classification = "output-missing";
        report.reason = stop.reason.clone();
    }
    let to = match stop.classification {
        Classification::TaskFailed if output_missing => AttemptState::OutputMissing,
        Classification::Succeeded => AttemptState::Succeeded,
        Classification::SpotInterrupted => AttemptState::SpotInterrupted,
        Classification::LaunchFailed => AttemptState::LaunchFailed,
        Classification::OutOfMemory => AttemptState::OutOfMemory,
        Classification::TaskFailed | Classification::NotFinal => AttemptState::Failed,
    };
    let update = AttemptUpdate {
        compute_id: compute_id.clone(),
        exit_code: stop.exit_code,
        stop_code: stop.stop_code.clone(),
        stopped_reason: Some(stop.reason.clone()),
        event_version: version,
        stopped_at: Some(Utc::now()),
    };
    match services
        .jobs
        .transition_attempt(&attempt.key, to, update)
        .await?
    {
        Transition::Applied(_) => {}
        Transition::Rejected(current) => {
            report.action = format!(
                "ignored: duplicate or stale event, attempt is {}; nothing changed",
                current.state.as_str()
            );
            return Ok(report);
        }
        Transition::Missing => {
            report.action = "ignored: the attempt disappeared; nothing changed".into();
            return Ok(report);
        }
    }

    let outcome = if stop.classification == Classification::Succeeded {
        let result = output.as_ref().map(|l| l.object().clone());
        services
            .jobs
            .transition_task(
                &job.id,
                &task.id,
                TaskState::Succeeded,
                TaskUpdate {
                    result: result.clone(),
                    last_error: Some(None),
                    ..Default::default()
                },
            )
            .await?;
        let output = json!({"taskId": task.id, "attempt": attempt.key.number, "result": result});
        services
            .workflows
            .send_task_success(&attempt.task_token, &output)
            .await
    } else {
        let mut name = if output_missing {
            ErrorName::OutputMissing
        } else {
            stop.classification
                .error_name()
                .unwrap_or(ErrorName::TaskFailed)
        };
        let mut update = TaskUpdate::default();
        let mut next_state = TaskState::Retrying;
        match name {
            ErrorName::SpotInterrupted => {
                update.spot_interruptions = Some(task.spot_interruptions + 1)
            }
            // A step that exited 0 may have had side effects: not run again unless asked.
            ErrorName::OutputMissing if !pipeline.retry.retry_missing_output => {
                next_state = TaskState::Failed
            }
            ErrorName::TaskFailed | ErrorName::OutputMissing => {
                // Application errors spend the pipeline's budget; reclaims never do.
                let failures = services
                    .jobs
                    .list_attempts(&job.id, &task.id)
                    .await?
                    .iter()
                    .filter(|a| {
                        matches!(a.state, AttemptState::Failed | AttemptState::OutputMissing)
                    })
                    .count() as u32;
                if failures >= pipeline.retry.task_failed_attempts {
                    name = ErrorName::RetriesExhausted;
                    next_state = TaskState::Failed;
                } else {
                    // The state machine retries application errors by this name.
                    name = ErrorName::TaskFailed;
                }
            }
            ErrorName::OutOfMemory => next_state = TaskState::Failed,
            _ => {}
        }
        let cause = format!("attempt {}: {}", attempt.key, stop.reason);
        update.last_error = Some(Some(format!("{name}: {cause}")));
        services
            .jobs
            .transition_task(&job.id, &task.id, next_state, update)
            .await?;
        report.error = Some(name.as_str().to_string());
        services
            .workflows
            .send_task_failure(&attempt.task_token, name, &cause)
            .await
    };
    report.action = match outcome {
        Ok(()) => match &report.error {
            None => format!(
                "reported success of attempt {} to the state machine",
                attempt.key
            ),
            Some(e) => format!(
                "reported {e} for attempt {} to the state machine",
                attempt.key
            ),
        },
        Err(WorkflowError::TokenClosed(msg)) => {
            tracing::warn!(attempt = %attempt.key, %msg, "task token already closed; ignored");
            format!(
                "recorded attempt {}; its task token is already closed ({msg}), so nothing was reported",
                attempt.key
            )
        }
        Err(e) => return Err(StepError::internal(e)),
    };
    tracing::info!(attempt = %attempt.key, classification = report.classification, action = %report.action, "task event");
    Ok(report)
}
