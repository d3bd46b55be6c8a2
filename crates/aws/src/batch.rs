//! [`Compute`] on AWS Batch: one SubmitJob per attempt, for deployments that let Batch manage
//! the compute environments (`SLUICE_COMPUTE=batch`).
//!
//! The same contract as [`crate::ecs`]: the container overrides carry the command (locations
//! rendered as paths under [`CONTAINER_DATA_ROOT`]) and the `SLUICE_*` environment, which the
//! "Batch Job State Change" event echoes back. Spot and on-demand are separate job queues (each
//! in front of its own compute environment), since Batch has no per-job capacity choice.

use crate::config::BatchConfig;
use crate::ecs::{attempt_tags, container_env, container_path};
use async_trait::async_trait;
use aws_sdk_batch::Client;
use aws_sdk_batch::error::DisplayErrorContext;
use aws_sdk_batch::types::{
    ContainerOverrides, JobTimeout, KeyValuePair, ResourceRequirement, ResourceType,
};
use sluice_core::model::Capacity;
use sluice_core::ports::{Compute, ComputeError, LaunchRequest, Launched, Location};

pub use crate::ecs::CONTAINER_DATA_ROOT;

/// IAM actions of each call this adapter makes (the permission contract: see
/// [`crate::permissions`]). `tasks_on_instance` makes no call.
pub const SUBMIT_ACTIONS: &[&str] = &["batch:SubmitJob", "batch:TagResource"];
pub const TERMINATE_ACTIONS: &[&str] = &["batch:TerminateJob"];

/// Batch's minimum attempt timeout.
const MIN_TIMEOUT_SECONDS: u64 = 60;

/// AWS Batch launcher.
#[derive(Debug, Clone)]
pub struct BatchCompute {
    client: Client,
    config: BatchConfig,
}

impl BatchCompute {
    pub fn new(client: Client, config: BatchConfig) -> Self {
        Self { client, config }
    }
}

/// Batch job names: up to 128 of `[A-Za-z0-9_-]`, starting with a letter or digit. Ids are of
/// that alphabet already, so only the length needs care.
pub fn job_name(request: &LaunchRequest) -> String {
    let k = &request.attempt;
    let mut name = format!("sluice-{}-{}-{}", k.job_id, k.task_id, k.number);
    name.truncate(128);
    name
}

#[async_trait]
impl Compute for BatchCompute {
    fn path_for(&self, location: &Location) -> Result<String, ComputeError> {
        container_path(location)
    }

    async fn launch(&self, request: &LaunchRequest) -> Result<Launched, ComputeError> {
        if request.command.is_empty() {
            return Err(ComputeError::Invalid(format!(
                "attempt {}: empty command",
                request.attempt
            )));
        }
        let env = container_env(request)
            .into_iter()
            .map(|(k, v)| KeyValuePair::builder().name(k).value(v).build())
            .collect();
        let mut overrides = ContainerOverrides::builder()
            .set_command(Some(request.command.clone()))
            .set_environment(Some(env));
        if request.cpu > 0 {
            // Batch counts vCPUs, ECS counts 1/1024 of one; round up so the task is not starved.
            let vcpus = request.cpu.div_ceil(1024);
            overrides = overrides.resource_requirements(
                ResourceRequirement::builder()
                    .r#type(ResourceType::Vcpu)
                    .value(vcpus.to_string())
                    .build(),
            );
        }
        if request.memory_mib > 0 {
            overrides = overrides.resource_requirements(
                ResourceRequirement::builder()
                    .r#type(ResourceType::Memory)
                    .value(request.memory_mib.to_string())
                    .build(),
            );
        }
        let queue = match request.capacity {
            Capacity::Spot => &self.config.job_queue,
            Capacity::OnDemand => &self.config.on_demand_job_queue,
        };
        let mut submit = self
            .client
            .submit_job()
            .job_name(job_name(request))
            .job_queue(queue)
            .job_definition(&self.config.job_definition)
            .container_overrides(overrides.build())
            .propagate_tags(true);
        for (k, v) in attempt_tags(request) {
            submit = submit.tags(k, v);
        }
        if let Some(t) = request.timeout_seconds {
            let seconds = i32::try_from(t.max(MIN_TIMEOUT_SECONDS)).unwrap_or(i32::MAX);
            submit = submit.timeout(
                JobTimeout::builder()
                    .attempt_duration_seconds(seconds)
                    .build(),
            );
        }
        let out = submit.send().await.map_err(|e| {
            let message = format!(
                "Batch SubmitJob for {}: {}",
                request.attempt,
                DisplayErrorContext(&e)
            );
            // ClientException is Batch's "your request is wrong" (unknown queue/definition,
            // bad override); anything else (throttling, server errors) may pass on retry.
            if e.as_service_error()
                .is_some_and(|s| s.is_client_exception())
            {
                ComputeError::Invalid(message)
            } else {
                ComputeError::LaunchFailed(message)
            }
        })?;
        out.job_id()
            .map(|id| Launched {
                compute_id: id.to_owned(),
            })
            .ok_or_else(|| {
                ComputeError::LaunchFailed(format!(
                    "Batch SubmitJob for {} returned no job id",
                    request.attempt
                ))
            })
    }

    async fn stop(&self, compute_id: &str, reason: &str) -> Result<(), ComputeError> {
        // TerminateJob stops a job in any state (a finished one is left as it is).
        self.client
            .terminate_job()
            .job_id(compute_id)
            .reason(format!("sluice: {reason}"))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                ComputeError::LaunchFailed(format!(
                    "Batch TerminateJob {compute_id}: {}",
                    DisplayErrorContext(&e)
                ))
            })
    }

    /// `attemptDurationSeconds` (set from the attempt's timeout on SubmitJob) stops an attempt
    /// that runs too long, and its event says so.
    fn times_attempts(&self) -> bool {
        true
    }

    /// Batch owns its instances and their ECS cluster, and its job ids are not ECS task ARNs:
    /// "cannot tell". A Batch job on a reclaimed instance fails with the status reason
    /// "Host EC2 (instance i-...) terminated.", which classify_batch takes for a reclaim.
    async fn tasks_on_instance(
        &self,
        _instance_id: &str,
    ) -> Result<Option<Vec<String>>, ComputeError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_fit_batch_limits() {
        let mut r = crate::ecs::tests::request();
        assert_eq!(job_name(&r), "sluice-ber-0001-t-0003-2");
        r.attempt.job_id = sluice_core::JobId::new("j".repeat(80)).unwrap();
        r.attempt.task_id = sluice_core::TaskId::new("t".repeat(64)).unwrap();
        let name = job_name(&r);
        assert_eq!(name.len(), 128);
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
}
