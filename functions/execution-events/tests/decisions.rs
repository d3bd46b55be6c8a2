//! What execution-events decides for each execution status, against in-memory ports.

use serde_json::{Value, json};
use sluice_core::interrupt::live_attempts;
use sluice_core::model::{AttemptKey, AttemptState, Lease};
use sluice_core::ports::{CapacityPool, JobStore, TaskUpdate};
use sluice_core::testing::{ScriptedCompute, World, launching_attempt};
use sluice_core::{ErrorName, JobId, JobState, TaskId, TaskState};
use sluice_fn_execution_events::handle;

const PIPELINE: &str = r#"
name = "p"
[input]
columns = { n = "integer" }
[task]
command = ["true", "{output}"]
[parallelism]
max = 4
"#;

fn event(job: &str, status: &str, redrives: u32) -> Value {
    json!({
        "version": "0", "id": "e-1", "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states", "account": "000000000000", "time": "2026-12-03T10:00:00Z",
        "region": "us-east-1", "resources": [],
        "detail": {
            // The ARN World::running_job records on the job.
            "executionArn": format!("arn:aws:states:local:000000000000:execution:test:{job}"),
            "stateMachineArn": "arn:aws:states:local:000000000000:stateMachine:test",
            "name": job, "status": status, "startDate": 1764756000000_i64,
            // The execution stops now: after everything the test set up before the event.
            "stopDate": chrono::Utc::now().timestamp_millis(),
            "input": json!({"jobId": job, "pipeline": "p"}).to_string(),
            "inputDetails": {"included": true}, "output": null, "outputDetails": null,
            "error": if status == "RUNNING" { Value::Null } else { json!("Sluice.Cancelled") },
            "cause": if status == "RUNNING" { Value::Null } else { json!("wrong input") },
            "redriveCount": redrives
        }
    })
}

