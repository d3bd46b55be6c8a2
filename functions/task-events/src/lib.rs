//! Task events: how a container stopped, reported to the state machine waiting on it.
//!
//! Receives ECS "Task State Change" and Batch "Job State Change" events (EventBridge on AWS, the
//! local process pool on one machine), classifies them with one classification for both back
//! ends, and answers the attempt's task token: SendTaskSuccess with the result location, or
//! SendTaskFailure with the typed `Sluice.*` error the state machine retries on.
//!
//! **The answer survives a failed send.** The attempt's final state is written together with
//! the answer it implies ([`TokenAnswer`]) and the task's move, with a conditional write (a
//! duplicate or stale event changes nothing; [`JobStore::end_attempt`](sluice_core::ports::JobStore::end_attempt), one transaction where
//! the store has them); then the answer is sent and the attempt marked `answered`. If sending fails (throttled, a network error), the handler fails, the event is
//! delivered again (Lambda's retries, or a replay from the dead-letter queue), finds the final
//! attempt not yet answered and sends the recorded answer again, instead of dropping the event
//! as a duplicate and leaving the Task state to time out. A token that is already closed is
//! logged and counts as answered: an error there would make EventBridge redeliver forever.
//!
//! **Reclaims on EC2.** ECS gives standalone tasks on a reclaimed EC2 Spot instance no Spot
//! stop code, and its Spot draining leaves them alone. So the handler also takes "EC2 Spot
//! Instance Interruption Warning" and "EC2 Instance State-change Notification"
//! (`shutting-down`, ...) events, asks compute which of our tasks run on that instance, and
//! notes the reclaim on their live attempts; their STOPPED events are then classified
//! spot-interrupted whatever the exit code ([`on_reclaimed_host`]), so a reclaim never spends
//! the application-error budget.

use chrono::Utc;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sluice_core::Services;
use sluice_core::classify::{
    Classification, Stop, classify_batch, classify_ecs, on_reclaimed_host,
};
use sluice_core::error::{ErrorName, StepError};
use sluice_core::events::{
    BATCH_JOB_STATE_CHANGE, BatchJobStateChange, EC2_INSTANCE_STATE_CHANGE,
    EC2_SPOT_INTERRUPTION_WARNING, ECS_TASK_STATE_CHANGE, Ec2InstanceStateChange,
    Ec2SpotInterruptionWarning, EcsTaskStateChange, EventEnvelope, RunTimes,
};
use sluice_core::model::{Attempt, AttemptKey, AttemptState, AttemptUpdate, TokenAnswer};
use sluice_core::ports::{Location, PortCall, TaskUpdate, Transition, WorkflowError};
use sluice_core::stage::{item_of, output_location, require_stage_of};
use sluice_core::{Task, TaskState};

/// Every port call this handler's code can make (see [`PortCall`]): the IAM permission
/// contract test derives the function's role from this list, and the decision tests refuse
/// any other call.
pub const PORT_CALLS: &[PortCall] = &[
    PortCall::ObjectGet,
    PortCall::ObjectExists,
    PortCall::PipelineGet,
    PortCall::JobRead,
    PortCall::JobUpdate,
    PortCall::ComputeTasksOnInstance,
    PortCall::WorkflowAnswer,
];

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
    /// Attempts a reclaim notice was recorded on (EC2 events only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reclaimed: Vec<String>,
}

/// What kind of event arrived.
enum Event {
    Stopped(Parsed),
    /// The EC2 instance is about to go, or going, away: `notice` says why.
    HostReclaimed {
        instance_id: String,
        notice: String,
    },
    /// An EC2 state change that takes no task down (`pending`, `running`).
    HostUnaffected {
        instance_id: String,
        state: String,
    },
}

struct Parsed {
    stop: Stop,
    key: Option<AttemptKey>,
    compute_id: Option<String>,
    version: Option<u64>,
    ran: RunTimes,
}

