//! The execution journal: the engine's history and checkpoints, written to the job table in
//! batches by one writer thread, so that an execution outlives the process that runs it.
//!
//! The engine reports every history event and checkpoint (see `sluice_asl::checkpoint`) from
//! the tasks that execute states. Writing each one in its own SQLite transaction would put a
//! commit on the hot path of every state transition (an fsync each, with `synchronous=FULL`):
//! at 100,000 tasks that is most of the run. Instead the journal queues them and a writer
//! thread commits what has queued every [`BATCH_WINDOW`] (or every [`BATCH_MAX`] records) in
//! one transaction, in order. WAL with `synchronous=NORMAL` makes a commit durable against the
//! process being killed; a machine crash may lose the last commits.
//!
//! What a crash can lose is at most the last batch: some history events, a Map result or the
//! entry into a top-level state. None of it loses work: a redrive then starts from the previous
//! top-level state, or re-runs a Map iteration whose result was lost, and every step is
//! idempotent (a task that SUCCEEDED in the job table, which its task-events handler writes
//! synchronously, is reported straight back by launch and never runs again).
//!
//! [`Journal::flush`] waits until everything queued before it is committed; the runtime calls
//! it when an execution ends, before anyone reads the outcome.

use crate::store::{Cached, SqliteJobStore, backend, corrupt, parse_ts, ts};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde_json::Value;
use sluice_asl::{
    CheckpointSink, ExecutionCheckpoint, ExecutionOutcome, ExecutionStatus, HistoryEvent,
    HistorySink, PersistedExecution,
};
use sluice_core::StoreError;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

/// How long the writer gathers records before committing them.
pub const BATCH_WINDOW: Duration = Duration::from_millis(50);
/// Records that make the writer commit without waiting out its window.
pub const BATCH_MAX: usize = 4096;

enum Record {
    History {
        arn: String,
        id: u64,
        event: String,
    },
    Started {
        arn: String,
        name: String,
        machine: String,
        input: String,
        start: DateTime<Utc>,
        redrives: u32,
    },
    StateEntered {
        arn: String,
        state: String,
        input: String,
        resumed: bool,
    },
    MapResult {
        arn: String,
        state: String,
        index: usize,
        output: String,
    },
    Closed {
        arn: String,
        status: ExecutionStatus,
        error: Option<String>,
        cause: Option<String>,
        stop: DateTime<Utc>,
    },
    Flush(mpsc::Sender<()>),
}

/// The engine's history and checkpoint sink on the job table.
#[derive(Clone)]
pub struct Journal {
    queue: Arc<Sender>,
}

/// The records waiting for the writer, and whether the writer must not wait out its window.
#[derive(Default)]
struct Pending {
    records: Vec<Record>,
    /// A flush is queued, or the batch is full: commit now.
    urgent: bool,
    /// Every [`Journal`] is gone: write what is left and stop.
    closed: bool,
}

/// What the engine's threads and the writer share. Queuing a record wakes the writer only
/// when it waits for a first record or must commit now: a task makes about ten records, and a
/// wake-up per record (a futex call each side, a context switch) cost the journal more than
/// its SQL did.
struct Queue {
    pending: Mutex<Pending>,
    ready: Condvar,
    /// How long a batch gathers records ([`BATCH_WINDOW`]).
    window: Duration,
}

/// The handle every clone of a [`Journal`] shares: when the last one goes, the writer stops.
struct Sender(Arc<Queue>);

impl Drop for Sender {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.ready.notify_one();
    }
}

