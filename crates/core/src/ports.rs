//! Ports: the traits through which handlers reach the outside world.
//!
//! Handlers (`functions/*`) depend only on these. `sluice-local` implements them with
//! directories, SQLite, processes and the embedded ASL engine; `sluice-aws` with S3, DynamoDB,
//! ECS/Batch, Auto Scaling and Step Functions. Every write that changes a record's state is
//! conditional (see [`Transition`]), so retries and duplicate events are harmless.

use crate::error::StoreError;
use crate::ids::{JobId, TaskId};
use crate::model::{
    Attempt, AttemptKey, AttemptState, AttemptUpdate, Capacity, Job, JobState, JobUpdate, Lease,
    ObjectRef, Task, TaskState, TaskTally,
};
use crate::pipeline::PipelineConfig;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Outcome of a conditional state change.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition<T> {
    /// The record was in an allowed state and now holds the new one.
    Applied(T),
    /// The record exists but was not in a state the change may come from; it is unchanged.
    Rejected(T),
    /// No such record.
    Missing,
}

impl<T> Transition<T> {
    pub fn applied(&self) -> bool {
        matches!(self, Transition::Applied(_))
    }
}

/// Buckets and keys: S3 on AWS, directories locally.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// `StoreError::NotFound` when the object does not exist.
    async fn get(&self, object: &ObjectRef) -> Result<Vec<u8>, StoreError>;
    /// Atomic: readers see the old object or the new one, never a partial write.
    async fn put(
        &self,
        object: &ObjectRef,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StoreError>;
    async fn exists(&self, object: &ObjectRef) -> Result<bool, StoreError>;
}

/// Changes to a task besides its state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskUpdate {
    pub attempts: Option<u32>,
    pub spot_interruptions: Option<u32>,
    pub result: Option<ObjectRef>,
    /// `Some(None)` clears the last error.
    pub last_error: Option<Option<String>>,
}

