//! The events sluice reacts to, typed from AWS's documented samples: ECS "Task State Change",
//! Batch "Job State Change" and S3 "Object Created", as the `detail` of an EventBridge event.
//!
//! The local runtime emits exactly these shapes, so the task-events and ingest handlers cannot
//! tell a laptop from AWS. Every field AWS may omit is optional: a truncated event is handled
//! (classified as not-final or unknown), never a panic.

use crate::ids::{JobId, TaskId};
use crate::model::AttemptKey;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Environment variables through which a launched container knows, and every state-change
/// event names, the attempt it belongs to. They travel in the RunTask container overrides (ECS)
/// or SubmitJob container overrides (Batch), which the events echo back.
pub const ENV_JOB_ID: &str = "SLUICE_JOB_ID";
pub const ENV_TASK_ID: &str = "SLUICE_TASK_ID";
pub const ENV_ATTEMPT: &str = "SLUICE_ATTEMPT";
/// Where the task's output must end up (an object, or a prefix ending with '/').
pub const ENV_RESULT_URI: &str = "SLUICE_RESULT_URI";
/// Where the task writes its output (what `{output}` renders to).
pub const ENV_OUTPUT: &str = "SLUICE_OUTPUT";
/// On ECS/Batch: the inputs the worker entrypoint downloads before the command runs, one per
/// line: `file|dir<TAB>s3://bucket/key<TAB>/container/path`.
pub const ENV_INPUTS: &str = "SLUICE_INPUTS";
/// On ECS/Batch: `file`, `dir` or `nothing`, what the entrypoint uploads.
pub const ENV_OUTPUT_KIND: &str = "SLUICE_OUTPUT_KIND";
/// `1` when the task's output is one of the job's results (its stage is the last that writes
/// something): the entrypoint then leaves out the `sluice-kind=task-result` tag, so the
/// bucket's lifecycle rule for per-task outputs does not expire it.
pub const ENV_OUTPUT_KEEP: &str = "SLUICE_OUTPUT_KEEP";

pub const ECS_TASK_STATE_CHANGE: &str = "ECS Task State Change";
pub const BATCH_JOB_STATE_CHANGE: &str = "Batch Job State Change";
pub const S3_OBJECT_CREATED: &str = "Object Created";
pub const SFN_EXECUTION_STATUS_CHANGE: &str = "Step Functions Execution Status Change";
/// Two minutes before EC2 reclaims a Spot instance (source `aws.ec2`).
pub const EC2_SPOT_INTERRUPTION_WARNING: &str = "EC2 Spot Instance Interruption Warning";
/// An instance changed state (source `aws.ec2`); sluice reacts to `shutting-down`.
pub const EC2_INSTANCE_STATE_CHANGE: &str = "EC2 Instance State-change Notification";

/// Tags sluice puts on every ECS task and Batch job it launches (Batch propagates them and
/// echoes them in its job state-change events).
pub const TAG_JOB: &str = "sluice:job";
pub const TAG_TASK: &str = "sluice:task";
pub const TAG_ATTEMPT: &str = "sluice:attempt";

/// The EventBridge envelope. `aws_lambda_events::eventbridge::EventBridgeEvent` has the same
/// wire shape; this one lets sluice-core and the local runtime stay free of Lambda crates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope<T> {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub resources: Vec<String>,
    pub detail: T,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    pub name: String,
    #[serde(default)]
    pub value: Option<String>,
}

fn attempt_key_from_env(env: &[KeyValue]) -> Option<AttemptKey> {
    let get = |name: &str| {
        env.iter()
            .find(|kv| kv.name == name)
            .and_then(|kv| kv.value.clone())
    };
    Some(AttemptKey {
        job_id: JobId::new(get(ENV_JOB_ID)?).ok()?,
        task_id: TaskId::new(get(ENV_TASK_ID)?).ok()?,
        number: get(ENV_ATTEMPT)?.parse().ok()?,
    })
}

