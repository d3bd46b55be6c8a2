//! Job, Task and Attempt records and the state changes allowed between their states.
//!
//! Records only move forward. Every store (SQLite, DynamoDB) writes a transition as a
//! conditional update "from one of `allowed_from(to)`", so a duplicate or stale event that
//! arrives after a record has moved on cannot move it back.

use crate::ids::{JobId, TaskId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Lifecycle of a job: one run of a pipeline over one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Recorded by ingest; the execution may not have started yet.
    Submitted,
    /// The state machine is running it (planned, scaled, fanned out).
    Running,
    Succeeded,
    Failed,
    /// Its execution was stopped (cancelled, Ctrl-C, StopExecution): its running tasks were
    /// stopped and its capacity released. A redrive continues it.
    Aborted,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Submitted,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Aborted,
    ];

    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Aborted
        )
    }

    /// States a job may move to `self` from.
    pub fn allowed_from(self) -> &'static [JobState] {
        match self {
            JobState::Submitted => &[],
            // From FAILED or ABORTED only when a re-run or redrive of the job's execution starts
            // (ingest never moves a job to RUNNING, so it cannot race a failure).
            JobState::Running => &[JobState::Submitted, JobState::Failed, JobState::Aborted],
            // A redriven job that now succeeds leaves FAILED; nothing leaves SUCCEEDED.
            JobState::Succeeded => &[JobState::Submitted, JobState::Running, JobState::Failed],
            // An aborted job stays aborted until it is redriven: a step that was still running
            // when the execution stopped cannot record another outcome over it.
            JobState::Failed | JobState::Aborted => &[JobState::Submitted, JobState::Running],
        }
    }

    /// The states a conditional write to `self` may find the job in: its predecessors, and
    /// `self` itself when it is not final (re-applying RUNNING to record results; SUBMITTED to
    /// record the execution only while nothing has moved the job on). A final job keeps its
    /// first outcome and reason. Every job store writes transitions with exactly this condition.
    pub fn transition_sources(self) -> Vec<JobState> {
        let mut from = self.allowed_from().to_vec();
        if !self.is_final() {
            from.push(self);
        }
        from
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Submitted => "SUBMITTED",
            JobState::Running => "RUNNING",
            JobState::Succeeded => "SUCCEEDED",
            JobState::Failed => "FAILED",
            JobState::Aborted => "ABORTED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// A job that can be continued by a redrive.
    pub fn is_redrivable(self) -> bool {
        matches!(self, JobState::Failed | JobState::Aborted)
    }
}

/// Where an object lives: a bucket (S3 bucket, or a directory locally) and a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
}

impl ObjectRef {
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            key: key.into(),
        }
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// One run of a pipeline over one input object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub pipeline: String,
    pub input: ObjectRef,
    pub state: JobState,
    /// Why the job failed, naming the file, line and column for bad input.
    pub reason: Option<String>,
    pub execution_arn: Option<String>,
    pub task_count: u32,
    /// Where the aggregated results were written, once they are.
    pub results: Vec<ObjectRef>,
    /// How many times the job's execution was redriven (continued after it stopped).
    #[serde(default)]
    pub redrive_count: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Job {
    pub fn new(
        id: JobId,
        pipeline: impl Into<String>,
        input: ObjectRef,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            pipeline: pipeline.into(),
            input,
            state: JobState::Submitted,
            reason: None,
            execution_arn: None,
            task_count: 0,
            results: Vec::new(),
            redrive_count: 0,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Fields a job transition may set besides the state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobUpdate {
    pub reason: Option<String>,
    pub execution_arn: Option<String>,
    pub task_count: Option<u32>,
    pub results: Option<Vec<ObjectRef>>,
    /// Set when a redrive starts; the reason of the outcome before it is cleared with it.
    pub redrive_count: Option<u32>,
    /// Apply only while the job is still on this run of its execution: a late event of a run
    /// the job has moved on from (a re-run recorded its own execution, a redrive counted
    /// itself) changes nothing, however it interleaves with the writes of the newer run.
    pub only_in_run: Option<ExecutionRun>,
}

/// One run of a job's execution: the execution and how many redrives it had had then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionRun {
    pub execution_arn: String,
    pub redrive_count: u32,
}

impl ExecutionRun {
    /// The job is still on this run: it records this execution (or none yet) and has not been
    /// redriven past it. The condition every store applies with the write.
    pub fn is_current_for(&self, job: &Job) -> bool {
        job.execution_arn
            .as_deref()
            .is_none_or(|arn| arn == self.execution_arn)
            && job.redrive_count <= self.redrive_count
    }
}

/// Lifecycle of a task across its attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskState {
    /// Planned, never launched.
    Pending,
    /// An attempt is launching or running.
    Running,
    /// The last attempt failed in a way the state machine will retry.
    Retrying,
    Succeeded,
    Failed,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "PENDING",
            TaskState::Running => "RUNNING",
            TaskState::Retrying => "RETRYING",
            TaskState::Succeeded => "SUCCEEDED",
            TaskState::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            TaskState::Pending,
            TaskState::Running,
            TaskState::Retrying,
            TaskState::Succeeded,
            TaskState::Failed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// A SUCCEEDED task never changes again: its result is counted exactly once. A FAILED task
    /// can be relaunched by a redrive.
    pub fn allowed_from(self) -> &'static [TaskState] {
        match self {
            TaskState::Pending => &[],
            TaskState::Running => &[TaskState::Pending, TaskState::Retrying, TaskState::Failed],
            TaskState::Retrying | TaskState::Succeeded => &[TaskState::Running],
            // The aggregate step marks every task the state machine gave up on as FAILED.
            TaskState::Failed => &[TaskState::Running, TaskState::Retrying, TaskState::Pending],
        }
    }
}