/// Job, task and attempt bookkeeping: a SQLite table locally, a DynamoDB table on AWS.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Insert the job if no job has its id. `false` means it already existed (nothing written).
    async fn create_job(&self, job: &Job) -> Result<bool, StoreError>;
    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, StoreError>;
    /// Most recent first.
    async fn list_jobs(&self, limit: usize) -> Result<Vec<Job>, StoreError>;
    /// Move the job to `to` if its state is in `to.allowed_from()`.
    async fn transition_job(
        &self,
        id: &JobId,
        to: JobState,
        update: JobUpdate,
    ) -> Result<Transition<Job>, StoreError>;

    /// Insert tasks that do not exist yet; existing tasks (a re-planned or redriven job) keep
    /// their state, so a finished task is never reset.
    async fn put_tasks(&self, tasks: &[Task]) -> Result<(), StoreError>;
    async fn get_task(&self, job: &JobId, task: &TaskId) -> Result<Option<Task>, StoreError>;
    /// In index order.
    async fn list_tasks(&self, job: &JobId) -> Result<Vec<Task>, StoreError>;
    /// How many tasks the job has, in all its stages. The default lists them; a store that
    /// keeps counts answers without reading every task.
    async fn count_tasks(&self, job: &JobId) -> Result<usize, StoreError> {
        Ok(self.list_tasks(job).await?.len())
    }
    /// The job's tasks summed up by stage and state, with their attempts and Spot
    /// interruptions: what a job's end, a stage's close and the summaries report. The default lists every task; a store that can
    /// sum them where they are answers without making each into a [`Task`].
    async fn tally_tasks(&self, job: &JobId) -> Result<TaskTally, StoreError> {
        Ok(TaskTally::of(&self.list_tasks(job).await?))
    }
    /// The job's tasks not in `state`, in index order, at most `limit` of them: a finished
    /// job's failures without reading every task that succeeded. The default lists every task.
    async fn tasks_not_in(
        &self,
        job: &JobId,
        state: TaskState,
        limit: usize,
    ) -> Result<Vec<Task>, StoreError> {
        Ok(self
            .list_tasks(job)
            .await?
            .into_iter()
            .filter(|t| t.state != state)
            .take(limit)
            .collect())
    }
    /// Move the task to `to` if its state is in `to.allowed_from()`.
    async fn transition_task(
        &self,
        job: &JobId,
        task: &TaskId,
        to: TaskState,
        update: TaskUpdate,
    ) -> Result<Transition<Task>, StoreError>;

    /// Insert the attempt if that (job, task, number) does not exist. `false` = it existed.
    async fn create_attempt(&self, attempt: &Attempt) -> Result<bool, StoreError>;
    async fn get_attempt(&self, key: &AttemptKey) -> Result<Option<Attempt>, StoreError>;
    async fn find_attempt_by_compute_id(
        &self,
        compute_id: &str,
    ) -> Result<Option<Attempt>, StoreError>;
    /// In attempt order.
    async fn list_attempts(&self, job: &JobId, task: &TaskId) -> Result<Vec<Attempt>, StoreError>;
    /// Move the attempt to `to` if its state is in `to.allowed_from()` and, when the update
    /// carries an event version, no newer event has been applied.
    async fn transition_attempt(
        &self,
        key: &AttemptKey,
        to: AttemptState,
        update: AttemptUpdate,
    ) -> Result<Transition<Attempt>, StoreError>;
    /// Record `notice` on a live (LAUNCHING or RUNNING) attempt whose host is being reclaimed.
    /// `Rejected` for a final attempt: its outcome stands. A second notice replaces the first.
    async fn note_reclaim(
        &self,
        key: &AttemptKey,
        notice: &str,
    ) -> Result<Transition<Attempt>, StoreError>;
    /// Record that the attempt's [`Attempt::answer`] reached the orchestrator (or found its
    /// token closed). `Rejected` when the attempt has no answer to mark; idempotent.
    async fn mark_answered(&self, key: &AttemptKey) -> Result<Transition<Attempt>, StoreError>;

    // What a handler reads or writes together, one request where the store can do it in one
    // (the SQLite table: one trip to its thread, one transaction). The defaults compose the
    // calls above, in order, and are what a store without such a request uses.

    /// The task and its attempts (in attempt order); `None` if the task does not exist.
    async fn get_task_with_attempts(
        &self,
        job: &JobId,
        task: &TaskId,
    ) -> Result<Option<(Task, Vec<Attempt>)>, StoreError> {
        let Some(found) = self.get_task(job, task).await? else {
            return Ok(None);
        };
        let attempts = self.list_attempts(job, task).await?;
        Ok(Some((found, attempts)))
    }

    /// The job, with one of its tasks and that task's attempts: what launch and task-events
    /// read for one attempt, in one request. `None`: no such job; `Some((job, None))`: the job
    /// has no such task.
    async fn get_job_task(
        &self,
        job: &JobId,
        task: &TaskId,
    ) -> Result<Option<(Job, Option<TaskWithAttempts>)>, StoreError> {
        let Some(found) = self.get_job(job).await? else {
            return Ok(None);
        };
        Ok(Some((found, self.get_task_with_attempts(job, task).await?)))
    }

    /// Records a new attempt ([`JobStore::create_attempt`]) and, if it was new, moves its
    /// task to `to` ([`JobStore::transition_task`]). `false`: the attempt existed, nothing
    /// was written.
    async fn start_attempt(
        &self,
        attempt: &Attempt,
        to: TaskState,
        update: TaskUpdate,
    ) -> Result<bool, StoreError> {
        if !self.create_attempt(attempt).await? {
            return Ok(false);
        }
        let key = &attempt.key;
        self.transition_task(&key.job_id, &key.task_id, to, update)
            .await?;
        Ok(true)
    }

    /// Moves the attempt ([`JobStore::transition_attempt`]) and, if that applied, its task
    /// by `task` ([`JobStore::transition_task`]); the attempt's transition is returned.
    async fn end_attempt(
        &self,
        key: &AttemptKey,
        to: AttemptState,
        update: AttemptUpdate,
        task: Option<(TaskState, TaskUpdate)>,
    ) -> Result<Transition<Attempt>, StoreError> {
        let moved = self.transition_attempt(key, to, update).await?;
        if let (Transition::Applied(_), Some((state, update))) = (&moved, task) {
            self.transition_task(&key.job_id, &key.task_id, state, update)
                .await?;
        }
        Ok(moved)
    }
}

/// An object or a prefix of objects a task reads or writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Location {
    File {
        object: ObjectRef,
    },
    /// Every object under `prefix` (which ends with '/'), as a directory.
    Dir {
        prefix: ObjectRef,
    },
}