/// `detail` of "ECS Task State Change".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcsTaskStateChange {
    #[serde(default)]
    pub cluster_arn: Option<String>,
    #[serde(default)]
    pub task_arn: Option<String>,
    #[serde(default)]
    pub task_definition_arn: Option<String>,
    #[serde(default)]
    pub container_instance_arn: Option<String>,
    #[serde(default)]
    pub last_status: Option<String>,
    #[serde(default)]
    pub desired_status: Option<String>,
    #[serde(default)]
    pub stop_code: Option<String>,
    #[serde(default)]
    pub stopped_reason: Option<String>,
    #[serde(default)]
    pub containers: Vec<EcsContainer>,
    #[serde(default)]
    pub overrides: Option<EcsOverrides>,
    #[serde(default)]
    pub started_by: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub launch_type: Option<String>,
    #[serde(default)]
    pub capacity_provider_name: Option<String>,
    /// Increases with every change of the task; stale deliveries carry a lower one.
    #[serde(default)]
    pub version: Option<u64>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub stopping_at: Option<String>,
    #[serde(default)]
    pub stopped_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcsContainer {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub container_arn: Option<String>,
    #[serde(default)]
    pub last_status: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcsOverrides {
    #[serde(default)]
    pub container_overrides: Vec<EcsContainerOverride>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcsContainerOverride {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub environment: Vec<KeyValue>,
}

/// When a task ran, as its stop event says: `None` where the event has no time (a task that
/// never started has no `startedAt`) or one that cannot be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunTimes {
    pub started: Option<DateTime<Utc>>,
    pub stopped: Option<DateTime<Utc>>,
}

impl EcsTaskStateChange {
    /// When the task ran (ECS's `startedAt` / `stoppedAt`, RFC 3339).
    pub fn run_times(&self) -> RunTimes {
        let at = |t: &Option<String>| {
            t.as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        RunTimes {
            started: at(&self.started_at),
            stopped: at(&self.stopped_at),
        }
    }

    /// The sluice attempt this ECS task ran, from the container overrides sluice set at launch.
    pub fn attempt_key(&self) -> Option<AttemptKey> {
        self.overrides
            .as_ref()?
            .container_overrides
            .iter()
            .find_map(|o| attempt_key_from_env(&o.environment))
    }
}

/// `detail` of "Batch Job State Change".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchJobStateChange {
    #[serde(default)]
    pub job_arn: Option<String>,
    #[serde(default)]
    pub job_name: Option<String>,
    #[serde(default)]
    pub job_id: Option<String>,
    #[serde(default)]
    pub job_queue: Option<String>,
    /// SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING, SUCCEEDED or FAILED.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub status_reason: Option<String>,
    #[serde(default)]
    pub attempts: Vec<BatchAttempt>,
    /// The container of a job defined with `containerProperties` (the classic shape).
    #[serde(default)]
    pub container: Option<BatchContainer>,
    /// The task of a job defined with `ecsProperties` (the newer shape: containers under
    /// `ecsProperties.taskProperties[].containers[]`, and `container` absent).
    #[serde(default)]
    pub ecs_properties: Option<BatchEcsProperties>,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub started_at: Option<i64>,
    #[serde(default)]
    pub stopped_at: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchAttempt {
    /// The attempt's container (`containerProperties` jobs).
    #[serde(default)]
    pub container: Option<BatchContainer>,
    /// The attempt's ECS tasks (`ecsProperties` jobs): their containers' exit codes and reasons.
    #[serde(default)]
    pub task_properties: Vec<BatchAttemptTask>,
    #[serde(default)]
    pub status_reason: Option<String>,
    #[serde(default)]
    pub started_at: Option<i64>,
    #[serde(default)]
    pub stopped_at: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchContainer {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub task_arn: Option<String>,
    #[serde(default)]
    pub environment: Vec<KeyValue>,
}

/// `ecsProperties` of a Batch job (JobDetail's `EcsPropertiesDetail`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchEcsProperties {
    #[serde(default)]
    pub task_properties: Vec<BatchEcsTask>,
}

/// One task of `ecsProperties.taskProperties` (`EcsTaskDetails`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchEcsTask {
    #[serde(default)]
    pub containers: Vec<BatchTaskContainer>,
    #[serde(default)]
    pub task_arn: Option<String>,
    #[serde(default)]
    pub container_instance_arn: Option<String>,
}

/// A container of an `ecsProperties` task (`TaskContainerDetails`), with the environment
/// sluice set at SubmitJob and, once it stopped, its exit code and reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchTaskContainer {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub essential: Option<bool>,
    #[serde(default)]
    pub environment: Vec<KeyValue>,
}

/// One ECS task of a Batch attempt (`AttemptEcsTaskDetails`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchAttemptTask {
    #[serde(default)]
    pub containers: Vec<BatchAttemptContainer>,
    #[serde(default)]
    pub task_arn: Option<String>,
    #[serde(default)]
    pub container_instance_arn: Option<String>,
}

