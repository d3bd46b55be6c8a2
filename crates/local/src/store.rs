//! The SQLite job table: jobs, tasks, attempts, capacity leases and execution history.
//!
//! The same conditional-write discipline as the DynamoDB table on AWS: a state change is an
//! `UPDATE ... WHERE state IN (<allowed predecessors>)`, and for attempts also "no newer event
//! version applied", so duplicate and stale events cannot move a record backwards. WAL mode and
//! a busy timeout let `sluice status` read while a run writes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use sluice_core::model::Tallied;
use sluice_core::model::{
    Attempt, AttemptKey, AttemptState, AttemptUpdate, JobUpdate, Lease, ObjectRef, TokenAnswer,
};
use sluice_core::ports::{JobStore, TaskUpdate, TaskWithAttempts, Transition};
use sluice_core::{Capacity, Job, JobId, JobState, StoreError, Task, TaskId, TaskState, TaskTally};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak, mpsc};
use std::time::{Duration, Instant};

// The columns each row decoder reads, in the order it reads them by index: a lookup by name
// compares the name with every column's, for every value of every row.
macro_rules! job_columns {
    () => {
        "id, pipeline, input_bucket, input_key, state, reason, execution_arn, task_count, \
         results, redrive_count, created_at, updated_at"
    };
}
macro_rules! task_columns {
    () => {
        "job_id, task_id, stage, idx, params, state, attempts, spot_interruptions, result, \
         last_error, updated_at"
    };
}
macro_rules! attempt_columns {
    () => {
        "job_id, task_id, number, state, capacity, task_token, compute_id, exit_code, stop_code, \
         stopped_reason, event_version, started_at, stopped_at, reclaim_notice, answer, answered"
    };
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    input_bucket TEXT NOT NULL,
    input_key TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    execution_arn TEXT,
    task_count INTEGER NOT NULL DEFAULT 0,
    results TEXT NOT NULL DEFAULT '[]',
    redrive_count INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs(created_at);
CREATE TABLE IF NOT EXISTS tasks (
    job_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    spot_interruptions INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    last_error TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (job_id, task_id)
);
CREATE TABLE IF NOT EXISTS attempts (
    job_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    state TEXT NOT NULL,
    capacity TEXT NOT NULL,
    task_token TEXT NOT NULL,
    compute_id TEXT,
    exit_code INTEGER,
    stop_code TEXT,
    stopped_reason TEXT,
    event_version INTEGER,
    started_at TEXT NOT NULL,
    stopped_at TEXT,
    PRIMARY KEY (job_id, task_id, number)
);
CREATE INDEX IF NOT EXISTS attempts_by_compute_id ON attempts(compute_id);
CREATE TABLE IF NOT EXISTS leases (
    job_id TEXT PRIMARY KEY,
    slots INTEGER NOT NULL,
    acquired_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    execution_arn TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (execution_arn, event_id)
);
-- Durable executions (sluice-asl checkpoints, see journal.rs): enough to continue an
-- execution in another process.
CREATE TABLE IF NOT EXISTS executions (
    execution_arn TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    state_machine TEXT NOT NULL,
    input TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    cause TEXT,
    start_date TEXT NOT NULL,
    stop_date TEXT,
    redrive_count INTEGER NOT NULL DEFAULT 0,
    state TEXT,
    state_input TEXT
);
CREATE TABLE IF NOT EXISTS map_results (
    execution_arn TEXT NOT NULL,
    state TEXT NOT NULL,
    idx INTEGER NOT NULL,
    output TEXT NOT NULL,
    PRIMARY KEY (execution_arn, state, idx)
);
-- Jobs to cancel, asked for by `sluice cancel` from another process; the process that drives
-- the job takes the request.
CREATE TABLE IF NOT EXISTS cancel_requests (
    job_id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    requested_at TEXT NOT NULL
);
-- Files `sluice serve` ingested from its watched folder: (path, content) -> job.
CREATE TABLE IF NOT EXISTS ingested_files (
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    job_id TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    PRIMARY KEY (path, sha256)
);
"#;

/// Columns added after a table was first released: (table, column, definition). A job table
/// written by an older sluice gets them on open.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("jobs", "redrive_count", "INTEGER NOT NULL DEFAULT 0"),
    // Tasks recorded before stages belong to the pipeline's first stage ('').
    ("tasks", "stage", "TEXT NOT NULL DEFAULT ''"),
    // A Spot reclaim noted on a live attempt, the answer task-events gives its token (JSON)
    // and whether it was delivered (see sluice_core::model::Attempt).
    ("attempts", "reclaim_notice", "TEXT"),
    ("attempts", "answer", "TEXT"),
    ("attempts", "answered", "INTEGER NOT NULL DEFAULT 0"),
];

/// A job's tasks counted by stage and state, kept by triggers as tasks are recorded and move:
/// progress (five times a second while a job runs, and every poll of the console) reads a few
/// rows instead of counting a job's 100,000 tasks. Made after [`ADDED_COLUMNS`] (the triggers
/// name `tasks.stage`); a job table from before it is counted once when it is made.
const TASK_COUNTS: &str = r#"
CREATE TABLE IF NOT EXISTS task_counts (
    job_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    state TEXT NOT NULL,
    n INTEGER NOT NULL,
    -- attempts beyond each task's first
    retries INTEGER NOT NULL,
    PRIMARY KEY (job_id, stage, state)
);
CREATE TRIGGER IF NOT EXISTS task_counts_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO task_counts(job_id, stage, state, n, retries)
    VALUES (NEW.job_id, NEW.stage, NEW.state, 1, MAX(NEW.attempts - 1, 0))
    ON CONFLICT(job_id, stage, state) DO UPDATE SET n = n + 1, retries = retries + excluded.retries;
END;
CREATE TRIGGER IF NOT EXISTS task_counts_update AFTER UPDATE OF state, attempts, stage ON tasks BEGIN
    UPDATE task_counts SET n = n - 1, retries = retries - MAX(OLD.attempts - 1, 0)
    WHERE job_id = OLD.job_id AND stage = OLD.stage AND state = OLD.state;
    INSERT INTO task_counts(job_id, stage, state, n, retries)
    VALUES (NEW.job_id, NEW.stage, NEW.state, 1, MAX(NEW.attempts - 1, 0))
    ON CONFLICT(job_id, stage, state) DO UPDATE SET n = n + 1, retries = retries + excluded.retries;
END;
CREATE TRIGGER IF NOT EXISTS task_counts_delete AFTER DELETE ON tasks BEGIN
    UPDATE task_counts SET n = n - 1, retries = retries - MAX(OLD.attempts - 1, 0)
    WHERE job_id = OLD.job_id AND stage = OLD.stage AND state = OLD.state;
END;
"#;

/// A job's tasks counted by state (see [`SqliteJobStore::task_counts`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskCounts {
    pub by_state: std::collections::HashMap<TaskState, u32>,
    /// Attempts beyond each task's first, over all tasks.
    pub retries: u64,
}

impl TaskCounts {
    pub fn get(&self, state: TaskState) -> u32 {
        self.by_state.get(&state).copied().unwrap_or(0)
    }
    pub fn total(&self) -> u32 {
        self.by_state.values().sum()
    }
}

/// The job table in one SQLite file, served by a thread of its own.
///
/// The thread runs the requests sent to it, begins and commits the write transactions: async
/// handlers await the answer instead of blocking an executor thread on SQLite (or on a lock
/// held by the journal's batch commit, or by another process). While a write transaction is
/// open, a keyed request runs on the thread that makes it instead, if the connection is free
/// ([`SqliteJobStore::call_keyed`]): it then cannot wait for anything. Writes run in a write
/// transaction that stays open for more writes for up to [`COMMIT_WINDOW`] (committed sooner
/// once no request has come for [`COMMIT_IDLE`]), each in a savepoint of its own (a failing
/// request undoes only itself), and are answered as soon as they have run; reads run inside
/// that transaction when one is open, so they see every write answered before them. A commit
/// per request was the largest single cost of the job table (a third of its thread's time,
/// with four writes per task); now a busy pool keeps one open for up to twenty milliseconds.
/// (A 5 ms window with a 1 ms idle commit, before, committed whenever the pool went quiet for
/// a millisecond between tasks, each commit writing anew the pages its tasks touched: 49,000
/// page writes for 5,000 no-op tasks, 33,000 now.)
///
/// What this costs: a process killed mid-window loses the writes of the last few milliseconds,
/// as if it had been killed a few milliseconds earlier, which a redrive already handles (the
/// engine's journal has always been committed this way, see `crate::journal`). Other processes
/// see a write once it is committed. [`SqliteJobStore::flush`] commits at once; the runtime
/// flushes when an execution ends and `sluice` flushes every store before it exits
/// ([`flush_all`]). A commit that fails (disk full) stops the process: what it had answered
/// but not committed would otherwise be believed recorded.
#[derive(Clone)]
pub struct SqliteJobStore {
    requests: Arc<Queue>,
    session: Arc<Mutex<Session>>,
    timing: CommitTiming,
    commits: Arc<Commits>,
}

/// The commits of a store's write transactions: how many, and what runs before each.
#[derive(Default)]
struct Commits {
    count: AtomicU64,
    /// Run on the store's thread before every commit, and at every flush even with nothing to
    /// commit: what must be written out before the job table records what follows from it
    /// (the event log, see `crate::eventlog`).
    before: std::sync::RwLock<Vec<Box<dyn Fn() + Send + Sync>>>,
}

impl Commits {
    fn run_hooks(&self) {
        let hooks = self.before.read().unwrap_or_else(|e| e.into_inner());
        for hook in hooks.iter() {
            hook();
        }
    }
}

/// Most requests taken off the queue at once.
const MAX_BATCH: usize = 512;
/// Longest a write transaction stays open for more writes. Another process that wants the
/// write lock meanwhile (`sluice cancel`) gets it between two windows: it waited 3 to 43 ms
/// in bench/orchestration/lock_wait.py's tries (20 ms with a 20 ms idle commit: up to 106
/// ms); 50 ms windows left almost no gap for it.
pub const COMMIT_WINDOW: Duration = Duration::from_millis(20);
/// A write transaction is committed once no request has come for this long.
pub const COMMIT_IDLE: Duration = Duration::from_millis(5);

/// When the store's thread commits its open write transaction: [`COMMIT_WINDOW`] and
/// [`COMMIT_IDLE`], or (tests) longer, so that only a flush commits.
#[derive(Debug, Clone, Copy)]
struct CommitTiming {
    window: Duration,
    idle: Duration,
}

