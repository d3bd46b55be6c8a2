//! [`Compute`] on Amazon ECS: one RunTask per attempt.
//!
//! The attempt is placed with a capacity-provider strategy (the Spot provider for
//! `Capacity::Spot`, the on-demand provider once the state machine has escalated), and the
//! container overrides carry the command and the `SLUICE_*` environment. ECS echoes the
//! overrides in every "ECS Task State Change" event, which is how the task-events handler finds
//! the attempt without a lookup. `startedBy` names the job and `group` the task, so
//! `ListTasks --started-by` finds every container of a job.

use crate::config::EcsConfig;
use async_trait::async_trait;
use aws_sdk_ecs::Client;
use aws_sdk_ecs::error::DisplayErrorContext;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, ContainerOverride,
    KeyValuePair, NetworkConfiguration, Tag, TaskOverride,
};
use sluice_core::events::{
    ENV_ATTEMPT, ENV_INPUTS, ENV_JOB_ID, ENV_OUTPUT, ENV_OUTPUT_KIND, ENV_RESULT_URI, ENV_TASK_ID,
};
use sluice_core::model::Capacity;
use sluice_core::ports::{Compute, ComputeError, LaunchRequest, Launched, Location};
use std::collections::BTreeMap;

/// IAM actions of each call this adapter makes (the permission contract: see
/// [`crate::permissions`]). RunTask with tags needs `ecs:TagResource`, and passes the task
/// definition's task and execution roles (`iam:PassRole`).
pub const LAUNCH_ACTIONS: &[&str] = &["ecs:RunTask", "ecs:TagResource", "iam:PassRole"];
pub const STOP_ACTIONS: &[&str] = &["ecs:StopTask"];
pub const TASKS_ON_INSTANCE_ACTIONS: &[&str] = &[
    "ecs:ListContainerInstances",
    "ecs:DescribeContainerInstances",
    "ecs:ListTasks",
];

/// Where objects are seen inside the container: `s3://bucket/key` is
/// `/tmp/sluice/data/bucket/key`. The image's entrypoint downloads the inputs listed in
/// `SLUICE_INPUTS` there before the command runs, and uploads `SLUICE_OUTPUT` to
/// `SLUICE_RESULT_URI` when it exits 0 (infra/worker/entrypoint.sh). On Windows the same path
/// is `C:\tmp\sluice\data\...`.
pub const CONTAINER_DATA_ROOT: &str = "/tmp/sluice/data";

/// The path at which a task sees `location` (a directory keeps its trailing '/').
pub fn container_path(location: &Location) -> Result<String, ComputeError> {
    let o = location.object();
    let hostile = o.key.split('/').any(|seg| seg == "..")
        || o.bucket.contains('/')
        || o.key.chars().any(char::is_control);
    if hostile {
        return Err(ComputeError::Invalid(format!(
            "object {o} cannot be staged"
        )));
    }
    Ok(format!("{CONTAINER_DATA_ROOT}/{}/{}", o.bucket, o.key))
}

/// Tag keys on every ECS task and Batch job, for cost allocation and for finding a job's
/// containers in the console (and, in a Batch event without the container environment, the
/// attempt: sluice-core reads the same names).
pub use sluice_core::events::{TAG_ATTEMPT, TAG_JOB, TAG_TASK};

/// ECS RunTask launcher.
#[derive(Debug, Clone)]
pub struct EcsCompute {
    client: Client,
    config: EcsConfig,
}

impl EcsCompute {
    pub fn new(client: Client, config: EcsConfig) -> Self {
        Self { client, config }
    }

    fn capacity_provider(&self, capacity: Capacity) -> &str {
        match capacity {
            Capacity::Spot => &self.config.spot_capacity_provider,
            Capacity::OnDemand => &self.config.on_demand_capacity_provider,
        }
    }
}