/// A container of a Batch attempt's ECS task (`AttemptTaskContainerDetails`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchAttemptContainer {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub log_stream_name: Option<String>,
}

/// What classification needs from one stopped container, whichever shape it came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoppedContainer<'a> {
    pub name: Option<&'a str>,
    pub exit_code: Option<i32>,
    pub reason: Option<&'a str>,
}

impl BatchContainer {
    fn stopped(&self) -> StoppedContainer<'_> {
        StoppedContainer {
            name: self.name.as_deref(),
            exit_code: self.exit_code,
            reason: self.reason.as_deref(),
        }
    }
}

impl BatchJobStateChange {
    /// When the job's last attempt ran (Batch's `startedAt` / `stoppedAt`, milliseconds since
    /// the epoch; the job's own when no attempt says). sluice submits one Batch job per
    /// attempt, so that is the sluice attempt's run.
    pub fn run_times(&self) -> RunTimes {
        let at = |ms: Option<i64>| ms.and_then(DateTime::from_timestamp_millis);
        let last = self.attempts.last();
        RunTimes {
            started: at(last.and_then(|a| a.started_at).or(self.started_at)),
            stopped: at(last.and_then(|a| a.stopped_at).or(self.stopped_at)),
        }
    }

    /// The containers of the job's last attempt (or, when no attempt reports any, of the job
    /// itself), for both job shapes: `container` (`containerProperties`) and
    /// `taskProperties[].containers[]` (`ecsProperties`).
    pub fn stopped_containers(&self) -> Vec<StoppedContainer<'_>> {
        let from_attempt: Vec<StoppedContainer<'_>> = match self.attempts.last() {
            Some(a) => match &a.container {
                Some(c) => vec![c.stopped()],
                None => a
                    .task_properties
                    .iter()
                    .flat_map(|t| &t.containers)
                    .map(|c| StoppedContainer {
                        name: c.name.as_deref(),
                        exit_code: c.exit_code,
                        reason: c.reason.as_deref(),
                    })
                    .collect(),
            },
            None => Vec::new(),
        };
        if !from_attempt.is_empty() {
            return from_attempt;
        }
        match (&self.container, &self.ecs_properties) {
            (Some(c), _) => vec![c.stopped()],
            (None, Some(p)) => p
                .task_properties
                .iter()
                .flat_map(|t| &t.containers)
                .map(|c| StoppedContainer {
                    name: c.name.as_deref(),
                    exit_code: c.exit_code,
                    reason: c.reason.as_deref(),
                })
                .collect(),
            (None, None) => Vec::new(),
        }
    }

    /// The sluice attempt this Batch job ran: from the container environment sluice set at
    /// SubmitJob (either job shape), or else from the job's tags.
    pub fn attempt_key(&self) -> Option<AttemptKey> {
        if let Some(key) = self
            .container
            .as_ref()
            .and_then(|c| attempt_key_from_env(&c.environment))
        {
            return Some(key);
        }
        if let Some(key) = self.ecs_properties.as_ref().and_then(|p| {
            p.task_properties
                .iter()
                .flat_map(|t| &t.containers)
                .find_map(|c| attempt_key_from_env(&c.environment))
        }) {
            return Some(key);
        }
        // The tags are those the launch wrote (TAG_*), not the environment's names.
        Some(AttemptKey {
            job_id: JobId::new(self.tags.get(TAG_JOB)?.clone()).ok()?,
            task_id: TaskId::new(self.tags.get(TAG_TASK)?.clone()).ok()?,
            number: self.tags.get(TAG_ATTEMPT)?.parse().ok()?,
        })
    }
}

