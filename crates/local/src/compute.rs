//! The local process pool as "ECS": each attempt is a process, and its end is an
//! "ECS Task State Change" event with exactly the JSON shape EventBridge delivers.
//!
//! `launch` answers at once with a task ARN, like RunTask; the process waits for a slot in the
//! pool (capacity), runs with the attempt's environment and the `{output}` placeholder pointing
//! into the data bucket directory, and when it stops the event goes to the event bus, where the
//! task-events handler — the same code as on AWS — classifies it.
//!
//! Slots go to waiting launches first come, first served ([`crate::capacity::Slots`]), and a run
//! is stopped once it has run for its `timeout_seconds`, timed from its start as AWS Batch times
//! `attemptDurationSeconds`: an attempt launched ahead loses none of its time waiting.
//!
//! Spot interruptions can be injected: a deterministic share of attempts (decided from the seed,
//! the task id and the attempt number, so a given seed interrupts the same attempts every run)
//! is reclaimed at a random moment of its run the way EC2 reclaims an instance under ECS: every
//! task runs on its own simulated instance (`i-<17 hex digits>`), an "EC2 Spot Instance
//! Interruption Warning" for that instance goes to the bus and is handled first (on AWS it
//! comes two minutes ahead) while the process is held (SIGSTOP), then the process gets SIGTERM
//! (and SIGCONT), and its STOPPED event says only
//! what ECS says of a standalone task on EC2: the essential container exited, with its exit
//! code. No Spot stop code: only the warning tells task-events it was a reclaim.

use async_trait::async_trait;
use chrono::Utc;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sluice_core::classify::TIMEOUT_REASON;
use sluice_core::events::{EC2_SPOT_INTERRUPTION_WARNING, ECS_TASK_STATE_CHANGE};
use sluice_core::model::AttemptKey;
use sluice_core::ports::{Compute, ComputeError, LaunchRequest, Launched, Location};
use std::collections::HashMap;
use std::ffi::OsString;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::bucket::DirObjectStore;
use crate::capacity::{SlotGuard, Slots};
use crate::events::EventSink;
use crate::runtime::lock;
use crate::spawn::{Environment, SpawnSpec, TaskProcess};
use crate::tasklog::{SucceededLogs, TaskLog};

/// Attempts launched and waiting in the pool per slot of capacity (see
/// [`ProcessCompute::launch_ahead`]).
const LAUNCH_AHEAD_PER_SLOT: u32 = 4;

pub const LOCAL_CLUSTER_ARN: &str = "arn:aws:ecs:local:000000000000:cluster/sluice-local";
const CONTAINER_NAME: &str = "worker";

/// No simulated reclaim comes sooner after a task starts. Launch records the attempt's task
/// ARN right after the pool accepts it; a warning before that finds no attempt on the instance
/// (on AWS the warning comes minutes after a task is placed), and the reclaim would count as an
/// application error. A run shorter than this is never reclaimed.
const EARLIEST_RECLAIM: Duration = Duration::from_millis(20);

/// Decides which attempts a simulated Spot reclaim hits, and when.
#[derive(Debug)]
pub struct SpotInterrupter {
    rate: f64,
    seed: u64,
    /// Running mean of attempt durations, to place the reclaim inside the run.
    durations: Mutex<(f64, u32)>,
}

impl SpotInterrupter {
    pub fn new(rate: f64, seed: u64) -> Self {
        Self {
            rate: rate.clamp(0.0, 1.0),
            seed,
            durations: Mutex::new((0.0, 0)),
        }
    }

