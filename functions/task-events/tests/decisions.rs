//! What task-events decides for each way a container stops, against in-memory ports:
//! duplicates and stale events, attempts sluice already interrupted, the boundary where an
//! application error turns into RetriesExhausted, and success without a result.

use serde_json::{Value, json};
use sluice_core::model::{AttemptKey, AttemptState, ObjectRef};
use sluice_core::ports::{JobStore, TaskUpdate, layout};
use sluice_core::testing::{WorkflowCall, World, launching_attempt};
use sluice_core::{JobId, TaskId, TaskState};
use sluice_fn_task_events::handle;

const PIPELINE: &str = r#"
name = "p"
[input]
columns = { n = "integer" }
[task]
command = ["work", "{output}"]
[retry]
task_failed_attempts = 2
"#;

async fn world() -> (World, JobId) {
    let w = World::new();
    w.pipeline(PIPELINE);
    let job = w.running_job("p-1", "p", 1).await;
    (w, job.id)
}

fn key(job: &JobId, n: u32) -> AttemptKey {
    AttemptKey {
        job_id: job.clone(),
        task_id: TaskId::new("t-0").unwrap(),
        number: n,
    }
}

/// Records attempt `n` of t-0 RUNNING, as launch leaves it.
async fn launched(w: &World, job: &JobId, n: u32) {
    let k = key(job, n);
    w.jobs
        .create_attempt(&launching_attempt(
            k.clone(),
            &format!("tok-{n}"),
            Some(format!("arn:task/{n}")),
        ))
        .await
        .unwrap();
    w.jobs
        .transition_attempt(&k, AttemptState::Running, Default::default())
        .await
        .unwrap();
    w.jobs
        .transition_task(
            job,
            &k.task_id,
            TaskState::Running,
            TaskUpdate {
                attempts: Some(n),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

fn stopped(job: &JobId, n: u32, exit: i32, stop_code: &str, version: u64) -> Value {
    json!({
        "version": "0", "id": format!("ev-{n}-{version}"), "detail-type": "ECS Task State Change",
        "source": "aws.ecs", "account": "000000000000", "time": "2026-12-03T10:00:00Z",
        "region": "us-east-1", "resources": [format!("arn:task/{n}")],
        "detail": {
            "taskArn": format!("arn:task/{n}"), "lastStatus": "STOPPED", "desiredStatus": "STOPPED",
            "stopCode": stop_code, "stoppedReason": "Essential container in task exited",
            "version": version,
            "containers": [{"name": "worker", "exitCode": exit, "lastStatus": "STOPPED"}],
            "overrides": {"containerOverrides": [{"name": "worker", "environment": [
                {"name": "SLUICE_JOB_ID", "value": job.as_str()},
                {"name": "SLUICE_TASK_ID", "value": "t-0"},
                {"name": "SLUICE_ATTEMPT", "value": n.to_string()}
            ]}]}
        }
    })
}

fn failures(w: &World) -> Vec<(String, String)> {
    w.workflows
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            WorkflowCall::Failure { token, error, .. } => Some((token, error)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn application_errors_spend_the_budget_and_the_last_one_is_retries_exhausted() {
    let (w, job) = world().await;
    launched(&w, &job, 1).await;
    handle(
        &w.services,
        stopped(&job, 1, 3, "EssentialContainerExited", 2),
    )
    .await
    .unwrap();
    launched(&w, &job, 2).await;
    handle(
        &w.services,
        stopped(&job, 2, 3, "EssentialContainerExited", 2),
    )
    .await
    .unwrap();
    assert_eq!(
        failures(&w),
        [
            ("tok-1".to_string(), "Sluice.TaskFailed".to_string()),
            ("tok-2".to_string(), "Sluice.RetriesExhausted".to_string())
        ]
    );
    let t = w
        .jobs
        .get_task(&job, &TaskId::new("t-0").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.state, TaskState::Failed);
}

#[tokio::test]
async fn interrupted_attempts_never_spend_the_application_budget() {
    let (w, job) = world().await;
    // Attempt 1 was left by a dead runner and interrupted on redrive.
    launched(&w, &job, 1).await;
    sluice_core::interrupt::interrupt_job(
        &w.services,
        &job,
        sluice_core::Interruption::RunnerLost,
        "runner died",
    )
    .await
    .unwrap();
    // Its late STOPPED event changes nothing and reports nothing.
    let late = handle(
        &w.services,
        stopped(&job, 1, 137, "EssentialContainerExited", 3),
    )
    .await
    .unwrap();
    assert!(
        late.action.contains("already INTERRUPTED"),
        "{}",
        late.action
    );
    launched(&w, &job, 2).await;
    handle(
        &w.services,
        stopped(&job, 2, 3, "EssentialContainerExited", 2),
    )
    .await
    .unwrap();
    assert_eq!(
        failures(&w),
        [("tok-2".to_string(), "Sluice.TaskFailed".to_string())],
        "one application error of a budget of 2: still retried"
    );
}

#[tokio::test]
async fn duplicate_and_stale_events_change_nothing() {
    let (w, job) = world().await;
    launched(&w, &job, 1).await;
    let result = ObjectRef::new(
        "data",
        format!("{}t-0.json", layout::stage_output(&job, "tasks")),
    );
    w.objects.insert(&result, b"{}".to_vec());
    let ok = stopped(&job, 1, 0, "EssentialContainerExited", 5);
    handle(&w.services, ok.clone()).await.unwrap();
    let dup = handle(&w.services, ok).await.unwrap();
    assert!(
        dup.action.starts_with("ignored: duplicate"),
        "{}",
        dup.action
    );
    let stale = handle(
        &w.services,
        stopped(&job, 1, 1, "EssentialContainerExited", 4),
    )
    .await
    .unwrap();
    assert!(stale.action.starts_with("ignored"), "{}", stale.action);
    let successes = w
        .workflows
        .calls()
        .into_iter()
        .filter(|c| matches!(c, WorkflowCall::Success { .. }))
        .count();
    assert_eq!(successes, 1, "the token is answered once");
    let t = w
        .jobs
        .get_task(&job, &TaskId::new("t-0").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((t.state, t.result), (TaskState::Succeeded, Some(result)));
}

#[tokio::test]
async fn a_spot_reclaim_counts_reclaims_not_failures() {
    let (w, job) = world().await;
    launched(&w, &job, 1).await;
    handle(&w.services, stopped(&job, 1, 143, "SpotInterruption", 2))
        .await
        .unwrap();
    assert_eq!(
        failures(&w),
        [("tok-1".to_string(), "Sluice.SpotInterrupted".to_string())]
    );
    let t = w
        .jobs
        .get_task(&job, &TaskId::new("t-0").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((t.state, t.spot_interruptions), (TaskState::Retrying, 1));
}

#[tokio::test]
async fn unknown_tasks_are_ignored() {
    let (w, job) = world().await;
    let r = handle(
        &w.services,
        stopped(&job, 9, 0, "EssentialContainerExited", 1),
    )
    .await
    .unwrap();
    assert!(r.action.contains("not a task sluice knows"), "{}", r.action);
    assert!(w.workflows.calls().is_empty());
}

#[tokio::test]
async fn exit_0_without_the_output_file_fails_the_task_once_and_is_not_retried() {
    let (w, job) = world().await;
    launched(&w, &job, 1).await;
    let report = handle(
        &w.services,
        stopped(&job, 1, 0, "EssentialContainerExited", 1),
    )
    .await
    .unwrap();
    assert_eq!(report.classification, "output-missing");
    assert!(
        report
            .reason
            .contains("wrote no output at s3://data/jobs/p-1/stages/tasks/output/t-0.json"),
        "{}",
        report.reason
    );
    assert_eq!(
        failures(&w),
        [("tok-1".to_string(), "Sluice.OutputMissing".to_string())],
        "not Sluice.TaskFailed, which the state machine would retry"
    );
    let task = w
        .jobs
        .get_task(&job, &TaskId::new("t-0").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(task.state, TaskState::Failed);
    let attempt = w.jobs.get_attempt(&key(&job, 1)).await.unwrap().unwrap();
    assert_eq!(attempt.state, AttemptState::OutputMissing);
}

#[tokio::test]
async fn a_pipeline_may_ask_for_missing_outputs_to_be_retried() {
    let w = World::new();
    w.pipeline(&format!("{PIPELINE}retry_missing_output = true\n"));
    let job = w.running_job("p-1", "p", 1).await.id;
    launched(&w, &job, 1).await;
    handle(
        &w.services,
        stopped(&job, 1, 0, "EssentialContainerExited", 1),
    )
    .await
    .unwrap();
    assert_eq!(
        failures(&w),
        [("tok-1".to_string(), "Sluice.TaskFailed".to_string())],
        "retried as an application error, within its budget"
    );
}
