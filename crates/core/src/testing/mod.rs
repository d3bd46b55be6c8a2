//! In-memory adapters of every port, for tests of handler decisions that compile against
//! sluice-core alone (feature `testing`).
//!
//! - [`MemoryJobStore`]: the job table with exactly the conditional-write rules of the SQLite
//!   and DynamoDB stores (the [`contract`] suite runs against all three).
//! - [`MemoryObjects`]: buckets in a map.
//! - [`ScriptedCompute`]: records launches and stops; can be told to fail.
//! - [`MemoryCapacity`]: leases in a map.
//! - [`RecordingWorkflows`]: records task-token callbacks and executions; can be told to fail
//!   the next calls, or to treat tokens as closed.
//! - [`FixedPipelines`]: pipeline configs by name.
//!
//! [`World`] builds a [`Services`] over all of them and keeps typed handles for assertions.
//! [`World::declared`] makes every port refuse (panic on) a call the handler under test did not
//! declare in its `PORT_CALLS`, the list the IAM permission contract is built from.

pub mod contract;

use crate::error::StoreError;
use crate::ids::{JobId, TaskId};
use crate::model::{
    Attempt, AttemptKey, AttemptState, AttemptUpdate, Job, JobState, JobUpdate, Lease, ObjectRef,
    Task, TaskState,
};
use crate::pipeline::PipelineConfig;
use crate::ports::PortCall;
use crate::ports::{
    Buckets, CapacityPool, CapacityStatus, Compute, ComputeError, JobStore, LaunchRequest,
    Launched, Location, ObjectStore, Pipelines, Services, TaskUpdate, Transition, WorkflowError,
    Workflows,
};
use async_trait::async_trait;
use chrono::Utc;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Which port calls the in-memory ports accept, and which were made. By default every call;
/// after [`World::declared`], only a handler's declared `PORT_CALLS`: any other call panics
/// with its name, because the handler's Lambda role (derived from that list) would not be
/// allowed to make it on AWS.
#[derive(Default)]
pub struct CallGuard {
    allowed: Mutex<Option<Vec<PortCall>>>,
    made: Mutex<BTreeSet<PortCall>>,
}

impl CallGuard {
    pub fn check(&self, call: PortCall) {
        lock(&self.made).insert(call);
        if let Some(allowed) = lock(&self.allowed).as_ref()
            && !allowed.contains(&call)
        {
            panic!(
                "the handler called {call:?}, which its PORT_CALLS does not declare: its Lambda \
                 role would not grant the IAM actions for it (declare it, and the permission \
                 contract test will ask for the template to grant them)"
            );
        }
    }
    /// The calls made so far.
    pub fn made(&self) -> BTreeSet<PortCall> {
        lock(&self.made).clone()
    }
    /// Lifts the restriction (for what a test does itself, not the handler under test);
    /// [`CallGuard::restore`] puts it back.
    pub fn lift(&self) -> Option<Vec<PortCall>> {
        lock(&self.allowed).take()
    }
    pub fn restore(&self, restriction: Option<Vec<PortCall>>) {
        *lock(&self.allowed) = restriction;
    }
}

/// The job table in memory.
#[derive(Default)]
pub struct MemoryJobStore {
    jobs: Mutex<BTreeMap<String, Job>>,
    tasks: Mutex<BTreeMap<(String, String), Task>>,
    attempts: Mutex<BTreeMap<(String, String, u32), Attempt>>,
    /// Writes so far (each call that creates or updates, whatever it changed).
    writes: std::sync::atomic::AtomicUsize,
    /// Run once, right after the next `get_job` has read its answer
    /// ([`MemoryJobStore::after_next_get_job`]).
    after_get_job: Mutex<Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>>,
    pub guard: Arc<CallGuard>,
}