impl Location {
    pub fn object(&self) -> &ObjectRef {
        match self {
            Location::File { object } => object,
            Location::Dir { prefix } => prefix,
        }
    }
    pub fn is_dir(&self) -> bool {
        matches!(self, Location::Dir { .. })
    }
}

/// A location with the path the task's command sees it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    pub location: Location,
    /// What the placeholder rendered to: a file path locally, a container path on ECS/Batch
    /// (where the worker entrypoint downloads inputs there and uploads the output from there).
    pub path: String,
}

/// Record `task` FAILED for good with `reason` (a task the state machine gave up on, or one
/// that cannot run at all). Like every transition, a no-op on a task that already succeeded.
pub async fn fail_task(
    jobs: &dyn JobStore,
    job: &JobId,
    task: &TaskId,
    reason: &str,
) -> Result<Transition<Task>, StoreError> {
    jobs.transition_task(
        job,
        task,
        TaskState::Failed,
        TaskUpdate {
            last_error: Some(Some(reason.to_string())),
            ..Default::default()
        },
    )
    .await
}

/// What to launch for one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchRequest {
    pub attempt: AttemptKey,
    pub capacity: Capacity,
    /// argv with every placeholder filled; locations with the paths from
    /// [`Compute::path_for`].
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// What the command reads: the job's input, earlier stages' outputs, a chunk of rows.
    pub inputs: Vec<Staged>,
    /// Where the task's output must end up, unless its stage writes nothing.
    pub output: Option<Staged>,
    /// Where relative paths resolve and the process runs (local runtime only).
    pub working_dir: Option<String>,
    pub image: Option<String>,
    pub cpu: u32,
    pub memory_mib: u32,
    /// How long the attempt may run once started; compute stops it after that and reports
    /// it timed out ([`crate::classify::TIMEOUT_REASON`]). `None`: compute's own limit.
    pub timeout_seconds: Option<u64>,
    /// The id compute gave the attempt's task ahead ([`Compute::compute_id_ahead`]), already
    /// recorded on the attempt: the task runs under it. `None`: compute names it at launch.
    pub compute_id: Option<String>,
}

/// A task with its attempts, in attempt order.
pub type TaskWithAttempts = (Task, Vec<Attempt>);

/// A started task on compute.
#[derive(Debug, Clone, PartialEq)]
pub struct Launched {
    /// ECS task ARN, Batch job id, or local process handle id.
    pub compute_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    /// The request was refused or capacity could not be placed; retrying later may work.
    #[error("launch failed: {0}")]
    LaunchFailed(String),
    /// The request itself is wrong (missing image, bad command); retrying will not help.
    #[error("invalid launch request: {0}")]
    Invalid(String),
}

/// Runs containers: a local process pool, ECS RunTask or Batch SubmitJob. When a task stops,
/// the platform (not this trait) emits a state-change event that the task-events handler gets.
#[async_trait]
pub trait Compute: Send + Sync {
    /// The path at which a task's command finds `location` (an input) or writes it (the
    /// output): a file in the bucket directory locally, a path in the container on ECS/Batch.
    fn path_for(&self, location: &Location) -> Result<String, ComputeError>;
    async fn launch(&self, request: &LaunchRequest) -> Result<Launched, ComputeError>;
    /// Stop a launched task (ECS StopTask, Batch TerminateJob, locally the process). Stopping
    /// a task that has already stopped, or that compute no longer knows, is not an error. The
    /// platform still emits the task's STOPPED event afterwards.
    async fn stop(&self, compute_id: &str, reason: &str) -> Result<(), ComputeError>;
    /// How many attempts beyond its `slots` of capacity compute holds launched and waiting for
    /// a slot, so that a slot freed by a finished task is taken at once instead of after the
    /// round trip through the state machine (task event, callback, next Map iteration, launch).
    /// The stage's Map runs `slots + launch_ahead(slots)` iterations at once while the lease
    /// stays `slots`. A compute that holds attempts waiting must time its attempts itself
    /// ([`Compute::times_attempts`]): the Task state's timeout, which counts from the launch,
    /// is then only a backstop that also covers the wait (see the plan's
    /// `task_state_timeout`). Default: none.
    fn launch_ahead(&self, _slots: u32) -> u32 {
        0
    }
    /// The id `attempt`'s task will have, for a compute that names its tasks itself before
    /// it starts them (the local pool). The launch then records the attempt RUNNING under it
    /// in the write that records the attempt, instead of a second write once the launch
    /// returns: one write of the job table fewer per attempt, on a path a job of short tasks
    /// takes thousands of times a second. `None` (the default; ECS and Batch, whose ids come
    /// back from RunTask and SubmitJob): recorded LAUNCHING, then RUNNING with the id.
    fn compute_id_ahead(&self, _attempt: &AttemptKey) -> Option<String> {
        None
    }
    /// Whether compute stops an attempt itself once it has run for its `timeout_seconds` and
    /// reports it timed out (AWS Batch, the local pool), so that the Task state's timeout is
    /// only a backstop; `false` (ECS, the default): the Task state's timeout is what stops it.
    fn times_attempts(&self) -> bool {
        false
    }
    /// The compute ids of this compute's live tasks on the EC2 instance `instance_id` (a Spot
    /// interruption warning or a shutdown names only the instance). Empty when the instance is
    /// not one of ours. `Ok(None)` when this compute cannot tell (AWS Batch, whose instances and
    /// ECS cluster belong to Batch): reclaims there are recognised by the job's own
    /// "Host EC2 (...) terminated" status reason.
    async fn tasks_on_instance(
        &self,
        instance_id: &str,
    ) -> Result<Option<Vec<String>>, ComputeError>;
}

