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
    let w = World::new();
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
    let w = World::new();
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