const COMMIT_TIMING: CommitTiming = CommitTiming {
    window: COMMIT_WINDOW,
    idle: COMMIT_IDLE,
};

/// Every store this process opened, for [`flush_all`] (weak: a store nobody holds is gone, and
/// its thread committed when its last handle was dropped).
static OPEN_STORES: Mutex<Vec<Weak<Queue>>> = Mutex::new(Vec::new());

/// Where a store's requests go to its thread.
type Queue = mpsc::Sender<Box<dyn Request>>;

/// Commits what every job table of this process has answered: called before `sluice` exits,
/// so nothing it printed as recorded is left uncommitted.
pub fn flush_all() {
    let stores: Vec<_> = OPEN_STORES
        .lock()
        .map(|mut all| {
            all.retain(|s| s.strong_count() > 0);
            all.iter().filter_map(Weak::upgrade).collect()
        })
        .unwrap_or_default();
    for queue in stores {
        if let Err(e) = flush_queue(&queue) {
            tracing::error!(error = %e, "could not commit the job table");
        }
    }
}

/// Sends a flush to a store's thread and waits until it has committed.
fn flush_queue(queue: &Queue) -> Result<(), StoreError> {
    let (tx, rx) = mpsc::sync_channel(1);
    let flush = Call {
        access: Access::Flush,
        f: Some(|_: &mut Connection| Ok(())),
        result: None,
        reply: Reply::Blocking(tx),
    };
    queue
        .send(Box::new(flush))
        .map_err(|_| backend("the job table's thread has stopped"))?;
    rx.recv()
        .map_err(|_| backend("the job table's thread has stopped"))?
}

/// How often a connection that finds the write lock taken tries again, and for how long in
/// all (about: each wait is at least [`LOCK_POLL`]).
const LOCK_POLL: Duration = Duration::from_micros(250);
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// The busy handler of every sluice connection. SQLite's own (`busy_timeout`) sleeps 1, 2, 5 …
/// up to 100 ms between tries; a store busy with a job holds the write lock for its commit
/// window and lets go for well under a millisecond between windows, so another process (a
/// `sluice cancel`, a second `sluice run` in the same work directory) waited up to seconds
/// for its turn. Trying every quarter millisecond, it waits tens of milliseconds
/// (bench/orchestration/lock_wait.py).
fn wait_for_the_write_lock(tries: i32) -> bool {
    if LOCK_POLL * tries.max(0) as u32 >= LOCK_WAIT {
        return false;
    }
    std::thread::sleep(LOCK_POLL);
    true
}

/// What a request does with the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Only reads: inside the open write transaction if there is one, else on its own.
    Read,
    /// Writes: in the open write transaction (one is begun if none is open).
    Write,
    /// Commits the open write transaction, then is answered.
    Flush,
}

/// A request to the store's thread: run on its connection, then answered.
trait Request: Send {
    fn access(&self) -> Access;
    /// Runs the request; with `savepoint`, inside a savepoint of its own that a failure
    /// rolls back.
    fn run(&mut self, c: &mut Connection, savepoint: bool);
    /// Answers with what the run returned, or with `failed` when it could not run.
    fn answer(self: Box<Self>, failed: Result<(), String>);
}

enum Reply<T> {
    Blocking(mpsc::SyncSender<Result<T, StoreError>>),
    Async(tokio::sync::oneshot::Sender<Result<T, StoreError>>),
}

struct Call<T, F> {
    access: Access,
    f: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: Reply<T>,
}

impl<T, F> Request for Call<T, F>
where
    T: Send,
    F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send,
{
    fn access(&self) -> Access {
        self.access
    }

    fn run(&mut self, c: &mut Connection, savepoint: bool) {
        if let Some(f) = self.f.take() {
            self.result = Some(run_request(c, savepoint, f));
        }
    }

    fn answer(self: Box<Self>, failed: Result<(), String>) {
        let result = match failed {
            Ok(()) => self
                .result
                .unwrap_or_else(|| Err(backend("the request was not run"))),
            Err(e) => Err(backend(e)),
        };
        match self.reply {
            Reply::Blocking(tx) => {
                let _ = tx.send(result);
            }
            Reply::Async(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

/// Runs a request's `f` on the connection; with `savepoint`, inside a savepoint of its own
/// that a failure (or a panic) rolls back, so that it undoes only itself in the open write
/// transaction.
fn run_request<T>(
    c: &mut Connection,
    savepoint: bool,
    f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    if savepoint {
        c.exec_cached("SAVEPOINT request", []).map_err(backend)?;
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(c)))
        .unwrap_or_else(|_| Err(backend("a job table request panicked")));
    if !savepoint {
        return result;
    }
    let end = if result.is_ok() {
        c.exec_cached("RELEASE request", [])
    } else {
        c.exec_cached("ROLLBACK TO request", [])
            .and_then(|_| c.exec_cached("RELEASE request", []))
    };
    match end {
        Ok(_) => result,
        Err(e) => Err(backend(e)),
    }
}

/// The connection and its write transaction, shared by the store's thread and the callers
/// that run a keyed request themselves ([`SqliteJobStore::call_keyed`]).
struct Session {
    conn: Connection,
    /// When the open write transaction began; `None` while none is open.
    open: Option<Instant>,
    /// When the last request ran, wherever it ran: the idle commit counts from it.
    last: Instant,
}

impl Session {
    /// When the open write transaction is to be committed: at the window's end, or once no
    /// request has run for the idle time. `None`: none is open (or, in tests, never).
    fn due(&self, timing: CommitTiming) -> Option<Instant> {
        let began = self.open?;
        let window = began.checked_add(timing.window)?;
        Some(match self.last.checked_add(timing.idle) {
            Some(idle) => window.min(idle),
            None => window,
        })
    }
}

fn lock_session(session: &Mutex<Session>) -> std::sync::MutexGuard<'_, Session> {
    session.lock().unwrap_or_else(|e| e.into_inner())
}

/// The store's thread: runs the queued requests in the order they came, writes in a
/// transaction kept open for more writes, and commits it when due (see [`SqliteJobStore`]).
fn serve(
    session: Arc<Mutex<Session>>,
    requests: mpsc::Receiver<Box<dyn Request>>,
    commits: Arc<Commits>,
    timing: CommitTiming,
) {
    loop {
        let due = lock_session(&session).due(timing);
        let first = match due {
            None => match requests.recv() {
                Ok(r) => r,
                Err(_) => {
                    // Every handle is gone: nothing can come, keep what was answered.
                    let mut s = lock_session(&session);
                    if s.open.take().is_some() {
                        commit(&s.conn, &commits);
                    }
                    return;
                }
            },
            Some(due) => match requests.recv_timeout(due.saturating_duration_since(Instant::now()))
            {
                Ok(r) => r,
                Err(timeout_or_gone) => {
                    let gone = timeout_or_gone == mpsc::RecvTimeoutError::Disconnected;
                    let mut s = lock_session(&session);
                    // Callers may have run requests meanwhile: then it is not due yet.
                    if s.due(timing)
                        .is_some_and(|due| gone || due <= Instant::now())
                    {
                        commit(&s.conn, &commits);
                        s.open = None;
                    }
                    if gone {
                        return;
                    }
                    continue;
                }
            },
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        // Answered once the connection is free again: an answered caller's next keyed
        // request can then run where it is made.
        let mut ran = Vec::with_capacity(batch.len());
        {
            let mut s = lock_session(&session);
            for mut request in batch {
                let Session { conn, open, .. } = &mut *s;
                let outcome = match request.access() {
                    Access::Read => {
                        request.run(conn, false);
                        Ok(())
                    }
                    Access::Write => {
                        // IMMEDIATE: the write lock from the start, so a request that reads
                        // before it writes cannot find its snapshot outdated by another
                        // process's commit when it comes to write.
                        let began = match open {
                            Some(_) => Ok(()),
                            None => conn.exec_cached("BEGIN IMMEDIATE", []).map(|_| {
                                *open = Some(Instant::now());
                            }),
                        };
                        match began {
                            Ok(()) => {
                                request.run(conn, true);
                                Ok(())
                            }
                            Err(e) => Err(format!("sqlite: {e}")),
                        }
                    }
                    Access::Flush => {
                        if open.take().is_some() {
                            commit(conn, &commits);
                        } else {
                            commits.run_hooks();
                        }
                        request.run(conn, false);
                        Ok(())
                    }
                };
                ran.push((request, outcome));
                s.last = Instant::now();
            }
            if s.open.is_some_and(|began| began.elapsed() >= timing.window) {
                commit(&s.conn, &commits);
                s.open = None;
            }
        }
        for (request, outcome) in ran {
            request.answer(outcome);
        }
    }
}

/// Commits the open write transaction. Its writes have been answered: if they cannot be kept,
/// the process stops, as a crash would, and a redrive redoes what they recorded.
fn commit(conn: &Connection, commits: &Commits) {
    commits.run_hooks();
    match conn.exec_cached("COMMIT", []) {
        Ok(_) => {
            commits.count.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            eprintln!(
                "error: the job table could not commit ({e}); sluice stops here. What it did \
                 since its last commit is redone by `sluice redrive`."
            );
            std::process::exit(3);
        }
    }
}

pub(crate) fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("sqlite: {e}"))
}

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: what.to_string(),
        message: e.to_string(),
    }
}

pub(crate) fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt("timestamp", e))
}

/// Statements compiled once per connection and kept (`prepare_cached`): compiling the SQL of
/// every statement anew was a tenth of sluice's cost per task.
pub(crate) trait Cached {
    fn exec_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// Distinct statements a connection keeps compiled (the store has about forty).
const STATEMENT_CACHE: usize = 128;

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(",")
}

