//! Plan: the job, and each of its stages as the state machine reaches it.
//!
//! One Lambda, three actions, each a state of `statemachines/pipeline.asl.json`:
//!
//! - `start` (state Plan): the job's pipeline is loaded and checked and copied beside the job
//!   (every later step of the execution reads that copy), its input must exist, the job is
//!   recorded RUNNING with its execution. Bad input marks the job FAILED with the reason
//!   and raises `Sluice.InvalidInput`, which is not retried.
//! - `next-stage` (state NextStage): the first stage after `after` that still has work. A stage
//!   that fans out is planned from its rows (the job's input, or the CSV an earlier stage wrote):
//!   its tasks are recorded, chunk files and `rejects.csv` written, and the manifest the Map
//!   reads its items from is written last. A redrive finds the manifest and plans nothing twice;
//!   a stage whose tasks all succeeded is skipped. Past the last stage the answer is `done`.
//! - `close-stage` (state CloseStage): the Map is over; every task of the stage that did not
//!   succeed is recorded FAILED with its reason, and if there is one the stage fails the job
//!   (`Sluice.TasksFailed`, naming the tasks) before a later stage reads a partial output.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_core::error::{ErrorName, StepError};
use sluice_core::model::{JobUpdate, ObjectRef};
use sluice_core::pipeline::{PipelineConfig, RowSource, StageKind};
use sluice_core::ports::PortCall;
use sluice_core::ports::{Location, fail_task, layout};
use sluice_core::stage::{
    belongs_to, plan_stage, require_stage_at, stage_done, stage_output, stage_recorded_as,
};
use sluice_core::{Job, JobId, JobState, Services, StoreError, Task, TaskState};

/// Every port call this handler's code can make (see [`PortCall`]): the IAM permission
/// contract test derives the function's role from this list, and the decision tests refuse
/// any other call.
pub const PORT_CALLS: &[PortCall] = &[
    PortCall::ObjectGet,
    PortCall::ObjectPut,
    PortCall::ObjectExists,
    PortCall::PipelineGet,
    PortCall::JobRead,
    PortCall::JobCreate,
    PortCall::JobUpdate,
];

use sluice_core::pipeline::DEFAULT_TASK_TIMEOUT_SECONDS;

/// What a backstop Task state timeout allows beyond the runs it covers: compute's stop grace
/// (the local pool's SIGTERM-to-SIGKILL 5 s) and the way of the STOPPED event to the token.
const BACKSTOP_MARGIN_SECONDS: u64 = 60;

/// The Task state timeout of one attempt of a stage whose attempts may run `attempt` seconds
/// each, `slots` at once, with `ahead` more launched and waiting in compute.
///
/// When compute does not time attempts itself (`times_attempts` false: ECS, which has no
/// timeout of its own), the Task state's timeout is the attempt's: Step Functions' is the one
/// that stops a task. When it does (AWS Batch, the local pool), compute stops each attempt
/// `attempt` seconds after it starts and reports it timed out, and the Task state's timeout is a
/// backstop for a lost STOPPED event, which must not fire first: it covers the attempt's run,
/// the runs it may wait for (slots are taken first come, first served, so at most
/// `ceil(ahead / slots)` runs before its own) and a margin for the stop and the event.
pub fn task_state_timeout(attempt: u64, slots: u32, ahead: u32, times_attempts: bool) -> u64 {
    if !times_attempts {
        return attempt;
    }
    let runs = 1 + u64::from(ahead.div_ceil(slots.max(1)));
    attempt
        .saturating_mul(runs)
        .saturating_add(BACKSTOP_MARGIN_SECONDS)
}

/// What the state machine asks for.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum PlanRequest {
    Start(StartInput),
    NextStage(NextStageInput),
    CloseStage(CloseStageInput),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartInput {
    pub job_id: JobId,
    #[serde(default)]
    pub execution_arn: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NextStageInput {
    pub job_id: JobId,
    /// The stage that just finished; -1 before the first.
    pub after: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseStageInput {
    pub job_id: JobId,
    pub stage: usize,
}

/// The answer, by action.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum PlanResponse {
    Started(Started),
    Stage(StagePlan),
    Closed(StageClosed),
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub stages: usize,
}

/// What the state machine does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NextKind {
    /// Fan out the stage's tasks (the Map).
    Tasks,
    /// Run the built-in aggregate step.
    Aggregate,
    /// No stage left: finish the job.
    Done,
}