/// `detail` of S3 "Object Created" (EventBridge notifications enabled on the bucket).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct S3ObjectCreated {
    #[serde(default)]
    pub version: Option<String>,
    pub bucket: S3Bucket,
    pub object: S3Object,
    #[serde(default, rename = "request-id")]
    pub request_id: Option<String>,
    #[serde(default)]
    pub requester: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct S3Bucket {
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct S3Object {
    pub key: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub etag: Option<String>,
    #[serde(default, rename = "version-id")]
    pub version_id: Option<String>,
    /// Orders events for the same key; identical on redelivery of the same upload.
    #[serde(default)]
    pub sequencer: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_ecs_sample_and_finds_attempt() {
        let event: EventEnvelope<EcsTaskStateChange> = serde_json::from_value(serde_json::json!({
            "version": "0", "id": "9bcdac79-b31f-4d3d-9410-fbd727c29fab",
            "detail-type": "ECS Task State Change", "source": "aws.ecs",
            "account": "111122223333", "time": "2016-12-06T16:41:06Z", "region": "us-east-1",
            "resources": ["arn:aws:ecs:us-east-1:111122223333:task/b99d40b3"],
            "detail": {
                "clusterArn": "arn:aws:ecs:us-east-1:111122223333:cluster/default",
                "containers": [{"containerArn": "arn:aws:ecs:us-east-1:111122223333:container/3305bea1",
                    "exitCode": 1, "lastStatus": "STOPPED", "name": "xray",
                    "taskArn": "arn:aws:ecs:us-east-1:111122223333:task/b99d40b3"}],
                "createdAt": "2016-12-06T16:41:05.702Z", "desiredStatus": "STOPPED",
                "lastStatus": "STOPPED",
                "overrides": {"containerOverrides": [{"name": "xray", "environment": [
                    {"name": "SLUICE_JOB_ID", "value": "ber-1"},
                    {"name": "SLUICE_TASK_ID", "value": "t-007"},
                    {"name": "SLUICE_ATTEMPT", "value": "2"}]}]},
                "startedAt": "2016-12-06T16:41:06.8Z", "startedBy": "ecs-svc/9223370556150183303",
                "updatedAt": "2016-12-06T16:41:06.975Z",
                "taskArn": "arn:aws:ecs:us-east-1:111122223333:task/b99d40b3",
                "taskDefinitionArn": "arn:aws:ecs:us-east-1:111122223333:task-definition/xray:2",
                "version": 4, "stopCode": "EssentialContainerExited"
            }
        }))
        .unwrap();
        assert_eq!(event.detail.version, Some(4));
        let key = event.detail.attempt_key().unwrap();
        assert_eq!(key.to_string(), "ber-1/t-007#2");
        // Started, not yet stopped in this sample.
        let ran = event.detail.run_times();
        assert_eq!(
            ran.started.map(|t| t.to_rfc3339()).as_deref(),
            Some("2016-12-06T16:41:06.800+00:00")
        );
        assert_eq!(ran.stopped, None);
    }

    /// A Batch job's run is its last attempt's (sluice submits a job per attempt), else the
    /// job's own times; milliseconds since the epoch.
    #[test]
    fn batch_run_times_are_the_last_attempts() {
        let detail: BatchJobStateChange = serde_json::from_value(serde_json::json!({
            "jobId": "4c7599ae", "status": "FAILED",
            "startedAt": 1764756000000_i64, "stoppedAt": 1764756009000_i64,
            "attempts": [
                {"startedAt": 1764756001000_i64, "stoppedAt": 1764756002500_i64},
                {"startedAt": 1764756003000_i64, "stoppedAt": 1764756004250_i64}
            ]
        }))
        .unwrap();
        let ran = detail.run_times();
        assert_eq!(
            ran.started.map(|t| t.timestamp_millis()),
            Some(1764756003000)
        );
        assert_eq!(
            ran.stopped.map(|t| t.timestamp_millis()),
            Some(1764756004250)
        );
        let no_attempts: BatchJobStateChange = serde_json::from_value(serde_json::json!({
            "jobId": "4c7599ae", "status": "FAILED", "startedAt": 1764756000000_i64
        }))
        .unwrap();
        let ran = no_attempts.run_times();
        assert_eq!(
            ran.started.map(|t| t.timestamp_millis()),
            Some(1764756000000)
        );
        assert_eq!(ran.stopped, None);
    }

    /// A Batch event whose container environment is missing (a truncated detail) still names
    /// its attempt by the tags launch wrote, `sluice:job` etc.
    #[test]
    fn batch_attempt_from_the_tags_launch_writes() {
        let detail: BatchJobStateChange = serde_json::from_value(serde_json::json!({
            "jobId": "4c7599ae", "status": "FAILED",
            "tags": {"sluice:job": "ber-1", "sluice:task": "t-007", "sluice:attempt": "2",
                     "resourceArn": "arn:aws:batch:us-east-1:123456789012:job/4c7599ae"}
        }))
        .unwrap();
        assert_eq!(detail.attempt_key().unwrap().to_string(), "ber-1/t-007#2");
        let env_named: BatchJobStateChange = serde_json::from_value(serde_json::json!({
            "jobId": "4c7599ae", "status": "FAILED",
            "tags": {"SLUICE_JOB_ID": "ber-1", "SLUICE_TASK_ID": "t-007", "SLUICE_ATTEMPT": "2"}
        }))
        .unwrap();
        assert_eq!(
            env_named.attempt_key(),
            None,
            "launch never writes such tags"
        );
    }

    #[test]
    fn ec2_events_parse_from_the_documented_samples() {
        let warning: EventEnvelope<Ec2SpotInterruptionWarning> =
            serde_json::from_value(serde_json::json!({
                "version": "0", "id": "12345678-1234-1234-1234-123456789012",
                "detail-type": "EC2 Spot Instance Interruption Warning", "source": "aws.ec2",
                "account": "123456789012", "time": "2026-12-03T10:00:00Z", "region": "us-east-2",
                "resources": ["arn:aws:ec2:us-east-2:123456789012:instance/i-1234567890abcdef0"],
                "detail": {"instance-id": "i-1234567890abcdef0", "instance-action": "terminate"}
            }))
            .unwrap();
        assert_eq!(warning.detail_type, EC2_SPOT_INTERRUPTION_WARNING);
        assert_eq!(warning.detail.instance_id, "i-1234567890abcdef0");
        let change: Ec2InstanceStateChange = serde_json::from_value(
            serde_json::json!({"instance-id": "i-1234567890abcdef0", "state": "shutting-down"}),
        )
        .unwrap();
        assert!(change.is_going_away());
        let running: Ec2InstanceStateChange =
            serde_json::from_value(serde_json::json!({"instance-id": "i-1", "state": "running"}))
                .unwrap();
        assert!(!running.is_going_away());
    }

    #[test]
    fn hostile_attempt_env_is_not_a_key() {
        let detail = EcsTaskStateChange {
            overrides: Some(EcsOverrides {
                container_overrides: vec![EcsContainerOverride {
                    environment: vec![
                        KeyValue {
                            name: ENV_JOB_ID.into(),
                            value: Some("../../etc".into()),
                        },
                        KeyValue {
                            name: ENV_TASK_ID.into(),
                            value: Some("t".into()),
                        },
                        KeyValue {
                            name: ENV_ATTEMPT.into(),
                            value: Some("1".into()),
                        },
                    ],
                    ..Default::default()
                }],
            }),
            ..Default::default()
        };
        assert_eq!(detail.attempt_key(), None);
    }
}

/// `detail` of "EC2 Spot Instance Interruption Warning".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ec2SpotInterruptionWarning {
    #[serde(rename = "instance-id")]
    pub instance_id: String,
    /// `terminate`, `stop` or `hibernate`: the instance goes away from under its tasks in each.
    #[serde(rename = "instance-action", default)]
    pub instance_action: Option<String>,
}