    fn uniform(&self, key: &AttemptKey, salt: &str) -> f64 {
        let mut h = Sha256::new();
        h.update(self.seed.to_be_bytes());
        h.update(key.task_id.as_str().as_bytes());
        h.update(key.number.to_be_bytes());
        h.update(salt.as_bytes());
        let d = h.finalize();
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        (u64::from_be_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `Some(delay)` when this attempt is to be reclaimed after `delay`.
    pub fn plan(&self, key: &AttemptKey) -> Option<Duration> {
        if self.uniform(key, "interrupt") >= self.rate {
            return None;
        }
        let mean = self
            .durations
            .lock()
            .map(|d| if d.1 == 0 { 1.0 } else { d.0 / f64::from(d.1) })
            .unwrap_or(1.0);
        // Somewhere in the first 90% of a typical run, so the reclaim lands while it works.
        let delay = Duration::from_secs_f64(self.uniform(key, "when") * mean * 0.9);
        Some(delay.max(EARLIEST_RECLAIM))
    }

    fn record(&self, took: Duration) {
        if let Ok(mut d) = self.durations.lock() {
            d.0 += took.as_secs_f64();
            d.1 += 1;
        }
    }
}

/// Runs attempts as local processes.
///
/// Each process leads its own process group (Ctrl-C in the terminal reaches `sluice`, which
/// decides what happens to its tasks, not the tasks themselves) and is killed by the kernel if
/// the thread that started it dies with the `sluice` process (`PR_SET_PDEATHSIG`, see
/// [`crate::spawn`]). So only the process that launched a task can be running it, and stopping
/// it is that process's business: another `sluice` process asks it through the job table
/// (`sluice cancel`), and after a crash there is nothing left to stop.
pub struct ProcessCompute {
    buckets: DirObjectStore,
    slots: Arc<Slots>,
    pool: Arc<Pool>,
    queue: Arc<LaunchQueue>,
}

/// Attempts launched and not started yet, oldest first. One task on the pool's thread (the
/// dispatcher, [`dispatch`]) starts them as slots free. A launch only queues: spawning a task
/// per attempt onto the pool's thread from the thread that launches cost a twentieth of
/// sluice's CPU per no-op task (the task's allocation, the cross-thread queue, and waking the
/// pool's thread); now the pool's thread is woken only when it had nothing queued.
#[derive(Default)]
struct LaunchQueue {
    waiting: Mutex<std::collections::VecDeque<Queued>>,
    more: tokio::sync::Notify,
    /// The dispatcher's task: started by the first launch, and again by a launch that finds
    /// it ended (without a pool thread it runs on the launching runtime, and ends with it).
    dispatcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Its compute is gone: the dispatcher ends once nothing is queued.
    closed: std::sync::atomic::AtomicBool,
}

/// A launched attempt with what was made for it ahead ([`prepare`]).
struct Queued {
    run: Run,
    prepared: Result<Prepared, String>,
}

impl LaunchQueue {
    fn push(&self, queued: Queued) {
        lock(&self.waiting).push_back(queued);
        self.more.notify_one();
    }

    /// The oldest queued attempt; `None` once the queue is closed and empty.
    async fn next(&self) -> Option<Queued> {
        loop {
            if let Some(queued) = lock(&self.waiting).pop_front() {
                return Some(queued);
            }
            if self.closed.load(Ordering::SeqCst) {
                return None;
            }
            // A push (or the close) after the checks above leaves a permit: this returns at
            // once.
            self.more.notified().await;
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.more.notify_one();
    }
}

impl Drop for ProcessCompute {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// The pool's dispatcher: takes the oldest queued attempt, waits for a slot, and starts it on
/// this thread (a local spawn: nothing to wake).
async fn dispatch(queue: Arc<LaunchQueue>, slots: Arc<Slots>, pool: Arc<Pool>) {
    while let Some(Queued { run, prepared }) = queue.next().await {
        let slot = slots.acquire().await;
        tokio::spawn(run_attempt(run, pool.clone(), prepared, slot));
    }
}

impl ProcessCompute {
    pub fn new(
        buckets: DirObjectStore,
        slots: Arc<Slots>,
        events: Arc<dyn EventSink>,
        workdir: &Path,
        bin_dirs: Vec<PathBuf>,
        interrupter: Option<Arc<SpotInterrupter>>,
    ) -> Self {
        let pool = Arc::new(Pool {
            events,
            logs: workdir.join("logs"),
            base_env: base_env(&bin_dirs),
            bin_dirs,
            programs: Mutex::new(HashMap::new()),
            interrupter,
            versions: AtomicU64::new(0),
            stopped: Mutex::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
            output_dirs: Mutex::new(Default::default()),
            instances: Mutex::new(HashMap::new()),
            succeeded_logs: SucceededLogs::default(),
        });
        if let Ok(mut pools) = LIVE_POOLS.lock() {
            pools.retain(|p| p.strong_count() > 0);
            pools.push(Arc::downgrade(&pool));
        }
        Self {
            buckets,
            slots,
            pool,
            queue: Arc::new(LaunchQueue::default()),
        }
    }
}

/// The thread the pool's attempts run on: waiting for a slot, starting the process, waiting
/// for it to end, copying its output, its events. On the threads of sluice's own work, a
/// task's end waited in line behind whatever handler and engine work was queued there before
/// the next attempt could start on the freed slot: with 2 slots on 2 cores the slots stood
/// idle a sixth of the time (docs/benchmarks/orchestration.md). Here the next start follows the
/// end at once. It lives as long as the process, as its tasks must (they are killed when the
/// thread that started them ends, see `crate::spawn`). `None` if it cannot be started: then
/// the dispatcher runs where the attempts are launched.
fn pool_thread() -> Option<&'static tokio::runtime::Runtime> {
    static POOL: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    POOL.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sluice-pool")
            .enable_all()
            .build()
            .inspect_err(
                |e| tracing::warn!(error = %e, "no thread of its own for the process pool"),
            )
            .ok()
    })
    .as_ref()
}

const LOCAL_TASK_ARN_PREFIX: &str = "arn:aws:ecs:local:000000000000:task/sluice-local/";

/// A new local task's ARN, shaped like an ECS task's (32 hex digits). Time-ordered (UUID v7):
/// the job table indexes attempts by it, and random ids put every new attempt on another
/// page of that index, each page written out again at the next commit (a tenth of the job
/// table's CPU per task, bench: store_per_task).
fn new_task_arn() -> String {
    format!("{LOCAL_TASK_ARN_PREFIX}{}", uuid::Uuid::now_v7().simple())
}

/// The simulated EC2 instance a local task runs on: one per task, named from the random end
/// of its ARN (the start is a time, the same for tasks started in the same millisecond).
fn instance_of(task_arn: &str) -> Option<String> {
    let name = task_arn.strip_prefix(LOCAL_TASK_ARN_PREFIX)?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| format!("i-{}", &name[name.len().saturating_sub(17)..]))
}

struct Run {
    key: AttemptKey,
    task_arn: String,
    request: LaunchRequest,
    argv: Vec<String>,
    /// What every event of the attempt says the same ([`EventBase`]).
    base: EventBase,
}

#[async_trait]
impl Compute for ProcessCompute {
    fn path_for(&self, location: &Location) -> Result<String, ComputeError> {
        let path = self
            .buckets
            .path_of_ref(location.object())
            .map_err(|e| ComputeError::Invalid(e.to_string()))?;
        let mut text = path.to_string_lossy().to_string();
        if location.is_dir() {
            text.push('/');
        }
        Ok(text)
    }