/// The `$.stage` of the state machine. Every field is always present (null when it does not
/// apply): the Map's paths read them.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StagePlan {
    pub index: i64,
    pub name: Option<String>,
    pub kind: NextKind,
    pub task_count: u32,
    /// Capacity to lease for the stage: most task processes at once.
    pub slots: u32,
    /// The Map's MaxConcurrency: `slots` plus what compute holds waiting
    /// ([`sluice_core::ports::Compute::launch_ahead`]), at most the stage's tasks.
    pub max_concurrency: u32,
    /// Each attempt's Task state timeout ([`task_state_timeout`]): the stage's attempt timeout,
    /// plus the wait of an attempt launched ahead.
    pub task_timeout_seconds: u64,
    pub manifest: Option<ObjectRef>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageClosed {
    pub index: usize,
    pub succeeded: u32,
}

pub async fn handle(services: &Services, request: PlanRequest) -> Result<PlanResponse, StepError> {
    match request {
        PlanRequest::Start(input) => start(services, input).await.map(PlanResponse::Started),
        PlanRequest::NextStage(input) => next_stage(services, input).await.map(PlanResponse::Stage),
        PlanRequest::CloseStage(input) => {
            close_stage(services, input).await.map(PlanResponse::Closed)
        }
    }
}

async fn start(services: &Services, input: StartInput) -> Result<Started, StepError> {
    let job = services.job(&input.job_id).await?;
    // The pipeline as it is now; the execution keeps this copy to its end, so the file can
    // change under a running job without changing its stages. A new execution (a re-run, a
    // redrive from the start) takes the pipeline as it is then: that is how a fix gets in.
    let pipeline = match services.pipeline(&job.pipeline).await {
        Ok(p) => p,
        Err(e) => return Err(reject(services, &job.id, input.execution_arn.clone(), e).await),
    };
    if !services.objects.exists(&job.input).await? {
        let e = StepError::invalid_input(format!("input {} does not exist", job.input));
        return Err(reject(services, &job.id, input.execution_arn.clone(), e).await);
    }
    let copy = ObjectRef::new(&services.buckets.data, layout::job_pipeline(&job.id));
    let text = pipeline.to_toml().map_err(StepError::internal)?;
    services
        .objects
        .put(&copy, text.into_bytes(), "application/toml")
        .await?;
    services.job_pipelines.forget(&job.id);
    services
        .jobs
        .transition_job(
            &job.id,
            JobState::Running,
            JobUpdate {
                execution_arn: input.execution_arn.clone(),
                ..Default::default()
            },
        )
        .await?;
    tracing::info!(job = %job.id, stages = pipeline.stages.len(), "job started");
    Ok(Started {
        stages: pipeline.stages.len(),
    })
}