/// The request's environment plus the attempt's identity and what the entrypoint stages. The
/// `SLUICE_*` values win over a request that sets the same names: events are matched to
/// attempts by them.
pub fn container_env(request: &LaunchRequest) -> BTreeMap<String, String> {
    let mut env = request.env.clone();
    let key = &request.attempt;
    env.insert(ENV_JOB_ID.into(), key.job_id.to_string());
    env.insert(ENV_TASK_ID.into(), key.task_id.to_string());
    env.insert(ENV_ATTEMPT.into(), key.number.to_string());
    match &request.output {
        Some(output) => {
            env.insert(ENV_OUTPUT.into(), output.path.clone());
            env.insert(ENV_RESULT_URI.into(), output.location.object().to_string());
            let kind = if output.location.is_dir() {
                "dir"
            } else {
                "file"
            };
            env.insert(ENV_OUTPUT_KIND.into(), kind.into());
        }
        None => {
            env.remove(ENV_OUTPUT);
            env.remove(ENV_RESULT_URI);
            env.insert(ENV_OUTPUT_KIND.into(), "nothing".into());
        }
    }
    let inputs: Vec<String> = request
        .inputs
        .iter()
        .map(|i| {
            let kind = if i.location.is_dir() { "dir" } else { "file" };
            format!("{kind}\t{}\t{}", i.location.object(), i.path)
        })
        .collect();
    if inputs.is_empty() {
        env.remove(ENV_INPUTS);
    } else {
        env.insert(ENV_INPUTS.into(), inputs.join("\n"));
    }
    env
}

/// Tags naming the attempt.
pub fn attempt_tags(request: &LaunchRequest) -> Vec<(&'static str, String)> {
    let key = &request.attempt;
    vec![
        (TAG_JOB, key.job_id.to_string()),
        (TAG_TASK, key.task_id.to_string()),
        (TAG_ATTEMPT, key.number.to_string()),
    ]
}

/// RunTask's idempotency token (≤ 64 ASCII characters): a Lambda retry of the same launch
/// must not start a second container for the same attempt.
pub fn client_token(request: &LaunchRequest) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(request.attempt.to_string().as_bytes());
    hex::encode(digest)
}

/// `startedBy` allows 128 characters of `[A-Za-z0-9_/-]`; job ids are ≤ 80 of `[A-Za-z0-9_-]`.
fn started_by(request: &LaunchRequest) -> String {
    format!("sluice/{}", request.attempt.job_id)
}

fn group(request: &LaunchRequest) -> String {
    format!(
        "sluice:{}:{}",
        request.attempt.job_id, request.attempt.task_id
    )
}

fn validate(request: &LaunchRequest) -> Result<(), ComputeError> {
    if request.command.is_empty() {
        return Err(ComputeError::Invalid(format!(
            "attempt {}: empty command",
            request.attempt
        )));
    }
    Ok(())
}

fn to_i32(what: &str, n: u32) -> Result<i32, ComputeError> {
    i32::try_from(n).map_err(|_| ComputeError::Invalid(format!("{what} {n} is out of range")))
}

#[async_trait]
impl Compute for EcsCompute {
    fn path_for(&self, location: &Location) -> Result<String, ComputeError> {
        container_path(location)
    }