    async fn launch(&self, request: &LaunchRequest) -> Result<Launched, ComputeError> {
        if request.command.is_empty() {
            return Err(ComputeError::Invalid("empty command".into()));
        }
        // The task writes straight into the data bucket's directory: make the place exist,
        // and give a directory output a clean start (a retried attempt must not find the
        // files of the one before).
        if let Some(output) = &request.output {
            let path = PathBuf::from(output.path.trim_end_matches('/'));
            let io = |p: &Path, e: std::io::Error| {
                ComputeError::LaunchFailed(format!("{}: {e}", p.display()))
            };
            if output.location.is_dir() {
                if path.exists() {
                    std::fs::remove_dir_all(&path).map_err(|e| io(&path, e))?;
                }
                std::fs::create_dir_all(&path).map_err(|e| io(&path, e))?;
            } else {
                let made_here = match path.parent() {
                    Some(parent) => self.pool.ensure_dir(parent).map_err(|e| io(parent, e))?,
                    None => false,
                };
                // An earlier attempt that wrote the file and then failed must not make this
                // one look successful (on ECS nothing is uploaded unless the command exits 0).
                // None can have written it when the task has no earlier attempt and its
                // directory was made by this process: then not even looked up (the lookup
                // searched a directory of thousands of outputs: 2% of sluice's CPU on a
                // no-op job). Otherwise looked up first: unlink takes the directory's lock
                // for writing even for a file that is not there, and spun on it against the
                // running tasks creating their outputs in the same directory (up to an eighth
                // of sluice's CPU on a no-op job); a lookup does not take it.
                let first_writer = made_here && request.attempt.number == 1;
                if !first_writer && std::fs::symlink_metadata(&path).is_ok() {
                    match std::fs::remove_file(&path) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            return Err(io(&path, e));
                        }
                        _ => {}
                    }
                }
            }
        }
        let argv = request.command.clone();
        let task_arn = request.compute_id.clone().unwrap_or_else(new_task_arn);
        let run = Run {
            key: request.attempt.clone(),
            task_arn: task_arn.clone(),
            request: request.clone(),
            base: EventBase::new(request, &task_arn, &argv, &now()),
            argv,
        };
        // Its pipe and environment are made here, so that once a slot frees only the clone
        // and exec stand between one task's end and the next one's start.
        let prepared = prepare(&run, &self.pool);
        self.queue.push(Queued { run, prepared });
        let mut dispatcher = lock(&self.queue.dispatcher);
        if dispatcher.as_ref().is_none_or(|d| d.is_finished()) {
            let dispatch = dispatch(self.queue.clone(), self.slots.clone(), self.pool.clone());
            *dispatcher = Some(match pool_thread() {
                Some(runtime) => runtime.spawn(dispatch),
                None => tokio::spawn(dispatch),
            });
        }
        Ok(Launched {
            compute_id: task_arn,
        })
    }

    /// The pool names its tasks itself (an ECS-like task ARN): ahead, so that the launch
    /// records the attempt in one write.
    fn compute_id_ahead(&self, _attempt: &AttemptKey) -> Option<String> {
        Some(new_task_arn())
    }

    /// Four attempts per slot wait in the pool, ready to start the moment a slot frees: with
    /// short tasks the round trip through the state machine between one task's end and the
    /// next launch would otherwise leave the slot idle for about as long as the task ran, and
    /// on a machine whose cores are busy with the tasks that round trip waits for a core at
    /// every hop. Measured with 10,000 no-op tasks on 2 cores (docs/benchmarks/orchestration.md):
    /// one waiting per slot 1.94x the time of `xargs -P 2`, two 1.58x, four 1.41x. Waiting
    /// costs an attempt none of its time: the pool times each run from its start.
    fn launch_ahead(&self, slots: u32) -> u32 {
        slots.saturating_mul(LAUNCH_AHEAD_PER_SLOT)
    }

    /// Each run is stopped at its timeout, timed from its start (see `run_attempt`).
    fn times_attempts(&self) -> bool {
        true
    }

    async fn stop(&self, compute_id: &str, reason: &str) -> Result<(), ComputeError> {
        if !compute_id.starts_with(LOCAL_TASK_ARN_PREFIX) {
            // Not a task of the local pool: nothing here can be running it.
            return Ok(());
        }
        if let Ok(mut stopped) = self.pool.stopped.lock() {
            stopped.insert(compute_id.to_string(), reason.to_string());
        }
        let control = self
            .pool
            .running
            .lock()
            .ok()
            .and_then(|running| running.get(compute_id).cloned());
        if let Some(control) = control {
            // Like ECS StopTask, but answered once the process is gone (SIGTERM, then SIGKILL
            // after the grace period), so a caller that stops and then relaunches never has
            // both running.
            let mut done = control.done.subscribe();
            control.stop.notify_one();
            let _ = done.wait_for(|d| *d).await;
        }
        Ok(())
    }

    async fn tasks_on_instance(
        &self,
        instance_id: &str,
    ) -> Result<Option<Vec<String>>, ComputeError> {
        let instances = self
            .pool
            .instances
            .lock()
            .map_err(|_| ComputeError::LaunchFailed("instance table poisoned".into()))?;
        Ok(Some(
            instances
                .iter()
                .filter(|(_, instance)| instance.as_str() == instance_id)
                .map(|(task, _)| task.clone())
                .collect(),
        ))
    }
}

/// How long a stopped task gets between SIGTERM and SIGKILL (ECS gives 30 s by default; a
/// local run is stopped by a person waiting at a terminal).
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// What every attempt of the pool shares.
struct Pool {
    events: Arc<dyn EventSink>,
    logs: PathBuf,
    bin_dirs: Vec<PathBuf>,
    /// Programs found by name (beside sluice or on PATH), looked up once per name.
    programs: Mutex<HashMap<String, PathBuf>>,
    interrupter: Option<Arc<SpotInterrupter>>,
    versions: AtomicU64,
    /// Tasks stopped through [`Compute::stop`], with the reason, so their STOPPED event says
    /// so (and a task still waiting for a slot never starts).
    stopped: Mutex<HashMap<String, String>>,
    /// The attempts whose process runs (or is about to), by task ARN.
    running: Mutex<HashMap<String, Arc<RunControl>>>,
    /// Output directories made or found (one per stage of a job), so that a launch does not
    /// make them again, with whether this pool made them ([`Pool::ensure_dir`]).
    output_dirs: Mutex<std::collections::HashMap<PathBuf, bool>>,
    /// Running task ARN -> the simulated instance it runs on.
    instances: Mutex<HashMap<String, String>>,
    /// What every task's environment starts from: sluice's own, with PATH searching beside
    /// sluice first (as for the program itself). Made once, not per spawn.
    base_env: Environment,
    /// Where the logs of short successful attempts go (see [`crate::tasklog`]).
    succeeded_logs: SucceededLogs,
}