async fn next_stage(services: &Services, input: NextStageInput) -> Result<StagePlan, StepError> {
    let job = services.job(&input.job_id).await?;
    let pipeline = services.job_pipeline(&job).await?;
    let first = usize::try_from(input.after + 1).unwrap_or(0);
    let mut tasks: Option<Vec<Task>> = None;
    for (index, stage) in pipeline.stages.iter().enumerate().skip(first) {
        if let StageKind::Aggregate(_) = stage.kind() {
            // Built-ins are cheap and idempotent: a redrive runs them again.
            return Ok(StagePlan {
                index: index as i64,
                name: Some(stage.name.clone()),
                kind: NextKind::Aggregate,
                task_count: 0,
                slots: 1,
                max_concurrency: 1,
                task_timeout_seconds: DEFAULT_TASK_TIMEOUT_SECONDS,
                manifest: None,
            });
        }
        let manifest = ObjectRef::new(
            &services.buckets.data,
            layout::stage_manifest(&job.id, &stage.name),
        );
        // A stage planned just now has run nothing (its Map reads the manifest, written last
        // by the plan): only a stage planned before may be done already.
        let (planned, fresh) = match read_manifest(services, &manifest).await? {
            Some(count) => (count, false),
            None => (
                plan(services, &pipeline, &job, index, &manifest).await?,
                true,
            ),
        };
        if !fresh {
            let all = match &mut tasks {
                Some(t) => t,
                None => tasks.insert(services.jobs.list_tasks(&job.id).await?),
            };
            let mine: Vec<&Task> = all
                .iter()
                .filter(|t| belongs_to(&pipeline, t, index))
                .collect();
            if stage_done(&mine, planned) {
                tracing::info!(job = %job.id, stage = %stage.name, "stage already done; skipped");
                continue;
            }
        }
        let count = planned as u32;
        let slots = pipeline.stage_parallelism(stage).min(count).max(1);
        let ahead = services.compute.launch_ahead(slots);
        let max_concurrency = slots.saturating_add(ahead).min(count.max(slots));
        return Ok(StagePlan {
            index: index as i64,
            name: Some(stage.name.clone()),
            kind: NextKind::Tasks,
            task_count: count,
            slots,
            max_concurrency,
            task_timeout_seconds: task_state_timeout(
                stage.attempt_timeout_seconds(),
                slots,
                max_concurrency - slots,
                services.compute.times_attempts(),
            ),
            manifest: Some(manifest),
        });
    }
    Ok(StagePlan {
        index: pipeline.stages.len() as i64,
        name: None,
        kind: NextKind::Done,
        task_count: 0,
        slots: 1,
        max_concurrency: 1,
        task_timeout_seconds: DEFAULT_TASK_TIMEOUT_SECONDS,
        manifest: None,
    })
}