/// Reads the event where it is: the envelope's fields are checked without copying `detail`, and
/// `detail` is read straight into its typed shape (an owned `Value` taken apart into a struct
/// first rebuilds every map of it: a tenth of this handler's work per task event).
fn parse(event: &Value) -> Result<Event, StepError> {
    let envelope = EventEnvelope::<IgnoredAny>::deserialize(event).map_err(|e| {
        StepError::invalid_input(format!("task-events: not an EventBridge event: {e}"))
    })?;
    let detail = &event["detail"];
    match envelope.detail_type.as_str() {
        ECS_TASK_STATE_CHANGE => {
            let d = EcsTaskStateChange::deserialize(detail).map_err(|e| {
                StepError::invalid_input(format!(
                    "task-events: malformed ECS Task State Change detail: {e}"
                ))
            })?;
            Ok(Event::Stopped(Parsed {
                stop: classify_ecs(&d),
                key: d.attempt_key(),
                compute_id: d.task_arn.clone(),
                version: d.version,
                ran: d.run_times(),
            }))
        }
        BATCH_JOB_STATE_CHANGE => {
            let d = BatchJobStateChange::deserialize(detail).map_err(|e| {
                StepError::invalid_input(format!(
                    "task-events: malformed Batch Job State Change detail: {e}"
                ))
            })?;
            Ok(Event::Stopped(Parsed {
                stop: classify_batch(&d),
                key: d.attempt_key(),
                compute_id: d.job_id.clone(),
                version: None,
                ran: d.run_times(),
            }))
        }
        EC2_SPOT_INTERRUPTION_WARNING => {
            let d = Ec2SpotInterruptionWarning::deserialize(detail).map_err(|e| {
                StepError::invalid_input(format!(
                    "task-events: malformed EC2 Spot Instance Interruption Warning detail: {e}"
                ))
            })?;
            let notice = format!(
                "EC2 Spot Instance Interruption Warning for {} ({}{})",
                d.instance_id,
                d.instance_action.as_deref().unwrap_or("terminate"),
                envelope
                    .time
                    .as_deref()
                    .map(|t| format!(" at {t}"))
                    .unwrap_or_default()
            );
            Ok(Event::HostReclaimed {
                instance_id: d.instance_id,
                notice,
            })
        }
        EC2_INSTANCE_STATE_CHANGE => {
            let d = Ec2InstanceStateChange::deserialize(detail).map_err(|e| {
                StepError::invalid_input(format!(
                    "task-events: malformed EC2 Instance State-change Notification detail: {e}"
                ))
            })?;
            if !d.is_going_away() {
                return Ok(Event::HostUnaffected {
                    instance_id: d.instance_id,
                    state: d.state,
                });
            }
            let notice = format!("EC2 instance {} is {}", d.instance_id, d.state);
            Ok(Event::HostReclaimed {
                instance_id: d.instance_id,
                notice,
            })
        }
        other => Err(StepError::invalid_input(format!(
            "task-events: unsupported event type '{other}'"
        ))),
    }
}

pub async fn handle(services: &Services, event: Value) -> Result<TaskEventReport, StepError> {
    handle_event(services, &event).await
}

/// [`handle`] of an event the caller keeps: a bus that retries a failed delivery (the local
/// runtime's, like EventBridge's) hands the same event over again without a copy per delivery.
pub async fn handle_event(
    services: &Services,
    event: &Value,
) -> Result<TaskEventReport, StepError> {
    match parse(event)? {
        Event::Stopped(parsed) => stopped(services, parsed).await,
        Event::HostReclaimed {
            instance_id,
            notice,
        } => host_reclaimed(services, &instance_id, notice).await,
        Event::HostUnaffected { instance_id, state } => Ok(TaskEventReport {
            classification: "host-unaffected",
            action: format!("ignored: instance {instance_id} is {state}; nothing changed"),
            attempt: None,
            compute_id: None,
            error: None,
            reason: String::new(),
            reclaimed: Vec::new(),
        }),
    }
}

/// Notes the reclaim on every live attempt running on the instance.
async fn host_reclaimed(
    services: &Services,
    instance_id: &str,
    notice: String,
) -> Result<TaskEventReport, StepError> {
    let mut report = TaskEventReport {
        classification: "reclaim-notice",
        action: String::new(),
        attempt: None,
        compute_id: None,
        error: None,
        reason: notice.clone(),
        reclaimed: Vec::new(),
    };
    let tasks = services
        .compute
        .tasks_on_instance(instance_id)
        .await
        .map_err(|e| StepError::internal(format!("tasks on instance {instance_id}: {e}")))?;
    let Some(tasks) = tasks else {
        report.action = format!(
            "ignored: this compute cannot tell which tasks run on {instance_id}; their stop \
             events say \"Host EC2 (...) terminated\", which is classified as a reclaim"
        );
        return Ok(report);
    };
    for compute_id in &tasks {
        let Some(attempt) = services.jobs.find_attempt_by_compute_id(compute_id).await? else {
            continue;
        };
        if let Transition::Applied(a) = services.jobs.note_reclaim(&attempt.key, &notice).await? {
            report.reclaimed.push(a.key.to_string());
        }
    }
    report.action = if report.reclaimed.is_empty() {
        format!(
            "ignored: no live sluice attempt on instance {instance_id} ({} task(s) of ours)",
            tasks.len()
        )
    } else {
        format!(
            "noted the reclaim on {} attempt(s); their stop will count as a Spot interruption",
            report.reclaimed.len()
        )
    };
    tracing::info!(instance = instance_id, action = %report.action, "host reclaimed");
    Ok(report)
}