/// sluice's environment with `bin_dirs` put first on PATH.
fn base_env(bin_dirs: &[PathBuf]) -> Environment {
    use std::os::unix::ffi::OsStrExt;
    let vars = base_vars(bin_dirs);
    // A process's environment holds no NUL bytes, so this keeps every variable.
    let exec_safe = |s: &OsString| !s.as_bytes().contains(&0);
    Environment::new(
        vars.into_iter()
            .filter(|(k, v)| exec_safe(k) && exec_safe(v)),
    )
    .unwrap_or_default()
}

fn base_vars(bin_dirs: &[PathBuf]) -> Vec<(OsString, OsString)> {
    let mut path: Vec<PathBuf> = bin_dirs.to_vec();
    if let Some(p) = std::env::var_os("PATH") {
        path.extend(std::env::split_paths(&p));
    }
    let mut env: Vec<(OsString, OsString)> =
        std::env::vars_os().filter(|(k, _)| k != "PATH").collect();
    match std::env::join_paths(path) {
        Ok(path) => env.push(("PATH".into(), path)),
        // A directory with ':' in its name cannot go on PATH: keep sluice's own PATH.
        Err(_) => env.extend(std::env::var_os("PATH").map(|p| ("PATH".into(), p))),
    }
    env
}

/// How [`Compute::stop`] reaches the attempt that owns a process.
#[derive(Default)]
struct RunControl {
    stop: tokio::sync::Notify,
    done: tokio::sync::watch::Sender<bool>,
    /// The process group the attempt's process leads while it runs (0: none), for
    /// [`kill_running`].
    group: std::sync::atomic::AtomicI32,
}

/// The pools of this process, for [`kill_running`] (weak: a pool nobody holds has no tasks).
static LIVE_POOLS: Mutex<Vec<std::sync::Weak<Pool>>> = Mutex::new(Vec::new());

/// Kills (SIGKILL) the process group of every task this process still runs: called when
/// `sluice` exits. A task is killed by the kernel when the thread that started it dies
/// (`PR_SET_PDEATHSIG`), but the processes it started are not: a `sh -c` whose child ignores
/// SIGTERM would leave that child running if sluice exited in the middle of stopping it.
pub fn kill_running() {
    let pools: Vec<Arc<Pool>> = LIVE_POOLS
        .lock()
        .map(|pools| pools.iter().filter_map(std::sync::Weak::upgrade).collect())
        .unwrap_or_default();
    for pool in pools {
        let Ok(running) = pool.running.lock() else {
            continue;
        };
        for control in running.values() {
            let group = control.group.load(Ordering::SeqCst);
            if group > 0 {
                // SAFETY: a group led by our child, which is not reaped yet (the group is
                // cleared as soon as the process has been waited for).
                unsafe { libc::kill(-group, libc::SIGKILL) };
            }
        }
    }
}