impl SqliteJobStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(backend)?;
        Self::init(conn, COMMIT_TIMING)
    }

    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(
            Connection::open_in_memory().map_err(backend)?,
            COMMIT_TIMING,
        )
    }

    fn init(conn: Connection, timing: CommitTiming) -> Result<Self, StoreError> {
        conn.busy_handler(Some(wait_for_the_write_lock))
            .map_err(backend)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        for (table, column, definition) in ADDED_COLUMNS {
            let present: bool = conn
                .row_cached(
                    &format!("SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = ?1"),
                    params![column],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(backend)?
                > 0;
            if !present {
                conn.execute_batch(&format!(
                    "ALTER TABLE {table} ADD COLUMN {column} {definition}"
                ))
                .map_err(backend)?;
            }
        }
        // Made and, for an older job table, counted in one write transaction: two processes
        // opening the same table at once cannot both count it.
        conn.execute_batch("BEGIN IMMEDIATE").map_err(backend)?;
        let made = (|| {
            let fresh = conn
                .row_cached(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'task_counts'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(backend)?
                == 0;
            conn.execute_batch(TASK_COUNTS).map_err(backend)?;
            if fresh {
                conn.execute_batch(
                    "INSERT INTO task_counts(job_id, stage, state, n, retries)
                     SELECT job_id, stage, state, COUNT(*), SUM(MAX(attempts - 1, 0)) FROM tasks
                     GROUP BY job_id, stage, state",
                )
                .map_err(backend)?;
            }
            Ok::<_, StoreError>(())
        })();
        match made {
            Ok(()) => conn.execute_batch("COMMIT").map_err(backend)?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        let (requests, queue) = mpsc::channel::<Box<dyn Request>>();
        let commits = Arc::new(Commits::default());
        let counted = commits.clone();
        let session = Arc::new(Mutex::new(Session {
            conn,
            open: None,
            last: Instant::now(),
        }));
        let served = session.clone();
        std::thread::Builder::new()
            .name("sluice-store".into())
            .spawn(move || serve(served, queue, counted, timing))
            .map_err(backend)?;
        let requests = Arc::new(requests);
        if let Ok(mut all) = OPEN_STORES.lock() {
            all.retain(|s| s.strong_count() > 0);
            all.push(Arc::downgrade(&requests));
        }
        Ok(Self {
            requests,
            session,
            timing,
            commits,
        })
    }

    /// Commits every write answered so far (and waits for the commit): what another process
    /// reads from the job table from now on includes them.
    pub fn flush(&self) -> Result<(), StoreError> {
        flush_queue(&self.requests)
    }

    /// [`SqliteJobStore::flush`] for async code.
    pub async fn flushed(&self) -> Result<(), StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Access::Flush, |_| Ok(()), Reply::Async(tx))?;
        rx.await
            .map_err(|_| backend("the job table's thread has stopped"))?
    }

    /// Transactions this store has committed (each holding one or more requests).
    pub fn commits(&self) -> u64 {
        self.commits.count.load(Ordering::Relaxed)
    }

    /// Runs `hook` on the store's thread before each commit of this job table (and at each
    /// flush): for what must be written before the table records what follows from it.
    pub fn before_commit(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.commits
            .before
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(hook));
    }

    fn send<T, F>(&self, access: Access, f: F, reply: Reply<T>) -> Result<(), StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let call = Call {
            access,
            f: Some(f),
            result: None,
            reply,
        };
        self.requests
            .send(Box::new(call))
            .map_err(|_| backend("the job table's thread has stopped"))
    }

    /// Runs `f` on the store's thread, in the open write transaction, and waits for its answer
    /// (for threads that may block: the CLI, the journal's writer).
    pub(crate) fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Access::Write, f, Reply::Blocking(tx))?;
        rx.recv()
            .map_err(|_| backend("the job table's thread has stopped"))?
    }

    /// [`SqliteJobStore::with`] for a request that only reads: it begins no write transaction
    /// (no write lock, nothing to commit) and sees every write answered before it.
    pub(crate) fn read_with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(
            Access::Read,
            move |c: &mut Connection| f(c),
            Reply::Blocking(tx),
        )?;
        rx.recv()
            .map_err(|_| backend("the job table's thread has stopped"))?
    }

    /// [`SqliteJobStore::with`] for async code: awaits the answer without blocking.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Access::Write, f, Reply::Async(tx))?;
        rx.await
            .map_err(|_| backend("the job table's thread has stopped"))?
    }

    /// [`SqliteJobStore::read_with`] for async code.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(
            Access::Read,
            move |c: &mut Connection| f(c),
            Reply::Async(tx),
        )?;
        rx.await
            .map_err(|_| backend("the job table's thread has stopped"))?
    }

    /// Runs `f` here, on the calling thread, if the connection is free and a write
    /// transaction is open within its window; gives `f` back otherwise, for the store's
    /// thread. Only a write transaction already open is joined: beginning one may wait for
    /// another process's write lock, which must not block an async worker.
    fn run_here<T, F>(&self, access: Access, f: F) -> Result<Result<T, StoreError>, F>
    where
        F: FnOnce(&mut Connection) -> Result<T, StoreError>,
    {
        let mut session = match self.session.try_lock() {
            Ok(s) => s,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Err(f),
        };
        match session.open {
            Some(began) if began.elapsed() < self.timing.window => {}
            _ => return Err(f),
        }
        let result = run_request(&mut session.conn, access == Access::Write, f);
        session.last = Instant::now();
        Ok(result)
    }

    /// [`SqliteJobStore::call`] for a keyed request (a job, a task, an attempt: a few rows
    /// found by their key). While the store is busy with a job, its write transaction is
    /// open, and the request runs on the caller's thread, in that transaction, instead of
    /// waking the store's thread and then the caller with the answer: those two hand-offs
    /// per request were a tenth of sluice's CPU on a no-op job. Answered and committed
    /// exactly as on the store's thread. Work that may take long (a job's tasks, a batch)
    /// goes to the thread with [`SqliteJobStore::call`].
    pub(crate) async fn call_keyed<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        match self.run_here(Access::Write, f) {
            Ok(result) => result,
            Err(f) => self.call(f).await,
        }
    }

    /// [`SqliteJobStore::read`] for a keyed request, run as [`SqliteJobStore::call_keyed`].
    pub(crate) async fn read_keyed<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        match self.run_here(Access::Read, move |c: &mut Connection| f(c)) {
            Ok(result) => result,
            Err(f) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                self.send(Access::Read, f, Reply::Async(tx))?;
                rx.await
                    .map_err(|_| backend("the job table's thread has stopped"))?
            }
        }
    }

    // ---- leases (used by the local capacity pool) ----

    pub fn put_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let lease = lease.clone();
        self.with(move |c| {
            c.exec_cached(
                "INSERT INTO leases(job_id, slots, acquired_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(job_id) DO UPDATE SET slots = excluded.slots,
                 acquired_at = excluded.acquired_at",
                params![lease.job_id.as_str(), lease.slots, ts(&lease.acquired_at)],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    /// Deletes the job's lease; with `acquired_by`, only if it was last acquired by then
    /// (timestamps are fixed-width text, so they compare as they sort).
    pub fn delete_lease(
        &self,
        job: &JobId,
        acquired_by: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let job = job.clone();
        self.with(move |c| {
            c.exec_cached(
                "DELETE FROM leases WHERE job_id = ?1 AND (?2 IS NULL OR acquired_at <= ?2)",
                params![job.as_str(), acquired_by.as_ref().map(ts)],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    /// (sum of slots, number of leases).
    pub fn lease_totals(&self) -> Result<(u64, u32), StoreError> {
        self.read_with(move |c| {
            c.row_cached(
                "SELECT COALESCE(SUM(slots), 0), COUNT(*) FROM leases",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u32)),
            )
            .map_err(backend)
        })
    }

    // ---- cancel requests (`sluice cancel` from another process) ----

    /// Asks the process driving `job` to cancel it (it polls for requests).
    pub fn request_cancel(&self, job: &JobId, reason: &str) -> Result<(), StoreError> {
        let (job, reason) = (job.clone(), reason.to_string());
        self.with(move |c| {
            c.exec_cached(
                "INSERT OR REPLACE INTO cancel_requests(job_id, reason, requested_at) VALUES (?1, ?2, ?3)",
                params![job.as_str(), reason, ts(&Utc::now())],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    /// Takes (removes and returns) the cancel requests for jobs among `jobs`.
    pub fn take_cancel_requests(
        &self,
        jobs: &[String],
    ) -> Result<Vec<(JobId, String)>, StoreError> {
        let jobs = jobs.to_vec();
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        self.with(move |c| {
            let tx = c.savepoint().map_err(backend)?;
            let sql = format!(
                "SELECT job_id, reason FROM cancel_requests WHERE job_id IN ({})",
                placeholders(jobs.len())
            );
            let found: Vec<(String, String)> = {
                let mut stmt = tx.prepare_cached(&sql).map_err(backend)?;
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(jobs.iter()), |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .map_err(backend)?;
                rows.collect::<Result<_, _>>().map_err(backend)?
            };
            for (id, _) in &found {
                tx.exec_cached("DELETE FROM cancel_requests WHERE job_id = ?1", params![id])
                    .map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
            found
                .into_iter()
                .map(|(id, reason)| {
                    JobId::new(id)
                        .map(|j| (j, reason))
                        .map_err(|e| corrupt("job id", e))
                })
                .collect()
        })
    }

    // ---- files `sluice serve` ingested ----

    /// The job a watched file with this path and content already became, if any.
    pub fn ingested_file(&self, path: &str, sha256: &str) -> Result<Option<String>, StoreError> {
        let (path, sha256) = (path.to_string(), sha256.to_string());
        self.read_with(move |c| {
            c.row_cached(
                "SELECT job_id FROM ingested_files WHERE path = ?1 AND sha256 = ?2",
                params![path, sha256],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
        })
    }

    pub fn record_ingested_file(
        &self,
        path: &str,
        sha256: &str,
        job: &str,
    ) -> Result<(), StoreError> {
        let (path, sha256, job) = (path.to_string(), sha256.to_string(), job.to_string());
        self.with(move |c| {
            c.exec_cached(
                "INSERT OR IGNORE INTO ingested_files(path, sha256, job_id, ingested_at) VALUES (?1, ?2, ?3, ?4)",
                params![path, sha256, job, ts(&Utc::now())],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    /// A job's tasks counted by state, and their retries in all, from the counts the triggers
    /// keep ([`TASK_COUNTS`]): a few rows, however many tasks (progress is asked for several
    /// times a second).
    pub fn task_counts(&self, job: &JobId) -> Result<TaskCounts, StoreError> {
        let job = job.clone();
        self.read_with(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT state, SUM(n), SUM(retries) FROM task_counts WHERE job_id = ?1 GROUP BY state HAVING SUM(n) > 0",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![job.as_str()], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                })
                .map_err(backend)?;
            let mut counts = TaskCounts::default();
            for row in rows {
                let (state, n, retries) = row.map_err(backend)?;
                let state =
                    TaskState::parse(&state).ok_or_else(|| corrupt("task state", &state))?;
                counts.by_state.insert(state, n as u32);
                counts.retries += retries as u64;
            }
            Ok(counts)
        })
    }

    /// Jobs whose state is one of `states`, oldest first.
    pub fn jobs_in(&self, states: &[JobState]) -> Result<Vec<Job>, StoreError> {
        let states = states.to_vec();
        if states.is_empty() {
            return Ok(Vec::new());
        }
        self.read_with(move |c| {
            let sql = format!(
                concat!(
                    "SELECT ",
                    job_columns!(),
                    " FROM jobs WHERE state IN ({}) ORDER BY created_at, id"
                ),
                placeholders(states.len())
            );
            let mut stmt = c.prepare_cached(&sql).map_err(backend)?;
            let names: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
            let rows = stmt
                .query_map(rusqlite::params_from_iter(names.iter()), |r| Ok(job_row(r)))
                .map_err(backend)?;
            rows.map(|r| r.map_err(backend)?).collect()
        })
    }

    /// [`SqliteJobStore::task_counts`] for each stage of a job (tasks recorded before stages
    /// are under stage ''): one aggregate query, for views that show stages side by side.
    pub fn task_counts_by_stage(
        &self,
        job: &JobId,
    ) -> Result<std::collections::BTreeMap<String, TaskCounts>, StoreError> {
        let job = job.clone();
        self.read_with(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT stage, state, n, retries FROM task_counts WHERE job_id = ?1 AND n > 0",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![job.as_str()], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })
                .map_err(backend)?;
            let mut out: std::collections::BTreeMap<String, TaskCounts> = Default::default();
            for row in rows {
                let (stage, state, n, retries) = row.map_err(backend)?;
                let state =
                    TaskState::parse(&state).ok_or_else(|| corrupt("task state", &state))?;
                let counts = out.entry(stage).or_default();
                counts.by_state.insert(state, n as u32);
                counts.retries += retries as u64;
            }
            Ok(out)
        })
    }

    /// A page of a job's tasks in index order (only those in `state`, if given), and how
    /// many there are in all: a large job's table is read a page at a time.
    pub fn tasks_page(
        &self,
        job: &JobId,
        state: Option<TaskState>,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Task>, usize), StoreError> {
        let job = job.clone();
        self.read_with(move |c| {
            let state = state.map(|s| s.as_str());
            let total: i64 = c
                .row_cached(
                    "SELECT COUNT(*) FROM tasks WHERE job_id = ?1 AND (?2 IS NULL OR state = ?2)",
                    params![job.as_str(), state],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            let mut stmt = c
                .prepare_cached(
                    concat!("SELECT ", task_columns!(), " FROM tasks WHERE job_id = ?1 AND (?2 IS NULL OR state = ?2) ORDER BY idx, task_id LIMIT ?3 OFFSET ?4"),
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![job.as_str(), state, limit as i64, offset as i64],
                    |r| Ok(task_row(r)),
                )
                .map_err(backend)?;
            let tasks = rows.map(|r| r.map_err(backend)?).collect::<Result<_, _>>()?;
            Ok((tasks, total as usize))
        })
    }

    /// The attempts of some of a job's tasks, by task and attempt number.
    pub fn attempts_of(&self, job: &JobId, tasks: &[&str]) -> Result<Vec<Attempt>, StoreError> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let job = job.clone();
        let tasks: Vec<String> = tasks.iter().map(|t| t.to_string()).collect();
        self.read_with(move |c| {
            let mut out = Vec::new();
            // In batches: SQLite limits the parameters of one statement.
            for batch in tasks.chunks(500) {
                let sql = format!(
                    concat!("SELECT ", attempt_columns!(), " FROM attempts WHERE job_id = ? AND task_id IN ({}) ORDER BY task_id, number"),
                    placeholders(batch.len())
                );
                let mut stmt = c.prepare_cached(&sql).map_err(backend)?;
                let values = std::iter::once(job.as_str()).chain(batch.iter().map(String::as_str));
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(values), |r| Ok(attempt_row(r)))
                    .map_err(backend)?;
                for r in rows {
                    out.push(r.map_err(backend)??);
                }
            }
            Ok(out)
        })
    }

    // ---- execution history (from the engine's history sink) ----

    pub fn append_history(
        &self,
        execution_arn: &str,
        event_id: u64,
        event: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let (execution_arn, event) = (execution_arn.to_string(), event.to_string());
        self.with(move |c| {
            c.exec_cached(
                "INSERT OR REPLACE INTO history(execution_arn, event_id, event) VALUES (?1, ?2, ?3)",
                params![execution_arn, event_id as i64, event],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    pub fn history(&self, execution_arn: &str) -> Result<Vec<serde_json::Value>, StoreError> {
        let execution_arn = execution_arn.to_string();
        self.read_with(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT event FROM history WHERE execution_arn = ?1 ORDER BY event_id",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![execution_arn], |r| r.get::<_, String>(0))
                .map_err(backend)?;
            rows.map(|r| {
                let text = r.map_err(backend)?;
                serde_json::from_str(&text).map_err(|e| corrupt("history event", e))
            })
            .collect()
        })
    }

    /// A task and its attempts in attempt order, on the store's connection.
    fn read_task_with_attempts(
        c: &Connection,
        job: &JobId,
        task: &TaskId,
    ) -> Result<Option<TaskWithAttempts>, StoreError> {
        let Some(found) = Self::read_task(c, job.as_str(), task.as_str())? else {
            return Ok(None);
        };
        Ok(Some((found, read_attempts(c, job, task)?)))
    }

    fn read_job(c: &Connection, id: &str) -> Result<Option<Job>, StoreError> {
        c.row_cached(
            concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = ?1"),
            params![id],
            |r| Ok(job_row(r)),
        )
        .optional()
        .map_err(backend)?
        .transpose()
    }

    fn read_task(c: &Connection, job: &str, task: &str) -> Result<Option<Task>, StoreError> {
        c.row_cached(
            concat!(
                "SELECT ",
                task_columns!(),
                " FROM tasks WHERE job_id = ?1 AND task_id = ?2"
            ),
            params![job, task],
            |r| Ok(task_row(r)),
        )
        .optional()
        .map_err(backend)?
        .transpose()
    }

    fn read_attempt(c: &Connection, key: &AttemptKey) -> Result<Option<Attempt>, StoreError> {
        c.row_cached(
            concat!(
                "SELECT ",
                attempt_columns!(),
                " FROM attempts WHERE job_id = ?1 AND task_id = ?2 AND number = ?3"
            ),
            params![key.job_id.as_str(), key.task_id.as_str(), key.number],
            |r| Ok(attempt_row(r)),
        )
        .optional()
        .map_err(backend)?
        .transpose()
    }
}

/// Column `i` of a row, named `name` in an error (the columns are those of the decoder's
/// `*_columns!` list, by position).
fn col<T: rusqlite::types::FromSql>(r: &Row, i: usize, name: &str) -> Result<T, StoreError> {
    r.get(i).map_err(|e| corrupt(name, e))
}

fn job_row(r: &Row) -> Result<Job, StoreError> {
    let state: String = col(r, 4, "state")?;
    let results: String = col(r, 8, "results")?;
    Ok(Job {
        id: JobId::new(col::<String>(r, 0, "id")?).map_err(|e| corrupt("job id", e))?,
        pipeline: col(r, 1, "pipeline")?,
        input: ObjectRef::new(
            col::<String>(r, 2, "input_bucket")?,
            col::<String>(r, 3, "input_key")?,
        ),
        state: JobState::parse(&state).ok_or_else(|| corrupt("job state", &state))?,
        reason: col(r, 5, "reason")?,
        execution_arn: col(r, 6, "execution_arn")?,
        task_count: col::<i64>(r, 7, "task_count")? as u32,
        results: serde_json::from_str(&results).map_err(|e| corrupt("job results", e))?,
        redrive_count: col::<i64>(r, 9, "redrive_count")? as u32,
        created_at: parse_ts(&col::<String>(r, 10, "created_at")?)?,
        updated_at: parse_ts(&col::<String>(r, 11, "updated_at")?)?,
    })
}

fn task_row(r: &Row) -> Result<Task, StoreError> {
    let state: String = col(r, 5, "state")?;
    let params: String = col(r, 4, "params")?;
    let result: Option<String> = col(r, 8, "result")?;
    Ok(Task {
        job_id: JobId::new(col::<String>(r, 0, "job_id")?).map_err(|e| corrupt("job id", e))?,
        id: TaskId::new(col::<String>(r, 1, "task_id")?).map_err(|e| corrupt("task id", e))?,
        stage: col(r, 2, "stage")?,
        index: col::<i64>(r, 3, "idx")? as u32,
        params: serde_json::from_str(&params).map_err(|e| corrupt("task params", e))?,
        state: TaskState::parse(&state).ok_or_else(|| corrupt("task state", &state))?,
        attempts: col::<i64>(r, 6, "attempts")? as u32,
        spot_interruptions: col::<i64>(r, 7, "spot_interruptions")? as u32,
        result: result
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(|e| corrupt("task result", e))?,
        last_error: col(r, 9, "last_error")?,
        updated_at: parse_ts(&col::<String>(r, 10, "updated_at")?)?,
    })
}

fn attempt_row(r: &Row) -> Result<Attempt, StoreError> {
    let state: String = col(r, 3, "state")?;
    let capacity: String = col(r, 4, "capacity")?;
    let stopped_at: Option<String> = col(r, 12, "stopped_at")?;
    Ok(Attempt {
        key: AttemptKey {
            job_id: JobId::new(col::<String>(r, 0, "job_id")?).map_err(|e| corrupt("job id", e))?,
            task_id: TaskId::new(col::<String>(r, 1, "task_id")?)
                .map_err(|e| corrupt("task id", e))?,
            number: col::<i64>(r, 2, "number")? as u32,
        },
        state: AttemptState::parse(&state).ok_or_else(|| corrupt("attempt state", &state))?,
        capacity: Capacity::parse(&capacity).ok_or_else(|| corrupt("capacity", &capacity))?,
        task_token: col(r, 5, "task_token")?,
        compute_id: col(r, 6, "compute_id")?,
        exit_code: col(r, 7, "exit_code")?,
        stop_code: col(r, 8, "stop_code")?,
        stopped_reason: col(r, 9, "stopped_reason")?,
        event_version: col::<Option<i64>>(r, 10, "event_version")?.map(|v| v as u64),
        started_at: parse_ts(&col::<String>(r, 11, "started_at")?)?,
        stopped_at: stopped_at.as_deref().map(parse_ts).transpose()?,
        reclaim_notice: col(r, 13, "reclaim_notice")?,
        answer: col::<Option<String>>(r, 14, "answer")?
            .map(|a| serde_json::from_str(&a).map_err(|e| corrupt("attempt answer", e)))
            .transpose()?,
        answered: col::<i64>(r, 15, "answered")? != 0,
    })
}

#[async_trait]
impl JobStore for SqliteJobStore {
    async fn create_job(&self, job: &Job) -> Result<bool, StoreError> {
        let job = job.clone();
        self.call_keyed(move |c| {
            let n = c
                .exec_cached(
                    "INSERT OR IGNORE INTO jobs(id, pipeline, input_bucket, input_key, state, reason, execution_arn, task_count, results, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![
                        job.id.as_str(), job.pipeline, job.input.bucket, job.input.key, job.state.as_str(),
                        job.reason, job.execution_arn, job.task_count,
                        serde_json::to_string(&job.results).map_err(backend)?,
                        ts(&job.created_at), ts(&job.updated_at)
                    ],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        let id = id.clone();
        self.read_keyed(move |c| Self::read_job(c, id.as_str()))
            .await
    }

    async fn list_jobs(&self, limit: usize) -> Result<Vec<Job>, StoreError> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(concat!(
                    "SELECT ",
                    job_columns!(),
                    " FROM jobs ORDER BY created_at DESC, id LIMIT ?1"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![limit as i64], |r| Ok(job_row(r)))
                .map_err(backend)?;
            rows.map(|r| r.map_err(backend)?).collect()
        })
        .await
    }

    async fn transition_job(
        &self,
        id: &JobId,
        to: JobState,
        update: JobUpdate,
    ) -> Result<Transition<Job>, StoreError> {
        let id = id.clone();
        self.call_keyed(move |c| {
            let tx = c.savepoint().map_err(backend)?;
            let Some(current) = Self::read_job(&tx, id.as_str())? else { return Ok(Transition::Missing) };
            // The same condition as DynamoDB's conditional update (see `transition_sources`).
            if !to.transition_sources().contains(&current.state)
                || update.only_in_run.as_ref().is_some_and(|run| !run.is_current_for(&current))
            {
                return Ok(Transition::Rejected(current));
            }
            let results = match &update.results {
                Some(r) => serde_json::to_string(r).map_err(backend)?,
                None => serde_json::to_string(&current.results).map_err(backend)?,
            };
            // A redrive starts the job afresh: the reason of the outcome before it goes.
            let reason = match (&update.reason, update.redrive_count) {
                (Some(r), _) => Some(r.clone()),
                (None, Some(_)) => None,
                (None, None) => current.reason.clone(),
            };
            tx.exec_cached(
                "UPDATE jobs SET state = ?2, reason = ?3, execution_arn = COALESCE(?4, execution_arn),
                 task_count = COALESCE(?5, task_count), results = ?6, updated_at = ?7,
                 redrive_count = COALESCE(?8, redrive_count) WHERE id = ?1",
                params![id.as_str(), to.as_str(), reason, update.execution_arn, update.task_count, results, ts(&Utc::now()), update.redrive_count],
            )
            .map_err(backend)?;
            let after = Self::read_job(&tx, id.as_str())?.ok_or_else(|| backend("job vanished in transaction"))?;
            tx.commit().map_err(backend)?;
            Ok(Transition::Applied(after))
        })
        .await
    }

    async fn put_tasks(&self, tasks: &[Task]) -> Result<(), StoreError> {
        let tasks = tasks.to_vec();
        self.call(move |c| {
            let tx = c.savepoint().map_err(backend)?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO tasks(job_id, task_id, idx, params, state, attempts, spot_interruptions, result, last_error, updated_at, stage)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    )
                    .map_err(backend)?;
                for t in &tasks {
                    stmt.execute(params![
                        t.job_id.as_str(), t.id.as_str(), t.index, serde_json::to_string(&t.params).map_err(backend)?,
                        t.state.as_str(), t.attempts, t.spot_interruptions,
                        t.result.as_ref().map(serde_json::to_string).transpose().map_err(backend)?,
                        t.last_error, ts(&t.updated_at), t.stage
                    ])
                    .map_err(backend)?;
                }
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn get_task(&self, job: &JobId, task: &TaskId) -> Result<Option<Task>, StoreError> {
        let (job, task) = (job.clone(), task.clone());
        self.read_keyed(move |c| Self::read_task(c, job.as_str(), task.as_str()))
            .await
    }

    async fn list_tasks(&self, job: &JobId) -> Result<Vec<Task>, StoreError> {
        let job = job.clone();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(concat!(
                    "SELECT ",
                    task_columns!(),
                    " FROM tasks WHERE job_id = ?1 ORDER BY idx"
                ))
                .map_err(backend)?;
            // Sized up front: growing a vector of 100,000 tasks by doubling has the allocator
            // fetch (and the kernel zero) fresh memory at every step.
            let mut tasks = Vec::with_capacity(kept_task_count(c, &job)?);
            let rows = stmt
                .query_map(params![job.as_str()], |r| Ok(task_row(r)))
                .map_err(backend)?;
            for row in rows {
                tasks.push(row.map_err(backend)??);
            }
            Ok(tasks)
        })
        .await
    }

    async fn count_tasks(&self, job: &JobId) -> Result<usize, StoreError> {
        let job = job.clone();
        self.read_keyed(move |c| kept_task_count(c, &job)).await
    }

    /// Summed where the rows are: listing a job's 100,000 tasks to count them made each one
    /// into a `Task` (its params and result parsed from JSON), four times at every job's end.
    async fn tally_tasks(&self, job: &JobId) -> Result<TaskTally, StoreError> {
        let job = job.clone();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT stage, state, COUNT(*), SUM(attempts), SUM(spot_interruptions)
                     FROM tasks WHERE job_id = ?1 GROUP BY stage, state",
                )
                .map_err(backend)?;
            let mut rows = stmt.query(params![job.as_str()]).map_err(backend)?;
            let mut tally = TaskTally::default();
            while let Some(r) = rows.next().map_err(backend)? {
                let stage: String = col(r, 0, "stage")?;
                let state: String = col(r, 1, "state")?;
                let state =
                    TaskState::parse(&state).ok_or_else(|| corrupt("task state", &state))?;
                let (tasks, attempts, spot): (i64, i64, i64) = (
                    col(r, 2, "COUNT(*)")?,
                    col(r, 3, "SUM(attempts)")?,
                    col(r, 4, "SUM(spot_interruptions)")?,
                );
                let more = Tallied {
                    tasks: tasks as u32,
                    attempts: attempts as u64,
                    spot_interruptions: spot as u64,
                };
                tally.add(&stage, state, more);
            }
            Ok(tally)
        })
        .await
    }

    async fn tasks_not_in(
        &self,
        job: &JobId,
        state: TaskState,
        limit: usize,
    ) -> Result<Vec<Task>, StoreError> {
        let job = job.clone();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(concat!(
                    "SELECT ",
                    task_columns!(),
                    " FROM tasks WHERE job_id = ?1 AND state != ?2 ORDER BY idx LIMIT ?3"
                ))
                .map_err(backend)?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = stmt
                .query_map(params![job.as_str(), state.as_str(), limit], |r| {
                    Ok(task_row(r))
                })
                .map_err(backend)?;
            rows.map(|row| row.map_err(backend)?).collect()
        })
        .await
    }

    async fn transition_task(
        &self,
        job: &JobId,
        task: &TaskId,
        to: TaskState,
        update: TaskUpdate,
    ) -> Result<Transition<Task>, StoreError> {
        let (job, task) = (job.clone(), task.clone());
        self.call_keyed(move |c| write_task_transition(c, &job, &task, to, &update))
            .await
    }

    async fn create_attempt(&self, a: &Attempt) -> Result<bool, StoreError> {
        let a = a.clone();
        self.call_keyed(move |c| insert_attempt(c, &a)).await
    }

    async fn get_attempt(&self, key: &AttemptKey) -> Result<Option<Attempt>, StoreError> {
        let key = key.clone();
        self.read_keyed(move |c| Self::read_attempt(c, &key)).await
    }

    async fn find_attempt_by_compute_id(
        &self,
        compute_id: &str,
    ) -> Result<Option<Attempt>, StoreError> {
        let compute_id = compute_id.to_string();
        self.read_keyed(move |c| {
            c.row_cached(
                concat!(
                    "SELECT ",
                    attempt_columns!(),
                    " FROM attempts WHERE compute_id = ?1 ORDER BY number DESC LIMIT 1"
                ),
                params![compute_id.as_str()],
                |r| Ok(attempt_row(r)),
            )
            .optional()
            .map_err(backend)?
            .transpose()
        })
        .await
    }

    async fn list_attempts(&self, job: &JobId, task: &TaskId) -> Result<Vec<Attempt>, StoreError> {
        let (job, task) = (job.clone(), task.clone());
        self.read_keyed(move |c| read_attempts(c, &job, &task))
            .await
    }

    async fn transition_attempt(
        &self,
        key: &AttemptKey,
        to: AttemptState,
        update: AttemptUpdate,
    ) -> Result<Transition<Attempt>, StoreError> {
        let key = key.clone();
        self.call_keyed(move |c| write_attempt_transition(c, &key, to, &update))
            .await
    }

    async fn note_reclaim(
        &self,
        key: &AttemptKey,
        notice: &str,
    ) -> Result<Transition<Attempt>, StoreError> {
        let (key, notice) = (key.clone(), notice.to_string());
        self.call_keyed(move |c| {
            let n = c
                .exec_cached(
                    "UPDATE attempts SET reclaim_notice = ?1
                     WHERE job_id = ?2 AND task_id = ?3 AND number = ?4 AND state IN (?5, ?6)",
                    params![
                        notice,
                        key.job_id.as_str(),
                        key.task_id.as_str(),
                        key.number,
                        AttemptState::Launching.as_str(),
                        AttemptState::Running.as_str()
                    ],
                )
                .map_err(backend)?;
            Ok(settled(n, Self::read_attempt(c, &key)?))
        })
        .await
    }

    async fn get_task_with_attempts(
        &self,
        job: &JobId,
        task: &TaskId,
    ) -> Result<Option<(Task, Vec<Attempt>)>, StoreError> {
        let (job, task) = (job.clone(), task.clone());
        self.read_keyed(move |c| Self::read_task_with_attempts(c, &job, &task))
            .await
    }

    async fn get_job_task(
        &self,
        job: &JobId,
        task: &TaskId,
    ) -> Result<Option<(Job, Option<TaskWithAttempts>)>, StoreError> {
        let (job, task) = (job.clone(), task.clone());
        self.read_keyed(move |c| {
            let Some(found) = Self::read_job(c, job.as_str())? else {
                return Ok(None);
            };
            Ok(Some((
                found,
                Self::read_task_with_attempts(c, &job, &task)?,
            )))
        })
        .await
    }

    async fn start_attempt(
        &self,
        attempt: &Attempt,
        to: TaskState,
        update: TaskUpdate,
    ) -> Result<bool, StoreError> {
        let attempt = attempt.clone();
        self.call_keyed(move |c| {
            if !insert_attempt(c, &attempt)? {
                return Ok(false);
            }
            let key = &attempt.key;
            move_task(c, &key.job_id, &key.task_id, to, &update)?;
            Ok(true)
        })
        .await
    }

    async fn end_attempt(
        &self,
        key: &AttemptKey,
        to: AttemptState,
        update: AttemptUpdate,
        task: Option<(TaskState, TaskUpdate)>,
    ) -> Result<Transition<Attempt>, StoreError> {
        let key = key.clone();
        self.call_keyed(move |c| {
            let moved = write_attempt_transition(c, &key, to, &update)?;
            if let (Transition::Applied(_), Some((state, update))) = (&moved, &task) {
                move_task(c, &key.job_id, &key.task_id, *state, update)?;
            }
            Ok(moved)
        })
        .await
    }

    async fn mark_answered(&self, key: &AttemptKey) -> Result<Transition<Attempt>, StoreError> {
        let key = key.clone();
        self.call_keyed(move |c| {
            let updated = c
                .row_cached(
                    concat!(
                        "UPDATE attempts SET answered = 1
                         WHERE job_id = ?1 AND task_id = ?2 AND number = ?3 AND answer IS NOT NULL
                         RETURNING ",
                        attempt_columns!()
                    ),
                    params![key.job_id.as_str(), key.task_id.as_str(), key.number],
                    |r| Ok(attempt_row(r)),
                )
                .optional()
                .map_err(backend)?
                .transpose()?;
            Ok(match updated {
                Some(a) => Transition::Applied(a),
                None => settled(0, Self::read_attempt(c, &key)?),
            })
        })
        .await
    }
}

/// How many tasks a job has, from the counts the triggers keep (no task is read).
fn kept_task_count(c: &Connection, job: &JobId) -> Result<usize, StoreError> {
    c.row_cached(
        "SELECT COALESCE(SUM(n), 0) FROM task_counts WHERE job_id = ?1",
        params![job.as_str()],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n.max(0) as usize)
    .map_err(backend)
}

/// A task's attempts in attempt order, on the store's connection.
fn read_attempts(c: &Connection, job: &JobId, task: &TaskId) -> Result<Vec<Attempt>, StoreError> {
    let mut stmt = c
        .prepare_cached(concat!(
            "SELECT ",
            attempt_columns!(),
            " FROM attempts WHERE job_id = ?1 AND task_id = ?2 ORDER BY number"
        ))
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![job.as_str(), task.as_str()], |r| Ok(attempt_row(r)))
        .map_err(backend)?;
    rows.map(|r| r.map_err(backend)?).collect()
}

/// Runs a conditional UPDATE whose last parameters are the allowed predecessor states
/// (`state IN (...)`, one placeholder each; one that matches no state when there are none).
fn exec_conditional(
    c: &Connection,
    sql: &str,
    values: Vec<Box<dyn rusqlite::ToSql>>,
    allowed: &[&str],
) -> Result<usize, StoreError> {
    let values = with_allowed(values, allowed);
    c.exec_cached(sql, rusqlite::params_from_iter(values.iter()))
        .map_err(backend)
}

/// A conditional UPDATE's parameters followed by its allowed predecessor states.
fn with_allowed(
    mut values: Vec<Box<dyn rusqlite::ToSql>>,
    allowed: &[&str],
) -> Vec<Box<dyn rusqlite::ToSql>> {
    if allowed.is_empty() {
        values.push(Box::new("<none>"));
    }
    for a in allowed {
        values.push(Box::new(a.to_string()));
    }
    values
}

/// The conditional UPDATE of [`JobStore::transition_task`], on the store's connection.
fn write_task_transition(
    c: &Connection,
    job: &JobId,
    task: &TaskId,
    to: TaskState,
    update: &TaskUpdate,
) -> Result<Transition<Task>, StoreError> {
    let n = move_task(c, job, task, to, update)?;
    let current = SqliteJobStore::read_task(c, job.as_str(), task.as_str())?;
    Ok(match (n, current) {
        (_, None) => Transition::Missing,
        (0, Some(t)) => Transition::Rejected(t),
        (_, Some(t)) => Transition::Applied(t),
    })
}

/// The conditional UPDATE of a task's move, without reading the task back (for the requests
/// that move a task beside an attempt and answer with the attempt): the rows it changed.
fn move_task(
    c: &Connection,
    job: &JobId,
    task: &TaskId,
    to: TaskState,
    update: &TaskUpdate,
) -> Result<usize, StoreError> {
    let allowed: Vec<&str> = to.allowed_from().iter().map(|s| s.as_str()).collect();
    let sql = format!(
                "UPDATE tasks SET state = ?, attempts = COALESCE(?, attempts), spot_interruptions = COALESCE(?, spot_interruptions),
                 result = COALESCE(?, result), last_error = CASE WHEN ? THEN ? ELSE last_error END, updated_at = ?
                 WHERE job_id = ? AND task_id = ? AND state IN ({})",
                placeholders(allowed.len().max(1))
            );
    let result = update
        .result
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(backend)?;
    let (set_error, error) = match &update.last_error {
        Some(e) => (true, e.clone()),
        None => (false, None),
    };
    let now = ts(&Utc::now());
    let values: Vec<Box<dyn rusqlite::ToSql>> = vec![
        Box::new(to.as_str()),
        Box::new(update.attempts),
        Box::new(update.spot_interruptions),
        Box::new(result),
        Box::new(set_error),
        Box::new(error),
        Box::new(now),
        Box::new(job.as_str().to_string()),
        Box::new(task.as_str().to_string()),
    ];
    exec_conditional(c, &sql, values, &allowed)
}

/// The INSERT of [`JobStore::create_attempt`], on the store's connection.
fn insert_attempt(c: &Connection, a: &Attempt) -> Result<bool, StoreError> {
    let n = c
                .exec_cached(
                    "INSERT OR IGNORE INTO attempts(job_id, task_id, number, state, capacity, task_token, compute_id, exit_code, stop_code, stopped_reason, event_version, started_at, stopped_at, reclaim_notice, answer, answered)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                    params![
                        a.key.job_id.as_str(), a.key.task_id.as_str(), a.key.number, a.state.as_str(), a.capacity.as_str(),
                        a.task_token, a.compute_id, a.exit_code, a.stop_code, a.stopped_reason,
                        a.event_version.map(|v| v as i64), ts(&a.started_at), a.stopped_at.as_ref().map(ts),
                        a.reclaim_notice, answer_json(a.answer.as_ref())?, a.answered
                    ],
                )
                .map_err(backend)?;
    Ok(n == 1)
}

/// The conditional UPDATE of [`JobStore::transition_attempt`], on the store's connection.
fn write_attempt_transition(
    c: &Connection,
    key: &AttemptKey,
    to: AttemptState,
    update: &AttemptUpdate,
) -> Result<Transition<Attempt>, StoreError> {
    let allowed: Vec<&str> = to.allowed_from().iter().map(|s| s.as_str()).collect();
    let sql = format!(
                "UPDATE attempts SET state = ?, compute_id = COALESCE(?, compute_id), exit_code = COALESCE(?, exit_code),
                 stop_code = COALESCE(?, stop_code), stopped_reason = COALESCE(?, stopped_reason),
                 event_version = COALESCE(?, event_version), started_at = COALESCE(?, started_at),
                 stopped_at = COALESCE(?, stopped_at), answer = COALESCE(?, answer),
                 answered = MAX(answered, ?)
                 WHERE job_id = ? AND task_id = ? AND number = ?
                 AND (? IS NULL OR event_version IS NULL OR event_version < ?)
                 AND state IN ({})",
                placeholders(allowed.len().max(1))
            );
    let version = update.event_version.map(|v| v as i64);
    let values: Vec<Box<dyn rusqlite::ToSql>> = vec![
        Box::new(to.as_str()),
        Box::new(update.compute_id.clone()),
        Box::new(update.exit_code),
        Box::new(update.stop_code.clone()),
        Box::new(update.stopped_reason.clone()),
        Box::new(version),
        Box::new(update.started_at.as_ref().map(ts)),
        Box::new(update.stopped_at.as_ref().map(ts)),
        Box::new(answer_json(update.answer.as_ref())?),
        Box::new(update.answered),
        Box::new(key.job_id.as_str().to_string()),
        Box::new(key.task_id.as_str().to_string()),
        Box::new(key.number),
        Box::new(version),
        Box::new(version),
    ];
    // The attempt as updated comes back from the UPDATE itself; it is read only when the
    // update was refused.
    let sql = format!("{sql} RETURNING {}", attempt_columns!());
    let values = with_allowed(values, &allowed);
    let updated = c
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_row(rusqlite::params_from_iter(values.iter()), |r| {
                Ok(attempt_row(r))
            })
            .optional()
        })
        .map_err(backend)?
        .transpose()?;
    Ok(match updated {
        Some(a) => Transition::Applied(a),
        None => settled(0, SqliteJobStore::read_attempt(c, key)?),
    })
}

/// The outcome of a conditional UPDATE of one attempt, from the rows it changed.
fn settled(changed: usize, current: Option<Attempt>) -> Transition<Attempt> {
    match (changed, current) {
        (_, None) => Transition::Missing,
        (0, Some(a)) => Transition::Rejected(a),
        (_, Some(a)) => Transition::Applied(a),
    }
}

fn answer_json(answer: Option<&TokenAnswer>) -> Result<Option<String>, StoreError> {
    answer
        .map(|a| serde_json::to_string(a).map_err(|e| corrupt("attempt answer", e)))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::ports::Transition;

    #[tokio::test]
    async fn sqlite_keeps_the_job_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteJobStore::open(&dir.path().join("sluice.db")).unwrap();
        sluice_core::testing::contract::job_store(&store, "sqlite").await;
    }

    /// Holds the store's thread in a request until `release` is sent, so that the requests
    /// sent meanwhile queue up behind it; the receiver answers when the held request ends.
    fn hold_the_thread(
        store: &SqliteJobStore,
    ) -> (
        mpsc::Sender<()>,
        tokio::sync::oneshot::Receiver<Result<(), StoreError>>,
    ) {
        let (release, hold) = mpsc::channel::<()>();
        let (started, running) = mpsc::channel::<()>();
        let (held, held_answer) = tokio::sync::oneshot::channel();
        store
            .send(
                Access::Write,
                move |_| {
                    started.send(()).map_err(backend)?;
                    hold.recv().map_err(backend)
                },
                Reply::Async(held),
            )
            .unwrap();
        running.recv().unwrap();
        (release, held_answer)
    }

    fn insert_lease(
        job: &'static str,
        fail: bool,
    ) -> impl FnOnce(&mut Connection) -> Result<(), StoreError> {
        move |c: &mut Connection| {
            c.exec_cached(
                "INSERT INTO leases(job_id, slots, acquired_at) VALUES (?1, 2, ?2)",
                params![job, ts(&Utc::now())],
            )
            .map_err(backend)?;
            if fail {
                return Err(backend("refused after writing"));
            }
            Ok(())
        }
    }

    /// Leases as another process sees them: only what is committed.
    fn committed_leases(path: &Path) -> i64 {
        let other = Connection::open(path).unwrap();
        other
            .query_row("SELECT COUNT(*) FROM leases", [], |r| r.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn writes_that_queue_together_commit_together_and_a_failing_one_undoes_only_itself() {
        let _alone = FLUSH_ALL.read().await;
        let store = SqliteJobStore::in_memory().unwrap();
        let (release, held_answer) = hold_the_thread(&store);
        let mut answers = Vec::new();
        for i in 0..100 {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let job: &'static str = Box::leak(format!("good-{i}").into_boxed_str());
            store
                .send(Access::Write, insert_lease(job, false), Reply::Async(tx))
                .unwrap();
            answers.push(rx);
        }
        let (bad, bad_answer) = tokio::sync::oneshot::channel();
        store
            .send(Access::Write, insert_lease("bad", true), Reply::Async(bad))
            .unwrap();
        let before = store.commits();
        release.send(()).unwrap();
        held_answer.await.unwrap().unwrap();
        for a in answers {
            a.await.unwrap().unwrap();
        }
        assert!(bad_answer.await.unwrap().is_err());
        store.flushed().await.unwrap();
        assert_eq!(
            store.commits() - before,
            1,
            "the held request and the 101 queued behind it in one transaction"
        );
        // The failing request's write was undone; the others stand.
        assert_eq!(store.lease_totals().unwrap(), (200, 100));

        // A write alone that fails keeps nothing either.
        let failed = store.with(insert_lease("alone", true));
        assert!(
            failed
                .unwrap_err()
                .to_string()
                .contains("refused after writing")
        );
        assert_eq!(store.lease_totals().unwrap(), (200, 100));
    }

    /// The hook runs before each commit (another process does not see the write yet when it
    /// runs, and does after), and at a flush with nothing to commit.
    #[tokio::test]
    async fn before_commit_hooks_run_before_the_commit_and_at_every_flush() {
        let _alone = FLUSH_ALL.read().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.db");
        let store = committed_only_by_a_flush(&path);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, db) = (seen.clone(), path.clone());
        store.before_commit(move || log.lock().unwrap().push(committed_leases(&db)));

        store.with(insert_lease("a", false)).unwrap();
        assert!(seen.lock().unwrap().is_empty(), "no commit yet, no hook");
        store.flush().unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            [0],
            "ran once, before the lease was committed"
        );
        assert_eq!(committed_leases(&path), 1);

        store.flush().unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            [0, 1],
            "a flush with nothing open runs it too"
        );
    }

    /// `flush_all` commits every store of the process, other tests' too: the tests that look
    /// at what is not committed yet, or count commits, take this for reading; the test that
    /// calls `flush_all` takes it for writing.
    static FLUSH_ALL: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

    /// A store at `path` whose write transactions never end on their own: only a flush commits.
    fn committed_only_by_a_flush(path: &Path) -> SqliteJobStore {
        let forever = CommitTiming {
            window: Duration::from_secs(3600),
            idle: Duration::from_secs(3600),
        };
        SqliteJobStore::init(Connection::open(path).unwrap(), forever).unwrap()
    }

    #[tokio::test]
    async fn a_write_is_seen_at_once_here_and_by_other_processes_once_committed() {
        let _alone = FLUSH_ALL.write().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.db");
        let store = committed_only_by_a_flush(&path);
        let (release, held_answer) = hold_the_thread(&store);
        let (wrote, wrote_answer) = tokio::sync::oneshot::channel();
        store
            .send(Access::Write, insert_lease("a", false), Reply::Async(wrote))
            .unwrap();
        let (read, read_answer) = tokio::sync::oneshot::channel();
        store
            .send(
                Access::Read,
                |c: &mut Connection| {
                    c.row_cached("SELECT COUNT(*) FROM leases", [], |r| r.get::<_, i64>(0))
                        .map_err(backend)
                },
                Reply::Async(read),
            )
            .unwrap();
        let (flush, flush_answer) = tokio::sync::oneshot::channel();
        store
            .send(Access::Flush, |_| Ok(()), Reply::Async(flush))
            .unwrap();
        release.send(()).unwrap();
        held_answer.await.unwrap().unwrap();
        wrote_answer.await.unwrap().unwrap();
        // In this process, a read sees every write answered before it.
        assert_eq!(read_answer.await.unwrap().unwrap(), 1);
        // The flush committed it.
        flush_answer.await.unwrap().unwrap();
        assert_eq!(committed_leases(&path), 1);

        // Answered, not committed: another process does not see it until flush_all.
        store.with(insert_lease("b", false)).unwrap();
        assert_eq!(store.lease_totals().unwrap(), (4, 2));
        assert_eq!(committed_leases(&path), 1);
        flush_all();
        assert_eq!(committed_leases(&path), 2);
    }

    /// Where a keyed request ran, and whether it did what it was asked.
    fn keyed_lease(
        job: &'static str,
        fail: bool,
    ) -> impl FnOnce(&mut Connection) -> Result<Option<String>, StoreError> {
        move |c: &mut Connection| {
            insert_lease(job, fail)(c)?;
            Ok(std::thread::current().name().map(str::to_string))
        }
    }

    #[tokio::test]
    async fn a_keyed_request_runs_where_it_is_made_while_a_write_transaction_is_open() {
        let _alone = FLUSH_ALL.read().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.db");
        let store = committed_only_by_a_flush(&path);
        let here = std::thread::current().name().map(str::to_string);
        let store_thread = Some("sluice-store".to_string());

        // No write transaction open: the store's thread begins one (beginning may wait for
        // another process's lock, which an async worker must not).
        assert_eq!(
            store.call_keyed(keyed_lease("a", false)).await.unwrap(),
            store_thread
        );
        // Open: the caller runs it itself, in the same transaction (unless it finds the
        // store's thread holding the connection for a moment, to see whether a commit is due:
        // then it queues, so a few tries).
        let mut ran_here = false;
        let mut leases = 1;
        for job in ["b-1", "b-2", "b-3", "b-4", "b-5"] {
            leases += 1;
            if store.call_keyed(keyed_lease(job, false)).await.unwrap() == here {
                ran_here = true;
                break;
            }
        }
        assert!(ran_here, "a keyed request never ran where it was made");
        let seen = store
            .read_keyed(|c| {
                c.row_cached("SELECT COUNT(*) FROM leases", [], |r| r.get::<_, i64>(0))
                    .map_err(backend)
            })
            .await
            .unwrap();
        assert_eq!(seen, leases, "a read sees every write answered before it");
        // A keyed write that fails undoes only itself.
        let failed = store.call_keyed(keyed_lease("c", true)).await.unwrap_err();
        assert!(
            failed.to_string().contains("refused after writing"),
            "{failed}"
        );
        // Not committed until the transaction is: another process sees nothing yet.
        assert_eq!(committed_leases(&path), 0);

        // While the store's thread holds the connection, a keyed request queues behind it
        // and runs there.
        let (release, held_answer) = hold_the_thread(&store);
        let queued = {
            let store = store.clone();
            tokio::spawn(async move { store.call_keyed(keyed_lease("d", false)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!queued.is_finished(), "it waits for the held request");
        release.send(()).unwrap();
        held_answer.await.unwrap().unwrap();
        assert_eq!(queued.await.unwrap().unwrap(), store_thread);

        store.flushed().await.unwrap();
        assert_eq!(committed_leases(&path), leases + 1);
        // After the commit none is open: the next goes to the thread again.
        assert_eq!(
            store.call_keyed(keyed_lease("e", false)).await.unwrap(),
            store_thread
        );
    }

    /// Requests run by their callers keep a transaction open no longer than the window, and
    /// it is still committed on its own.
    #[tokio::test]
    async fn keyed_requests_are_committed_within_the_window_too() {
        let _alone = FLUSH_ALL.read().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.db");
        // Never idle long enough for the idle commit, however slow the machine: only the
        // window ends a transaction.
        let short = CommitTiming {
            window: Duration::from_millis(100),
            idle: Duration::from_secs(10),
        };
        let store = SqliteJobStore::init(Connection::open(&path).unwrap(), short).unwrap();
        let jobs: Vec<&'static str> = (0..40)
            .map(|i| &*Box::leak(format!("j-{i}").into_boxed_str()))
            .collect();
        let before = store.commits();
        let began = Instant::now();
        // One every 10 ms or so.
        let mut ran_here = 0;
        for job in &jobs {
            if store
                .call_keyed(keyed_lease(job, false))
                .await
                .unwrap()
                .as_deref()
                != Some("sluice-store")
            {
                ran_here += 1;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let took = began.elapsed();
        assert!(
            ran_here > jobs.len() / 2,
            "{ran_here} of {} ran here",
            jobs.len()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while committed_leases(&path) < jobs.len() as i64 {
            assert!(Instant::now() < deadline, "never committed");
            std::thread::sleep(Duration::from_millis(5));
        }
        let commits = store.commits() - before;
        // At least one commit per window the requests spanned, not one at the very end.
        let windows = (took.as_millis() / 100) as u64;
        assert!(commits >= windows, "{commits} commits over {took:?}");
    }

    #[tokio::test]
    async fn the_open_transaction_is_committed_on_its_own_within_the_window() {
        let _alone = FLUSH_ALL.read().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.db");
        let store = SqliteJobStore::open(&path).unwrap();
        let before = store.commits();
        store.with(insert_lease("a", false)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while committed_leases(&path) < 1 {
            assert!(Instant::now() < deadline, "never committed");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(store.commits() - before, 1);
    }

    #[tokio::test]
    async fn task_counts_match_the_tasks() {
        let store = SqliteJobStore::in_memory().unwrap();
        let job = JobId::new("j").unwrap();
        let task = |id: &str, i: u32| {
            let id = TaskId::new(id).unwrap();
            Task::pending(job.clone(), id, "", i, Default::default(), Utc::now())
        };
        store
            .put_tasks(&[task("a", 0), task("b", 1), task("c", 2)])
            .await
            .unwrap();
        let run = |id: &str, attempts: u32| {
            let store = store.clone();
            let (job, id) = (job.clone(), TaskId::new(id).unwrap());
            async move {
                store
                    .transition_task(
                        &job,
                        &id,
                        TaskState::Running,
                        TaskUpdate {
                            attempts: Some(attempts),
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap()
            }
        };
        run("a", 1).await;
        run("b", 3).await;
        let counts = store.task_counts(&job).unwrap();
        assert_eq!(
            (
                counts.get(TaskState::Running),
                counts.get(TaskState::Pending),
                counts.total()
            ),
            (2, 1, 3)
        );
        assert_eq!(counts.retries, 2, "b's second and third attempts");
        assert_eq!(
            store
                .task_counts(&JobId::new("other").unwrap())
                .unwrap()
                .total(),
            0
        );
    }

    /// What the counts must be: the tasks counted one by one.
    fn counted(
        store: &SqliteJobStore,
        job: &JobId,
    ) -> std::collections::BTreeMap<String, (i64, i64)> {
        let job = job.clone();
        store
            .with(move |c| {
                let mut stmt = c
                    .prepare(
                        "SELECT stage || '/' || state, COUNT(*), SUM(MAX(attempts - 1, 0)) FROM tasks
                         WHERE job_id = ?1 GROUP BY stage, state",
                    )
                    .map_err(backend)?;
                let rows = stmt
                    .query_map(params![job.as_str()], |r| {
                        Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?)))
                    })
                    .map_err(backend)?;
                rows.collect::<Result<_, _>>().map_err(backend)
            })
            .unwrap()
    }

    /// The counts the triggers keep, by "stage/state".
    fn kept(store: &SqliteJobStore, job: &JobId) -> std::collections::BTreeMap<String, i64> {
        store
            .task_counts_by_stage(job)
            .unwrap()
            .into_iter()
            .flat_map(|(stage, counts)| {
                counts
                    .by_state
                    .into_iter()
                    .map(move |(state, n)| (format!("{stage}/{}", state.as_str()), n as i64))
            })
            .collect()
    }

    #[tokio::test]
    async fn the_kept_counts_follow_every_transition() {
        let store = SqliteJobStore::in_memory().unwrap();
        let job = JobId::new("j").unwrap();
        let tasks: Vec<Task> = (0..40)
            .map(|i| {
                let id = TaskId::new(format!("t{i}")).unwrap();
                let stage = if i % 3 == 0 { "a" } else { "b" };
                Task::pending(job.clone(), id, stage, i, Default::default(), Utc::now())
            })
            .collect();
        store.put_tasks(&tasks).await.unwrap();
        // The same tasks again (a redelivered plan): ignored, and not counted twice.
        store.put_tasks(&tasks).await.unwrap();
        let moves = [
            (TaskState::Running, 1),
            (TaskState::Retrying, 1),
            (TaskState::Running, 2),
            (TaskState::Succeeded, 2),
        ];
        for (i, task) in tasks.iter().enumerate() {
            for (to, attempts) in moves.iter().take(i % 5) {
                store
                    .transition_task(
                        &job,
                        &task.id,
                        *to,
                        TaskUpdate {
                            attempts: Some(*attempts),
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
            }
        }
        let truth = counted(&store, &job);
        let by_state: std::collections::BTreeMap<String, i64> =
            truth.iter().map(|(k, v)| (k.clone(), v.0)).collect();
        assert_eq!(kept(&store, &job), by_state);
        let counts = store.task_counts(&job).unwrap();
        assert_eq!(counts.total(), 40);
        assert_eq!(
            counts.retries as i64,
            truth.values().map(|v| v.1).sum::<i64>(),
            "retries over all tasks"
        );
    }

    #[tokio::test]
    async fn a_job_table_from_before_the_kept_counts_is_counted_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(SCHEMA).unwrap();
            c.execute_batch("ALTER TABLE tasks ADD COLUMN stage TEXT NOT NULL DEFAULT ''")
                .unwrap();
            c.execute_batch(
                "INSERT INTO tasks(job_id, task_id, idx, params, state, attempts, updated_at)
                 VALUES ('old', 'a', 0, '{}', 'SUCCEEDED', 3, '2026-11-01T10:00:00Z'),
                        ('old', 'b', 1, '{}', 'FAILED', 1, '2026-11-01T10:00:00Z'),
                        ('old', 'c', 2, '{}', 'SUCCEEDED', 1, '2026-11-01T10:00:00Z');",
            )
            .unwrap();
        }
        let store = SqliteJobStore::open(&path).unwrap();
        let job = JobId::new("old").unwrap();
        let counts = store.task_counts(&job).unwrap();
        assert_eq!(
            (
                counts.get(TaskState::Succeeded),
                counts.get(TaskState::Failed),
                counts.retries
            ),
            (2, 1, 2)
        );
        drop(store);
        // Opened again: counted once, not twice.
        let again = SqliteJobStore::open(&path).unwrap();
        assert_eq!(again.task_counts(&job).unwrap().total(), 3);
    }

    #[tokio::test]
    async fn a_job_table_of_an_older_sluice_gets_the_new_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE jobs (id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, input_bucket TEXT NOT NULL,
                 input_key TEXT NOT NULL, state TEXT NOT NULL, reason TEXT, execution_arn TEXT,
                 task_count INTEGER NOT NULL DEFAULT 0, results TEXT NOT NULL DEFAULT '[]',
                 created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
                 INSERT INTO jobs VALUES ('old', 'p', 'b', 'k', 'FAILED', 'why', NULL, 0, '[]',
                 '2026-11-01T10:00:00Z', '2026-11-01T10:00:00Z');",
            )
            .unwrap();
        }
        let store = SqliteJobStore::open(&path).unwrap();
        let job = store
            .get_job(&JobId::new("old").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((job.state, job.redrive_count), (JobState::Failed, 0));
    }

    fn attempt(n: u32) -> Attempt {
        Attempt {
            key: AttemptKey {
                job_id: JobId::new("j").unwrap(),
                task_id: TaskId::new("t").unwrap(),
                number: n,
            },
            state: AttemptState::Launching,
            capacity: Capacity::Spot,
            task_token: format!("token-{n}"),
            compute_id: None,
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

    #[tokio::test]
    async fn stale_and_duplicate_events_cannot_move_an_attempt() {
        let store = SqliteJobStore::in_memory().unwrap();
        let a = attempt(1);
        assert!(store.create_attempt(&a).await.unwrap());
        assert!(
            !store.create_attempt(&a).await.unwrap(),
            "second insert must be refused"
        );
        let v = |v| AttemptUpdate {
            event_version: Some(v),
            compute_id: Some("arn:task/1".into()),
            ..Default::default()
        };
        assert!(
            store
                .transition_attempt(&a.key, AttemptState::Running, v(2))
                .await
                .unwrap()
                .applied()
        );
        // A STOPPED event older than what was applied is stale.
        let stale = store
            .transition_attempt(&a.key, AttemptState::Failed, v(1))
            .await
            .unwrap();
        assert!(matches!(stale, Transition::Rejected(ref x) if x.state == AttemptState::Running));
        assert!(
            store
                .transition_attempt(&a.key, AttemptState::Succeeded, v(5))
                .await
                .unwrap()
                .applied()
        );
        // The same event again, and a later one, find the attempt final.
        assert!(
            !store
                .transition_attempt(&a.key, AttemptState::Succeeded, v(5))
                .await
                .unwrap()
                .applied()
        );
        assert!(
            !store
                .transition_attempt(&a.key, AttemptState::SpotInterrupted, v(9))
                .await
                .unwrap()
                .applied()
        );
        let found = store
            .find_attempt_by_compute_id("arn:task/1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.state, found.event_version),
            (AttemptState::Succeeded, Some(5))
        );
        let missing = AttemptKey {
            number: 7,
            ..a.key.clone()
        };
        assert!(matches!(
            store
                .transition_attempt(&missing, AttemptState::Failed, v(1))
                .await
                .unwrap(),
            Transition::Missing
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_transitions_apply_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteJobStore::open(&dir.path().join("db")).unwrap();
        let a = attempt(1);
        store.create_attempt(&a).await.unwrap();
        let mut handles = Vec::new();
        for i in 0..16u64 {
            // Separate connections, as separate processes would have.
            let s = SqliteJobStore::open(&dir.path().join("db")).unwrap();
            let key = a.key.clone();
            handles.push(tokio::spawn(async move {
                let to = if i % 2 == 0 {
                    AttemptState::Succeeded
                } else {
                    AttemptState::SpotInterrupted
                };
                s.transition_attempt(
                    &key,
                    to,
                    AttemptUpdate {
                        event_version: Some(10),
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
                .applied()
            }));
        }
        let mut applied = 0;
        for h in handles {
            applied += usize::from(h.await.unwrap());
        }
        assert_eq!(applied, 1);
    }

    #[tokio::test]
    async fn a_final_job_keeps_its_first_reason() {
        let store = SqliteJobStore::in_memory().unwrap();
        let job = Job::new(
            JobId::new("j").unwrap(),
            "p",
            ObjectRef::new("b", "k"),
            Utc::now(),
        );
        assert!(store.create_job(&job).await.unwrap());
        assert!(!store.create_job(&job).await.unwrap());
        let fail = |r: &str| JobUpdate {
            reason: Some(r.into()),
            ..Default::default()
        };
        assert!(
            store
                .transition_job(&job.id, JobState::Failed, fail("in.csv:3:2: bad"))
                .await
                .unwrap()
                .applied()
        );
        let again = store
            .transition_job(&job.id, JobState::Failed, fail("other"))
            .await
            .unwrap();
        assert!(
            matches!(again, Transition::Rejected(ref j) if j.reason.as_deref() == Some("in.csv:3:2: bad"))
        );
        // Ingest's "still SUBMITTED?" update cannot touch a job that has moved on.
        let t = |to| store.transition_job(&job.id, to, JobUpdate::default());
        assert!(!t(JobState::Submitted).await.unwrap().applied());
        // A re-run (plan) may reopen a failed job; a succeeded job is never reopened.
        assert!(t(JobState::Running).await.unwrap().applied());
        assert!(t(JobState::Succeeded).await.unwrap().applied());
        assert!(!t(JobState::Running).await.unwrap().applied());
    }
}
