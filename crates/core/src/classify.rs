//! Failure classification: what a finished ECS task or Batch job means for the pipeline.
//!
//! One classification for both compute back ends, because the state machine retries on the
//! meaning, not on the back end: a Spot reclaim is retried with backoff and does not count
//! against the application's retry budget; a launch failure is retried a few times; running out
//! of memory is not retried (the same size will fail again); a non-zero exit follows the
//! pipeline's retry policy.

use crate::error::ErrorName;
use crate::events::{BatchJobStateChange, EcsTaskStateChange};
use serde::Serialize;

/// What a state-change event says about an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Classification {
    /// The task has not stopped yet (PROVISIONING, RUNNING, ... or Batch RUNNABLE, ...).
    NotFinal,
    Succeeded,
    SpotInterrupted,
    LaunchFailed,
    OutOfMemory,
    TaskFailed,
}

impl Classification {
    /// The label `sluice invoke task-events` prints.
    pub fn label(self) -> &'static str {
        match self {
            Classification::NotFinal => "not-final",
            Classification::Succeeded => "succeeded",
            Classification::SpotInterrupted => "spot-interrupted",
            Classification::LaunchFailed => "launch-failed",
            Classification::OutOfMemory => "out-of-memory",
            Classification::TaskFailed => "task-failed",
        }
    }

    /// The error the state machine sees for a failed attempt (TaskFailed becomes
    /// RetriesExhausted when the pipeline's budget is spent; the handler decides that).
    pub fn error_name(self) -> Option<ErrorName> {
        match self {
            Classification::NotFinal | Classification::Succeeded => None,
            Classification::SpotInterrupted => Some(ErrorName::SpotInterrupted),
            Classification::LaunchFailed => Some(ErrorName::LaunchFailed),
            Classification::OutOfMemory => Some(ErrorName::OutOfMemory),
            Classification::TaskFailed => Some(ErrorName::TaskFailed),
        }
    }
}

/// A classified stop with the facts behind it, for the attempt record and the error cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stop {
    pub classification: Classification,
    pub exit_code: Option<i32>,
    pub stop_code: Option<String>,
    /// One line a human can act on, e.g. "container 'worker' exited with code 3".
    pub reason: String,
}

// Texts ECS and Batch put in stoppedReason / statusReason when the instance under a task went
// away. Matched case-insensitively as substrings.
const RECLAIM_REASONS: &[&str] = &[
    "spot task was interrupted",
    "spot interruption",
    "host ec2",
    "instance was terminated",
    "termination notice",
    "instance is being terminated",
];

const LAUNCH_FAILURE_REASONS: &[&str] = &[
    "cannotpullcontainer",
    "resourceinitializationerror",
    "cannotstartcontainer",
    "cannotcreatecontainer",
    "cannotinspectcontainer",
    "outofmemory: task",
    "taskfailedtostart",
    "dockertimeouterror",
];

fn contains_any(text: &str, needles: &[&str]) -> bool {
    let lower = text.to_ascii_lowercase();
    needles.iter().any(|n| lower.contains(n))
}

fn is_oom(reason: &str) -> bool {
    let lower = reason.to_ascii_lowercase();
    lower.contains("outofmemoryerror")
        || lower.contains("out of memory")
        || lower.contains("oomkilled")
}

