//! The job table's work per task, alone: the five requests a task of a local job makes
//! (launch: read the job, task and attempts, record the attempt running; task-events: read them
//! again, end the attempt and move the task, mark the answer sent), replayed for N tasks
//! against a SQLite job table in a temporary directory, with the store's own commit timing.
//!
//! `cargo run --release -p sluice-local --example store_per_task -- 10000`
//! prints microseconds per task (see docs/benchmarks/orchestration.md).

use chrono::Utc;
use sluice_core::model::{
    AttemptKey, AttemptState, AttemptUpdate, Job, JobUpdate, ObjectRef, Task, TokenAnswer,
};
use sluice_core::ports::{JobStore, TaskUpdate};
use sluice_core::testing::launching_attempt;
use sluice_core::{JobId, JobState, TaskId, TaskState};
use sluice_local::store::SqliteJobStore;
use std::collections::BTreeMap;
use std::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let store = SqliteJobStore::open(&dir.path().join("sluice.db"))?;
    let id = JobId::new("bench-1")?;
    let job = Job::new(
        id.clone(),
        "bench",
        ObjectRef::new("ingest", "bench/in.csv"),
        Utc::now(),
    );
    store.create_job(&job).await?;
    let tasks: Vec<Task> = (0..n)
        .map(|i| {
            let task_id = TaskId::new(format!("t-{i:06}")).expect("task id");
            let params = BTreeMap::from([("n".to_string(), serde_json::json!(i))]);
            Task::pending(id.clone(), task_id, "", i, params, Utc::now())
        })
        .collect();
    store.put_tasks(&tasks).await?;
    store
        .transition_job(&id, JobState::Running, JobUpdate::default())
        .await?;
    store.flushed().await?;

    // Tasks one after the other, or PACE_US apart (a real job's cadence: the job table then
    // commits every window, not once per thousands of tasks).
    let pace = std::env::var("PACE_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(std::time::Duration::from_micros);
    let cpu_before = cpu_seconds();
    let began = Instant::now();
    for task in &tasks {
        if let Some(pace) = pace {
            tokio::time::sleep(pace).await;
        }
        // launch
        let (_job, found) = store.get_job_task(&id, &task.id).await?.expect("job");
        let (_task, _attempts) = found.expect("task");
        let key = AttemptKey {
            job_id: id.clone(),
            task_id: task.id.clone(),
            number: 1,
        };
        let token = format!("token-{}-{}", task.id, "x".repeat(120));
        let mut attempt = launching_attempt(
            key.clone(),
            &token,
            Some(format!(
                "arn:aws:ecs:local:000000000000:task/sluice-local/{}",
                uuid::Uuid::now_v7().simple()
            )),
        );
        attempt.state = AttemptState::Running;
        let started = TaskUpdate {
            attempts: Some(1),
            ..Default::default()
        };
        assert!(
            store
                .start_attempt(&attempt, TaskState::Running, started)
                .await?
        );
        // task-events
        let (_job, found) = store.get_job_task(&id, &task.id).await?.expect("job");
        found.expect("task");
        let answer = TokenAnswer::Success {
            result: Some(ObjectRef::new("data", format!("out/{}.json", task.id))),
        };
        let update = AttemptUpdate {
            exit_code: Some(0),
            stop_code: Some("EssentialContainerExited".into()),
            stopped_reason: Some("Essential container in task exited".into()),
            event_version: Some(2),
            stopped_at: Some(Utc::now()),
            answer: Some(answer.clone()),
            ..Default::default()
        };
        let moved = TaskUpdate {
            result: Some(ObjectRef::new("data", format!("out/{}.json", task.id))),
            ..Default::default()
        };
        store
            .end_attempt(
                &key,
                AttemptState::Succeeded,
                update,
                Some((TaskState::Succeeded, moved)),
            )
            .await?;
        store.mark_answered(&key).await?;
    }
    store.flushed().await?;
    let took = began.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    println!(
        "{n} tasks: {:.1} us of CPU per task ({:.2} s wall), {} commits",
        cpu * 1e6 / f64::from(n),
        took.as_secs_f64(),
        store.commits()
    );
    Ok(())
}

/// This process's CPU time so far (user + system, all threads).
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}