impl MemoryJobStore {
    /// How many writing calls were made so far: what a handler costs the table.
    pub fn writes(&self) -> usize {
        self.writes.load(std::sync::atomic::Ordering::Relaxed)
    }
    /// Runs `interleaved` once, right after the next `get_job` has read the job and before
    /// it answers: what another writer (a re-run, a redrive) does between a handler's read and
    /// its writes, the interleaving a test of a race needs to make happen every time.
    pub fn after_next_get_job(
        &self,
        interleaved: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        *lock(&self.after_get_job) = Some(Box::pin(interleaved));
    }
    fn read(&self) {
        self.guard.check(PortCall::JobRead);
    }
    fn create(&self) {
        self.guard.check(PortCall::JobCreate);
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    fn update(&self) {
        self.guard.check(PortCall::JobUpdate);
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[async_trait]
impl JobStore for MemoryJobStore {
    async fn create_job(&self, job: &Job) -> Result<bool, StoreError> {
        self.create();
        let mut jobs = lock(&self.jobs);
        if jobs.contains_key(job.id.as_str()) {
            return Ok(false);
        }
        jobs.insert(job.id.to_string(), job.clone());
        Ok(true)
    }

    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        self.read();
        let job = lock(&self.jobs).get(id.as_str()).cloned();
        let interleaved = lock(&self.after_get_job).take();
        if let Some(interleaved) = interleaved {
            interleaved.await;
        }
        Ok(job)
    }

    async fn list_jobs(&self, limit: usize) -> Result<Vec<Job>, StoreError> {
        self.read();
        let mut jobs: Vec<Job> = lock(&self.jobs).values().cloned().collect();
        jobs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        jobs.truncate(limit);
        Ok(jobs)
    }

    async fn transition_job(
        &self,
        id: &JobId,
        to: JobState,
        update: JobUpdate,
    ) -> Result<Transition<Job>, StoreError> {
        self.update();
        let mut jobs = lock(&self.jobs);
        let Some(job) = jobs.get_mut(id.as_str()) else {
            return Ok(Transition::Missing);
        };
        if !to.transition_sources().contains(&job.state)
            || update
                .only_in_run
                .as_ref()
                .is_some_and(|run| !run.is_current_for(job))
        {
            return Ok(Transition::Rejected(job.clone()));
        }
        job.state = to;
        match (update.reason, update.redrive_count) {
            (Some(r), _) => job.reason = Some(r),
            (None, Some(_)) => job.reason = None,
            (None, None) => {}
        }
        if let Some(n) = update.redrive_count {
            job.redrive_count = n;
        }
        if let Some(a) = update.execution_arn {
            job.execution_arn = Some(a);
        }
        if let Some(n) = update.task_count {
            job.task_count = n;
        }
        if let Some(r) = update.results {
            job.results = r;
        }
        job.updated_at = Utc::now();
        Ok(Transition::Applied(job.clone()))
    }

    async fn put_tasks(&self, tasks: &[Task]) -> Result<(), StoreError> {
        self.create();
        let mut all = lock(&self.tasks);
        for t in tasks {
            all.entry((t.job_id.to_string(), t.id.to_string()))
                .or_insert_with(|| t.clone());
        }
        Ok(())
    }

    async fn get_task(&self, job: &JobId, task: &TaskId) -> Result<Option<Task>, StoreError> {
        self.read();
        Ok(lock(&self.tasks)
            .get(&(job.to_string(), task.to_string()))
            .cloned())
    }

    async fn list_tasks(&self, job: &JobId) -> Result<Vec<Task>, StoreError> {
        self.read();
        let mut tasks: Vec<Task> = lock(&self.tasks)
            .values()
            .filter(|t| t.job_id == *job)
            .cloned()
            .collect();
        tasks.sort_by_key(|t| t.index);
        Ok(tasks)
    }

    async fn transition_task(
        &self,
        job: &JobId,
        task: &TaskId,
        to: TaskState,
        update: TaskUpdate,
    ) -> Result<Transition<Task>, StoreError> {
        self.update();
        let mut tasks = lock(&self.tasks);
        let Some(t) = tasks.get_mut(&(job.to_string(), task.to_string())) else {
            return Ok(Transition::Missing);
        };
        if !to.allowed_from().contains(&t.state) {
            return Ok(Transition::Rejected(t.clone()));
        }
        t.state = to;
        if let Some(n) = update.attempts {
            t.attempts = n;
        }
        if let Some(n) = update.spot_interruptions {
            t.spot_interruptions = n;
        }
        if let Some(r) = update.result {
            t.result = Some(r);
        }
        if let Some(e) = update.last_error {
            t.last_error = e;
        }
        t.updated_at = Utc::now();
        Ok(Transition::Applied(t.clone()))
    }

    async fn create_attempt(&self, attempt: &Attempt) -> Result<bool, StoreError> {
        self.create();
        let k = &attempt.key;
        let mut all = lock(&self.attempts);
        let key = (k.job_id.to_string(), k.task_id.to_string(), k.number);
        if all.contains_key(&key) {
            return Ok(false);
        }
        all.insert(key, attempt.clone());
        Ok(true)
    }

    async fn get_attempt(&self, key: &AttemptKey) -> Result<Option<Attempt>, StoreError> {
        self.read();
        Ok(lock(&self.attempts)
            .get(&(key.job_id.to_string(), key.task_id.to_string(), key.number))
            .cloned())
    }

    async fn find_attempt_by_compute_id(
        &self,
        compute_id: &str,
    ) -> Result<Option<Attempt>, StoreError> {
        self.read();
        Ok(lock(&self.attempts)
            .values()
            .filter(|a| a.compute_id.as_deref() == Some(compute_id))
            .max_by_key(|a| a.key.number)
            .cloned())
    }

    async fn list_attempts(&self, job: &JobId, task: &TaskId) -> Result<Vec<Attempt>, StoreError> {
        self.read();
        Ok(lock(&self.attempts)
            .values()
            .filter(|a| a.key.job_id == *job && a.key.task_id == *task)
            .cloned()
            .collect())
    }

    async fn transition_attempt(
        &self,
        key: &AttemptKey,
        to: AttemptState,
        update: AttemptUpdate,
    ) -> Result<Transition<Attempt>, StoreError> {
        self.update();
        let mut all = lock(&self.attempts);
        let Some(a) = all.get_mut(&(key.job_id.to_string(), key.task_id.to_string(), key.number))
        else {
            return Ok(Transition::Missing);
        };
        let stale =
            matches!((update.event_version, a.event_version), (Some(new), Some(old)) if new <= old);
        if stale || !to.allowed_from().contains(&a.state) {
            return Ok(Transition::Rejected(a.clone()));
        }
        a.state = to;
        if update.compute_id.is_some() {
            a.compute_id = update.compute_id;
        }
        if update.exit_code.is_some() {
            a.exit_code = update.exit_code;
        }
        if update.stop_code.is_some() {
            a.stop_code = update.stop_code;
        }
        if update.stopped_reason.is_some() {
            a.stopped_reason = update.stopped_reason;
        }
        if update.event_version.is_some() {
            a.event_version = update.event_version;
        }
        if let Some(at) = update.started_at {
            a.started_at = at;
        }
        if update.stopped_at.is_some() {
            a.stopped_at = update.stopped_at;
        }
        if update.answer.is_some() {
            a.answer = update.answer;
        }
        if update.answered {
            a.answered = true;
        }
        Ok(Transition::Applied(a.clone()))
    }

    async fn note_reclaim(
        &self,
        key: &AttemptKey,
        notice: &str,
    ) -> Result<Transition<Attempt>, StoreError> {
        self.update();
        let mut all = lock(&self.attempts);
        let Some(a) = all.get_mut(&(key.job_id.to_string(), key.task_id.to_string(), key.number))
        else {
            return Ok(Transition::Missing);
        };
        if a.state.is_final() {
            return Ok(Transition::Rejected(a.clone()));
        }
        a.reclaim_notice = Some(notice.to_string());
        Ok(Transition::Applied(a.clone()))
    }

    async fn mark_answered(&self, key: &AttemptKey) -> Result<Transition<Attempt>, StoreError> {
        self.update();
        let mut all = lock(&self.attempts);
        let Some(a) = all.get_mut(&(key.job_id.to_string(), key.task_id.to_string(), key.number))
        else {
            return Ok(Transition::Missing);
        };
        if a.answer.is_none() {
            return Ok(Transition::Rejected(a.clone()));
        }
        a.answered = true;
        Ok(Transition::Applied(a.clone()))
    }
}

/// Buckets in memory.
#[derive(Default)]
pub struct MemoryObjects {
    objects: Mutex<HashMap<ObjectRef, Vec<u8>>>,
    /// Gets under way now, and the most there were at once: a get waits once for its
    /// caller's next poll (as a request over the network would), so gets a handler has in
    /// flight together show here.
    in_flight: std::sync::atomic::AtomicUsize,
    most_in_flight: std::sync::atomic::AtomicUsize,
    pub guard: Arc<CallGuard>,
}

impl MemoryObjects {
    pub fn insert(&self, object: &ObjectRef, body: impl Into<Vec<u8>>) {
        lock(&self.objects).insert(object.clone(), body.into());
    }
    /// The most gets that were in flight at once so far.
    pub fn most_gets_at_once(&self) -> usize {
        self.most_in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Pending once, then ready: a call that does not answer within its first poll.
struct PendingOnce(bool);

impl std::future::Future for PendingOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

#[async_trait]
impl ObjectStore for MemoryObjects {
    async fn get(&self, object: &ObjectRef) -> Result<Vec<u8>, StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.guard.check(PortCall::ObjectGet);
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.most_in_flight.fetch_max(now, SeqCst);
        PendingOnce(false).await;
        self.in_flight.fetch_sub(1, SeqCst);
        lock(&self.objects)
            .get(object)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(object.to_string()))
    }
    async fn put(&self, object: &ObjectRef, body: Vec<u8>, _ct: &str) -> Result<(), StoreError> {
        self.guard.check(PortCall::ObjectPut);
        lock(&self.objects).insert(object.clone(), body);
        Ok(())
    }
    async fn exists(&self, object: &ObjectRef) -> Result<bool, StoreError> {
        self.guard.check(PortCall::ObjectExists);
        Ok(lock(&self.objects).contains_key(object))
    }
}

/// What [`ScriptedCompute`] was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum ComputeCall {
    Launch(AttemptKey),
    Stop(String),
}

/// Compute that starts nothing: records calls, answers with `task/<attempt>` ids, and fails
/// launches once `fail_launches_after` launches have succeeded.
#[derive(Default)]
pub struct ScriptedCompute {
    pub calls: Mutex<Vec<ComputeCall>>,
    pub fail_launches_after: Mutex<Option<usize>>,
    pub fail_stops: Mutex<bool>,
    /// What [`Compute::launch_ahead`] answers.
    pub launch_ahead: Mutex<u32>,
    /// What [`Compute::times_attempts`] answers.
    pub times_attempts: Mutex<bool>,
    /// Name tasks ahead ([`Compute::compute_id_ahead`]) as [`ScriptedCompute::ahead_id_of`].
    pub names_ahead: Mutex<bool>,
    /// EC2 instance id -> compute ids of the live tasks on it ([`Compute::tasks_on_instance`]).
    pub instances: Mutex<HashMap<String, Vec<String>>>,
    /// Answer `tasks_on_instance` with "cannot tell", as AWS Batch does.
    pub cannot_tell_instances: Mutex<bool>,
    /// Every launch request, in order (what a container would be started with).
    pub requests: Mutex<Vec<LaunchRequest>>,
    pub guard: Arc<CallGuard>,
}

impl ScriptedCompute {
    pub fn launches(&self) -> Vec<AttemptKey> {
        lock(&self.calls)
            .iter()
            .filter_map(|c| match c {
                ComputeCall::Launch(k) => Some(k.clone()),
                ComputeCall::Stop(_) => None,
            })
            .collect()
    }
    pub fn stops(&self) -> Vec<String> {
        lock(&self.calls)
            .iter()
            .filter_map(|c| match c {
                ComputeCall::Stop(id) => Some(id.clone()),
                ComputeCall::Launch(_) => None,
            })
            .collect()
    }
    /// The compute id a launch of `key` gets.
    pub fn id_of(key: &AttemptKey) -> String {
        format!("task/{key}")
    }
    /// The id a compute that names tasks ahead gives `key`'s task.
    pub fn ahead_id_of(key: &AttemptKey) -> String {
        format!("ahead/{key}")
    }
}

#[async_trait]
impl Compute for ScriptedCompute {
    fn path_for(&self, location: &Location) -> Result<String, ComputeError> {
        let o = location.object();
        Ok(format!("/scripted/{}/{}", o.bucket, o.key))
    }
    async fn launch(&self, request: &LaunchRequest) -> Result<Launched, ComputeError> {
        self.guard.check(PortCall::ComputeLaunch);
        if let Some(n) = *lock(&self.fail_launches_after)
            && self.launches().len() >= n
        {
            return Err(ComputeError::LaunchFailed("scripted: no capacity".into()));
        }
        lock(&self.calls).push(ComputeCall::Launch(request.attempt.clone()));
        lock(&self.requests).push(request.clone());
        Ok(Launched {
            compute_id: request
                .compute_id
                .clone()
                .unwrap_or_else(|| Self::id_of(&request.attempt)),
        })
    }
    fn compute_id_ahead(&self, attempt: &AttemptKey) -> Option<String> {
        lock(&self.names_ahead).then(|| Self::ahead_id_of(attempt))
    }
    fn launch_ahead(&self, _slots: u32) -> u32 {
        *lock(&self.launch_ahead)
    }
    fn times_attempts(&self) -> bool {
        *lock(&self.times_attempts)
    }
    async fn stop(&self, compute_id: &str, _reason: &str) -> Result<(), ComputeError> {
        self.guard.check(PortCall::ComputeStop);
        lock(&self.calls).push(ComputeCall::Stop(compute_id.to_string()));
        if *lock(&self.fail_stops) {
            return Err(ComputeError::LaunchFailed("scripted: stop refused".into()));
        }
        Ok(())
    }
    async fn tasks_on_instance(
        &self,
        instance_id: &str,
    ) -> Result<Option<Vec<String>>, ComputeError> {
        self.guard.check(PortCall::ComputeTasksOnInstance);
        if *lock(&self.cannot_tell_instances) {
            return Ok(None);
        }
        Ok(Some(
            lock(&self.instances)
                .get(instance_id)
                .cloned()
                .unwrap_or_default(),
        ))
    }
}

/// Leases in memory; the desired size is the sum of the leases' slots.
#[derive(Default)]
pub struct MemoryCapacity {
    pub leases: Mutex<BTreeMap<String, Lease>>,
    pub guard: Arc<CallGuard>,
}

impl MemoryCapacity {
    fn status(leases: &BTreeMap<String, Lease>) -> CapacityStatus {
        CapacityStatus {
            desired_slots: leases.values().map(|l| l.slots).sum(),
            active_leases: leases.len() as u32,
        }
    }

