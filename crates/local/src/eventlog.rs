//! `events.jsonl`: every event the local bus carries, one JSON line each, written in batches.
//!
//! A job of short tasks puts thousands of events a second on the bus (three per attempt), and
//! most are published from the process pool's thread, between one task's end and the next
//! one's start. One write(2) per event there cost a few percent of sluice's CPU (see
//! docs/benchmarks/orchestration.md), so an event is appended to a buffer in memory and the
//! buffer is written:
//! - before the job table commits anything ([`EventLog::flush`] is the store's
//!   `before_commit` hook): the log never lags the table — once a job is recorded SUCCEEDED
//!   the STOPPED events of its tasks are in the file;
//! - by its own thread at most [`FLUSH_DELAY`] after an event that no commit followed (a
//!   long task's RUNNING event is not held back until it ends);
//! - when the log is dropped, and when `sluice` flushes before it exits.
//!
//! What a process killed with SIGKILL can lose: the events of its last [`FLUSH_DELAY`] that
//! nothing in the job table depends on yet.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::thread::Thread;
use std::time::Duration;

use crate::runtime::lock;

/// Longest an event waits in memory when no commit of the job table writes it out first.
pub const FLUSH_DELAY: Duration = Duration::from_millis(50);

/// The bus's log file and the lines not yet written to it.
pub struct EventLog {
    path: PathBuf,
    /// Held while writing, so that batches reach the file in the order they were taken.
    file: Mutex<std::fs::File>,
    pending: Mutex<Vec<u8>>,
    /// The thread that writes what no commit did; woken when the buffer stops being empty.
    flusher: Thread,
}

impl EventLog {
    /// Opens (appending) or makes the log at `path`, with its flushing thread.
    pub fn open(path: &Path) -> std::io::Result<Arc<Self>> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Weak<EventLog>>(1);
        let thread = std::thread::Builder::new()
            .name("sluice-events".into())
            .spawn(move || {
                let Ok(log) = rx.recv() else { return };
                flush_when_asked(log);
            })?;
        let log = Arc::new(Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            pending: Mutex::new(Vec::new()),
            flusher: thread.thread().clone(),
        });
        // Only a weak handle: the thread must not keep the log alive.
        let _ = tx.send(Arc::downgrade(&log));
        Ok(log)
    }

    /// Adds `event` as one line; written by the next flush.
    pub fn append(&self, event: &Value) {
        let mut pending = lock(&self.pending);
        let was_empty = pending.is_empty();
        if serde_json::to_writer(&mut *pending, event).is_ok() {
            pending.push(b'\n');
        }
        drop(pending);
        if was_empty {
            self.flusher.unpark();
        }
    }

    /// Writes every line appended so far.
    pub fn flush(&self) {
        let mut file = lock(&self.file);
        let batch = std::mem::take(&mut *lock(&self.pending));
        if batch.is_empty() {
            return;
        }
        if let Err(e) = file.write_all(&batch) {
            tracing::warn!(log = %self.path.display(), error = %e, "could not write the event log");
        }
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.flush();
        // The thread finds the log gone and ends.
        self.flusher.unpark();
    }
}

/// The flushing thread: sleeps until an event comes into an empty buffer, lets more gather for
/// [`FLUSH_DELAY`] (a commit may write them meanwhile), writes them, and sleeps again. Ends
/// when the log is gone.
fn flush_when_asked(log: Weak<EventLog>) {
    loop {
        std::thread::park();
        if log.strong_count() == 0 {
            return;
        }
        std::thread::sleep(FLUSH_DELAY);
        match log.upgrade() {
            Some(log) => log.flush(),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lines(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn appended_events_reach_the_file_at_a_flush_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let log = EventLog::open(&path).unwrap();
        for n in 0..3 {
            log.append(&json!({"n": n}));
        }
        log.flush();
        assert_eq!(
            lines(&path),
            vec![json!({"n": 0}), json!({"n": 1}), json!({"n": 2})]
        );
        // A flush with nothing new writes nothing twice.
        log.flush();
        assert_eq!(lines(&path).len(), 3);
    }

    #[test]
    fn an_event_no_flush_follows_is_written_by_the_thread_soon_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let log = EventLog::open(&path).unwrap();
        {
            // Holding the file as a flush would, so that a slow test thread cannot find the
            // flushing thread's write already done.
            let _file = lock(&log.file);
            log.append(&json!({"lastStatus": "RUNNING"}));
            // Not written at once: it waits for more or for a commit.
            assert!(lines(&path).is_empty());
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while lines(&path).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the flushing thread never wrote the event"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(lines(&path), vec![json!({"lastStatus": "RUNNING"})]);
        // And again after it went back to sleep.
        log.append(&json!({"lastStatus": "STOPPED"}));
        while lines(&path).len() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "second event never written"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn dropping_the_log_writes_what_it_holds_and_reopening_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let log = EventLog::open(&path).unwrap();
        log.append(&json!({"n": 1}));
        drop(log);
        assert_eq!(lines(&path), vec![json!({"n": 1})]);
        let log = EventLog::open(&path).unwrap();
        log.append(&json!({"n": 2}));
        log.flush();
        assert_eq!(lines(&path), vec![json!({"n": 1}), json!({"n": 2})]);
    }
}
