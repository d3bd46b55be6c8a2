//! DynamoJobStore against moto: every JobStore method, conditional transitions, the
//! event-version guard and a race of concurrent transitions.

use crate::common::Moto;
use crate::moto_or_skip;
use chrono::{DateTime, Duration, Utc};
use sluice_aws::DynamoJobStore;
use sluice_core::model::{
    Attempt, AttemptKey, AttemptState, AttemptUpdate, Capacity, Job, JobState, JobUpdate,
    ObjectRef, Task, TaskState,
};
use sluice_core::ports::{JobStore, TaskUpdate, Transition};
use sluice_core::{JobId, TaskId};
use std::collections::BTreeMap;

pub async fn store(moto: &Moto) -> DynamoJobStore {
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk().await);
    sluice_aws::dynamo::create_table(&client, "sluice")
        .await
        .unwrap();
    DynamoJobStore::new(client, "sluice")
}

fn t0() -> DateTime<Utc> {
    "2026-11-01T10:00:00Z".parse().unwrap()
}

pub fn job(id: &str, created: DateTime<Utc>) -> Job {
    Job::new(
        JobId::new(id).unwrap(),
        "ber",
        ObjectRef::new("ingest", format!("ber/{id}.csv")),
        created,
    )
}

fn task(job: &str, id: &str, index: u32) -> Task {
    let params = BTreeMap::from([
        ("snr_db".to_owned(), serde_json::json!(index as f64 * 1.5)),
        ("bits".to_owned(), serde_json::json!(100_000)),
        (
            "label".to_owned(),
            serde_json::json!(format!("row {index}")),
        ),
    ]);
    let (job, id) = (JobId::new(job).unwrap(), TaskId::new(id).unwrap());
    Task::pending(job, id, "", index, params, t0())
}

pub fn attempt(job: &str, task: &str, number: u32) -> Attempt {
    Attempt {
        key: AttemptKey {
            job_id: JobId::new(job).unwrap(),
            task_id: TaskId::new(task).unwrap(),
            number,
        },
        state: AttemptState::Launching,
        capacity: Capacity::Spot,
        task_token: format!("token-{task}-{number}"),
        compute_id: None,
        exit_code: None,
        stop_code: None,
        stopped_reason: None,
        event_version: None,
        started_at: t0(),
        stopped_at: None,
        reclaim_notice: None,
        answer: None,
        answered: false,
    }
}