    /// The slots `job`'s lease holds, if it holds one.
    pub fn slots_of(&self, job: &str) -> Option<u32> {
        lock(&self.leases).get(job).map(|l| l.slots)
    }
}

#[async_trait]
impl CapacityPool for MemoryCapacity {
    async fn acquire(&self, lease: &Lease) -> Result<CapacityStatus, StoreError> {
        self.guard.check(PortCall::CapacityLease);
        let mut leases = lock(&self.leases);
        leases.insert(lease.job_id.to_string(), lease.clone());
        Ok(Self::status(&leases))
    }
    async fn release(
        &self,
        job: &JobId,
        acquired_by: Option<chrono::DateTime<Utc>>,
    ) -> Result<CapacityStatus, StoreError> {
        self.guard.check(PortCall::CapacityLease);
        let mut leases = lock(&self.leases);
        if leases
            .get(job.as_str())
            .is_some_and(|l| acquired_by.is_none_or(|by| l.acquired_at <= by))
        {
            leases.remove(job.as_str());
        }
        Ok(Self::status(&leases))
    }
}

/// A callback or start the workflows port was asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkflowCall {
    Start {
        name: String,
        input: Value,
    },
    Success {
        token: String,
        output: Value,
    },
    Failure {
        token: String,
        error: String,
        cause: String,
    },
    Stop {
        execution_arn: String,
        error: String,
        cause: String,
    },
    Redrive {
        execution_arn: String,
    },
}

