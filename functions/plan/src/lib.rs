//! Plan: the job's input CSV becomes its tasks.
//!
//! Reads the CSV from the ingest bucket, checks every row against the pipeline's input schema
//! (errors name the file, line and column), records one task per row, writes the manifest the
//! fan-out Map reads its items from, and tells the state machine how wide to fan out. Bad input
//! marks the job FAILED with the reason and raises `Sluice.InvalidInput`, which is not retried.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_core::error::StepError;
use sluice_core::model::{JobUpdate, ObjectRef};
use sluice_core::plan::plan_tasks;
use sluice_core::ports::layout;
use sluice_core::{JobId, JobState, Services, StoreError, Task, TaskState};

/// Default per-attempt timeout when the pipeline sets none: a day.
pub const DEFAULT_TASK_TIMEOUT_SECONDS: u64 = 86_400;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanInput {
    pub job_id: JobId,
    pub pipeline: String,
    pub input: ObjectRef,
    #[serde(default)]
    pub execution_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanOutput {
    pub task_count: u32,
    pub max_concurrency: u32,
    pub task_timeout_seconds: u64,
    pub manifest: ObjectRef,
}

pub async fn handle(services: &Services, input: PlanInput) -> Result<PlanOutput, StepError> {
    let job = services.job(&input.job_id).await?;
    let pipeline = match services.pipeline(&job.pipeline).await {
        Ok(p) => p,
        Err(e) => return Err(reject(services, &input, e).await),
    };
    let bytes = match services.objects.get(&job.input).await {
        Ok(b) => b,
        Err(StoreError::NotFound(_)) => {
            let e = StepError::invalid_input(format!("input {} does not exist", job.input));
            return Err(reject(services, &input, e).await);
        }
        Err(e) => return Err(e.into()),
    };
    let file = job.input.key.rsplit('/').next().unwrap_or(&job.input.key);
    let planned = match plan_tasks(file, &bytes, &pipeline.input) {
        Ok(t) => t,
        Err(e) => {
            return Err(reject(services, &input, StepError::invalid_input(e.to_string())).await);
        }
    };
    let now = Utc::now();
    let tasks: Vec<Task> = planned
        .iter()
        .map(|p| Task {
            job_id: job.id.clone(),
            id: p.id.clone(),
            index: p.index,
            params: p.params.clone(),
            state: TaskState::Pending,
            attempts: 0,
            spot_interruptions: 0,
            result: None,
            last_error: None,
            updated_at: now,
        })
        .collect();
    services.jobs.put_tasks(&tasks).await?;

    // The Map reads only ids from the manifest; launch looks the rest up in the job table, so
    // the manifest stays small and the table stays the one source of truth.
    let manifest: Vec<_> = tasks
        .iter()
        .map(|t| json!({"taskId": t.id, "index": t.index}))
        .collect();
    let manifest_ref = ObjectRef::new(&services.buckets.data, layout::manifest(&job.id));
    let body = serde_json::to_vec(&manifest).map_err(StepError::internal)?;
    services
        .objects
        .put(&manifest_ref, body, "application/json")
        .await?;

    let task_count = tasks.len() as u32;
    services
        .jobs
        .transition_job(
            &job.id,
            JobState::Running,
            JobUpdate {
                task_count: Some(task_count),
                execution_arn: input.execution_arn.clone(),
                ..Default::default()
            },
        )
        .await?;
    tracing::info!(job = %job.id, tasks = task_count, "planned");
    Ok(PlanOutput {
        task_count,
        max_concurrency: pipeline.parallelism.max.min(task_count).max(1),
        task_timeout_seconds: pipeline
            .task
            .timeout_seconds
            .unwrap_or(DEFAULT_TASK_TIMEOUT_SECONDS),
        manifest: manifest_ref,
    })
}

/// Record the job as FAILED with the reason, and hand the error back to raise.
async fn reject(services: &Services, input: &PlanInput, error: StepError) -> StepError {
    let job = &input.job_id;
    let update = JobUpdate {
        reason: Some(error.cause.clone()),
        execution_arn: input.execution_arn.clone(),
        ..Default::default()
    };
    if let Err(e) = services
        .jobs
        .transition_job(job, JobState::Failed, update)
        .await
    {
        tracing::error!(job = %job, error = %e, "could not record the job as failed");
    }
    tracing::warn!(job = %job, reason = %error.cause, "input rejected");
    error
}