impl Pool {
    /// Makes `dir` exist, once per directory. Answers whether this pool made it: then every
    /// file in it was written by attempts this process launched.
    fn ensure_dir(&self, dir: &Path) -> std::io::Result<bool> {
        if let Some(made_here) = self
            .output_dirs
            .lock()
            .ok()
            .and_then(|d| d.get(dir).copied())
        {
            return Ok(made_here);
        }
        let made_here = match std::fs::create_dir(dir) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir)?;
                true
            }
            Err(e) => return Err(e),
        };
        if let Ok(mut dirs) = self.output_dirs.lock() {
            // Bounded: a long `sluice serve` makes some per job. Forgetting one only costs
            // lookups (a directory seen again counts as not made here).
            if dirs.len() > 1024 {
                dirs.clear();
            }
            dirs.insert(dir.to_path_buf(), made_here);
        }
        Ok(made_here)
    }

    fn stop_reason(&self, task_arn: &str) -> Option<String> {
        self.stopped.lock().ok()?.get(task_arn).cloned()
    }

    /// The program to run: a bare name is looked up beside `sluice` first, then on PATH; a
    /// relative path (`./merge.sh`, `scripts/merge.py`) resolves against the pipeline file's
    /// directory, not the directory sluice was started in.
    fn program(&self, name: &str, working_dir: Option<&Path>) -> Result<PathBuf, String> {
        if name.contains('/') {
            return Ok(match working_dir {
                Some(dir) if Path::new(name).is_relative() => dir.join(name),
                _ => PathBuf::from(name),
            });
        }
        if let Some(found) = self.programs.lock().ok().and_then(|p| p.get(name).cloned()) {
            return Ok(found);
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        let found = self
            .bin_dirs
            .iter()
            .cloned()
            .chain(std::env::split_paths(&path))
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
            .ok_or_else(|| format!("{name}: not found beside sluice or on PATH"))?;
        if let Ok(mut programs) = self.programs.lock() {
            programs.insert(name.to_string(), found.clone());
        }
        Ok(found)
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// What ended a process's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunEnd {
    /// It exited by itself.
    Exited,
    /// [`Compute::stop`] stopped it.
    Stopped,
    /// It ran past its timeout and the pool stopped it.
    TimedOut,
    /// Its simulated Spot instance was reclaimed.
    Reclaimed,
}

/// How a run ended, for the event.
struct Ended {
    exit_code: Option<i32>,
    stop_code: &'static str,
    stopped_reason: String,
    container_reason: Option<String>,
}

/// Runs one attempt in the slot it was given; the slot is given back as soon as the process
/// has ended, before its STOPPED event is made and sent (as an ECS instance's capacity frees
/// when the container stops, not when EventBridge has the event), so the next waiting attempt
/// starts meanwhile.
async fn run_attempt(
    run: Run,
    pool: Arc<Pool>,
    prepared: Result<Prepared, String>,
    slot: SlotGuard,
) {
    let Pool {
        events,
        interrupter,
        versions,
        ..
    } = &*pool;
    let started_at = now();
    // Registered before the stop check: a stop either finds the control or left its reason.
    let control = Arc::new(RunControl::default());
    if let Ok(mut running) = pool.running.lock() {
        running.insert(run.task_arn.clone(), control.clone());
    }
    let spawned = match pool.stop_reason(&run.task_arn) {
        // Stopped while it waited for a slot: it never starts.
        Some(reason) => Err(SpawnError::Stopped(reason)),
        None => prepared
            .and_then(|prepared| spawn(&run, prepared))
            .map_err(SpawnError::Failed),
    };
    // When the process ended, taken before its slot is given up: the STOPPED event is made
    // after the next attempt has started, and must not say the process ran until then.
    let mut stopped_at = None;
    let ended = match spawned {
        Err(SpawnError::Stopped(reason)) => Ended {
            exit_code: None,
            stop_code: "UserInitiated",
            stopped_reason: reason,
            container_reason: None,
        },
        Err(SpawnError::Failed(reason)) => Ended {
            exit_code: None,
            stop_code: "TaskFailedToStart",
            stopped_reason: format!("CannotStartContainerError: {reason}"),
            container_reason: Some(format!("CannotStartContainerError: {reason}")),
        },
        Ok((mut child, mut log)) => {
            control.group.store(child.id() as i32, Ordering::SeqCst);
            let instance = instance_of(&run.task_arn);
            if let (Some(i), Ok(mut instances)) = (&instance, pool.instances.lock()) {
                instances.insert(run.task_arn.clone(), i.clone());
            }
            events.publish(event(
                run.base.clone(),
                "RUNNING",
                None,
                &started_at,
                versions.fetch_add(1, Ordering::SeqCst) + 1,
            ));
            let began = Instant::now();
            let reclaim = interrupter.as_ref().and_then(|i| i.plan(&run.key));
            let reclaimed = async {
                match reclaim {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => std::future::pending().await,
                }
            };
            // The attempt's time runs from its start, not its launch (like AWS Batch's
            // attemptDurationSeconds): waiting for a slot does not use it up.
            let timeout = run.request.timeout_seconds.map(Duration::from_secs);
            let timed_out = async {
                match timeout {
                    Some(limit) => tokio::time::sleep(limit).await,
                    None => std::future::pending().await,
                }
            };
            let exited = tokio::sync::Notify::new();
            let run_to_end = async {
                let ended = tokio::select! {
                    s = child.wait() => (s, RunEnd::Exited),
                    _ = control.stop.notified() => {
                        (terminate(&mut child, STOP_GRACE, false).await, RunEnd::Stopped)
                    }
                    _ = timed_out => {
                        (terminate(&mut child, STOP_GRACE, false).await, RunEnd::TimedOut)
                    }
                    _ = reclaimed => {
                        // The warning is handled before the instance goes, as EC2's
                        // two-minute notice is on AWS; then SIGTERM, like ECS stopping the
                        // task. The task is held (SIGSTOP) meanwhile: its fate is sealed when
                        // the warning goes out, and a short run must not finish during the
                        // milliseconds the handling takes here (on AWS it would have two
                        // minutes left to run, not to finish).
                        child.signal_group(libc::SIGSTOP);
                        if let Some(i) = &instance {
                            events.deliver(spot_warning(i)).await;
                        }
                        (terminate(&mut child, RECLAIM_GRACE, true).await, RunEnd::Reclaimed)
                    }
                };
                exited.notify_one();
                ended
            };
            // The log is copied while the process runs (a full pipe would stall it), until
            // the pipe closes or the process has exited; then what the pipe still holds.
            let copy = async {
                tokio::select! {
                    copied = log.copy_until_closed() => copied,
                    _ = exited.notified() => Ok(()),
                }
            };
            let ((status, end), copied) = tokio::join!(run_to_end, copy);
            stopped_at = Some(now());
            control.group.store(0, Ordering::SeqCst);
            // The process is gone: its slot goes to the next attempt, which starts before this
            // one's bookkeeping (its log, its STOPPED event) is done. Taking turns on this
            // thread, the next start waited for all of it: a slot stood empty for a third of
            // a millisecond after each no-op task (docs/benchmarks/orchestration.md).
            drop(slot);
            tokio::task::yield_now().await;
            let path = log.path().to_path_buf();
            let stop_reason = pool.stop_reason(&run.task_arn);
            let succeeded = end == RunEnd::Exited
                && matches!(&status, Ok(s) if s.success())
                && stop_reason.is_none();
            if let Err(e) = copied.and_then(|()| log.finish(succeeded, &pool.succeeded_logs)) {
                tracing::warn!(
                    log = %path.display(), error = %e, "could not keep the task's output"
                );
            }
            if let Ok(mut instances) = pool.instances.lock() {
                instances.remove(&run.task_arn);
            }
            match status {
                Ok(status) if stop_reason.is_some() => Ended {
                    exit_code: exit_code(&status),
                    stop_code: "UserInitiated",
                    stopped_reason: stop_reason.unwrap_or_default(),
                    container_reason: None,
                },
                // What ECS reports for a standalone task on a reclaimed EC2 instance at worst:
                // an exit code, nothing about Spot (the warning told task-events).
                Ok(status) if end == RunEnd::Reclaimed => Ended {
                    exit_code: exit_code(&status),
                    stop_code: "EssentialContainerExited",
                    stopped_reason: "Essential container in task exited".into(),
                    container_reason: None,
                },
                // Batch's words for it, which task-events classifies as a timeout.
                Ok(status) if end == RunEnd::TimedOut => Ended {
                    exit_code: exit_code(&status),
                    stop_code: "UserInitiated",
                    stopped_reason: format!(
                        "{TIMEOUT_REASON}: ran longer than {} s",
                        timeout.unwrap_or_default().as_secs()
                    ),
                    container_reason: None,
                },
                Ok(status) => {
                    if let Some(i) = &interrupter {
                        i.record(began.elapsed());
                    }
                    Ended {
                        exit_code: exit_code(&status),
                        stop_code: "EssentialContainerExited",
                        stopped_reason: "Essential container in task exited".into(),
                        container_reason: None,
                    }
                }
                Err(e) => Ended {
                    exit_code: None,
                    stop_code: "EssentialContainerExited",
                    stopped_reason: format!("lost track of the process: {e}"),
                    container_reason: None,
                },
            }
        }
    };
    if let Ok(mut running) = pool.running.lock() {
        running.remove(&run.task_arn);
    }
    control.done.send_replace(true);
    let version = versions.fetch_add(1, Ordering::SeqCst) + 1;
    let stopped = event(
        run.base,
        "STOPPED",
        Some((&ended, stopped_at.as_deref())),
        &started_at,
        version,
    );
    events.publish(stopped);
    if let Ok(mut stopped) = pool.stopped.lock() {
        stopped.remove(&run.task_arn);
    }
}

enum SpawnError {
    Stopped(String),
    Failed(String),
}

/// What a process needs that can be made before it has a slot: its log's pipe, its program
/// and its environment. Made while the attempt waits, so that once a slot frees only the clone
/// and exec stand between one task's end and the next one's start.
struct Prepared {
    log: TaskLog,
    writer: std::io::PipeWriter,
    program: PathBuf,
    env: Environment,
}

fn prepare(run: &Run, pool: &Pool) -> Result<Prepared, String> {
    let log_path = pool
        .logs
        .join(run.key.job_id.as_str())
        .join(format!("{}-{}.log", run.key.task_id, run.key.number));
    let (log, writer) =
        TaskLog::open(log_path).map_err(|e| format!("a pipe for the task's log: {e}"))?;
    let working_dir = run.request.working_dir.as_deref().map(Path::new);
    let program = pool.program(&run.argv[0], working_dir)?;
    // sluice's own environment with the attempt's on top (the attempt's PATH, if it sets one,
    // wins over the pool's).
    let env = pool
        .base_env
        .with(&run.request.env)
        .map_err(|e| format!("the task's environment: {e}"))?;
    Ok(Prepared {
        log,
        writer,
        program,
        env,
    })
}

fn spawn(run: &Run, prepared: Prepared) -> Result<(TaskProcess, TaskLog), String> {
    let Prepared {
        mut log,
        writer,
        program,
        env,
    } = prepared;
    let child = TaskProcess::spawn(SpawnSpec {
        program: &program,
        argv: &run.argv,
        env: &env,
        working_dir: run.request.working_dir.as_deref().map(Path::new),
        output: writer.as_fd(),
    })
    .map_err(|e| format!("{}: {e}", run.argv[0]))?;
    log.started();
    // Only the process (and what it starts) holds the pipe now: it closes when they are done.
    drop(writer);
    Ok((child, log))
}

/// SIGTERM to the task's process group (then SIGCONT, if it was `held` with SIGSTOP, so that
/// it can act on the SIGTERM); SIGKILL after `grace`.
async fn terminate(
    child: &mut TaskProcess,
    grace: Duration,
    held: bool,
) -> std::io::Result<ExitStatus> {
    child.signal_group(libc::SIGTERM);
    if held {
        child.signal_group(libc::SIGCONT);
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            child.signal_group(libc::SIGKILL);
            child.wait().await
        }
    }
}