/// Capacity after a lease change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CapacityStatus {
    /// Task slots the cluster is sized for now (sum of active leases, capped by the maximum).
    pub desired_slots: u32,
    pub active_leases: u32,
}

/// Sizes the cluster from the leases of all running jobs.
#[async_trait]
pub trait CapacityPool: Send + Sync {
    /// Record (idempotently) the job's lease and resize.
    async fn acquire(&self, lease: &Lease) -> Result<CapacityStatus, StoreError>;
    /// Drop the job's lease (a no-op if it holds none) and resize. With `acquired_by`, only a
    /// lease last acquired at or before that time: the end of one run of a job must not take
    /// the capacity a newer run (a re-run, a redrive) acquired after it, whenever its event
    /// comes. The check and the delete are one atomic step.
    async fn release(
        &self,
        job: &JobId,
        acquired_by: Option<DateTime<Utc>>,
    ) -> Result<CapacityStatus, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The token's task already finished, timed out or never existed (InvalidToken,
    /// TaskDoesNotExist, TaskTimedOut). Reporting to it again is pointless, not an error to retry.
    #[error("task token is closed: {0}")]
    TokenClosed(String),
    /// An execution with that name exists with a different input.
    #[error("execution already exists: {0}")]
    AlreadyExists(String),
    /// No such execution.
    #[error("execution does not exist: {0}")]
    NoSuchExecution(String),
    /// RedriveExecution of an execution that is running, succeeded, or too old.
    #[error("execution cannot be redriven: {0}")]
    NotRedrivable(String),
    #[error("{0}")]
    Backend(String),
}

/// Every operation a handler can ask of a port. Each Lambda crate declares the ones its code
/// makes (`PORT_CALLS`); the AWS adapters declare the IAM actions each one needs
/// (`sluice_aws::permissions`); a test checks that every function's role in
/// `infra/template.yaml` grants exactly the union, and the in-memory ports of the decision
/// tests refuse a call the handler did not declare (see `testing::World::declared`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortCall {
    /// [`ObjectStore::get`] in the data bucket (`jobs/*`) or the ingest bucket.
    ObjectGet,
    /// [`ObjectStore::put`] under `jobs/*`.
    ObjectPut,
    /// [`ObjectStore::exists`]: a HEAD that must tell "missing" from "forbidden".
    ObjectExists,
    /// [`Pipelines::get`]: `pipelines/<name>.toml` in the data bucket.
    PipelineGet,
    /// Reads of the job table (`get_*`, `list_*`, `find_*`, `count_tasks`, `tally_tasks`,
    /// `tasks_not_in`).
    JobRead,
    /// New records in the job table (`create_job`, `create_attempt`, `put_tasks`).
    JobCreate,
    /// Conditional changes of records (`transition_*`, `note_reclaim`, `mark_answered`).
    JobUpdate,
    /// [`Compute::launch`].
    ComputeLaunch,
    /// [`Compute::stop`].
    ComputeStop,
    /// [`Compute::tasks_on_instance`].
    ComputeTasksOnInstance,
    /// [`CapacityPool::acquire`] and [`CapacityPool::release`].
    CapacityLease,
    /// [`Workflows::start_execution`].
    WorkflowStart,
    /// [`Workflows::send_task_success`] and [`Workflows::send_task_failure`].
    WorkflowAnswer,
    /// [`Workflows::stop_execution`].
    WorkflowStop,
    /// [`Workflows::redrive_execution`].
    WorkflowRedrive,
}