impl Queue {
    fn new(window: Duration) -> Self {
        Self {
            pending: Mutex::new(Pending::default()),
            ready: Condvar::new(),
            window,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock leaves the records intact: carry on with them.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, record: Record) {
        let mut pending = self.lock();
        let flush = matches!(record, Record::Flush(_));
        pending.records.push(record);
        let first = pending.records.len() == 1;
        if flush || pending.records.len() >= BATCH_MAX {
            pending.urgent = true;
        }
        let wake = first || pending.urgent;
        drop(pending);
        if wake {
            self.ready.notify_one();
        }
    }

    /// The next batch: what has queued from the first record for the window, or up to
    /// a flush or [`BATCH_MAX`] records; `None` once closed with nothing left.
    fn next_batch(&self) -> Option<Vec<Record>> {
        let mut pending = self.lock();
        while pending.records.is_empty() {
            if pending.closed {
                return None;
            }
            pending = self.ready.wait(pending).unwrap_or_else(|p| p.into_inner());
        }
        let deadline = Instant::now() + self.window;
        while !pending.urgent && !pending.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            pending = self
                .ready
                .wait_timeout(pending, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        pending.urgent = false;
        Some(std::mem::take(&mut pending.records))
    }
}

impl Journal {
    /// Starts the writer thread on `store`'s connection.
    pub fn start(store: SqliteJobStore) -> std::io::Result<Self> {
        let queue = Arc::new(Queue::new(BATCH_WINDOW));
        let for_writer = queue.clone();
        std::thread::Builder::new()
            .name("sluice-journal".into())
            .spawn(move || writer(store, &for_writer))?;
        Ok(Self {
            queue: Arc::new(Sender(queue)),
        })
    }

    fn send(&self, record: Record) {
        self.queue.0.push(record);
    }

    /// Waits until every record queued before this call is committed, with every write the job
    /// table answered before it.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        self.send(Record::Flush(tx));
        let _ = rx.recv();
    }

    /// [`Journal::flush`] from async code, without blocking an executor thread.
    pub async fn flushed(&self) {
        let journal = self.clone();
        let _ = tokio::task::spawn_blocking(move || journal.flush()).await;
    }
}

fn writer(store: SqliteJobStore, queue: &Queue) {
    while let Some(batch) = queue.next_batch() {
        let mut waiters = Vec::new();
        let mut records = Vec::with_capacity(batch.len());
        for record in batch {
            match record {
                Record::Flush(w) => waiters.push(w),
                other => records.push(other),
            }
        }
        // One request to the store's thread: the batch is committed together (or not at all).
        let result = store.with(move |c| {
            for record in records {
                apply(c, record)?;
            }
            Ok(())
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "could not write the execution journal");
        }
        // A flush means committed, with everything the job table has answered before it.
        if !waiters.is_empty()
            && let Err(e) = store.flush()
        {
            tracing::error!(error = %e, "could not commit the job table");
        }
        for w in waiters {
            let _ = w.send(());
        }
    }
}

fn apply(tx: &rusqlite::Connection, record: Record) -> Result<(), StoreError> {
    let r = match record {
        Record::History { arn, id, event } => tx.exec_cached(
            "INSERT OR REPLACE INTO history(execution_arn, event_id, event) VALUES (?1, ?2, ?3)",
            params![arn, id as i64, event],
        ),
        Record::Started {
            arn,
            name,
            machine,
            input,
            start,
            redrives,
        } => tx.exec_cached(
            "INSERT INTO executions(execution_arn, name, state_machine, input, status, start_date, redrive_count)
             VALUES (?1, ?2, ?3, ?4, 'RUNNING', ?5, ?6)
             ON CONFLICT(execution_arn) DO UPDATE SET status = 'RUNNING', error = NULL, cause = NULL,
             stop_date = NULL, redrive_count = excluded.redrive_count",
            params![arn, name, machine, input, ts(&start), redrives],
        ),
        Record::StateEntered {
            arn,
            state,
            input,
            resumed,
        } => {
            if !resumed {
                tx.exec_cached(
                    "DELETE FROM map_results WHERE execution_arn = ?1 AND state = ?2",
                    params![arn, state],
                )
                .map_err(backend)?;
            }
            tx.exec_cached(
                "UPDATE executions SET state = ?2, state_input = ?3 WHERE execution_arn = ?1",
                params![arn, state, input],
            )
        }
        Record::MapResult {
            arn,
            state,
            index,
            output,
        } => tx.exec_cached(
            "INSERT OR REPLACE INTO map_results(execution_arn, state, idx, output) VALUES (?1, ?2, ?3, ?4)",
            params![arn, state, index as i64, output],
        ),
        Record::Closed {
            arn,
            status,
            error,
            cause,
            stop,
        } => tx.exec_cached(
            "UPDATE executions SET status = ?2, error = ?3, cause = ?4, stop_date = ?5 WHERE execution_arn = ?1",
            params![arn, status.as_str(), error, cause, ts(&stop)],
        ),
        Record::Flush(_) => return Ok(()),
    };
    r.map(|_| ()).map_err(backend)
}

impl HistorySink for Journal {
    fn record(&self, execution_arn: &str, event: &HistoryEvent) {
        self.send(Record::History {
            arn: execution_arn.to_string(),
            id: event.id,
            event: event.to_json().to_string(),
        });
    }
}

impl CheckpointSink for Journal {
    fn execution_started(&self, e: &ExecutionCheckpoint<'_>) {
        self.send(Record::Started {
            arn: e.execution_arn.to_string(),
            name: e.name.to_string(),
            machine: e.state_machine.to_string(),
            input: e.input.to_string(),
            start: e.start_date,
            redrives: e.redrive_count,
        });
    }