/// The orchestrator's side of the ports, recorded. `fail_next` fails that many of the next
/// calls with a transient backend error; tokens in `closed_tokens` answer TokenClosed.
#[derive(Default)]
pub struct RecordingWorkflows {
    pub calls: Mutex<Vec<WorkflowCall>>,
    pub fail_next: Mutex<u32>,
    /// What [`Workflows::sends_settle_answers`] answers.
    pub settles_answers: Mutex<bool>,
    pub closed_tokens: Mutex<Vec<String>>,
    pub guard: Arc<CallGuard>,
}

impl RecordingWorkflows {
    fn check(&self, token: Option<&str>) -> Result<(), WorkflowError> {
        let mut fail = lock(&self.fail_next);
        if *fail > 0 {
            *fail -= 1;
            return Err(WorkflowError::Backend("scripted: throttled".into()));
        }
        if let Some(t) = token
            && lock(&self.closed_tokens).iter().any(|c| c == t)
        {
            return Err(WorkflowError::TokenClosed(format!("Task Timed Out: '{t}'")));
        }
        Ok(())
    }

    pub fn calls(&self) -> Vec<WorkflowCall> {
        lock(&self.calls).clone()
    }
}

#[async_trait]
impl Workflows for RecordingWorkflows {
    fn sends_settle_answers(&self) -> bool {
        *lock(&self.settles_answers)
    }
    async fn start_execution(&self, name: &str, input: &Value) -> Result<String, WorkflowError> {
        self.guard.check(PortCall::WorkflowStart);
        self.check(None)?;
        lock(&self.calls).push(WorkflowCall::Start {
            name: name.to_string(),
            input: input.clone(),
        });
        Ok(format!(
            "arn:aws:states:local:000000000000:execution:test:{name}"
        ))
    }
    async fn send_task_success(&self, token: &str, output: &Value) -> Result<(), WorkflowError> {
        self.guard.check(PortCall::WorkflowAnswer);
        self.check(Some(token))?;
        lock(&self.calls).push(WorkflowCall::Success {
            token: token.to_string(),
            output: output.clone(),
        });
        Ok(())
    }
    async fn send_task_failure(
        &self,
        token: &str,
        error: crate::error::ErrorName,
        cause: &str,
    ) -> Result<(), WorkflowError> {
        self.guard.check(PortCall::WorkflowAnswer);
        self.check(Some(token))?;
        lock(&self.calls).push(WorkflowCall::Failure {
            token: token.to_string(),
            error: error.as_str().to_string(),
            cause: cause.to_string(),
        });
        Ok(())
    }
    async fn stop_execution(
        &self,
        execution_arn: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), WorkflowError> {
        self.guard.check(PortCall::WorkflowStop);
        self.check(None)?;
        lock(&self.calls).push(WorkflowCall::Stop {
            execution_arn: execution_arn.to_string(),
            error: error.to_string(),
            cause: cause.to_string(),
        });
        Ok(())
    }
    async fn redrive_execution(&self, execution_arn: &str) -> Result<(), WorkflowError> {
        self.guard.check(PortCall::WorkflowRedrive);
        self.check(None)?;
        lock(&self.calls).push(WorkflowCall::Redrive {
            execution_arn: execution_arn.to_string(),
        });
        Ok(())
    }
}