/// A job with three tasks: t-0 succeeded, t-1 running attempt 1, t-2 pending; a lease of 3.
async fn world() -> (World, JobId) {
    let w = World::declared(sluice_fn_execution_events::PORT_CALLS);
    w.pipeline(PIPELINE);
    let job = w.running_job("p-1", "p", 3).await;
    // Launch's and task-events' doing, not execution-events'.
    let restriction = w.lift();
    let jobs = &w.jobs;
    for (task, state) in [
        ("t-0", AttemptState::Succeeded),
        ("t-1", AttemptState::Running),
    ] {
        let key = AttemptKey {
            job_id: job.id.clone(),
            task_id: TaskId::new(task).unwrap(),
            number: 1,
        };
        jobs.create_attempt(&launching_attempt(
            key.clone(),
            &format!("tok-{task}"),
            Some(ScriptedCompute::id_of(&key)),
        ))
        .await
        .unwrap();
        jobs.transition_attempt(&key, state, Default::default())
            .await
            .unwrap();
        jobs.transition_task(
            &job.id,
            &key.task_id,
            TaskState::Running,
            TaskUpdate::default(),
        )
        .await
        .unwrap();
    }
    jobs.transition_task(
        &job.id,
        &TaskId::new("t-0").unwrap(),
        TaskState::Succeeded,
        TaskUpdate::default(),
    )
    .await
    .unwrap();
    w.capacity
        .acquire(&Lease {
            job_id: job.id.clone(),
            slots: 3,
            acquired_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    w.restore(restriction);
    (w, job.id)
}

async fn state(w: &World, job: &JobId) -> (JobState, Option<String>, u32) {
    let j = w.jobs.get_job(job).await.unwrap().unwrap();
    (j.state, j.reason, j.redrive_count)
}

async fn task_state(w: &World, job: &JobId, task: &str) -> TaskState {
    w.jobs
        .get_task(job, &TaskId::new(task).unwrap())
        .await
        .unwrap()
        .unwrap()
        .state
}

#[tokio::test]
async fn aborted_stops_the_running_tasks_releases_capacity_and_records_the_job() {
    let (w, job) = world().await;
    let report = handle(&w.services, event("p-1", "ABORTED", 0))
        .await
        .unwrap();
    assert_eq!(report.interrupted, 1);
    assert_eq!(report.job_state, Some(JobState::Aborted));
    // Only the live attempt is stopped on compute; the finished task is left alone.
    assert_eq!(w.compute.stops(), ["task/p-1/t-1#1"]);
    assert!(
        w.capacity.leases.lock().unwrap().is_empty(),
        "lease released"
    );
    let (st, reason, _) = state(&w, &job).await;
    assert_eq!(st, JobState::Aborted);
    assert!(reason.unwrap().contains("wrong input"));
    assert_eq!(task_state(&w, &job, "t-0").await, TaskState::Succeeded);
    assert_eq!(task_state(&w, &job, "t-1").await, TaskState::Retrying);
    let a = w
        .jobs
        .get_attempt(&AttemptKey {
            job_id: job.clone(),
            task_id: TaskId::new("t-1").unwrap(),
            number: 1,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.state, AttemptState::Interrupted);
    assert_eq!(a.stop_code.as_deref(), Some("JobStopped"));
}

#[tokio::test]
async fn the_same_event_delivered_twice_acts_once() {
    let (w, job) = world().await;
    handle(&w.services, event("p-1", "ABORTED", 0))
        .await
        .unwrap();
    let second = handle(&w.services, event("p-1", "ABORTED", 0))
        .await
        .unwrap();
    assert_eq!(second.interrupted, 0);
    assert_eq!(w.compute.stops().len(), 1, "no second stop");
    assert!(
        second.action.contains("already ABORTED"),
        "{}",
        second.action
    );
    assert_eq!(state(&w, &job).await.0, JobState::Aborted);
}

#[tokio::test]
async fn timed_out_fails_the_job_and_failed_keeps_a_recorded_reason() {
    let (w, job) = world().await;
    handle(&w.services, event("p-1", "TIMED_OUT", 0))
        .await
        .unwrap();
    let (st, reason, _) = state(&w, &job).await;
    assert_eq!(st, JobState::Failed);
    assert!(reason.unwrap().starts_with("the execution timed out"));
    let later = handle(&w.services, event("p-1", "FAILED", 0))
        .await
        .unwrap();
    assert!(
        later.action.contains("already FAILED (kept)"),
        "{}",
        later.action
    );
    assert!(
        state(&w, &job)
            .await
            .1
            .unwrap()
            .starts_with("the execution timed out")
    );
}

#[tokio::test]
async fn a_redrive_reopens_the_job_and_stale_events_of_the_run_before_change_nothing() {
    let (w, job) = world().await;
    handle(&w.services, event("p-1", "ABORTED", 0))
        .await
        .unwrap();
    let running = handle(&w.services, event("p-1", "RUNNING", 1))
        .await
        .unwrap();
    assert_eq!(running.job_state, Some(JobState::Running));
    assert_eq!(state(&w, &job).await, (JobState::Running, None, 1));
    assert_eq!(
        w.capacity.slots_of("p-1"),
        Some(3),
        "capacity leased again for the tasks (min of parallelism 4 and 3 tasks)"
    );
    // The ABORTED event of run 0, delivered late: stale.
    let stale = handle(&w.services, event("p-1", "ABORTED", 0))
        .await
        .unwrap();
    assert!(
        stale.action.starts_with("ignored: stale"),
        "{}",
        stale.action
    );
    assert_eq!(state(&w, &job).await.0, JobState::Running);
    // The same RUNNING event again: the job already counts this run.
    let dup = handle(&w.services, event("p-1", "RUNNING", 1))
        .await
        .unwrap();
    assert!(dup.action.contains("already counts"), "{}", dup.action);
    // A plain start (redrive count 0) never reopens anything.
    let w2 = World::declared(sluice_fn_execution_events::PORT_CALLS);
    w2.pipeline(PIPELINE);
    w2.running_job("p-2", "p", 1).await;
    let start = handle(&w2.services, event("p-2", "RUNNING", 0))
        .await
        .unwrap();
    assert!(start.action.starts_with("ignored"), "{}", start.action);
}

#[tokio::test]
async fn a_stop_that_fails_on_compute_still_records_the_attempt() {
    let (w, job) = world().await;
    *w.compute.fail_stops.lock().unwrap() = true;
    let report = handle(&w.services, event("p-1", "ABORTED", 0))
        .await
        .unwrap();
    assert_eq!(report.interrupted, 1);
    assert!(
        live_attempts(&w.services, &job, &TaskId::new("t-1").unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn unknown_jobs_and_truncated_events() {
    let (w, _) = world().await;
    let other = handle(&w.services, event("p-9", "ABORTED", 0))
        .await
        .unwrap();
    assert!(other.action.contains("no job 'p-9'"), "{}", other.action);
    let mut truncated = event("p-1", "ABORTED", 0);
    truncated["detail"]
        .as_object_mut()
        .unwrap()
        .remove("status");
    let e = handle(&w.services, truncated).await.unwrap_err();
    assert_eq!(e.name, ErrorName::InvalidInput);
    assert!(e.cause.contains("status"), "{}", e.cause);
    let e = handle(
        &w.services,
        json!({"detail-type": "Nope", "source": "x", "detail": {}}),
    )
    .await
    .unwrap_err();
    assert!(
        e.cause.contains("unsupported event type 'Nope'"),
        "{}",
        e.cause
    );
    assert!(w.compute.stops().is_empty());
}

#[tokio::test]
async fn events_of_an_execution_the_job_has_moved_on_from_change_nothing() {
    let (w, job) = world().await;
    // A re-run (a new execution) recorded itself on the job; the old one's end arrives late.
    w.jobs
        .transition_job(
            &job,
            JobState::Running,
            sluice_core::model::JobUpdate {
                execution_arn: Some(
                    "arn:aws:states:us-east-1:000000000000:execution:sluice-pipeline:p-1-rerun"
                        .into(),
                ),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let late = handle(&w.services, event("p-1", "FAILED", 0))
        .await
        .unwrap();
    assert!(
        late.action.starts_with("ignored: stale event of execution"),
        "{}",
        late.action
    );
    assert!(
        w.compute.stops().is_empty(),
        "the re-run's tasks are left alone"
    );
    assert_eq!(w.capacity.slots_of("p-1"), Some(3));
    assert_eq!(state(&w, &job).await.0, JobState::Running);
}

#[tokio::test]
async fn a_rerun_starting_while_the_end_of_the_run_before_is_handled_keeps_what_it_started() {
    let (w, job) = world().await;
    let ended = event("p-1", "FAILED", 0);
    // Between the handler's read of the job (still on the run that ended) and its writes, a
    // re-run records its execution, leases capacity and launches t-1 again: the interleaving
    // that left a re-run waiting forever for slots its predecessor's late end took away.
    let (jobs, capacity, guard, id) = (
        w.jobs.clone(),
        w.capacity.clone(),
        w.guard.clone(),
        job.clone(),
    );
    w.jobs.after_next_get_job(async move {
        let restriction = guard.lift();
        let later = chrono::Utc::now() + chrono::Duration::seconds(1);
        let update = sluice_core::model::JobUpdate {
            execution_arn: Some(RERUN.into()),
            ..Default::default()
        };
        let t = jobs.transition_job(&id, JobState::Running, update).await;
        assert!(t.unwrap().applied());
        capacity
            .acquire(&Lease {
                job_id: id.clone(),
                slots: 2,
                acquired_at: later,
            })
            .await
            .unwrap();
        let key = AttemptKey {
            job_id: id.clone(),
            task_id: TaskId::new("t-1").unwrap(),
            number: 2,
        };
        let mut attempt =
            launching_attempt(key.clone(), "tok-rerun", Some(ScriptedCompute::id_of(&key)));
        attempt.started_at = later;
        jobs.create_attempt(&attempt).await.unwrap();
        guard.restore(restriction);
    });
    let report = handle(&w.services, ended).await.unwrap();
    // The run that ended: its attempt stopped. The re-run's: left running.
    assert_eq!(w.compute.stops(), ["task/p-1/t-1#1"]);
    assert_eq!(report.interrupted, 1);
    let rerun_attempt = w
        .jobs
        .get_attempt(&AttemptKey {
            job_id: job.clone(),
            task_id: TaskId::new("t-1").unwrap(),
            number: 2,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rerun_attempt.state, AttemptState::Launching);
    assert_eq!(
        w.capacity.slots_of("p-1"),
        Some(2),
        "the re-run's lease stays"
    );
    let j = w.jobs.get_job(&job).await.unwrap().unwrap();
    assert_eq!(
        (j.state, j.execution_arn.as_deref()),
        (JobState::Running, Some(RERUN))
    );
    assert!(
        report.action.contains("a newer run started"),
        "{}",
        report.action
    );
}

const RERUN: &str = "arn:aws:states:us-east-1:000000000000:execution:sluice-pipeline:p-1-rerun";