async fn stopped(services: &Services, parsed: Parsed) -> Result<TaskEventReport, StepError> {
    let Parsed {
        mut stop,
        key,
        compute_id,
        version,
        ran,
    } = parsed;
    let mut report = TaskEventReport {
        classification: stop.classification.label(),
        action: String::new(),
        attempt: None,
        compute_id: compute_id.clone(),
        error: None,
        reason: stop.reason.clone(),
        reclaimed: Vec::new(),
    };
    if stop.classification == Classification::NotFinal {
        report.action = "ignored: the task has not stopped; nothing changed".into();
        return Ok(report);
    }

    // The attempt, its job, its task and the task's other attempts, read together.
    let found = match (&key, &compute_id) {
        (Some(k), _) => services
            .jobs
            .get_job_task(&k.job_id, &k.task_id)
            .await?
            .and_then(|(job, found)| {
                let (task, attempts) = found?;
                let attempt = attempts.iter().find(|a| a.key.number == k.number)?.clone();
                Some((attempt, job, task, attempts))
            }),
        (None, Some(id)) => match services.jobs.find_attempt_by_compute_id(id).await? {
            Some(attempt) => services
                .jobs
                .get_job_task(&attempt.key.job_id, &attempt.key.task_id)
                .await?
                .and_then(|(job, found)| {
                    let (task, attempts) = found?;
                    Some((attempt, job, task, attempts))
                }),
            None => None,
        },
        (None, None) => None,
    };
    let Some((attempt, job, task, attempts)) = found else {
        report.action = "ignored: not a task sluice knows; nothing changed".into();
        return Ok(report);
    };
    report.attempt = Some(attempt.key.to_string());
    if attempt.state.is_final() {
        return match (&attempt.answer, attempt.answered) {
            // Decided before, but the answer may never have arrived: send it again.
            (Some(answer), false) => {
                let answer = answer.clone();
                report.classification = classification_of(attempt.state);
                report.reason = attempt.stopped_reason.clone().unwrap_or_default();
                report.error = error_of(&answer);
                // The task may not have moved with the attempt (a store that writes them one
                // after the other, stopped between): move it now; the move is conditional.
                if let Some((state, update)) = task_move(&task, &attempts, &attempt.key, &answer) {
                    services
                        .jobs
                        .transition_task(&task.job_id, &task.id, state, update)
                        .await?;
                }
                let sent = answer_token(services, &attempt, &answer).await?;
                report.action = format!("again: {sent} (the first send had failed)");
                Ok(report)
            }
            _ => {
                report.action = format!(
                    "ignored: duplicate event, attempt already {}; nothing changed",
                    attempt.state.as_str()
                );
                Ok(report)
            }
        };
    }
    if let Some(notice) = &attempt.reclaim_notice {
        stop = on_reclaimed_host(stop, notice);
        report.classification = stop.classification.label();
        report.reason = stop.reason.clone();
    }
    let pipeline = services.job_pipeline(&job).await?;
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
        Classification::TimedOut => AttemptState::TimedOut,
        Classification::TaskFailed | Classification::NotFinal => AttemptState::Failed,
    };

    let answer = if stop.classification == Classification::Succeeded {
        TokenAnswer::Success {
            result: output.as_ref().map(|l| l.object().clone()),
        }
    } else {
        let mut name = if output_missing {
            ErrorName::OutputMissing
        } else {
            stop.classification
                .error_name()
                .unwrap_or(ErrorName::TaskFailed)
        };
        match name {
            // A step that exited 0 may have had side effects: not run again unless asked.
            ErrorName::OutputMissing if !pipeline.retry.retry_missing_output => {}
            ErrorName::TaskFailed | ErrorName::TaskTimedOut | ErrorName::OutputMissing => {
                // Application errors (a run past its timeout is one) spend the pipeline's
                // budget; reclaims never do. This attempt counts, the others as recorded.
                let earlier = attempts
                    .iter()
                    .filter(|a| {
                        a.key != attempt.key
                            && matches!(
                                a.state,
                                AttemptState::Failed
                                    | AttemptState::OutputMissing
                                    | AttemptState::TimedOut
                            )
                    })
                    .count() as u32;
                if earlier + 1 >= pipeline.retry.task_failed_attempts {
                    name = ErrorName::RetriesExhausted;
                } else if name == ErrorName::OutputMissing {
                    // The state machine retries application errors by these names.
                    name = ErrorName::TaskFailed;
                }
            }
            _ => {}
        }
        TokenAnswer::Failure {
            error: name,
            cause: format!("attempt {}: {}", attempt.key, stop.reason),
        }
    };
    let update = AttemptUpdate {
        compute_id: compute_id.clone(),
        exit_code: stop.exit_code,
        stop_code: stop.stop_code.clone(),
        stopped_reason: Some(stop.reason.clone()),
        event_version: version,
        // The run's own times where the event has them: an attempt launched ahead may have
        // waited for capacity (or a slot) before it ran, and its stop reaches us later.
        started_at: ran.started,
        stopped_at: Some(ran.stopped.unwrap_or_else(Utc::now)),
        answer: Some(answer.clone()),
        answered: services.workflows.sends_settle_answers(),
    };
    // The attempt's end, the answer it implies and the task's move are written together; the
    // token is answered after (the state machine moves on at once, and what comes next reads
    // the task).
    let moved = task_move(&task, &attempts, &attempt.key, &answer);
    let attempt = match services
        .jobs
        .end_attempt(&attempt.key, to, update, moved)
        .await?
    {
        Transition::Applied(a) => a,
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
    };
    report.error = error_of(&answer);
    report.action = answer_token(services, &attempt, &answer).await?;
    tracing::info!(attempt = %attempt.key, classification = report.classification, action = %report.action, "task event");
    Ok(report)
}