impl PortCall {
    pub const ALL: [PortCall; 15] = [
        PortCall::ObjectGet,
        PortCall::ObjectPut,
        PortCall::ObjectExists,
        PortCall::PipelineGet,
        PortCall::JobRead,
        PortCall::JobCreate,
        PortCall::JobUpdate,
        PortCall::ComputeLaunch,
        PortCall::ComputeStop,
        PortCall::ComputeTasksOnInstance,
        PortCall::CapacityLease,
        PortCall::WorkflowStart,
        PortCall::WorkflowAnswer,
        PortCall::WorkflowStop,
        PortCall::WorkflowRedrive,
    ];
}

/// The orchestrator: Step Functions on AWS, the embedded engine locally.
#[async_trait]
pub trait Workflows: Send + Sync {
    /// Start the pipeline state machine. Idempotent: the same name and input returns the
    /// existing execution's ARN.
    async fn start_execution(
        &self,
        name: &str,
        input: &serde_json::Value,
    ) -> Result<String, WorkflowError>;
    async fn send_task_success(
        &self,
        token: &str,
        output: &serde_json::Value,
    ) -> Result<(), WorkflowError>;
    /// SendTaskFailure with one of the typed errors the state machine retries or catches on.
    async fn send_task_failure(
        &self,
        token: &str,
        error: crate::error::ErrorName,
        cause: &str,
    ) -> Result<(), WorkflowError>;
    /// StopExecution: the execution ends ABORTED with `error` and `cause`; its status-change
    /// event then stops the job's tasks (execution-events). Stopping an execution that has
    /// already ended is not an error.
    async fn stop_execution(
        &self,
        execution_arn: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), WorkflowError>;
    /// RedriveExecution: continue a FAILED, ABORTED or TIMED_OUT execution from where it
    /// stopped, under the same ARN.
    async fn redrive_execution(&self, execution_arn: &str) -> Result<(), WorkflowError>;
    /// Whether a task token's answer is settled once its send returns, whatever it returns:
    /// the embedded engine takes it or has closed the token, and its own journal (not the
    /// attempt's `answered` flag) is what a restarted process continues from. Then task-events
    /// records an attempt answered in the write that ends it, and makes no second write after
    /// the send. `false` (Step Functions, the default): a send can fail for a while, and the
    /// flag, written once the send went through, is what a redelivered event resends by.
    fn sends_settle_answers(&self) -> bool {
        false
    }
}

/// Delivers the notifications a pipeline asks for (`[notify]`): an HTTP POST and a local
/// command. The same implementation serves the local runtime and the finish Lambda.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// POST `body` as JSON to `url`; an error names what failed (status, connection).
    async fn post_webhook(&self, url: &str, body: &serde_json::Value) -> Result<(), String>;
    /// Run `argv` with `stdin` on its standard input, in `working_dir` if given; an error
    /// names the exit status and the end of its output.
    async fn run_command(
        &self,
        argv: &[String],
        stdin: &[u8],
        working_dir: Option<&str>,
    ) -> Result<(), String>;
}

/// Where pipeline configurations come from.
#[async_trait]
pub trait Pipelines: Send + Sync {
    /// `Ok(None)` for an unknown pipeline.
    async fn get(&self, name: &str) -> Result<Option<PipelineConfig>, StoreError>;
}

/// Pipelines stored as `<prefix><name>.toml` in an object store (the data bucket on AWS).
pub struct StoredPipelines<S> {
    pub store: S,
    pub bucket: String,
    pub prefix: String,
}

#[async_trait]
impl<S: ObjectStore> Pipelines for StoredPipelines<S> {
    async fn get(&self, name: &str) -> Result<Option<PipelineConfig>, StoreError> {
        if crate::ids::PipelineName::new(name).is_err() {
            return Ok(None);
        }
        let object = ObjectRef::new(&self.bucket, format!("{}{name}.toml", self.prefix));
        let bytes = match self.store.get(&object).await {
            Ok(b) => b,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let text = String::from_utf8(bytes).map_err(|_| StoreError::Corrupt {
            what: object.to_string(),
            message: "not UTF-8".into(),
        })?;
        PipelineConfig::from_toml(&object.to_string(), &text)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                what: object.to_string(),
                message: e.to_string(),
            })
    }
}