/// How long a reclaimed task gets between SIGTERM and SIGKILL (ECS's stop timeout is 30 s
/// by default; the Spot simulator keeps runs short).
const RECLAIM_GRACE: Duration = Duration::from_secs(5);

fn exit_code(status: &ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| 128 + s))
}

/// The `overrides` of a task's events: its command and environment, as RunTask was given them.
fn overrides(argv: &[String], env: &std::collections::BTreeMap<String, String>) -> Value {
    let string = |s: &String| Value::String(s.clone());
    let environment = env
        .iter()
        .map(|(k, v)| {
            let mut pair = serde_json::Map::with_capacity(2);
            pair.insert("name".into(), string(k));
            pair.insert("value".into(), string(v));
            Value::Object(pair)
        })
        .collect();
    let mut container = serde_json::Map::with_capacity(3);
    container.insert("name".into(), Value::String(CONTAINER_NAME.into()));
    container.insert(
        "command".into(),
        Value::Array(argv.iter().map(string).collect()),
    );
    container.insert("environment".into(), Value::Array(environment));
    let mut overrides = serde_json::Map::with_capacity(1);
    overrides.insert(
        "containerOverrides".into(),
        Value::Array(vec![Value::Object(container)]),
    );
    Value::Object(overrides)
}

/// What every ECS "Task State Change" event of an attempt says the same, made once per attempt:
/// each event is a copy with what changed put in, and the last one takes it whole. (Made per
/// event through `json!`, which runs every field through serde's serializer, the two events of
/// a no-op task were 7% of sluice's CPU; the copy of it for the STOPPED event, 2%.)
#[derive(Clone)]
struct EventBase {
    detail: serde_json::Map<String, Value>,
    container: serde_json::Map<String, Value>,
    task_arn: Value,
}