/// Classify an ECS task state change.
pub fn classify_ecs(detail: &EcsTaskStateChange) -> Stop {
    let stop_code = detail.stop_code.clone();
    if detail.last_status.as_deref() != Some("STOPPED") {
        return Stop {
            classification: Classification::NotFinal,
            exit_code: None,
            stop_code,
            reason: format!(
                "task is {}",
                detail
                    .last_status
                    .as_deref()
                    .unwrap_or("in an unknown state")
            ),
        };
    }
    let stopped_reason = detail.stopped_reason.clone().unwrap_or_default();
    let code = stop_code.as_deref().unwrap_or("");

    if matches!(code, "SpotInterruption" | "TerminationNotice")
        || contains_any(&stopped_reason, RECLAIM_REASONS)
    {
        return Stop {
            classification: Classification::SpotInterrupted,
            exit_code: first_exit_code(detail),
            stop_code,
            reason: non_empty(stopped_reason, "capacity reclaimed"),
        };
    }

    // A container reason beats the task-level one: it names the actual failure.
    let container_failure = detail.containers.iter().find_map(|c| {
        let reason = c.reason.as_deref().unwrap_or("");
        if is_oom(reason) {
            Some((Classification::OutOfMemory, c, reason))
        } else if contains_any(reason, LAUNCH_FAILURE_REASONS) {
            Some((Classification::LaunchFailed, c, reason))
        } else {
            None
        }
    });
    if let Some((classification, c, reason)) = container_failure {
        return Stop {
            classification,
            exit_code: c.exit_code,
            stop_code,
            reason: format!("container '{}': {reason}", c.name.as_deref().unwrap_or("?")),
        };
    }
    if code == "TaskFailedToStart" || contains_any(&stopped_reason, LAUNCH_FAILURE_REASONS) {
        return Stop {
            classification: Classification::LaunchFailed,
            exit_code: None,
            stop_code,
            reason: non_empty(stopped_reason, "task failed to start"),
        };
    }
    if is_oom(&stopped_reason) {
        return Stop {
            classification: Classification::OutOfMemory,
            exit_code: first_exit_code(detail),
            stop_code,
            reason: stopped_reason,
        };
    }
    if detail.containers.is_empty() {
        return Stop {
            classification: Classification::TaskFailed,
            exit_code: None,
            stop_code,
            reason: non_empty(stopped_reason, "task stopped with no container information"),
        };
    }
    match detail.containers.iter().find(|c| c.exit_code != Some(0)) {
        None => Stop {
            classification: Classification::Succeeded,
            exit_code: Some(0),
            stop_code,
            reason: "all containers exited with code 0".into(),
        },
        Some(c) => {
            let name = c.name.as_deref().unwrap_or("?");
            let reason = match c.exit_code {
                Some(code) => format!("container '{name}' exited with code {code}"),
                None => format!(
                    "container '{name}' has no exit code ({})",
                    non_empty(stopped_reason, "no reason given")
                ),
            };
            Stop {
                classification: Classification::TaskFailed,
                exit_code: c.exit_code,
                stop_code,
                reason,
            }
        }
    }
}

/// Classify a Batch job state change.
pub fn classify_batch(detail: &BatchJobStateChange) -> Stop {
    let status = detail.status.as_deref().unwrap_or("");
    let last = detail.attempts.last();
    let container = last
        .and_then(|a| a.container.as_ref())
        .or(detail.container.as_ref());
    let exit_code = container.and_then(|c| c.exit_code);
    let status_reason = last
        .and_then(|a| a.status_reason.clone())
        .or_else(|| detail.status_reason.clone())
        .unwrap_or_default();
    let container_reason = container.and_then(|c| c.reason.clone()).unwrap_or_default();
    let stop = |classification, reason: String| Stop {
        classification,
        exit_code,
        stop_code: None,
        reason,
    };
    match status {
        "SUCCEEDED" => stop(Classification::Succeeded, "job succeeded".into()),
        "FAILED" => {
            if contains_any(&status_reason, RECLAIM_REASONS)
                || contains_any(
                    &detail.status_reason.clone().unwrap_or_default(),
                    RECLAIM_REASONS,
                )
            {
                stop(Classification::SpotInterrupted, status_reason)
            } else if is_oom(&container_reason) || is_oom(&status_reason) {
                stop(
                    Classification::OutOfMemory,
                    non_empty(container_reason, &status_reason),
                )
            } else if contains_any(&container_reason, LAUNCH_FAILURE_REASONS)
                || contains_any(&status_reason, LAUNCH_FAILURE_REASONS)
            {
                stop(
                    Classification::LaunchFailed,
                    non_empty(container_reason, &status_reason),
                )
            } else {
                let reason = match exit_code {
                    Some(code) => format!("container exited with code {code}"),
                    None => non_empty(status_reason, "job failed"),
                };
                stop(Classification::TaskFailed, reason)
            }
        }
        other => stop(
            Classification::NotFinal,
            format!(
                "job is {}",
                if other.is_empty() {
                    "in an unknown state"
                } else {
                    other
                }
            ),
        ),
    }
}

fn first_exit_code(detail: &EcsTaskStateChange) -> Option<i32> {
    detail.containers.iter().find_map(|c| c.exit_code)
}