/// One unit of work of a stage: the stage's single task, or one row or chunk of its fan-out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub job_id: JobId,
    /// Unique in the job: `<stage>_<item>` for a fan-out, the stage's name for its one task.
    pub id: TaskId,
    /// The stage the task belongs to.
    #[serde(default)]
    pub stage: String,
    /// Position in its stage (0-based), also the default seed of simulation workloads.
    pub index: u32,
    /// The row's values by column name, typed per the pipeline's input schema.
    pub params: BTreeMap<String, serde_json::Value>,
    pub state: TaskState,
    /// Number of attempts launched so far.
    pub attempts: u32,
    /// How many of them were lost to Spot reclaims.
    pub spot_interruptions: u32,
    pub result: Option<ObjectRef>,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl Task {
    /// A task just planned: PENDING, never launched, no result yet.
    pub fn pending(
        job_id: JobId,
        id: TaskId,
        stage: impl Into<String>,
        index: u32,
        params: BTreeMap<String, serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            job_id,
            id,
            stage: stage.into(),
            index,
            params,
            state: TaskState::Pending,
            attempts: 0,
            spot_interruptions: 0,
            result: None,
            last_error: None,
            updated_at: now,
        }
    }
}

/// A job's tasks summed up by stage and state: how many, their attempts and their Spot
/// interruptions. What a job's end, a stage's close and the summaries report, which a job
/// table can answer without reading every task ([`crate::ports::JobStore::tally_tasks`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskTally {
    /// By (stage, state).
    rows: std::collections::HashMap<(String, TaskState), Tallied>,
}

/// The tasks of one stage in one state, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tallied {
    pub tasks: u32,
    /// Attempts launched.
    pub attempts: u64,
    /// Attempts lost to Spot reclaims.
    pub spot_interruptions: u64,
}

impl TaskTally {
    /// The tally of `tasks`.
    pub fn of<'a>(tasks: impl IntoIterator<Item = &'a Task>) -> Self {
        let mut tally = Self::default();
        for t in tasks {
            tally.add(
                &t.stage,
                t.state,
                Tallied {
                    tasks: 1,
                    attempts: u64::from(t.attempts),
                    spot_interruptions: u64::from(t.spot_interruptions),
                },
            );
        }
        tally
    }

    /// Counts more tasks of `stage` in `state`.
    pub fn add(&mut self, stage: &str, state: TaskState, more: Tallied) {
        *self.rows.entry((stage.to_string(), state)).or_default() += more;
    }

    /// Only the stages `keep` says yes to (by the stage's name as its tasks record it).
    pub fn stages(&self, keep: impl Fn(&str) -> bool) -> Self {
        Self {
            rows: self
                .rows
                .iter()
                .filter(|((stage, _), _)| keep(stage))
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        }
    }

    /// Every task counted.
    pub fn total(&self) -> Tallied {
        self.sum(|_| true)
    }

    /// The tasks in `state`.
    pub fn in_state(&self, state: TaskState) -> u32 {
        self.sum(|s| s == state).tasks
    }

    fn sum(&self, states: impl Fn(TaskState) -> bool) -> Tallied {
        let mut sum = Tallied::default();
        for ((_, state), row) in &self.rows {
            if states(*state) {
                sum += *row;
            }
        }
        sum
    }
}