/// The names of the buckets a deployment uses.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Buckets {
    /// Where input CSVs land.
    pub ingest: String,
    /// Manifests, task results, aggregated results, pipeline configs.
    pub data: String,
}

/// Object layout of a job in the data bucket. One place, so every handler and adapter agrees.
///
/// ```text
/// jobs/<job>/pipeline.toml                    the pipeline as the execution started with it
/// jobs/<job>/stages/<stage>/manifest.json      the stage's task ids (the Map's items)
/// jobs/<job>/stages/<stage>/chunks/<item>.csv  a chunk task's rows
/// jobs/<job>/stages/<stage>/rejects.csv        rows skipped under bad_rows = "skip"
/// jobs/<job>/stages/<stage>/output/...         what the stage wrote (see sluice_core::stage)
/// ```
pub mod layout {
    use crate::ids::JobId;

    /// The pipeline as the job's current execution started with it.
    pub fn job_pipeline(job: &JobId) -> String {
        format!("jobs/{job}/pipeline.toml")
    }
    pub fn stage_dir(job: &JobId, stage: &str) -> String {
        format!("jobs/{job}/stages/{stage}/")
    }
    pub fn stage_manifest(job: &JobId, stage: &str) -> String {
        format!("{}manifest.json", stage_dir(job, stage))
    }
    pub fn chunk(job: &JobId, stage: &str, item: &str) -> String {
        format!("{}chunks/{item}.csv", stage_dir(job, stage))
    }
    pub fn rejects(job: &JobId, stage: &str) -> String {
        format!("{}rejects.csv", stage_dir(job, stage))
    }
    pub fn stage_output(job: &JobId, stage: &str) -> String {
        format!("{}output/", stage_dir(job, stage))
    }
    /// What the built-in aggregate stage writes in its output directory.
    pub const RESULTS_CSV: &str = "results.csv";
    pub const RESULTS_PNG: &str = "results.png";
    pub const PIPELINES_PREFIX: &str = "pipelines/";
}

/// Every port a handler may use, built once per process (Lambda cold start, local runtime).
#[derive(Clone)]
pub struct Services {
    pub objects: std::sync::Arc<dyn ObjectStore>,
    pub jobs: std::sync::Arc<dyn JobStore>,
    pub compute: std::sync::Arc<dyn Compute>,
    pub capacity: std::sync::Arc<dyn CapacityPool>,
    pub workflows: std::sync::Arc<dyn Workflows>,
    pub pipelines: std::sync::Arc<dyn Pipelines>,
    pub notifier: std::sync::Arc<dyn Notifier>,
    pub buckets: Buckets,
    /// Job pipelines already read by this process (see [`Services::job_pipeline`]).
    pub job_pipelines: JobPipelineCache,
}

/// The pipelines of running jobs, parsed once per execution instead of once per task.
///
/// Every launch and every task event needs the job's pipeline; reading and parsing its copy
/// each time was a fixed cost per task (a file or S3 GET, and a TOML parse). The copy is
/// written once per execution, when the plan step starts it, so (job, execution, redrive
/// count) names one content: a re-run is a new execution, and a redrive that starts again from
/// the plan step counts up. A warm Lambda keeps the cache between invocations, as the local
/// runtime does between tasks.
#[derive(Clone, Default)]
pub struct JobPipelineCache {
    entries: std::sync::Arc<std::sync::Mutex<PipelinesByExecution>>,
}

/// (job id, execution ARN, redrive count) → the pipeline that execution runs.
type PipelinesByExecution =
    std::collections::HashMap<(String, String, u32), std::sync::Arc<PipelineConfig>>;

impl JobPipelineCache {
    /// Jobs remembered at most; a long-running `sluice serve` forgets the oldest together.
    const CAPACITY: usize = 64;

    fn key(job: &Job) -> Option<(String, String, u32)> {
        let execution = job.execution_arn.clone()?;
        Some((job.id.to_string(), execution, job.redrive_count))
    }

    fn get(&self, job: &Job) -> Option<std::sync::Arc<PipelineConfig>> {
        let key = Self::key(job)?;
        self.entries.lock().ok()?.get(&key).cloned()
    }

