//! What launch decides, against in-memory ports: same-token redeliveries, the crash between
//! recording an attempt and starting it, superseded attempts, finished tasks, launch failures.

use serde_json::json;
use sluice_core::model::{AttemptKey, AttemptState};
use sluice_core::ports::{JobStore, TaskUpdate};
use sluice_core::testing::{ScriptedCompute, WorkflowCall, World, launching_attempt};
use sluice_core::{ErrorName, JobId, TaskId, TaskState};
use sluice_fn_launch::{LaunchInput, LaunchStatus, handle};

const PIPELINE: &str = r#"
name = "p"
[input]
columns = { n = "integer" }
[task]
command = ["work", "--out", "{output}"]
"#;

async fn world() -> (World, JobId) {
    let w = World::declared(sluice_fn_launch::PORT_CALLS);
    w.pipeline(PIPELINE);
    let job = w.running_job("p-1", "p", 2).await;
    (w, job.id)
}

fn input(job: &JobId, task: &str, token: &str) -> LaunchInput {
    LaunchInput {
        job_id: job.clone(),
        task_id: TaskId::new(task).unwrap(),
        task_token: token.into(),
    }
}

fn key(job: &JobId, task: &str, n: u32) -> AttemptKey {
    AttemptKey {
        job_id: job.clone(),
        task_id: TaskId::new(task).unwrap(),
        number: n,
    }
}