/// Pipelines by name.
#[derive(Default)]
pub struct FixedPipelines {
    pub pipelines: Mutex<HashMap<String, PipelineConfig>>,
    pub guard: Arc<CallGuard>,
}

#[async_trait]
impl Pipelines for FixedPipelines {
    async fn get(&self, name: &str) -> Result<Option<PipelineConfig>, StoreError> {
        self.guard.check(PortCall::PipelineGet);
        Ok(lock(&self.pipelines).get(name).cloned())
    }
}

/// A LAUNCHING attempt as launch records it, before compute answers.
pub fn launching_attempt(key: AttemptKey, token: &str, compute_id: Option<String>) -> Attempt {
    Attempt {
        key,
        state: AttemptState::Launching,
        capacity: crate::model::Capacity::Spot,
        task_token: token.to_string(),
        compute_id,
        exit_code: None,
        stop_code: None,
        stopped_reason: None,
        event_version: None,
        started_at: Utc::now(),
        stopped_at: None,
        reclaim_notice: None,
        answer: None,
        answered: false,
    }
}

/// Every port in memory, with typed handles for assertions.
pub struct World {
    pub services: Services,
    pub jobs: Arc<MemoryJobStore>,
    pub objects: Arc<MemoryObjects>,
    pub compute: Arc<ScriptedCompute>,
    pub capacity: Arc<MemoryCapacity>,
    pub workflows: Arc<RecordingWorkflows>,
    pub pipelines: Arc<FixedPipelines>,
    pub notifier: Arc<RecordingNotifier>,
    /// Shared by every port: which calls are allowed, which were made.
    pub guard: Arc<CallGuard>,
}