impl EventBase {
    fn new(request: &LaunchRequest, task_arn: &str, argv: &[String], created_at: &str) -> Self {
        let text = |s: &str| Value::String(s.to_string());
        let capacity_provider = match request.capacity {
            sluice_core::Capacity::Spot => "sluice-local-spot",
            sluice_core::Capacity::OnDemand => "sluice-local-on-demand",
        };
        let mut container = serde_json::Map::with_capacity(6);
        container.insert(
            "containerArn".into(),
            Value::String(format!(
                "{}/{CONTAINER_NAME}",
                task_arn.replace(":task/", ":container/")
            )),
        );
        container.insert("name".into(), text(CONTAINER_NAME));
        container.insert("taskArn".into(), text(task_arn));
        let mut detail = serde_json::Map::with_capacity(24);
        detail.insert("attachments".into(), Value::Array(Vec::new()));
        detail.insert("availabilityZone".into(), text("local"));
        detail.insert("capacityProviderName".into(), text(capacity_provider));
        detail.insert("clusterArn".into(), text(LOCAL_CLUSTER_ARN));
        detail.insert("createdAt".into(), text(created_at));
        detail.insert(
            "group".into(),
            Value::String(format!("sluice:{}", request.attempt.job_id)),
        );
        detail.insert("launchType".into(), text("EC2"));
        detail.insert("overrides".into(), overrides(argv, &request.env));
        detail.insert("startedBy".into(), text("sluice"));
        detail.insert("taskArn".into(), text(task_arn));
        detail.insert(
            "taskDefinitionArn".into(),
            text("arn:aws:ecs:local:000000000000:task-definition/sluice-worker:1"),
        );
        Self {
            detail,
            container,
            task_arn: text(task_arn),
        }
    }
}

/// An ECS Task State Change event of an attempt from its [`EventBase`] (a copy of it for any
/// event but the last); for its end, with when the process stopped (now if it never ran).
fn event(
    base: EventBase,
    last_status: &'static str,
    ended: Option<(&Ended, Option<&str>)>,
    started_at: &str,
    version: u64,
) -> Value {
    // One clock reading for the event's own times (its update, its delivery).
    let at = Value::String(now());
    let text = |s: &str| Value::String(s.to_string());
    let EventBase {
        mut detail,
        mut container,
        task_arn,
    } = base;
    container.insert("lastStatus".into(), text(last_status));
    let desired = if last_status == "STOPPED" {
        "STOPPED"
    } else {
        "RUNNING"
    };
    detail.insert("desiredStatus".into(), text(desired));
    detail.insert("lastStatus".into(), text(last_status));
    detail.insert("startedAt".into(), text(started_at));
    detail.insert("updatedAt".into(), at.clone());
    detail.insert("version".into(), Value::from(version));
    if let Some((ended, stopped_at)) = ended {
        let stopped_at = stopped_at.map(text).unwrap_or_else(|| at.clone());
        if let Some(code) = ended.exit_code {
            container.insert("exitCode".into(), Value::from(code));
        }
        if let Some(reason) = &ended.container_reason {
            container.insert("reason".into(), text(reason));
        }
        detail.insert("stopCode".into(), text(ended.stop_code));
        detail.insert("stoppedReason".into(), text(&ended.stopped_reason));
        detail.insert("stoppingAt".into(), stopped_at.clone());
        detail.insert("stoppedAt".into(), stopped_at.clone());
        detail.insert("executionStoppedAt".into(), stopped_at);
    }
    detail.insert(
        "containers".into(),
        Value::Array(vec![Value::Object(container)]),
    );
    let mut event = serde_json::Map::with_capacity(9);
    event.insert("version".into(), text("0"));
    event.insert("id".into(), Value::String(uuid::Uuid::new_v4().to_string()));
    event.insert("detail-type".into(), text(ECS_TASK_STATE_CHANGE));
    event.insert("source".into(), text("aws.ecs"));
    event.insert("account".into(), text("000000000000"));
    event.insert("time".into(), at);
    event.insert("region".into(), text("local"));
    event.insert("resources".into(), Value::Array(vec![task_arn]));
    event.insert("detail".into(), Value::Object(detail));
    Value::Object(event)
}