impl std::ops::AddAssign for Tallied {
    fn add_assign(&mut self, more: Tallied) {
        self.tasks += more.tasks;
        self.attempts += more.attempts;
        self.spot_interruptions += more.spot_interruptions;
    }
}

/// Which kind of capacity an attempt was placed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capacity {
    Spot,
    OnDemand,
}

impl Capacity {
    pub fn as_str(self) -> &'static str {
        match self {
            Capacity::Spot => "spot",
            Capacity::OnDemand => "on-demand",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "spot" => Some(Capacity::Spot),
            "on-demand" => Some(Capacity::OnDemand),
            _ => None,
        }
    }
}

/// Lifecycle of one launch of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttemptState {
    /// Recorded with its task token, RunTask not yet answered.
    Launching,
    Running,
    Succeeded,
    SpotInterrupted,
    LaunchFailed,
    OutOfMemory,
    /// Stopped by compute for running longer than its stage's timeout.
    TimedOut,
    Failed,
    /// Exited 0 without writing the output file its stage requires.
    OutputMissing,
    /// Stopped by sluice, not by the application or the platform: its runner died, its job was
    /// cancelled, or a newer attempt of its task replaced it. The reason is in `stop_code` (an
    /// [`Interruption`]). Never counts against the application-error budget.
    Interrupted,
}

/// Why sluice stopped an attempt (an [`AttemptState::Interrupted`] attempt's `stop_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Interruption {
    /// The process that ran the attempt's execution died (killed, machine rebooted) and the
    /// attempt was found unfinished when the job was continued: a lost host.
    RunnerLost,
    /// The job's execution was stopped, aborted or timed out.
    JobStopped,
    /// A newer attempt of the same task was launched (the Task state timed out, or its
    /// callback was lost), so this one must not run on beside it.
    Superseded,
}

impl Interruption {
    pub fn as_str(self) -> &'static str {
        match self {
            Interruption::RunnerLost => "RunnerLost",
            Interruption::JobStopped => "JobStopped",
            Interruption::Superseded => "Superseded",
        }
    }
}

impl AttemptState {
    pub fn is_final(self) -> bool {
        !matches!(self, AttemptState::Launching | AttemptState::Running)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptState::Launching => "LAUNCHING",
            AttemptState::Running => "RUNNING",
            AttemptState::Succeeded => "SUCCEEDED",
            AttemptState::SpotInterrupted => "SPOT_INTERRUPTED",
            AttemptState::LaunchFailed => "LAUNCH_FAILED",
            AttemptState::OutOfMemory => "OUT_OF_MEMORY",
            AttemptState::TimedOut => "TIMED_OUT",
            AttemptState::Failed => "FAILED",
            AttemptState::OutputMissing => "OUTPUT_MISSING",
            AttemptState::Interrupted => "INTERRUPTED",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            AttemptState::Launching,
            AttemptState::Running,
            AttemptState::Succeeded,
            AttemptState::SpotInterrupted,
            AttemptState::LaunchFailed,
            AttemptState::OutOfMemory,
            AttemptState::TimedOut,
            AttemptState::Failed,
            AttemptState::OutputMissing,
            AttemptState::Interrupted,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
    /// Final states are reached only from LAUNCHING or RUNNING, so the second delivery of a
    /// STOPPED event finds the attempt final and changes nothing.
    pub fn allowed_from(self) -> &'static [AttemptState] {
        match self {
            AttemptState::Launching => &[],
            AttemptState::Running => &[AttemptState::Launching],
            _ => &[AttemptState::Launching, AttemptState::Running],
        }
    }
}

/// Identifies an attempt: (job, task, 1-based attempt number).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttemptKey {
    pub job_id: JobId,
    pub task_id: TaskId,
    pub number: u32,
}

impl std::fmt::Display for AttemptKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}#{}", self.job_id, self.task_id, self.number)
    }
}