    /// Forgets what this process read for `job`: its copy was just written anew.
    pub fn forget(&self, job: &JobId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|(id, _, _), _| id != job.as_str());
        }
    }

    fn put(&self, job: &Job, pipeline: std::sync::Arc<PipelineConfig>) {
        let (Some(key), Ok(mut entries)) = (Self::key(job), self.entries.lock()) else {
            return;
        };
        if entries.len() >= Self::CAPACITY {
            entries.clear();
        }
        entries.insert(key, pipeline);
    }
}

impl Services {
    /// The job, or an error naming it: every step after ingest needs its job record.
    pub async fn job(&self, id: &JobId) -> Result<Job, crate::error::StepError> {
        self.jobs
            .get_job(id)
            .await?
            .ok_or_else(|| crate::error::StepError::invalid_input(format!("unknown job '{id}'")))
    }

    /// The pipeline a job runs: the copy its execution took when it started
    /// ([`layout::job_pipeline`], written by the plan step), so that a pipeline file changed
    /// while the job runs cannot change the stages under it; the pipeline by name for a job
    /// that has no copy (recorded before copies, or not yet started). Read once per execution
    /// ([`JobPipelineCache`]).
    pub async fn job_pipeline(
        &self,
        job: &Job,
    ) -> Result<std::sync::Arc<PipelineConfig>, crate::error::StepError> {
        if let Some(cached) = self.job_pipelines.get(job) {
            return Ok(cached);
        }
        let copy = ObjectRef::new(&self.buckets.data, layout::job_pipeline(&job.id));
        match self.objects.get(&copy).await {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let pipeline =
                    PipelineConfig::from_toml(&copy.to_string(), &text).map_err(|e| {
                        crate::error::StepError::invalid_input(format!(
                            "the job's copy of pipeline '{}' is invalid: {e}",
                            job.pipeline
                        ))
                    })?;
                let pipeline = std::sync::Arc::new(pipeline);
                self.job_pipelines.put(job, pipeline.clone());
                Ok(pipeline)
            }
            Err(StoreError::NotFound(_)) => self.pipeline(&job.pipeline).await.map(Into::into),
            Err(e) => Err(e.into()),
        }
    }

    /// The pipeline's configuration, or an error naming the pipeline.
    pub async fn pipeline(&self, name: &str) -> Result<PipelineConfig, crate::error::StepError> {
        match self.pipelines.get(name).await {
            Ok(Some(cfg)) => Ok(cfg),
            Ok(None) => Err(crate::error::StepError::invalid_input(format!(
                "unknown pipeline '{name}': no {}{name}.toml in the data bucket",
                layout::PIPELINES_PREFIX
            ))),
            Err(StoreError::Corrupt { what, message }) => {
                Err(crate::error::StepError::invalid_input(format!(
                    "pipeline '{name}' ({what}) is invalid: {message}"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::World;

    const PIPELINE: &str = r#"
name = "p"
[input]
columns = { n = "integer" }
[task]
command = ["work", "{n}"]
[parallelism]
max = 3
"#;

    #[tokio::test]
    async fn a_job_pipeline_is_read_once_per_execution() {
        let world = World::new();
        let mut job = world.running_job("j", "p", 1).await;
        let copy = super::ObjectRef::new("data", super::layout::job_pipeline(&job.id));
        world.objects.insert(&copy, PIPELINE);
        let first = world.services.job_pipeline(&job).await.unwrap();
        assert_eq!(first.parallelism.max, 3);

        // The copy changes (a new plan step wrote it): the same execution keeps what it read...
        world
            .objects
            .insert(&copy, PIPELINE.replace("max = 3", "max = 5"));
        let again = world.services.job_pipeline(&job).await.unwrap();
        assert!(std::sync::Arc::ptr_eq(&first, &again), "parsed once");
        // ...a redrive, or another execution, reads it anew.
        job.redrive_count += 1;
        assert_eq!(
            world
                .services
                .job_pipeline(&job)
                .await
                .unwrap()
                .parallelism
                .max,
            5
        );
        job.execution_arn = Some("arn:aws:states:local:0:execution:test:other".into());
        world
            .objects
            .insert(&copy, PIPELINE.replace("max = 3", "max = 7"));
        assert_eq!(
            world
                .services
                .job_pipeline(&job)
                .await
                .unwrap()
                .parallelism
                .max,
            7
        );
    }
}