    async fn launch(&self, request: &LaunchRequest) -> Result<Launched, ComputeError> {
        validate(request)?;
        let env = container_env(request)
            .into_iter()
            .map(|(k, v)| KeyValuePair::builder().name(k).value(v).build())
            .collect();
        let mut container = ContainerOverride::builder()
            .name(&self.config.container_name)
            .set_command(Some(request.command.clone()))
            .set_environment(Some(env));
        // 0 means "as the task definition says".
        if request.cpu > 0 {
            container = container.cpu(to_i32("cpu", request.cpu)?);
        }
        if request.memory_mib > 0 {
            container = container.memory(to_i32("memory", request.memory_mib)?);
        }
        if request.image.is_some() {
            // RunTask cannot override the image; the task definition pins it.
            tracing::debug!(attempt = %request.attempt, "image override ignored on ECS");
        }
        let strategy = CapacityProviderStrategyItem::builder()
            .capacity_provider(self.capacity_provider(request.capacity))
            .weight(1)
            .build()
            .map_err(|e| ComputeError::Invalid(e.to_string()))?;
        let mut run = self
            .client
            .run_task()
            .cluster(&self.config.cluster)
            .task_definition(&self.config.task_definition)
            .count(1)
            .capacity_provider_strategy(strategy)
            .overrides(
                TaskOverride::builder()
                    .container_overrides(container.build())
                    .build(),
            )
            .started_by(started_by(request))
            .group(group(request))
            .client_token(client_token(request))
            .enable_ecs_managed_tags(true);
        for (k, v) in attempt_tags(request) {
            run = run.tags(Tag::builder().key(k).value(v).build());
        }
        if !self.config.subnets.is_empty() {
            // awsvpc networking: tasks stay private and reach AWS through NAT/endpoints.
            let vpc = AwsVpcConfiguration::builder()
                .set_subnets(Some(self.config.subnets.clone()))
                .set_security_groups(Some(self.config.security_groups.clone()))
                .assign_public_ip(AssignPublicIp::Disabled)
                .build()
                .map_err(|e| ComputeError::Invalid(e.to_string()))?;
            run = run.network_configuration(
                NetworkConfiguration::builder()
                    .awsvpc_configuration(vpc)
                    .build(),
            );
        }
        let out = run.send().await.map_err(|e| {
            let message = format!(
                "ECS RunTask for {}: {}",
                request.attempt,
                DisplayErrorContext(&e)
            );
            if e.as_service_error()
                .is_some_and(|s| s.is_invalid_parameter_exception())
            {
                ComputeError::Invalid(message)
            } else {
                ComputeError::LaunchFailed(message)
            }
        })?;
        if let Some(f) = out.failures().first() {
            // Placement failures (no capacity yet, RESOURCE:MEMORY, AGENT) are transient from
            // the pipeline's point of view: the state machine retries Sluice.LaunchFailed.
            return Err(ComputeError::LaunchFailed(format!(
                "ECS RunTask for {}: {} ({}){}",
                request.attempt,
                f.reason().unwrap_or("unknown reason"),
                f.arn().unwrap_or("no arn"),
                f.detail().map(|d| format!(": {d}")).unwrap_or_default()
            )));
        }
        out.tasks()
            .first()
            .and_then(|t| t.task_arn())
            .map(|arn| Launched {
                compute_id: arn.to_owned(),
            })
            .ok_or_else(|| {
                ComputeError::LaunchFailed(format!(
                    "ECS RunTask for {} returned neither a task nor a failure",
                    request.attempt
                ))
            })
    }