/// One launch of a task on compute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub key: AttemptKey,
    pub state: AttemptState,
    pub capacity: Capacity,
    /// The Step Functions task token that the attempt's end reports to.
    pub task_token: String,
    /// ECS task ARN, Batch job id, or local process id.
    pub compute_id: Option<String>,
    pub exit_code: Option<i32>,
    /// ECS stopCode / Batch status reason, as received.
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    /// The `detail.version` of the last event applied, to drop stale events.
    pub event_version: Option<u64>,
    pub started_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    /// Set while the attempt is live when the EC2 instance under it got a Spot interruption
    /// warning or started shutting down: its STOPPED event is then a reclaim whatever the exit
    /// code says (on EC2, ECS gives standalone tasks no Spot stop code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaim_notice: Option<String>,
    /// What task-events decided to tell the attempt's task token, recorded with the final
    /// state *before* it is sent, so a redelivered event can send it again if sending failed.
    /// `None` for attempts that never reported (sluice interrupted them, or still live).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<TokenAnswer>,
    /// The answer reached the orchestrator (or its token was already closed): a redelivered
    /// event is then a duplicate.
    #[serde(default)]
    pub answered: bool,
}

/// The callback an attempt's end gives its task token: SendTaskSuccess with the task's result,
/// or SendTaskFailure with the typed error the state machine retries or catches on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum TokenAnswer {
    Success {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<ObjectRef>,
    },
    Failure {
        error: crate::error::ErrorName,
        cause: String,
    },
}

impl TokenAnswer {
    /// The state the attempt's task moves to with this answer: SUCCEEDED, RETRYING when the
    /// state machine retries the error, FAILED when it does not.
    pub fn task_state(&self) -> TaskState {
        match self {
            TokenAnswer::Success { .. } => TaskState::Succeeded,
            TokenAnswer::Failure { error, .. } if error.is_retried() => TaskState::Retrying,
            TokenAnswer::Failure { .. } => TaskState::Failed,
        }
    }
}

/// Fields an attempt transition may set besides the state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptUpdate {
    pub compute_id: Option<String>,
    pub exit_code: Option<i32>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    pub event_version: Option<u64>,
    /// When the attempt's container or process started running, from its stop event: until
    /// then an attempt's `started_at` is its launch, and an attempt may wait a while between
    /// the two (for capacity on ECS, for a slot in the local pool).
    pub started_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    /// The answer to send the attempt's token (with a final state only).
    pub answer: Option<TokenAnswer>,
    /// Record the answer as delivered too, in the same write: for a state machine whose
    /// callbacks settle the answer however the send ends
    /// ([`crate::ports::Workflows::sends_settle_answers`]). `false`: left as it is.
    pub answered: bool,
}

/// A job's claim on compute capacity, held from scale-up to scale-down. The cluster's desired
/// size is computed from all active leases, so one job's scale-down never takes capacity that
/// another running job still holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub job_id: JobId,
    /// Task slots (containers running at once) the job wants.
    pub slots: u32,
    /// When the lease was last acquired: acquiring again (a re-run, a redrive) renews it, so
    /// that the late end of the run before cannot release it (see [`CapacityPool::release`]).
    ///
    /// [`CapacityPool::release`]: crate::ports::CapacityPool::release
    pub acquired_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_attempt_states_cannot_be_left() {
        for to in [
            AttemptState::Running,
            AttemptState::Succeeded,
            AttemptState::Failed,
            AttemptState::SpotInterrupted,
            AttemptState::Interrupted,
        ] {
            for from in to.allowed_from() {
                assert!(!from.is_final(), "{to:?} reachable from final {from:?}");
            }
        }
    }

    #[test]
    fn an_aborted_job_is_left_only_by_a_redrive() {
        for to in JobState::ALL {
            let from_aborted = to.transition_sources().contains(&JobState::Aborted);
            assert_eq!(from_aborted, to == JobState::Running, "{to:?}");
        }
        assert!(JobState::Aborted.is_final() && JobState::Aborted.is_redrivable());
        assert!(!JobState::Succeeded.is_redrivable());
    }

    #[test]
    fn succeeded_task_is_terminal() {
        for to in [
            TaskState::Running,
            TaskState::Retrying,
            TaskState::Failed,
            TaskState::Succeeded,
        ] {
            assert!(!to.allowed_from().contains(&TaskState::Succeeded));
        }
    }

    #[test]
    fn state_names_round_trip() {
        for s in ["SUBMITTED", "RUNNING", "SUCCEEDED", "FAILED", "ABORTED"] {
            assert_eq!(JobState::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(
            serde_json::to_string(&AttemptState::SpotInterrupted).unwrap(),
            "\"SPOT_INTERRUPTED\""
        );
        assert_eq!(
            AttemptState::parse("OUT_OF_MEMORY"),
            Some(AttemptState::OutOfMemory)
        );
    }
}