/// A notification delivered through [`RecordingNotifier`].
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    Webhook {
        url: String,
        body: serde_json::Value,
    },
    Command {
        argv: Vec<String>,
        stdin: serde_json::Value,
        working_dir: Option<String>,
    },
}

/// Records notifications; fails every delivery while `fail` is set.
#[derive(Default)]
pub struct RecordingNotifier {
    pub sent: Mutex<Vec<Notification>>,
    pub fail: Mutex<bool>,
}

impl RecordingNotifier {
    pub fn sent(&self) -> Vec<Notification> {
        lock(&self.sent).clone()
    }
}

#[async_trait]
impl crate::ports::Notifier for RecordingNotifier {
    async fn post_webhook(&self, url: &str, body: &serde_json::Value) -> Result<(), String> {
        if *lock(&self.fail) {
            return Err("scripted: webhook down".into());
        }
        lock(&self.sent).push(Notification::Webhook {
            url: url.into(),
            body: body.clone(),
        });
        Ok(())
    }
    async fn run_command(
        &self,
        argv: &[String],
        stdin: &[u8],
        working_dir: Option<&str>,
    ) -> Result<(), String> {
        if *lock(&self.fail) {
            return Err("scripted: command failed".into());
        }
        lock(&self.sent).push(Notification::Command {
            argv: argv.to_vec(),
            stdin: serde_json::from_slice(stdin).unwrap_or_default(),
            working_dir: working_dir.map(str::to_string),
        });
        Ok(())
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    pub fn new() -> Self {
        let guard = Arc::new(CallGuard::default());
        let jobs = Arc::new(MemoryJobStore {
            guard: guard.clone(),
            ..Default::default()
        });
        let objects = Arc::new(MemoryObjects {
            guard: guard.clone(),
            ..Default::default()
        });
        let compute = Arc::new(ScriptedCompute {
            guard: guard.clone(),
            ..Default::default()
        });
        let capacity = Arc::new(MemoryCapacity {
            guard: guard.clone(),
            ..Default::default()
        });
        let workflows = Arc::new(RecordingWorkflows {
            guard: guard.clone(),
            ..Default::default()
        });
        let pipelines = Arc::new(FixedPipelines {
            guard: guard.clone(),
            ..Default::default()
        });
        let notifier = Arc::new(RecordingNotifier::default());
        let services = Services {
            objects: objects.clone(),
            jobs: jobs.clone(),
            compute: compute.clone(),
            capacity: capacity.clone(),
            workflows: workflows.clone(),
            pipelines: pipelines.clone(),
            notifier: notifier.clone(),
            buckets: Buckets {
                ingest: "ingest".into(),
                data: "data".into(),
            },
            job_pipelines: Default::default(),
        };
        Self {
            services,
            jobs,
            objects,
            compute,
            capacity,
            workflows,
            pipelines,
            notifier,
            guard,
        }
    }

    /// A world for a handler's decision tests: every port panics on a call outside
    /// `port_calls` (the handler's `PORT_CALLS`). Test setup that needs another call (e.g.
    /// interrupting attempts as another handler would) lifts it with [`World::restrict`].
    pub fn declared(port_calls: &[PortCall]) -> Self {
        let w = Self::new();
        w.restrict(Some(port_calls));
        w
    }

    /// From now on, only `port_calls` are accepted; `None` lifts the restriction (for setting
    /// up the next step of a test).
    pub fn restrict(&self, port_calls: Option<&[PortCall]>) {
        *lock(&self.guard.allowed) = port_calls.map(<[PortCall]>::to_vec);
    }

    /// Lifts the restriction for test setup; [`World::restore`] puts it back.
    pub fn lift(&self) -> Option<Vec<PortCall>> {
        self.guard.lift()
    }

    pub fn restore(&self, restriction: Option<Vec<PortCall>>) {
        self.guard.restore(restriction)
    }

    /// Registers a pipeline from its TOML text.
    pub fn pipeline(&self, toml: &str) -> PipelineConfig {
        let cfg = PipelineConfig::from_toml("test.toml", toml).expect("valid test pipeline");
        lock(&self.pipelines.pipelines).insert(cfg.name.clone(), cfg.clone());
        cfg
    }

    /// A RUNNING job of `pipeline` with `n` PENDING tasks `t-0`..`t-{n-1}`.
    pub async fn running_job(&self, id: &str, pipeline: &str, n: u32) -> Job {
        // Setup, not the handler under test: whatever it is declared to call.
        let restriction = self.lift();
        let job = self.create_running_job(id, pipeline, n).await;
        self.restore(restriction);
        job
    }

    async fn create_running_job(&self, id: &str, pipeline: &str, n: u32) -> Job {
        let id = JobId::new(id).expect("job id");
        let job = Job::new(
            id.clone(),
            pipeline,
            ObjectRef::new("ingest", format!("{pipeline}/in.csv")),
            Utc::now(),
        );
        self.jobs.create_job(&job).await.expect("create job");
        let tasks: Vec<Task> = (0..n)
            .map(|i| {
                let task_id = TaskId::new(format!("t-{i}")).expect("task id");
                // Recorded without a stage, like tasks of jobs from before stages: they belong
                // to the pipeline's first stage.
                Task::pending(id.clone(), task_id, "", i, BTreeMap::new(), Utc::now())
            })
            .collect();
        self.jobs.put_tasks(&tasks).await.expect("put tasks");
        let update = JobUpdate {
            task_count: Some(n),
            execution_arn: Some(format!(
                "arn:aws:states:local:000000000000:execution:test:{id}"
            )),
            ..Default::default()
        };
        match self
            .jobs
            .transition_job(&id, JobState::Running, update)
            .await
            .expect("transition")
        {
            Transition::Applied(j) => j,
            other => panic!("could not start the test job: {other:?}"),
        }
    }
}