fn non_empty(s: String, fallback: &str) -> String {
    if s.trim().is_empty() {
        fallback.to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{BatchAttempt, BatchContainer, EcsContainer};

    fn ecs(stop_code: &str, reason: &str, containers: Vec<EcsContainer>) -> EcsTaskStateChange {
        EcsTaskStateChange {
            last_status: Some("STOPPED".into()),
            stop_code: (!stop_code.is_empty()).then(|| stop_code.to_string()),
            stopped_reason: (!reason.is_empty()).then(|| reason.to_string()),
            containers,
            ..Default::default()
        }
    }

    fn container(exit: Option<i32>, reason: &str) -> EcsContainer {
        EcsContainer {
            name: Some("worker".into()),
            exit_code: exit,
            reason: (!reason.is_empty()).then(|| reason.to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn ecs_cases() {
        let cases = [
            (
                ecs(
                    "EssentialContainerExited",
                    "Essential container in task exited",
                    vec![container(Some(0), "")],
                ),
                Classification::Succeeded,
            ),
            (
                ecs(
                    "EssentialContainerExited",
                    "Essential container in task exited",
                    vec![container(Some(3), "")],
                ),
                Classification::TaskFailed,
            ),
            (
                ecs(
                    "SpotInterruption",
                    "Your Spot Task was interrupted.",
                    vec![container(Some(143), "")],
                ),
                Classification::SpotInterrupted,
            ),
            (
                ecs("TerminationNotice", "", vec![container(None, "")]),
                Classification::SpotInterrupted,
            ),
            (
                ecs(
                    "ServiceSchedulerInitiated",
                    "Host EC2 (instance i-0abc) terminated.",
                    vec![],
                ),
                Classification::SpotInterrupted,
            ),
            (
                ecs(
                    "TaskFailedToStart",
                    "CannotPullContainerError: pull image manifest has been retried 5 time(s)",
                    vec![container(None, "")],
                ),
                Classification::LaunchFailed,
            ),
            (
                ecs(
                    "TaskFailedToStart",
                    "ResourceInitializationError: unable to pull secrets",
                    vec![],
                ),
                Classification::LaunchFailed,
            ),
            (
                ecs(
                    "EssentialContainerExited",
                    "Essential container in task exited",
                    vec![container(
                        Some(137),
                        "OutOfMemoryError: Container killed due to memory usage",
                    )],
                ),
                Classification::OutOfMemory,
            ),
            (
                ecs(
                    "UserInitiated",
                    "Task stopped by user",
                    vec![container(Some(143), "")],
                ),
                Classification::TaskFailed,
            ),
        ];
        for (detail, expected) in cases {
            assert_eq!(classify_ecs(&detail).classification, expected, "{detail:?}");
        }
    }

    #[test]
    fn running_is_not_final() {
        let mut d = ecs("", "", vec![]);
        d.last_status = Some("RUNNING".into());
        assert_eq!(classify_ecs(&d).classification, Classification::NotFinal);
        assert_eq!(
            classify_ecs(&EcsTaskStateChange::default()).classification,
            Classification::NotFinal
        );
    }

    #[test]
    fn exit_code_is_reported() {
        let stop = classify_ecs(&ecs(
            "EssentialContainerExited",
            "",
            vec![container(Some(0), ""), container(Some(2), "")],
        ));
        assert_eq!(stop.classification, Classification::TaskFailed);
        assert_eq!(stop.exit_code, Some(2));
        assert_eq!(stop.reason, "container 'worker' exited with code 2");
    }

    fn batch(
        status: &str,
        reason: &str,
        exit: Option<i32>,
        container_reason: &str,
    ) -> BatchJobStateChange {
        BatchJobStateChange {
            status: Some(status.into()),
            status_reason: Some(reason.into()),
            attempts: vec![BatchAttempt {
                container: Some(BatchContainer {
                    exit_code: exit,
                    reason: (!container_reason.is_empty()).then(|| container_reason.to_string()),
                    ..Default::default()
                }),
                status_reason: Some(reason.into()),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn batch_cases() {
        assert_eq!(
            classify_batch(&batch(
                "SUCCEEDED",
                "Essential container in task exited",
                Some(0),
                ""
            ))
            .classification,
            Classification::Succeeded
        );
        assert_eq!(
            classify_batch(&batch(
                "FAILED",
                "Host EC2 (instance i-0123) terminated.",
                None,
                ""
            ))
            .classification,
            Classification::SpotInterrupted
        );
        assert_eq!(
            classify_batch(&batch(
                "FAILED",
                "Essential container in task exited",
                Some(1),
                ""
            ))
            .classification,
            Classification::TaskFailed
        );
        assert_eq!(
            classify_batch(&batch(
                "FAILED",
                "Essential container in task exited",
                Some(137),
                "OutOfMemoryError: Container killed due to memory usage"
            ))
            .classification,
            Classification::OutOfMemory
        );
        assert_eq!(
            classify_batch(&batch(
                "FAILED",
                "Task failed to start",
                None,
                "CannotPullContainerError: Error response from daemon"
            ))
            .classification,
            Classification::LaunchFailed
        );
        assert_eq!(
            classify_batch(&batch("RUNNABLE", "", None, "")).classification,
            Classification::NotFinal
        );
    }
}
