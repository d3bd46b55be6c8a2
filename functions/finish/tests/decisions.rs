//! What finish records, against in-memory ports: a redriven job that now succeeds, a job
//! whose tasks failed, and a late finish after the job was cancelled.

use sluice_core::model::JobUpdate;
use sluice_core::ports::{JobStore, TaskUpdate};
use sluice_core::testing::World;
use sluice_core::{JobId, JobState, TaskId, TaskState};
use sluice_fn_finish::{FinishInput, TASKS_FAILED, handle};

const PIPELINE: &str = r#"
name = "p"
[input]
columns = { n = "integer" }
[task]
command = ["work", "{output}"]
"#;

async fn succeed(w: &World, job: &JobId, task: &str) {
    let id = TaskId::new(task).unwrap();
    for to in [TaskState::Running, TaskState::Succeeded] {
        w.jobs
            .transition_task(job, &id, to, TaskUpdate::default())
            .await
            .unwrap();
    }
}

fn input(job: &JobId) -> FinishInput {
    FinishInput {
        job_id: job.clone(),
        execution_arn: None,
        failure: None,
    }
}

#[tokio::test]
async fn a_redriven_job_whose_tasks_all_succeeded_now_succeeds() {
    let w = World::declared(sluice_fn_finish::PORT_CALLS);
    w.pipeline(PIPELINE);
    let job = w.running_job("p-1", "p", 2).await.id;
    succeed(&w, &job, "t-0").await;
    w.jobs
        .transition_task(
            &job,
            &TaskId::new("t-1").unwrap(),
            TaskState::Failed,
            TaskUpdate::default(),
        )
        .await
        .unwrap();
    let first = handle(&w.services, input(&job)).await.unwrap();
    assert_eq!(first.status, JobState::Failed);
    assert_eq!(first.error.as_deref(), Some(TASKS_FAILED));
    assert!(
        first
            .reason
            .unwrap()
            .starts_with("1 of 2 tasks failed: t-1")
    );

    // The redrive: the job is RUNNING again and t-1 succeeds this time.
    w.jobs
        .transition_job(
            &job,
            JobState::Running,
            JobUpdate {
                redrive_count: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    succeed(&w, &job, "t-1").await;
    let second = handle(&w.services, input(&job)).await.unwrap();
    assert_eq!(
        (second.status, second.error, second.reason),
        (JobState::Succeeded, None, None)
    );
    assert_eq!((second.summary.succeeded, second.summary.failed), (2, 0));
    let j = w.jobs.get_job(&job).await.unwrap().unwrap();
    assert_eq!(
        (j.state, j.reason, j.redrive_count),
        (JobState::Succeeded, None, 1)
    );
}

#[tokio::test]
async fn a_finish_that_runs_after_the_job_was_cancelled_keeps_it_aborted() {
    let w = World::declared(sluice_fn_finish::PORT_CALLS);
    w.pipeline(PIPELINE);
    let job = w.running_job("p-2", "p", 1).await.id;
    succeed(&w, &job, "t-0").await;
    w.jobs
        .transition_job(
            &job,
            JobState::Aborted,
            JobUpdate {
                reason: Some("cancelled".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let out = handle(&w.services, input(&job)).await.unwrap();
    assert_eq!(out.status, JobState::Aborted);
    assert_eq!(out.reason.as_deref(), Some("cancelled"));
    let j = w.jobs.get_job(&job).await.unwrap().unwrap();
    assert_eq!(j.state, JobState::Aborted);
}

const NOTIFYING: &str = r#"
name = "p"
[task]
command = ["work", "{output}"]
[notify]
webhook = "https://hooks.example.invalid/T000/B000"
command = ["notify.sh", "{status}", "{job_id}"]
on = ["failed"]
"#;

#[tokio::test]
async fn an_outcome_is_announced_once_as_the_pipeline_asks() {
    use sluice_core::testing::Notification;
    let w = World::declared(sluice_fn_finish::PORT_CALLS);
    w.pipeline(NOTIFYING);
    let job = w.running_job("p-1", "p", 1).await.id;
    let failure = FinishInput {
        failure: Some(sluice_fn_finish::CaughtError {
            error: "Sluice.TasksFailed".into(),
            cause: Some("stage 'tasks': 1 of 1 tasks failed: t-0 (boom)".into()),
        }),
        ..input(&job)
    };
    // The step delivered twice (a Lambda retry): one notification per channel.
    handle(&w.services, failure.clone()).await.unwrap();
    handle(&w.services, failure).await.unwrap();
    let sent = w.notifier.sent();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    let Notification::Webhook { url, body } = &sent[0] else {
        panic!("{sent:#?}")
    };
    assert_eq!(url, "https://hooks.example.invalid/T000/B000");
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("sluice job p-1 (p) FAILED: 0 of 1 tasks succeeded. stage 'tasks'"),
        "{text}"
    );
    assert_eq!(body["job"]["status"], "FAILED");
    let Notification::Command { argv, stdin, .. } = &sent[1] else {
        panic!("{sent:#?}")
    };
    assert_eq!(argv, &["notify.sh", "FAILED", "p-1"]);
    assert_eq!(stdin["job_id"], "p-1");
}

#[tokio::test]
async fn outcomes_not_listed_are_not_announced_and_a_failed_delivery_changes_nothing() {
    let w = World::declared(sluice_fn_finish::PORT_CALLS);
    w.pipeline(NOTIFYING);
    let job = w.running_job("p-1", "p", 1).await.id;
    succeed(&w, &job, "t-0").await;
    let out = handle(&w.services, input(&job)).await.unwrap();
    assert_eq!(out.status, JobState::Succeeded);
    assert!(w.notifier.sent().is_empty(), "on = [\"failed\"] only");

    let job2 = w.running_job("p-2", "p", 1).await.id;
    *w.notifier.fail.lock().unwrap() = true;
    let out = handle(&w.services, input(&job2)).await.unwrap();
    assert_eq!(out.status, JobState::Failed, "the outcome stands");
    assert!(w.notifier.sent().is_empty());
}
