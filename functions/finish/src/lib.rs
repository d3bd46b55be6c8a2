//! Finish: the job's outcome, recorded once.
//!
//! Called at the end of the happy path (after aggregation) and from the failure path (with the
//! error the state machine caught). Marks the job SUCCEEDED when every task succeeded, FAILED
//! otherwise with a reason a person can act on, and returns the outcome the state machine
//! notifies about and ends with. Idempotent: a job already final keeps its first outcome (for
//! bad input, the plan step's reason naming file, line and column).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_core::error::ErrorName;
use sluice_core::error::StepError;
use sluice_core::model::{Job, JobUpdate, ObjectRef};
use sluice_core::notify::announce;
use sluice_core::pipeline::{PipelineConfig, StageKind};
use sluice_core::ports::PortCall;
use sluice_core::ports::{Location, Transition, layout};
use sluice_core::stage::stage_output;
use sluice_core::{JobId, JobState, Services, TaskState};

/// Every port call this handler's code can make (see [`PortCall`]): the IAM permission
/// contract test derives the function's role from this list, and the decision tests refuse
/// any other call.
pub const PORT_CALLS: &[PortCall] = &[
    PortCall::ObjectGet,
    PortCall::ObjectExists,
    PortCall::PipelineGet,
    PortCall::JobRead,
    PortCall::JobUpdate,
];

/// The error a Catch put in `$.failure`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CaughtError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FinishInput {
    pub job_id: JobId,
    #[serde(default)]
    pub execution_arn: Option<String>,
    #[serde(default)]
    pub failure: Option<CaughtError>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Summary {
    pub tasks: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub results: Vec<ObjectRef>,
}

/// Always has all four fields (error and reason are null on success): the state machine's
/// ResultSelector reads each of them.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct FinishOutput {
    pub status: JobState,
    pub error: Option<String>,
    pub reason: Option<String>,
    pub summary: Summary,
}

/// How many of a job's failed tasks its reason names.
const FAILURES_NAMED: usize = 5;

/// The error of a job whose tasks failed.
pub const TASKS_FAILED: &str = ErrorName::TasksFailed.as_str();

pub async fn handle(services: &Services, input: FinishInput) -> Result<FinishOutput, StepError> {
    let job = services.job(&input.job_id).await?;
    // Counted, not listed: a job's end read all its tasks (100,000 made into `Task`s) to
    // count them; only the failures named in the reason are read.
    let tally = services.jobs.tally_tasks(&job.id).await?;
    let (total, succeeded) = (tally.total().tasks, tally.in_state(TaskState::Succeeded));
    let failed = total - succeeded;

    let (to, error, reason) = match &input.failure {
        Some(caught) => (
            JobState::Failed,
            Some(caught.error.clone()),
            Some(cause_text(caught)),
        ),
        None if failed == 0 => (JobState::Succeeded, None, None),
        None => {
            let examples: Vec<String> = services
                .jobs
                .tasks_not_in(&job.id, TaskState::Succeeded, FAILURES_NAMED)
                .await?
                .iter()
                .map(|t| match &t.last_error {
                    Some(e) => format!("{} ({e})", t.id),
                    None => t.id.to_string(),
                })
                .collect();
            let more = if failed as usize > FAILURES_NAMED {
                format!(" and {} more", failed as usize - FAILURES_NAMED)
            } else {
                String::new()
            };
            (
                JobState::Failed,
                Some(TASKS_FAILED.to_string()),
                Some(format!(
                    "{failed} of {total} tasks failed: {}{more}",
                    examples.join("; ")
                )),
            )
        }
    };
    let results = match services.job_pipeline(&job).await {
        Ok(pipeline) => match to {
            JobState::Succeeded => job_results(services, &pipeline, &job).await?,
            // A failed job's results are whatever a redrive will complete; list its rejects.
            _ => rejects(services, &pipeline, &job).await?,
        },
        // A job whose pipeline cannot be read (unknown, invalid) has produced nothing.
        Err(_) => Vec::new(),
    };
    let update = JobUpdate {
        reason: reason.clone(),
        execution_arn: input.execution_arn.clone(),
        results: Some(results),
        ..Default::default()
    };
    let job = match services.jobs.transition_job(&job.id, to, update).await? {
        Transition::Applied(j) => {
            // Announced by the write that recorded the outcome, so once however often this
            // step is retried.
            let delivered = announce(services, &j, total, succeeded).await;
            for failure in &delivered.failed {
                tracing::warn!(job = %j.id, %failure, "notification not delivered");
            }
            j
        }
        // Already final: the first outcome stands (e.g. the plan step's precise reason).
        Transition::Rejected(j) => j,
        Transition::Missing => {
            return Err(StepError::internal(format!(
                "job {} vanished",
                input.job_id
            )));
        }
    };
    let (error, reason) = match job.state {
        JobState::Succeeded => (None, None),
        _ => (
            error.or_else(|| Some("Sluice.JobFailed".into())),
            job.reason
                .clone()
                .or(reason)
                .or_else(|| Some("the job failed".into())),
        ),
    };
    tracing::info!(job = %job.id, state = job.state.as_str(), "job finished");
    Ok(FinishOutput {
        status: job.state,
        error,
        reason,
        summary: Summary {
            tasks: total,
            succeeded,
            failed,
            results: job.results.clone(),
        },
    })
}

/// Lambda errors caught by Step Functions carry a JSON cause; show its message.
fn cause_text(caught: &CaughtError) -> String {
    let cause = caught.cause.clone().unwrap_or_default();
    match serde_json::from_str::<Value>(&cause) {
        Ok(v) => v
            .get("errorMessage")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or(cause),
        Err(_) if cause.is_empty() => caught.error.clone(),
        Err(_) => cause,
    }
}

/// What a succeeded job produced: the output of its last stage that writes something (for the
/// built-in aggregate, results.csv and results.png) and the rejects.csv of any stage.
async fn job_results(
    services: &Services,
    pipeline: &PipelineConfig,
    job: &Job,
) -> Result<Vec<ObjectRef>, StepError> {
    let data = &services.buckets.data;
    let mut results = Vec::new();
    if let Some(last) = sluice_core::stage::result_stage(pipeline) {
        match (last.kind(), stage_output(data, &job.id, last)) {
            (StageKind::Aggregate(_), Some(Location::Dir { prefix })) => {
                for name in [layout::RESULTS_CSV, layout::RESULTS_PNG] {
                    let object = ObjectRef::new(&prefix.bucket, format!("{}{name}", prefix.key));
                    if services.objects.exists(&object).await? {
                        results.push(object);
                    }
                }
            }
            (_, Some(location)) => results.push(location.object().clone()),
            (_, None) => {}
        }
    }
    results.extend(rejects(services, pipeline, job).await?);
    Ok(results)
}

/// The rejects.csv files of the job's stages.
async fn rejects(
    services: &Services,
    pipeline: &PipelineConfig,
    job: &Job,
) -> Result<Vec<ObjectRef>, StepError> {
    let mut found = Vec::new();
    for stage in &pipeline.stages {
        let object = ObjectRef::new(
            &services.buckets.data,
            layout::rejects(&job.id, &stage.name),
        );
        if services.objects.exists(&object).await? {
            found.push(object);
        }
    }
    Ok(found)
}