/// An "EC2 Spot Instance Interruption Warning" for a simulated instance, shaped as EventBridge
/// delivers it.
fn spot_warning(instance_id: &str) -> Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": EC2_SPOT_INTERRUPTION_WARNING,
        "source": "aws.ec2",
        "account": "000000000000",
        "time": now(),
        "region": "local",
        "resources": [format!("arn:aws:ec2:local:000000000000:instance/{instance_id}")],
        "detail": {"instance-id": instance_id, "instance-action": "terminate"},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::model::ObjectRef;
    use sluice_core::ports::Staged;
    use sluice_core::{Capacity, JobId, TaskId};

    fn key(task: &str, n: u32) -> AttemptKey {
        AttemptKey {
            job_id: JobId::new("j").unwrap(),
            task_id: TaskId::new(task).unwrap(),
            number: n,
        }
    }

    /// Task ARNs come in order (the job table's index of them grows at its end) and are
    /// ECS-shaped; each names its own simulated instance, even among tasks started in the
    /// same millisecond.
    #[test]
    fn task_arns_are_ordered_and_each_task_has_its_own_instance() {
        let arns: Vec<String> = (0..5000).map(|_| new_task_arn()).collect();
        assert!(arns.windows(2).all(|w| w[0] < w[1]), "not in order");
        let id = arns[0].strip_prefix(LOCAL_TASK_ARN_PREFIX).unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        let instances: std::collections::HashSet<String> =
            arns.iter().map(|a| instance_of(a).unwrap()).collect();
        assert_eq!(instances.len(), arns.len(), "two tasks on one instance");
        assert!(instances.iter().all(|i| i.len() == 2 + 17));
        assert_eq!(instance_of("arn:aws:ecs:us-east-1:1:task/c/abc"), None);
    }

    #[test]
    fn interruptions_are_deterministic_and_near_the_rate() {
        let a = SpotInterrupter::new(0.2, 7);
        let b = SpotInterrupter::new(0.2, 7);
        let hits: Vec<bool> = (0..2000)
            .map(|i| a.plan(&key(&format!("t-{i}"), 1)).is_some())
            .collect();
        let again: Vec<bool> = (0..2000)
            .map(|i| b.plan(&key(&format!("t-{i}"), 1)).is_some())
            .collect();
        assert_eq!(hits, again);
        let n = hits.iter().filter(|h| **h).count();
        assert!((320..480).contains(&n), "{n} of 2000 at rate 0.2");
        assert!(SpotInterrupter::new(0.0, 7).plan(&key("t-1", 1)).is_none());
    }

    /// Every event the pool publishes.
    #[derive(Default)]
    struct Published(Mutex<Vec<Value>>);

    impl EventSink for Published {
        fn publish(&self, event: Value) {
            self.0.lock().unwrap().push(event);
        }
    }

    impl Published {
        async fn stopped(&self, task_arn: &str) {
            for _ in 0..500 {
                let done = self.0.lock().unwrap().iter().any(|e| {
                    e["detail"]["taskArn"] == task_arn && e["detail"]["lastStatus"] == "STOPPED"
                });
                if done {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("{task_arn} did not stop");
        }
    }

    fn output_request(
        compute: &ProcessCompute,
        attempt: AttemptKey,
        script: &str,
    ) -> LaunchRequest {
        let object = ObjectRef::new(
            "data",
            format!("{}/out/{}.json", attempt.job_id, attempt.task_id),
        );
        let location = Location::File { object };
        let path = compute.path_for(&location).unwrap();
        LaunchRequest {
            attempt,
            capacity: Capacity::Spot,
            command: vec!["sh".into(), "-c".into(), script.into()],
            env: Default::default(),
            inputs: Vec::new(),
            output: Some(Staged { location, path }),
            working_dir: None,
            image: None,
            cpu: 1,
            memory_mib: 128,
            timeout_seconds: None,
            compute_id: None,
        }
    }

    /// A process pool of `slots` in `dir`, with the events it publishes.
    fn pool_in(dir: &Path, slots: u32) -> (ProcessCompute, Arc<Published>) {
        let events = Arc::new(Published::default());
        let compute = ProcessCompute::new(
            DirObjectStore::new(dir.join("buckets")),
            Slots::new(slots),
            events.clone(),
            dir,
            Vec::new(),
            None,
        );
        (compute, events)
    }

    fn attempt_of(job: &str, task: &str, number: u32) -> AttemptKey {
        AttemptKey {
            job_id: JobId::new(job).unwrap(),
            task_id: TaskId::new(task).unwrap(),
            number,
        }
    }

    /// Queued attempts start in the order they were launched, never more at once than there
    /// are slots, each under the name it was given ahead; the dispatcher goes with its
    /// compute.
    #[tokio::test]
    async fn queued_attempts_start_in_launch_order_within_the_slots() {
        let dir = tempfile::tempdir().unwrap();
        let (compute, events) = pool_in(dir.path(), 1);
        let order = dir.path().join("order");
        let busy = dir.path().join("busy");
        // Each attempt notes its start, and fails if another one is running.
        let script = format!(
            "[ -e {busy} ] && exit 9; touch {busy}; echo $N >> {order}; sleep 0.02; rm {busy}",
            busy = busy.display(),
            order = order.display()
        );
        let mut arns = Vec::new();
        for n in 1..=6 {
            let mut request =
                output_request(&compute, attempt_of("j", &format!("t-{n}"), 1), &script);
            request.env.insert("N".into(), n.to_string());
            request.compute_id = compute.compute_id_ahead(&request.attempt);
            let launched = compute.launch(&request).await.unwrap();
            assert_eq!(Some(&launched.compute_id), request.compute_id.as_ref());
            arns.push(launched.compute_id);
        }
        for arn in &arns {
            events.stopped(arn).await;
        }
        let started: Vec<String> = std::fs::read_to_string(&order)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(started, ["1", "2", "3", "4", "5", "6"]);
        let exits: Vec<Value> = events
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["detail"]["lastStatus"] == "STOPPED")
            .map(|e| e["detail"]["containers"][0]["exitCode"].clone())
            .collect();
        assert_eq!(exits, vec![json!(0); 6], "two attempts ran at once");

        let pool = compute.pool.clone();
        drop(compute);
        for _ in 0..500 {
            if Arc::strong_count(&pool) == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the dispatcher outlived its compute");
    }

    /// A file already at an attempt's output must not pass for what the attempt wrote: it is
    /// removed before the attempt starts, unless nothing can have put it there (the task's
    /// first attempt, in a directory this pool made).
    #[tokio::test]
    async fn a_file_at_the_output_before_the_attempt_is_removed_when_an_earlier_run_can_have_left_it()
     {
        let dir = tempfile::tempdir().unwrap();
        let (compute, events) = pool_in(dir.path(), 2);
        let run = |request: LaunchRequest| {
            let (compute, events) = (&compute, &events);
            async move {
                let output = PathBuf::from(&request.output.as_ref().unwrap().path);
                let launched = compute.launch(&request).await.unwrap();
                events.stopped(&launched.compute_id).await;
                output
            }
        };

        // A directory the pool did not make (a process that stopped mid-job made it): even a
        // first attempt's output may be there from before.
        let request = output_request(&compute, attempt_of("old", "t-1", 1), "exit 0");
        let left = PathBuf::from(&request.output.as_ref().unwrap().path);
        std::fs::create_dir_all(left.parent().unwrap()).unwrap();
        std::fs::write(&left, "left by a run before").unwrap();
        assert!(!run(request).await.exists());

        // A retry in a directory the pool made: the attempt before it wrote the file.
        let first = "printf one > \"$SLUICE_OUTPUT\"; exit 3";
        let mut request = output_request(&compute, attempt_of("new", "t-1", 1), first);
        request.env.insert(
            sluice_core::events::ENV_OUTPUT.into(),
            request.output.as_ref().unwrap().path.clone(),
        );
        let output = run(request).await;
        assert_eq!(std::fs::read_to_string(&output).unwrap(), "one");
        let retry = output_request(&compute, attempt_of("new", "t-1", 2), "exit 0");
        assert!(!run(retry).await.exists());

        // A first attempt there: nothing of the task can be at its output, so it is not even
        // looked up (a file put there behind the pool's back stays).
        let request = output_request(&compute, attempt_of("new", "t-2", 1), "exit 0");
        let planted = PathBuf::from(&request.output.as_ref().unwrap().path);
        std::fs::write(&planted, "planted").unwrap();
        assert!(run(request).await.exists());
    }
}