fn error_of(answer: &TokenAnswer) -> Option<String> {
    match answer {
        TokenAnswer::Success { .. } => None,
        TokenAnswer::Failure { error, .. } => Some(error.as_str().to_string()),
    }
}

fn classification_of(state: AttemptState) -> &'static str {
    match state {
        AttemptState::Succeeded => Classification::Succeeded.label(),
        AttemptState::SpotInterrupted => Classification::SpotInterrupted.label(),
        AttemptState::LaunchFailed => Classification::LaunchFailed.label(),
        AttemptState::OutOfMemory => Classification::OutOfMemory.label(),
        AttemptState::TimedOut => Classification::TimedOut.label(),
        AttemptState::OutputMissing => "output-missing",
        _ => Classification::TaskFailed.label(),
    }
}

/// How a final attempt's answer moves its task: `None` when a newer attempt replaced it (its
/// Task state timed out and was retried), whose task it is now. Applied only from RUNNING (a
/// conditional write), so applying it twice changes nothing.
fn task_move(
    task: &Task,
    attempts: &[Attempt],
    key: &AttemptKey,
    answer: &TokenAnswer,
) -> Option<(TaskState, TaskUpdate)> {
    if attempts.iter().any(|a| a.key.number > key.number) {
        return None;
    }
    let update = match answer {
        TokenAnswer::Success { result } => TaskUpdate {
            result: result.clone(),
            last_error: Some(None),
            ..Default::default()
        },
        TokenAnswer::Failure { error, cause } => TaskUpdate {
            spot_interruptions: (*error == ErrorName::SpotInterrupted)
                .then_some(task.spot_interruptions + 1),
            last_error: Some(Some(format!("{error}: {cause}"))),
            ..Default::default()
        },
    };
    Some((answer.task_state(), update))
}

/// Sends a final attempt's answer to its token and marks the attempt answered. Safe to repeat:
/// a token answered before reports itself closed.
async fn answer_token(
    services: &Services,
    attempt: &Attempt,
    answer: &TokenAnswer,
) -> Result<String, StepError> {
    let key = &attempt.key;
    let sent = match answer {
        TokenAnswer::Success { result } => {
            let output = json!({"taskId": key.task_id, "attempt": key.number, "result": result});
            services
                .workflows
                .send_task_success(&attempt.task_token, &output)
                .await
        }
        TokenAnswer::Failure { error, cause } => {
            services
                .workflows
                .send_task_failure(&attempt.task_token, *error, cause)
                .await
        }
    };
    let action = match sent {
        Ok(()) => match answer {
            TokenAnswer::Success { .. } => {
                format!("reported success of attempt {key} to the state machine")
            }
            TokenAnswer::Failure { error, .. } => {
                format!("reported {error} for attempt {key} to the state machine")
            }
        },
        Err(WorkflowError::TokenClosed(msg)) => {
            tracing::warn!(attempt = %key, %msg, "task token already closed; ignored");
            format!(
                "recorded attempt {key}; its task token is already closed ({msg}), so nothing was reported"
            )
        }
        // The answer stays recorded and unanswered: the event's redelivery sends it again.
        Err(e) => {
            return Err(StepError::internal(format!(
                "attempt {key}: the state machine was not told ({e}); a redelivery of the event \
                 will tell it"
            )));
        }
    };
    // Recorded with the attempt's end already when the send settles it.
    if !attempt.answered {
        services.jobs.mark_answered(key).await?;
    }
    Ok(action)
}
