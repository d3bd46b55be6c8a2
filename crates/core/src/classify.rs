//! Failure classification: what a finished ECS task or Batch job means for the pipeline.
//!
//! One classification for both compute back ends, because the state machine retries on the
//! meaning, not on the back end: a Spot reclaim is retried with backoff and does not count
//! against the application's retry budget; a launch failure is retried a few times; running out
//! of memory is not retried (the same size will fail again); a non-zero exit, and a run stopped
//! for outliving its timeout, follow the pipeline's retry policy.

use crate::error::ErrorName;
use crate::events::{BatchJobStateChange, EcsTaskStateChange, StoppedContainer};
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
    /// Stopped by compute because the attempt ran longer than its timeout (AWS Batch's
    /// `attemptDurationSeconds`, the local pool's run timeout).
    TimedOut,
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
            Classification::TimedOut => "timed-out",
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
            Classification::TimedOut => Some(ErrorName::TaskTimedOut),
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

/// The text AWS Batch puts in an attempt's statusReason when it stopped the attempt for running
/// longer than `attemptDurationSeconds`; the local pool says the same of its run timeout.
pub const TIMEOUT_REASON: &str = "Job attempt duration exceeded timeout";

const TIMEOUT_REASONS: &[&str] = &["job attempt duration exceeded timeout"];

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
    // ECS itself never times a task out; a compute that does (the local pool) says so here.
    let by_reason = if is_oom(&stopped_reason) {
        Some(Classification::OutOfMemory)
    } else if contains_any(&stopped_reason, TIMEOUT_REASONS) {
        Some(Classification::TimedOut)
    } else {
        None
    };
    if let Some(classification) = by_reason {
        return Stop {
            classification,
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

/// Classify a Batch job state change, for either job shape: `containerProperties` (the
/// attempt's `container`) and `ecsProperties` (the attempt's `taskProperties[].containers[]`,
/// or the job's `ecsProperties.taskProperties[].containers[]` when the attempt has none).
pub fn classify_batch(detail: &BatchJobStateChange) -> Stop {
    let status = detail.status.as_deref().unwrap_or("");
    let containers = detail.stopped_containers();
    // The failed container names the failure; with none failed, the first exit code.
    let failed = containers
        .iter()
        .find(|c| c.exit_code.is_some_and(|code| code != 0));
    let exit_code = failed
        .or_else(|| containers.iter().find(|c| c.exit_code.is_some()))
        .and_then(|c| c.exit_code);
    let status_reason = detail
        .attempts
        .last()
        .and_then(|a| a.status_reason.clone())
        .or_else(|| detail.status_reason.clone())
        .unwrap_or_default();
    let container_reason = |matches: &dyn Fn(&str) -> bool| {
        containers
            .iter()
            .find_map(|c| c.reason.filter(|r| matches(r)).map(|r| (c.name, r)))
    };
    let named = |name: Option<&str>, reason: &str| match name {
        Some(n) => format!("container '{n}': {reason}"),
        None => reason.to_string(),
    };
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
                    detail.status_reason.as_deref().unwrap_or_default(),
                    RECLAIM_REASONS,
                )
            {
                stop(Classification::SpotInterrupted, status_reason)
            } else if let Some((name, reason)) = container_reason(&is_oom) {
                stop(Classification::OutOfMemory, named(name, reason))
            } else if is_oom(&status_reason) {
                stop(Classification::OutOfMemory, status_reason)
            } else if let Some((name, reason)) =
                container_reason(&|r| contains_any(r, LAUNCH_FAILURE_REASONS))
            {
                stop(Classification::LaunchFailed, named(name, reason))
            } else if contains_any(&status_reason, LAUNCH_FAILURE_REASONS) {
                stop(Classification::LaunchFailed, status_reason)
            } else if contains_any(&status_reason, TIMEOUT_REASONS) {
                stop(Classification::TimedOut, status_reason)
            } else {
                let reason = match (failed, exit_code) {
                    (Some(StoppedContainer { name: Some(n), .. }), Some(code)) => {
                        format!("container '{n}' exited with code {code}")
                    }
                    (_, Some(code)) => format!("container exited with code {code}"),
                    (_, None) => non_empty(status_reason, "job failed"),
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

/// The stop of an attempt whose host got a reclaim notice while it ran (an EC2 Spot
/// interruption warning, or its instance shutting down): a reclaim, whatever exit code or stop
/// code the event carries. On EC2, ECS does not drain standalone tasks for a Spot warning and
/// gives them no Spot stop code: the container may be killed with 137, or exit 1 because its
/// storage or network went first. Only a success stands, since the work was done.
pub fn on_reclaimed_host(stop: Stop, notice: &str) -> Stop {
    match stop.classification {
        Classification::NotFinal | Classification::Succeeded | Classification::SpotInterrupted => {
            stop
        }
        Classification::LaunchFailed
        | Classification::OutOfMemory
        | Classification::TimedOut
        | Classification::TaskFailed => Stop {
            classification: Classification::SpotInterrupted,
            reason: format!("{notice}; then: {}", stop.reason),
            ..stop
        },
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
            (
                ecs(
                    "UserInitiated",
                    "Job attempt duration exceeded timeout (ran 2 s)",
                    vec![container(Some(143), "")],
                ),
                Classification::TimedOut,
            ),
        ];
        for (detail, expected) in cases {
            assert_eq!(classify_ecs(&detail).classification, expected, "{detail:?}");
        }
    }

    /// A task on an instance that got a Spot warning is reclaimed whatever its event says,
    /// unless it succeeded.
    #[test]
    fn a_reclaim_notice_outweighs_the_exit_code() {
        let notice = "EC2 Spot Instance Interruption Warning for i-0abc (terminate)";
        let cases = [
            (
                ecs(
                    "EssentialContainerExited",
                    "Essential container in task exited",
                    vec![container(Some(137), "")],
                ),
                Classification::SpotInterrupted,
            ),
            (
                ecs(
                    "EssentialContainerExited",
                    "Essential container in task exited",
                    vec![container(Some(1), "")],
                ),
                Classification::SpotInterrupted,
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
                Classification::SpotInterrupted,
            ),
            (
                ecs(
                    "TaskFailedToStart",
                    "CannotPullContainerError: timeout",
                    vec![],
                ),
                Classification::SpotInterrupted,
            ),
            (
                ecs(
                    "EssentialContainerExited",
                    "Essential container in task exited",
                    vec![container(Some(0), "")],
                ),
                Classification::Succeeded,
            ),
        ];
        for (detail, expected) in cases {
            let stop = on_reclaimed_host(classify_ecs(&detail), notice);
            assert_eq!(stop.classification, expected, "{detail:?}");
            if expected == Classification::SpotInterrupted {
                assert!(stop.reason.starts_with(notice), "{}", stop.reason);
            }
        }
        // Without a notice the same exit code is the application's.
        let plain = ecs(
            "EssentialContainerExited",
            "Essential container in task exited",
            vec![container(Some(137), "")],
        );
        assert_eq!(
            classify_ecs(&plain).classification,
            Classification::TaskFailed
        );
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
    fn the_timeout_text_is_what_the_reason_list_matches() {
        assert!(contains_any(TIMEOUT_REASON, TIMEOUT_REASONS));
    }

    #[test]
    fn batch_cases() {
        assert_eq!(
            classify_batch(&batch(
                "FAILED",
                "Job attempt duration exceeded timeout",
                Some(137),
                ""
            ))
            .classification,
            Classification::TimedOut
        );
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

    /// The two shapes a Batch job's state-change event comes in.
    #[derive(Debug, Clone, Copy)]
    enum Shape {
        /// `containerProperties` jobs: `attempts[].container`, `container`.
        Container,
        /// `ecsProperties` jobs: `attempts[].taskProperties[].containers[]`,
        /// `ecsProperties.taskProperties[].containers[]`.
        EcsProperties,
    }

    /// A FAILED/SUCCEEDED/... "Batch Job State Change" detail in the shape of AWS's documented
    /// sample event (field names and nesting as the Batch JobDetail reference gives them).
    fn batch_event(
        shape: Shape,
        status: &str,
        status_reason: &str,
        exit: Option<i32>,
        reason: Option<&str>,
    ) -> BatchJobStateChange {
        let env = serde_json::json!([
            {"name": "SLUICE_JOB_ID", "value": "ber-1"},
            {"name": "SLUICE_TASK_ID", "value": "t-007"},
            {"name": "SLUICE_ATTEMPT", "value": "2"}
        ]);
        let stopped = !matches!(status, "RUNNABLE" | "STARTING" | "RUNNING");
        let mut attempt_container = serde_json::json!({
            "containerInstanceArn": "arn:aws:ecs:us-east-1:123456789012:container-instance/c1",
            "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/t1",
            "logStreamName": "event-test/default/t1",
            "networkInterfaces": []
        });
        if let Some(code) = exit {
            attempt_container["exitCode"] = code.into();
        }
        if let Some(r) = reason {
            attempt_container["reason"] = r.into();
        }
        let mut job_container = serde_json::json!({
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/worker:latest",
            "command": ["worker"],
            "environment": env,
            "resourceRequirements": [{"value": "2", "type": "VCPU"}, {"value": "4096", "type": "MEMORY"}]
        });
        for key in ["exitCode", "reason"] {
            if let Some(v) = attempt_container.get(key) {
                job_container[key] = v.clone();
            }
        }
        let attempts = if stopped {
            let mut a = serde_json::json!({
                "startedAt": 1641944300058_i64,
                "stoppedAt": 1641944400058_i64,
                "statusReason": status_reason
            });
            match shape {
                Shape::Container => a["container"] = attempt_container,
                Shape::EcsProperties => {
                    let mut c = attempt_container.clone();
                    c["name"] = "main".into();
                    a["taskProperties"] = serde_json::json!([{
                        "containerInstanceArn": "arn:aws:ecs:us-east-1:123456789012:container-instance/c1",
                        "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/t1",
                        "containers": [c]
                    }]);
                }
            }
            serde_json::json!([a])
        } else {
            serde_json::json!([])
        };
        let mut detail = serde_json::json!({
            "jobArn": "arn:aws:batch:us-east-1:123456789012:job/4c7599ae",
            "jobName": "event-test",
            "jobId": "4c7599ae-0a82-49aa-ba5a-4727fcce14a8",
            "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/q",
            "status": status,
            "statusReason": status_reason,
            "attempts": attempts,
            "createdAt": 1641944200058_i64,
            "retryStrategy": {"attempts": 2, "evaluateOnExit": []},
            "dependsOn": [],
            "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/worker:1",
            "parameters": {},
            "tags": {"resourceArn": "arn:aws:batch:us-east-1:123456789012:job/4c7599ae"},
            "platformCapabilities": ["EC2"],
            "eksAttempts": []
        });
        match shape {
            Shape::Container => detail["container"] = job_container,
            Shape::EcsProperties => {
                let mut c = job_container;
                c["name"] = "main".into();
                c["essential"] = true.into();
                detail["ecsProperties"] = serde_json::json!({"taskProperties": [{
                    "containers": [c],
                    "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/t1",
                    "containerInstanceArn": "arn:aws:ecs:us-east-1:123456789012:container-instance/c1"
                }]});
            }
        }
        serde_json::from_value(detail).expect("the sample detail parses")
    }

    /// Status, status reason, exit code, container reason, expected classification.
    type BatchCase = (
        &'static str,
        &'static str,
        Option<i32>,
        Option<&'static str>,
        Classification,
    );

    /// Every classification rule, on both Batch job shapes (the ECS shape is `ecs_cases`).
    #[test]
    fn batch_rules_hold_for_both_job_shapes() {
        let oom = "OutOfMemoryError: Container killed due to memory usage";
        let pull = "CannotPullContainerError: pull image manifest has been retried 5 time(s)";
        let cases: [BatchCase; 8] = [
            (
                "SUCCEEDED",
                "Essential container in task exited",
                Some(0),
                None,
                Classification::Succeeded,
            ),
            (
                "FAILED",
                "Essential container in task exited",
                Some(3),
                None,
                Classification::TaskFailed,
            ),
            (
                "FAILED",
                "Essential container in task exited",
                Some(137),
                Some(oom),
                Classification::OutOfMemory,
            ),
            (
                "FAILED",
                "Task failed to start",
                None,
                Some(pull),
                Classification::LaunchFailed,
            ),
            (
                "FAILED",
                "Host EC2 (instance i-0123) terminated.",
                None,
                None,
                Classification::SpotInterrupted,
            ),
            (
                "FAILED",
                "ResourceInitializationError: unable to pull secrets",
                None,
                None,
                Classification::LaunchFailed,
            ),
            ("RUNNABLE", "", None, None, Classification::NotFinal),
            ("RUNNING", "", None, None, Classification::NotFinal),
        ];
        for shape in [Shape::Container, Shape::EcsProperties] {
            for (status, status_reason, exit, reason, expected) in cases {
                let detail = batch_event(shape, status, status_reason, exit, reason);
                let stop = classify_batch(&detail);
                assert_eq!(
                    stop.classification, expected,
                    "{shape:?} {status} {status_reason:?} exit {exit:?} {reason:?}: {stop:?}"
                );
                if status == "FAILED" || status == "SUCCEEDED" {
                    assert_eq!(stop.exit_code, exit, "{shape:?} {status} {reason:?}");
                }
                if expected != Classification::NotFinal {
                    let key = detail
                        .attempt_key()
                        .expect("the attempt is named in the environment");
                    assert_eq!(key.to_string(), "ber-1/t-007#2", "{shape:?}");
                }
            }
        }
    }

    #[test]
    fn batch_failure_reasons_name_the_container_when_the_event_does() {
        let ecs = batch_event(
            Shape::EcsProperties,
            "FAILED",
            "Essential container in task exited",
            Some(3),
            None,
        );
        assert_eq!(
            classify_batch(&ecs).reason,
            "container 'main' exited with code 3"
        );
        let oom = batch_event(
            Shape::EcsProperties,
            "FAILED",
            "Essential container in task exited",
            Some(137),
            Some("OutOfMemoryError: Container killed due to memory usage"),
        );
        assert_eq!(
            classify_batch(&oom).reason,
            "container 'main': OutOfMemoryError: Container killed due to memory usage"
        );
        // The classic shape's attempt container has no name.
        let classic = batch_event(
            Shape::Container,
            "FAILED",
            "Essential container in task exited",
            Some(3),
            None,
        );
        assert_eq!(
            classify_batch(&classic).reason,
            "container exited with code 3"
        );
    }

    /// An ecsProperties job whose attempt lists no containers (a truncated event) is still
    /// classified from the job's own `ecsProperties` containers.
    #[test]
    fn ecs_properties_job_without_attempt_containers_uses_the_job_containers() {
        let mut detail = batch_event(
            Shape::EcsProperties,
            "FAILED",
            "Essential container in task exited",
            Some(137),
            Some("OutOfMemoryError: Container killed due to memory usage"),
        );
        detail.attempts[0].task_properties.clear();
        assert_eq!(
            classify_batch(&detail).classification,
            Classification::OutOfMemory
        );
        assert_eq!(classify_batch(&detail).exit_code, Some(137));
    }

    /// The case: a multi-container ecsProperties task where a sidecar exits 0 and the
    /// main container is killed for memory.
    #[test]
    fn ecs_properties_oom_in_one_of_several_containers() {
        let mut detail = batch_event(
            Shape::EcsProperties,
            "FAILED",
            "Essential container in task exited",
            Some(137),
            Some("OutOfMemoryError: Container killed due to memory usage"),
        );
        let sidecar = crate::events::BatchAttemptContainer {
            name: Some("log-router".into()),
            exit_code: Some(0),
            ..Default::default()
        };
        detail.attempts[0].task_properties[0]
            .containers
            .insert(0, sidecar);
        let stop = classify_batch(&detail);
        assert_eq!(stop.classification, Classification::OutOfMemory);
        assert_eq!(stop.exit_code, Some(137));
    }
}