    fn state_entered(&self, execution_arn: &str, state: &str, input: &Value, resumed: bool) {
        self.send(Record::StateEntered {
            arn: execution_arn.to_string(),
            state: state.to_string(),
            input: input.to_string(),
            resumed,
        });
    }

    fn map_iteration_succeeded(
        &self,
        execution_arn: &str,
        state: &str,
        index: usize,
        output: &Value,
    ) {
        self.send(Record::MapResult {
            arn: execution_arn.to_string(),
            state: state.to_string(),
            index,
            output: output.to_string(),
        });
    }

    fn execution_closed(
        &self,
        execution_arn: &str,
        outcome: &ExecutionOutcome,
        stop: DateTime<Utc>,
    ) {
        self.send(Record::Closed {
            arn: execution_arn.to_string(),
            status: outcome.status,
            error: outcome.error.clone(),
            cause: outcome.cause.clone(),
            stop,
        });
    }
}

impl SqliteJobStore {
    /// An execution as its journal left it, ready for `Engine::restore`.
    pub fn persisted_execution(&self, arn: &str) -> Result<Option<PersistedExecution>, StoreError> {
        let arn = arn.to_string();
        self.with(move |c| {
            type Row = (
                String,
                String,
                String,
                Option<String>,
                Option<String>,
                String,
                Option<String>,
                i64,
                Option<String>,
                Option<String>,
            );
            let row: Option<Row> = c
                .row_cached(
                    "SELECT name, input, status, error, cause, start_date, stop_date, redrive_count, state, state_input
                     FROM executions WHERE execution_arn = ?1",
                    params![arn],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                            r.get(8)?,
                            r.get(9)?,
                        ))
                    },
                )
                .optional()
                .map_err(backend)?;
            let Some((name, input, status, error, cause, start, stop, redrives, state, state_input)) =
                row
            else {
                return Ok(None);
            };
            let json = |what: &str, text: &str| -> Result<Value, StoreError> {
                serde_json::from_str(text).map_err(|e| corrupt(what, e))
            };
            let state = match (state, state_input) {
                (Some(s), Some(i)) => Some((s, json("execution state input", &i)?)),
                _ => None,
            };
            let mut map_results = Vec::new();
            if let Some((s, _)) = &state {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT idx, output FROM map_results WHERE execution_arn = ?1 AND state = ?2",
                    )
                    .map_err(backend)?;
                let rows = stmt
                    .query_map(params![arn, s], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                    })
                    .map_err(backend)?;
                for row in rows {
                    let (idx, output) = row.map_err(backend)?;
                    let idx = idx as usize;
                    if map_results.len() <= idx {
                        map_results.resize(idx + 1, None);
                    }
                    map_results[idx] = Some(json("map result", &output)?);
                }
            }
            let last_event_id: i64 = c
                .row_cached(
                    "SELECT COALESCE(MAX(event_id), 0) FROM history WHERE execution_arn = ?1",
                    params![arn],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            Ok(Some(PersistedExecution {
                execution_arn: arn.to_string(),
                name,
                input: json("execution input", &input)?,
                start_date: parse_ts(&start)?,
                redrive_count: redrives as u32,
                status: ExecutionStatus::parse(&status).ok_or_else(|| corrupt("execution status", &status))?,
                error,
                cause,
                stop_date: stop.as_deref().map(parse_ts).transpose()?,
                last_event_id: last_event_id as u64,
                state,
                map_results,
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(id: u64) -> Record {
        Record::History {
            arn: "arn".into(),
            id,
            event: "{}".into(),
        }
    }

    fn ids(batch: &[Record]) -> Vec<String> {
        batch
            .iter()
            .map(|r| match r {
                Record::History { id, .. } => id.to_string(),
                Record::Flush(_) => "flush".into(),
                _ => "other".into(),
            })
            .collect()
    }

    /// Runs `next_batch` on a thread of its own and waits for it at most 10 s (a batch that
    /// waited out an hour-long window is a failure, not a hang).
    fn next_batch_of(queue: &Arc<Queue>) -> Option<Vec<String>> {
        let (tx, rx) = mpsc::channel();
        let q = queue.clone();
        std::thread::spawn(move || {
            let _ = tx.send(q.next_batch().map(|b| ids(&b)));
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the batch was not handed over in 10 s")
    }

    #[test]
    fn a_flush_ends_the_batch_without_waiting_out_the_window() {
        let queue = Arc::new(Queue::new(Duration::from_secs(3600)));
        let (tx, _rx) = mpsc::channel();
        queue.push(history(1));
        queue.push(history(2));
        queue.push(Record::Flush(tx));
        assert_eq!(
            next_batch_of(&queue),
            Some(vec!["1".into(), "2".into(), "flush".into()])
        );
        // The next batch waits for its own first record.
        queue.push(history(3));
        let (tx, _rx) = mpsc::channel();
        queue.push(Record::Flush(tx));
        assert_eq!(
            next_batch_of(&queue),
            Some(vec!["3".into(), "flush".into()])
        );
    }

    #[test]
    fn records_without_a_flush_are_handed_over_when_the_window_ends() {
        let queue = Arc::new(Queue::new(Duration::from_millis(20)));
        queue.push(history(1));
        queue.push(history(2));
        assert_eq!(next_batch_of(&queue), Some(vec!["1".into(), "2".into()]));
    }

    #[test]
    fn a_full_batch_is_handed_over_at_once() {
        let queue = Arc::new(Queue::new(Duration::from_secs(3600)));
        for id in 0..BATCH_MAX as u64 {
            queue.push(history(id));
        }
        assert_eq!(next_batch_of(&queue).map(|b| b.len()), Some(BATCH_MAX));
    }

    #[test]
    fn when_the_last_journal_goes_the_writer_gets_what_is_left_then_stops() {
        let queue = Arc::new(Queue::new(Duration::from_secs(3600)));
        let sender = Sender(queue.clone());
        queue.push(history(7));
        drop(sender);
        assert_eq!(next_batch_of(&queue), Some(vec!["7".into()]));
        assert_eq!(next_batch_of(&queue), None);
    }

    #[test]
    fn the_writer_wakes_for_a_record_that_comes_while_it_waits() {
        let queue = Arc::new(Queue::new(Duration::from_millis(1)));
        let (tx, rx) = mpsc::channel();
        let q = queue.clone();
        std::thread::spawn(move || {
            let _ = tx.send(q.next_batch().map(|b| ids(&b)));
        });
        // The writer is (most likely) asleep on an empty queue by now.
        std::thread::sleep(Duration::from_millis(50));
        queue.push(history(9));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10))
                .expect("the writer did not wake"),
            Some(vec!["9".into()])
        );
    }
}