/// The number of tasks a stage's manifest lists, if the stage was planned.
async fn read_manifest(
    services: &Services,
    manifest: &ObjectRef,
) -> Result<Option<usize>, StepError> {
    match services.objects.get(manifest).await {
        Ok(bytes) => {
            let items: Vec<serde_json::Value> = serde_json::from_slice(&bytes).map_err(|e| {
                StepError::internal(format!("manifest {manifest} is not a JSON list: {e}"))
            })?;
            Ok(Some(items.len()))
        }
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Plan stage `index`: record its tasks, write what they read, then the manifest.
async fn plan(
    services: &Services,
    pipeline: &PipelineConfig,
    job: &Job,
    index: usize,
    manifest: &ObjectRef,
) -> Result<usize, StepError> {
    let stage = &pipeline.stages[index];
    let data = &services.buckets.data;
    let source = match stage.kind() {
        StageKind::Rows(s) | StageKind::Chunks(s, _) => Some(s),
        _ => None,
    };
    let source = match source {
        None => None,
        Some(RowSource::Input) => Some((job.input.clone(), file_name(&job.input.key))),
        Some(RowSource::Stage(name)) => {
            let (_, earlier) = pipeline.stage(name).ok_or_else(|| {
                StepError::invalid_input(format!(
                    "stage '{}' reads unknown stage '{name}'",
                    stage.name
                ))
            })?;
            match stage_output(data, &job.id, earlier) {
                Some(Location::File { object }) => {
                    let label = format!("{} (output of stage {name})", file_name(&object.key));
                    Some((object, label))
                }
                _ => {
                    return Err(StepError::invalid_input(format!(
                        "stage '{}' fans out over stage '{name}', which writes no file",
                        stage.name
                    )));
                }
            }
        }
    };
    let bytes = match &source {
        None => None,
        Some((object, _)) => match services.objects.get(object).await {
            Ok(b) => Some(b),
            Err(StoreError::NotFound(_)) => {
                let e = StepError::invalid_input(format!(
                    "stage '{}': {object} does not exist",
                    stage.name
                ));
                return Err(reject(services, &job.id, None, e).await);
            }
            Err(e) => return Err(e.into()),
        },
    };
    let rows = source
        .as_ref()
        .zip(bytes.as_deref())
        .map(|((_, label), b)| (label.as_str(), b));
    let planned = match plan_stage(pipeline, stage, &job.id, data, rows, Utc::now()) {
        Ok(p) => p,
        Err(e) => {
            // The error names the file (with the stage, for a stage's output), line and column.
            let e = StepError::invalid_input(e.to_string());
            return Err(reject(services, &job.id, None, e).await);
        }
    };
    // Chunk files and rejects.csv.
    for (object, body) in &planned.objects {
        services
            .objects
            .put(object, body.clone(), "text/csv")
            .await?;
    }
    services.jobs.put_tasks(&planned.tasks).await?;
    let task_count = services.jobs.count_tasks(&job.id).await? as u32;
    services
        .jobs
        .transition_job(
            &job.id,
            JobState::Running,
            JobUpdate {
                task_count: Some(task_count),
                ..Default::default()
            },
        )
        .await?;
    // The Map reads only ids from the manifest; launch looks the rest up in the job table, so
    // the manifest stays small and the table stays the one source of truth. Written last: a
    // manifest means the stage's tasks are all recorded.
    let items: Vec<_> = planned
        .tasks
        .iter()
        .map(|t| json!({"taskId": t.id, "index": t.index}))
        .collect();
    let body = serde_json::to_vec(&items).map_err(StepError::internal)?;
    services
        .objects
        .put(manifest, body, "application/json")
        .await?;
    tracing::info!(job = %job.id, stage = %stage.name, tasks = items.len(), rejects = planned.rejects, "stage planned");
    Ok(items.len())
}

fn file_name(key: &str) -> String {
    key.rsplit('/').next().unwrap_or(key).to_string()
}

async fn close_stage(
    services: &Services,
    input: CloseStageInput,
) -> Result<StageClosed, StepError> {
    let job = services.job(&input.job_id).await?;
    let pipeline = services.job_pipeline(&job).await?;
    let stage = require_stage_at(&pipeline, input.stage)?;
    // Counted, not listed (a stage's 100,000 tasks made into `Task`s to see that all
    // succeeded); only tasks that did not are read.
    let tally = services.jobs.tally_tasks(&job.id).await?;
    let mine = tally
        .stages(|name| stage_recorded_as(&pipeline, name).is_some_and(|(i, _)| i == input.stage));
    let total = mine.total().tasks as usize;
    let mut failed = Vec::new();
    if mine.in_state(TaskState::Succeeded) as usize != total {
        let unfinished = services
            .jobs
            .tasks_not_in(&job.id, TaskState::Succeeded, usize::MAX)
            .await?;
        for task in unfinished
            .iter()
            .filter(|t| belongs_to(&pipeline, t, input.stage))
        {
            let reason = task
                .last_error
                .clone()
                .unwrap_or_else(|| format!("task ended {} without a result", task.state.as_str()));
            fail_task(services.jobs.as_ref(), &job.id, &task.id, &reason).await?;
            failed.push(format!("{} ({reason})", task.id));
        }
    }
    let succeeded = total.saturating_sub(failed.len()) as u32;
    if !failed.is_empty() {
        let shown = failed.len().min(5);
        let more = if failed.len() > shown {
            format!(" and {} more", failed.len() - shown)
        } else {
            String::new()
        };
        return Err(StepError::new(
            ErrorName::TasksFailed,
            format!(
                "stage '{}': {} of {} tasks failed: {}{more}",
                stage.name,
                failed.len(),
                total,
                failed[..shown].join("; ")
            ),
        ));
    }
    tracing::info!(job = %job.id, stage = %stage.name, succeeded, "stage closed");
    Ok(StageClosed {
        index: input.stage,
        succeeded,
    })
}

/// Record the job as FAILED with the reason, and hand the error back to raise.
async fn reject(
    services: &Services,
    job: &JobId,
    execution_arn: Option<String>,
    error: StepError,
) -> StepError {
    let update = JobUpdate {
        reason: Some(error.cause.clone()),
        execution_arn,
        ..Default::default()
    };
    match services
        .jobs
        .transition_job(job, JobState::Failed, update)
        .await
    {
        // This write records the outcome, so it announces it (finish will find the job final).
        Ok(sluice_core::ports::Transition::Applied(failed)) => {
            let tally = services.jobs.tally_tasks(job).await.unwrap_or_default();
            let succeeded = tally.in_state(TaskState::Succeeded);
            let delivered =
                sluice_core::notify::announce(services, &failed, tally.total().tasks, succeeded)
                    .await;
            for failure in &delivered.failed {
                tracing::warn!(job = %job, %failure, "notification not delivered");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::error!(job = %job, error = %e, "could not record the job as failed"),
    }
    tracing::warn!(job = %job, reason = %error.cause, "input rejected");
    error
}