#[tokio::test]
async fn the_same_invocation_delivered_twice_launches_once() {
    let (w, job) = world().await;
    let first = handle(&w.services, input(&job, "t-0", "tok-a"))
        .await
        .unwrap();
    let second = handle(&w.services, input(&job, "t-0", "tok-a"))
        .await
        .unwrap();
    assert_eq!((first.status, first.attempt), (LaunchStatus::Launched, 1));
    assert_eq!(
        (second.status, second.attempt),
        (LaunchStatus::AlreadyLaunched, 1)
    );
    assert_eq!(w.compute.launches(), [key(&job, "t-0", 1)]);
    let a = w
        .jobs
        .get_attempt(&key(&job, "t-0", 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.state, AttemptState::Running);
    assert_eq!(a.compute_id, Some(ScriptedCompute::id_of(&a.key)));
}

#[tokio::test]
async fn a_launch_that_died_after_recording_its_attempt_is_completed_by_the_retry() {
    let (w, job) = world().await;
    // The first delivery recorded the attempt and died before compute started it: the
    // attempt is LAUNCHING with no compute id.
    let crashed = launching_attempt(key(&job, "t-1", 1), "tok-b", None);
    assert!(w.jobs.create_attempt(&crashed).await.unwrap());
    let retried = handle(&w.services, input(&job, "t-1", "tok-b"))
        .await
        .unwrap();
    assert_eq!(
        (retried.status, retried.attempt),
        (LaunchStatus::Launched, 1)
    );
    assert_eq!(
        w.compute.launches(),
        [key(&job, "t-1", 1)],
        "launched exactly once"
    );
    let again = handle(&w.services, input(&job, "t-1", "tok-b"))
        .await
        .unwrap();
    assert_eq!(again.status, LaunchStatus::AlreadyLaunched);
    assert_eq!(w.compute.launches().len(), 1);
    let t = w
        .jobs
        .get_task(&job, &TaskId::new("t-1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((t.state, t.attempts), (TaskState::Running, 1));
}

#[tokio::test]
async fn a_new_token_for_a_task_with_a_live_attempt_stops_the_old_one_first() {
    let (w, job) = world().await;
    handle(&w.services, input(&job, "t-0", "tok-a"))
        .await
        .unwrap();
    // The Task state timed out and was retried: a new token, the old attempt still RUNNING.
    let next = handle(&w.services, input(&job, "t-0", "tok-b"))
        .await
        .unwrap();
    assert_eq!(next.attempt, 2);
    assert_eq!(
        w.compute.stops(),
        [ScriptedCompute::id_of(&key(&job, "t-0", 1))]
    );
    let old = w
        .jobs
        .get_attempt(&key(&job, "t-0", 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.state, AttemptState::Interrupted);
    assert_eq!(old.stop_code.as_deref(), Some("Superseded"));
    let new = w
        .jobs
        .get_attempt(&key(&job, "t-0", 2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new.state, AttemptState::Running);
}

#[tokio::test]
async fn a_task_that_already_succeeded_is_reported_back_not_run() {
    let (w, job) = world().await;
    let t0 = TaskId::new("t-0").unwrap();
    handle(&w.services, input(&job, "t-0", "tok-a"))
        .await
        .unwrap();
    w.jobs
        .transition_task(&job, &t0, TaskState::Succeeded, TaskUpdate::default())
        .await
        .unwrap();
    let out = handle(&w.services, input(&job, "t-0", "tok-redrive"))
        .await
        .unwrap();
    assert_eq!(out.status, LaunchStatus::AlreadySucceeded);
    assert_eq!(w.compute.launches().len(), 1, "not launched again");
    assert!(matches!(
        w.workflows.calls().last(),
        Some(WorkflowCall::Success { token, output }) if token == "tok-redrive" && output["taskId"] == json!("t-0")
    ));
}

#[tokio::test]
async fn unknown_tasks_are_invalid_input() {
    let (w, job) = world().await;
    let e = handle(&w.services, input(&job, "t-7", "tok"))
        .await
        .unwrap_err();
    assert_eq!(e.name, ErrorName::InvalidInput);
    assert!(e.cause.contains("no task 't-7'"), "{}", e.cause);
    assert!(w.compute.launches().is_empty());
}

/// The job's result (the last stage that writes something) is kept: its file output is not
/// tagged for expiry like other task outputs (SLUICE_OUTPUT_KEEP for the entrypoint).
#[tokio::test]
async fn the_output_of_the_result_stage_is_kept() {
    let (w, job) = world().await;
    handle(&w.services, input(&job, "t-0", "tok-a"))
        .await
        .unwrap();
    let requests = w.compute.requests.lock().unwrap().clone();
    assert_eq!(
        requests[0]
            .env
            .get("SLUICE_OUTPUT_KEEP")
            .map(String::as_str),
        Some("1")
    );

    // A stage before the last that writes is not the result: its outputs expire.
    let two = World::declared(sluice_fn_launch::PORT_CALLS);
    two.pipeline(
        r#"
name = "p"
[input]
columns = { n = "integer" }
[[stage]]
name = "first"
command = ["work", "{output}"]
[[stage]]
name = "second"
command = ["merge", "{stages.first}", "{output}"]
"#,
    );
    let job = two.running_job("p-2", "p", 1).await.id;
    handle(&two.services, input(&job, "t-0", "tok-b"))
        .await
        .unwrap();
    let requests = two.compute.requests.lock().unwrap().clone();
    assert_eq!(requests[0].env.get("SLUICE_OUTPUT_KEEP"), None);
    assert!(requests[0].env.contains_key("SLUICE_RESULT_URI"));
}

/// A compute that names its tasks ahead (the local pool) gets the attempt recorded RUNNING
/// under that name in the write that records it; one that names them at launch (ECS, Batch)
/// gets LAUNCHING, then RUNNING with the id: one write more.
#[tokio::test]
async fn a_task_named_ahead_is_recorded_running_in_one_write_less() {
    let mut writes = Vec::new();
    for names_ahead in [false, true] {
        let (w, job) = world().await;
        *w.compute.names_ahead.lock().unwrap() = names_ahead;
        let before = w.jobs.writes();
        let out = handle(&w.services, input(&job, "t-0", "tok-a"))
            .await
            .unwrap();
        writes.push(w.jobs.writes() - before);
        let k = key(&job, "t-0", 1);
        let id = if names_ahead {
            ScriptedCompute::ahead_id_of(&k)
        } else {
            ScriptedCompute::id_of(&k)
        };
        assert_eq!(out.status, LaunchStatus::Launched);
        assert_eq!(out.compute_id.as_deref(), Some(id.as_str()));
        let a = w.jobs.get_attempt(&k).await.unwrap().unwrap();
        assert_eq!(
            (a.state, a.compute_id),
            (AttemptState::Running, Some(id.clone()))
        );
        let request = w.compute.requests.lock().unwrap()[0].clone();
        assert_eq!(
            request.compute_id,
            names_ahead.then_some(id),
            "the task is started under the name recorded"
        );
        // A second delivery of the same invocation still launches nothing.
        let again = handle(&w.services, input(&job, "t-0", "tok-a"))
            .await
            .unwrap();
        assert_eq!(again.status, LaunchStatus::AlreadyLaunched);
        assert_eq!(w.compute.launches().len(), 1);
    }
    assert_eq!(
        writes[1] + 1,
        writes[0],
        "writes without / with a name ahead: {writes:?}"
    );
}