    async fn stop(&self, compute_id: &str, reason: &str) -> Result<(), ComputeError> {
        // StopTask's reason is at most 255 characters.
        let reason: String = format!("sluice: {reason}").chars().take(255).collect();
        match self
            .client
            .stop_task()
            .cluster(&self.config.cluster)
            .task(compute_id)
            .reason(reason)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // A task that already stopped and was forgotten: nothing left to stop.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_invalid_parameter_exception()) =>
            {
                tracing::info!(task = compute_id, error = %DisplayErrorContext(&e), "task already gone");
                Ok(())
            }
            Err(e) => Err(ComputeError::LaunchFailed(format!(
                "ECS StopTask {compute_id}: {}",
                DisplayErrorContext(&e)
            ))),
        }
    }

    /// ListContainerInstances + DescribeContainerInstances find the container instance whose
    /// `ec2InstanceId` is `instance_id`, ListTasks its running tasks. All of the cluster's
    /// container instances are listed and compared here rather than filtered with the cluster
    /// query language: the id comes from an event, and is then never part of a query.
    async fn tasks_on_instance(
        &self,
        instance_id: &str,
    ) -> Result<Option<Vec<String>>, ComputeError> {
        let fail = |call: &str, e: &dyn std::fmt::Display| {
            ComputeError::LaunchFailed(format!("ECS {call} on {}: {e}", self.config.cluster))
        };
        let mut arns = Vec::new();
        let mut pages = self
            .client
            .list_container_instances()
            .cluster(&self.config.cluster)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| fail("ListContainerInstances", &DisplayErrorContext(&e)))?;
            arns.extend(page.container_instance_arns().iter().cloned());
        }
        let mut ours = Vec::new();
        // DescribeContainerInstances takes at most 100 at a time.
        for chunk in arns.chunks(100) {
            let out = self
                .client
                .describe_container_instances()
                .cluster(&self.config.cluster)
                .set_container_instances(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| fail("DescribeContainerInstances", &DisplayErrorContext(&e)))?;
            ours.extend(
                out.container_instances()
                    .iter()
                    .filter(|c| c.ec2_instance_id() == Some(instance_id))
                    .filter_map(|c| c.container_instance_arn().map(str::to_owned)),
            );
        }
        let mut tasks = Vec::new();
        for container_instance in ours {
            let mut pages = self
                .client
                .list_tasks()
                .cluster(&self.config.cluster)
                .container_instance(&container_instance)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| fail("ListTasks", &DisplayErrorContext(&e)))?;
                tasks.extend(page.task_arns().iter().cloned());
            }
        }
        Ok(Some(tasks))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sluice_core::model::{AttemptKey, ObjectRef};
    use sluice_core::ports::Staged;
    use sluice_core::{JobId, TaskId};

    fn staged(location: Location) -> Staged {
        Staged {
            path: container_path(&location).unwrap(),
            location,
        }
    }

    pub(crate) fn request() -> LaunchRequest {
        LaunchRequest {
            attempt: AttemptKey {
                job_id: JobId::new("ber-0001").unwrap(),
                task_id: TaskId::new("t-0003").unwrap(),
                number: 2,
            },
            capacity: Capacity::Spot,
            command: vec![
                "ber-sim".into(),
                "--out=/tmp/sluice/data/data/x.json".into(),
            ],
            env: BTreeMap::from([
                ("RUST_LOG".into(), "info".into()),
                (ENV_JOB_ID.into(), "forged".into()),
            ]),
            inputs: vec![
                staged(Location::File {
                    object: ObjectRef::new("ingest", "ber/in.csv"),
                }),
                staged(Location::Dir {
                    prefix: ObjectRef::new("data", "jobs/ber-0001/stages/a/output/"),
                }),
            ],
            output: Some(staged(Location::File {
                object: ObjectRef::new("data", "jobs/ber-0001/stages/tasks/output/t-0003.json"),
            })),
            working_dir: None,
            image: None,
            cpu: 1024,
            memory_mib: 2048,
            timeout_seconds: Some(600),
            compute_id: None,
        }
    }

    #[test]
    fn objects_are_seen_under_the_data_root() {
        let dir = Location::Dir {
            prefix: ObjectRef::new("data", "jobs/j/stages/a/output/"),
        };
        assert_eq!(
            container_path(&dir).unwrap(),
            "/tmp/sluice/data/data/jobs/j/stages/a/output/"
        );
        let hostile = Location::File {
            object: ObjectRef::new("data", "jobs/../../etc/passwd"),
        };
        assert!(container_path(&hostile).is_err());
    }

    #[test]
    fn env_carries_attempt_identity() {
        let env = container_env(&request());
        assert_eq!(env["SLUICE_JOB_ID"], "ber-0001");
        assert_eq!(env["SLUICE_TASK_ID"], "t-0003");
        assert_eq!(env["SLUICE_ATTEMPT"], "2");
        assert_eq!(
            env["SLUICE_RESULT_URI"],
            "s3://data/jobs/ber-0001/stages/tasks/output/t-0003.json"
        );
        assert_eq!(
            env["SLUICE_OUTPUT"],
            "/tmp/sluice/data/data/jobs/ber-0001/stages/tasks/output/t-0003.json"
        );
        assert_eq!(env["SLUICE_OUTPUT_KIND"], "file");
        assert_eq!(
            env["SLUICE_INPUTS"],
            "file\ts3://ingest/ber/in.csv\t/tmp/sluice/data/ingest/ber/in.csv\n\
             dir\ts3://data/jobs/ber-0001/stages/a/output/\t/tmp/sluice/data/data/jobs/ber-0001/stages/a/output/"
        );
        assert_eq!(env["RUST_LOG"], "info");
        let mut nothing = request();
        nothing.output = None;
        nothing.inputs.clear();
        let env = container_env(&nothing);
        assert_eq!(env["SLUICE_OUTPUT_KIND"], "nothing");
        assert!(!env.contains_key("SLUICE_RESULT_URI") && !env.contains_key("SLUICE_INPUTS"));
    }

    #[test]
    fn client_token_is_stable_and_short() {
        let a = client_token(&request());
        assert_eq!(a.len(), 64);
        assert_eq!(a, client_token(&request()));
        let mut other = request();
        other.attempt.number = 3;
        assert_ne!(a, client_token(&other));
        assert_eq!(started_by(&request()), "sluice/ber-0001");
        assert_eq!(group(&request()), "sluice:ber-0001:t-0003");
    }

    #[test]
    fn empty_command_is_invalid() {
        let mut r = request();
        r.command.clear();
        assert!(matches!(validate(&r), Err(ComputeError::Invalid(_))));
    }
}