#[tokio::test]
async fn dynamo_jobs_create_get_list_transition() {
    let moto = moto_or_skip!();
    let store = store(&moto).await;

    let first = job("ber-a", t0());
    assert!(store.create_job(&first).await.unwrap());
    // A second delivery of the same upload writes nothing.
    let mut dup = first.clone();
    dup.pipeline = "other".into();
    assert!(!store.create_job(&dup).await.unwrap());
    assert_eq!(store.get_job(&first.id).await.unwrap(), Some(first.clone()));
    assert_eq!(
        store.get_job(&JobId::new("nope").unwrap()).await.unwrap(),
        None
    );

    // Created out of order, listed newest first; ties in whole seconds still sort.
    store
        .create_job(&job("ber-c", t0() + Duration::milliseconds(1500)))
        .await
        .unwrap();
    store
        .create_job(&job("ber-b", t0() + Duration::seconds(1)))
        .await
        .unwrap();
    let ids = |jobs: Vec<Job>| {
        jobs.into_iter()
            .map(|j| j.id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.list_jobs(10).await.unwrap()),
        ["ber-c", "ber-b", "ber-a"]
    );
    assert_eq!(ids(store.list_jobs(2).await.unwrap()), ["ber-c", "ber-b"]);
    assert!(store.list_jobs(0).await.unwrap().is_empty());

    let arn = "arn:aws:states:us-east-1:123456789012:execution:sluice:ber-a";
    let running = store
        .transition_job(
            &first.id,
            JobState::Running,
            JobUpdate {
                execution_arn: Some(arn.into()),
                task_count: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let Transition::Applied(running) = running else {
        panic!("expected Applied, got {running:?}")
    };
    assert_eq!(running.state, JobState::Running);
    assert_eq!(running.execution_arn.as_deref(), Some(arn));
    assert_eq!(running.task_count, 3);
    assert!(running.updated_at > first.updated_at);

    let results = vec![ObjectRef::new(
        "data",
        "jobs/ber-a/aggregate_results/results.csv",
    )];
    let done = store
        .transition_job(
            &first.id,
            JobState::Succeeded,
            JobUpdate {
                results: Some(results.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(matches!(&done, Transition::Applied(j) if j.results == results));

    // SUCCEEDED -> FAILED is not allowed: Rejected with the current record, unchanged.
    let late = store
        .transition_job(
            &first.id,
            JobState::Failed,
            JobUpdate {
                reason: Some("late".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let Transition::Rejected(current) = late else {
        panic!("expected Rejected, got {late:?}")
    };
    assert_eq!(current.state, JobState::Succeeded);
    assert_eq!(current.reason, None);
    // Nothing moves *to* SUBMITTED.
    assert!(matches!(
        store.transition_job(&first.id, JobState::Submitted, JobUpdate::default()).await.unwrap(),
        Transition::Rejected(j) if j.state == JobState::Succeeded
    ));
    assert_eq!(
        store
            .transition_job(
                &JobId::new("ghost").unwrap(),
                JobState::Running,
                JobUpdate::default()
            )
            .await
            .unwrap(),
        Transition::Missing
    );
}

#[tokio::test]
async fn dynamo_tasks_in_index_order_and_never_reset() {
    let moto = moto_or_skip!();
    let store = store(&moto).await;
    // Ids that sort differently from their index, and a task of another job.
    let tasks = vec![
        task("j1", "zeta", 0),
        task("j1", "alpha", 1),
        task("j1", "mid", 2),
    ];
    store.put_tasks(&tasks).await.unwrap();
    store.put_tasks(&[task("j2", "alpha", 0)]).await.unwrap();
    let listed = store.list_tasks(&JobId::new("j1").unwrap()).await.unwrap();
    assert_eq!(listed, tasks);

    let j1 = JobId::new("j1").unwrap();
    let alpha = TaskId::new("alpha").unwrap();
    let r = store
        .transition_task(
            &j1,
            &alpha,
            TaskState::Running,
            TaskUpdate {
                attempts: Some(1),
                last_error: Some(Some("boom".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        matches!(&r, Transition::Applied(t) if t.attempts == 1 && t.last_error.as_deref() == Some("boom"))
    );
    let result = ObjectRef::new("data", "jobs/j1/task_results/alpha.json");
    let r = store
        .transition_task(
            &j1,
            &alpha,
            TaskState::Succeeded,
            TaskUpdate {
                result: Some(result.clone()),
                spot_interruptions: Some(2),
                last_error: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let Transition::Applied(done) = r else {
        panic!("{r:?}")
    };
    assert_eq!(done.result, Some(result));
    assert_eq!(done.spot_interruptions, 2);
    assert_eq!(done.last_error, None, "Some(None) clears the error");

    // Re-planning (a redrive) puts the same tasks again: the finished one keeps its state.
    store.put_tasks(&tasks).await.unwrap();
    let again = store.get_task(&j1, &alpha).await.unwrap().unwrap();
    assert_eq!(again.state, TaskState::Succeeded);
    // SUCCEEDED is terminal.
    assert!(matches!(
        store.transition_task(&j1, &alpha, TaskState::Running, TaskUpdate::default()).await.unwrap(),
        Transition::Rejected(t) if t.state == TaskState::Succeeded
    ));
    assert_eq!(
        store
            .transition_task(
                &j1,
                &TaskId::new("nope").unwrap(),
                TaskState::Running,
                TaskUpdate::default()
            )
            .await
            .unwrap(),
        Transition::Missing
    );
    assert_eq!(
        store
            .get_task(&j1, &TaskId::new("nope").unwrap())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn dynamo_attempts_versions_and_compute_id() {
    let moto = moto_or_skip!();
    let store = store(&moto).await;
    let a1 = attempt("j1", "t-1", 1);
    assert!(store.create_attempt(&a1).await.unwrap());
    assert!(!store.create_attempt(&a1).await.unwrap());
    let a2 = attempt("j1", "t-1", 2);
    let a10 = attempt("j1", "t-1", 10);
    store.create_attempt(&a10).await.unwrap();
    store.create_attempt(&a2).await.unwrap();
    // Another task whose id shares a prefix must not leak into t-1's attempts.
    store
        .create_attempt(&attempt("j1", "t-10", 1))
        .await
        .unwrap();
    let numbers: Vec<u32> = store
        .list_attempts(&JobId::new("j1").unwrap(), &TaskId::new("t-1").unwrap())
        .await
        .unwrap()
        .iter()
        .map(|a| a.key.number)
        .collect();
    assert_eq!(numbers, [1, 2, 10]);
    assert_eq!(store.get_attempt(&a1.key).await.unwrap(), Some(a1.clone()));

    let arn = "arn:aws:ecs:us-east-1:123456789012:task/sluice/0123456789abcdef";
    let r = store
        .transition_attempt(
            &a1.key,
            AttemptState::Running,
            AttemptUpdate {
                compute_id: Some(arn.into()),
                event_version: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        matches!(&r, Transition::Applied(a) if a.event_version == Some(2) && a.compute_id.as_deref() == Some(arn))
    );
    let found = store
        .find_attempt_by_compute_id(arn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.key, a1.key);
    assert_eq!(
        store
            .find_attempt_by_compute_id("arn:unknown")
            .await
            .unwrap(),
        None
    );

    // A stale event (version 1 < 2) is rejected even though RUNNING -> SUCCEEDED is legal.
    let stale = store
        .transition_attempt(
            &a1.key,
            AttemptState::Succeeded,
            AttemptUpdate {
                event_version: Some(1),
                exit_code: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let Transition::Rejected(current) = stale else {
        panic!("{stale:?}")
    };
    assert_eq!(current.state, AttemptState::Running);
    assert_eq!(current.exit_code, None);
    // So is the same version delivered twice.
    assert!(matches!(
        store
            .transition_attempt(
                &a1.key,
                AttemptState::Succeeded,
                AttemptUpdate {
                    event_version: Some(2),
                    ..Default::default()
                }
            )
            .await
            .unwrap(),
        Transition::Rejected(_)
    ));

    let stopped_at: DateTime<Utc> = "2026-11-01T10:05:00Z".parse().unwrap();
    let r = store
        .transition_attempt(
            &a1.key,
            AttemptState::SpotInterrupted,
            AttemptUpdate {
                event_version: Some(5),
                stop_code: Some("SpotInterruption".into()),
                stopped_reason: Some("Your Spot Task was interrupted.".into()),
                exit_code: Some(137),
                stopped_at: Some(stopped_at),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let Transition::Applied(final_) = r else {
        panic!("{r:?}")
    };
    assert_eq!(final_.state, AttemptState::SpotInterrupted);
    assert_eq!(final_.stop_code.as_deref(), Some("SpotInterruption"));
    assert_eq!(final_.exit_code, Some(137));
    assert_eq!(final_.stopped_at, Some(stopped_at));
    assert_eq!(final_.event_version, Some(5));

    // A newer event cannot leave a final state either.
    assert!(matches!(
        store
            .transition_attempt(&a1.key, AttemptState::Succeeded, AttemptUpdate { event_version: Some(9), ..Default::default() })
            .await
            .unwrap(),
        Transition::Rejected(a) if a.state == AttemptState::SpotInterrupted
    ));
    // Without an event version only the state guards the change.
    assert!(matches!(
        store.transition_attempt(&a2.key, AttemptState::LaunchFailed, AttemptUpdate::default()).await.unwrap(),
        Transition::Applied(a) if a.state == AttemptState::LaunchFailed && a.event_version.is_none()
    ));
    let ghost = attempt("j1", "t-1", 99).key;
    assert_eq!(
        store
            .transition_attempt(&ghost, AttemptState::Running, AttemptUpdate::default())
            .await
            .unwrap(),
        Transition::Missing
    );
}

#[tokio::test]
async fn dynamo_concurrent_transitions_apply_exactly_once() {
    let moto = moto_or_skip!(serial);
    let store = store(&moto).await;
    let a = attempt("race", "t-1", 1);
    store.create_attempt(&a).await.unwrap();
    store.put_tasks(&[task("race", "t-1", 0)]).await.unwrap();

    const N: u64 = 12;
    let mut handles = Vec::new();
    for i in 0..N {
        let store = store.clone();
        let key = a.key.clone();
        handles.push(tokio::spawn(async move {
            // Half report RUNNING, half a final state: whatever the interleaving, at most one
            // of each kind can apply and the first final one wins.
            let to = if i % 2 == 0 {
                AttemptState::Running
            } else {
                AttemptState::Failed
            };
            store
                .transition_attempt(
                    &key,
                    to,
                    AttemptUpdate {
                        exit_code: Some(i as i32),
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
        }));
    }
    let mut finals = 0;
    let mut running = 0;
    for h in handles {
        match h.await.unwrap() {
            Transition::Applied(a) if a.state == AttemptState::Running => running += 1,
            Transition::Applied(_) => finals += 1,
            Transition::Rejected(_) => {}
            Transition::Missing => panic!("attempt vanished"),
        }
    }
    assert_eq!(finals, 1, "exactly one final transition applies");
    assert!(running <= 1, "RUNNING applied {running} times");

    // The same race on a task: N handlers try PENDING -> RUNNING, one wins.
    let job = JobId::new("race").unwrap();
    let tid = TaskId::new("t-1").unwrap();
    let results = futures::future::join_all((0..N).map(|i| {
        let store = store.clone();
        let (job, tid) = (job.clone(), tid.clone());
        async move {
            store
                .transition_task(
                    &job,
                    &tid,
                    TaskState::Running,
                    TaskUpdate {
                        attempts: Some(i as u32 + 1),
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(results.iter().filter(|r| r.applied()).count(), 1);
    let winner = results.iter().find_map(|r| match r {
        Transition::Applied(t) => Some(t.attempts),
        _ => None,
    });
    let stored = store.get_task(&job, &tid).await.unwrap().unwrap();
    assert_eq!(Some(stored.attempts), winner);
    assert!(results.iter().all(|r| match r {
        Transition::Rejected(t) => t.state == TaskState::Running,
        Transition::Applied(_) => true,
        Transition::Missing => false,
    }));
}

#[tokio::test]
async fn dynamo_keeps_the_job_store_contract() {
    let moto = moto_or_skip!();
    let store = store(&moto).await;
    sluice_core::testing::contract::job_store(&store, "dynamo").await;
}