/// `detail` of "EC2 Instance State-change Notification".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ec2InstanceStateChange {
    #[serde(rename = "instance-id")]
    pub instance_id: String,
    /// `pending`, `running`, `stopping`, `stopped`, `shutting-down` or `terminated`.
    pub state: String,
}

impl Ec2InstanceStateChange {
    /// The instance is going away: its tasks die with it.
    pub fn is_going_away(&self) -> bool {
        matches!(
            self.state.as_str(),
            "shutting-down" | "terminated" | "stopping" | "stopped"
        )
    }
}

/// `status` of a Step Functions execution, as its status-change events carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
    PendingRedrive,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::TimedOut => "TIMED_OUT",
            ExecutionStatus::Aborted => "ABORTED",
            ExecutionStatus::PendingRedrive => "PENDING_REDRIVE",
        }
    }
}

/// `detail` of "Step Functions Execution Status Change" (EventBridge, `aws.states`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStatusChange {
    pub execution_arn: String,
    #[serde(default)]
    pub state_machine_arn: Option<String>,
    pub name: String,
    pub status: ExecutionStatus,
    /// Epoch milliseconds.
    #[serde(default)]
    pub start_date: Option<i64>,
    #[serde(default)]
    pub stop_date: Option<i64>,
    /// The execution input as a JSON string (absent when larger than EventBridge allows).
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
    #[serde(default)]
    pub redrive_count: u32,
}

impl ExecutionStatusChange {
    /// The job an execution of the pipeline runs: `jobId` in its input, or else its name
    /// (ingest names executions after their jobs).
    pub fn job_id(&self) -> Option<JobId> {
        self.input
            .as_deref()
            .and_then(|i| serde_json::from_str::<serde_json::Value>(i).ok())
            .and_then(|v| v.get("jobId").and_then(|j| j.as_str()).map(str::to_string))
            .or_else(|| Some(self.name.clone()))
            .and_then(|id| JobId::new(id).ok())
    }
}
