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
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the writer gathers records before committing them.
pub const BATCH_WINDOW: Duration = Duration::from_millis(50);
/// Most records in one transaction.
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
    tx: mpsc::Sender<Record>,
}

impl Journal {
    /// Starts the writer thread on `store`'s connection.
    pub fn start(store: SqliteJobStore) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("sluice-journal".into())
            .spawn(move || writer(store, rx))?;
        Ok(Self { tx })
    }

    fn send(&self, record: Record) {
        // The writer lives as long as any sender: a send fails only while the process exits.
        let _ = self.tx.send(record);
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

fn writer(store: SqliteJobStore, rx: mpsc::Receiver<Record>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let deadline = Instant::now() + BATCH_WINDOW;
        while batch.len() < BATCH_MAX && !matches!(batch.last(), Some(Record::Flush(_))) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
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
