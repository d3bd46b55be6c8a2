//! The JobStore and CapacityPool contracts: what every job table and every capacity pool must
//! do, run against the in-memory adapters here, the SQLite ones (sluice-local) and the
//! DynamoDB/Auto Scaling ones on moto (sluice-aws).
//!
//! Each check uses job ids under `prefix`, so one store (a moto table) can serve them all.

use crate::error::ErrorName;
use crate::ids::{JobId, TaskId};
use crate::model::{
    Attempt, AttemptKey, AttemptState, AttemptUpdate, Capacity, ExecutionRun, Job, JobState,
    JobUpdate, Lease, ObjectRef, Task, TaskState, TaskTally, TokenAnswer,
};
use crate::ports::{CapacityPool, JobStore, TaskUpdate, Transition};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;

/// Runs every check of the contract on `store`.
pub async fn job_store(store: &dyn JobStore, prefix: &str) {
    jobs(store, prefix).await;
    tasks(store, prefix).await;
    tallies(store, prefix).await;
    attempts(store, prefix).await;
    reclaims_and_answers(store, prefix).await;
    attempts_with_their_task(store, prefix).await;
    only_in_run(store, prefix).await;
}

fn job_id(prefix: &str, name: &str) -> JobId {
    JobId::new(format!("{prefix}-{name}")).expect("job id")
}

fn state_of(t: &Transition<Job>) -> Option<(bool, JobState, Option<String>)> {
    match t {
        Transition::Applied(j) => Some((true, j.state, j.reason.clone())),
        Transition::Rejected(j) => Some((false, j.state, j.reason.clone())),
        Transition::Missing => None,
    }
}

fn reason(r: &str) -> JobUpdate {
    JobUpdate {
        reason: Some(r.to_string()),
        ..Default::default()
    }
}

/// Job transitions: the allowed predecessors, a final job's first reason, abort and redrive.
pub async fn jobs(store: &dyn JobStore, prefix: &str) {
    let id = job_id(prefix, "job");
    let job = Job::new(id.clone(), "p", ObjectRef::new("b", "p/in.csv"), Utc::now());
    assert!(store.create_job(&job).await.unwrap(), "first create");
    assert!(
        !store.create_job(&job).await.unwrap(),
        "second create is refused"
    );
    assert_eq!(
        store.get_job(&id).await.unwrap().map(|j| j.state),
        Some(JobState::Submitted)
    );

    let t = |to, update| store.transition_job(&id, to, update);
    assert_eq!(
        state_of(&t(JobState::Running, JobUpdate::default()).await.unwrap()),
        Some((true, JobState::Running, None))
    );
    assert!(
        t(
            JobState::Running,
            JobUpdate {
                task_count: Some(3),
                ..Default::default()
            }
        )
        .await
        .unwrap()
        .applied(),
        "RUNNING may be re-applied to record more"
    );
    assert_eq!(
        state_of(&t(JobState::Aborted, reason("cancelled")).await.unwrap()),
        Some((true, JobState::Aborted, Some("cancelled".into())))
    );
    for late in [JobState::Failed, JobState::Succeeded, JobState::Aborted] {
        assert_eq!(
            state_of(&t(late, reason("late")).await.unwrap()),
            Some((false, JobState::Aborted, Some("cancelled".into()))),
            "an aborted job keeps its outcome against a late {late:?}"
        );
    }
    let redriven = t(
        JobState::Running,
        JobUpdate {
            redrive_count: Some(1),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    match &redriven {
        Transition::Applied(j) => {
            assert_eq!(
                (j.state, j.redrive_count, j.task_count),
                (JobState::Running, 1, 3)
            );
            assert_eq!(j.reason, None, "a redrive clears the old reason");
        }
        other => panic!("a redrive must move an ABORTED job to RUNNING: {other:?}"),
    }
    assert!(
        t(JobState::Succeeded, JobUpdate::default())
            .await
            .unwrap()
            .applied()
    );
    for after in [JobState::Running, JobState::Failed, JobState::Aborted] {
        assert!(
            !t(after, JobUpdate::default()).await.unwrap().applied(),
            "nothing leaves SUCCEEDED ({after:?})"
        );
    }
    let got = store.get_job(&id).await.unwrap().unwrap();
    assert_eq!((got.state, got.redrive_count), (JobState::Succeeded, 1));

    // A final job keeps its first reason.
    let other = job_id(prefix, "failing");
    let mut j2 = Job::new(
        other.clone(),
        "p",
        ObjectRef::new("b", "p/x.csv"),
        Utc::now(),
    );
    j2.created_at = Utc::now() + Duration::seconds(1);
    assert!(store.create_job(&j2).await.unwrap());
    let f = |r| store.transition_job(&other, JobState::Failed, reason(r));
    assert!(f("in.csv:3:2: bad").await.unwrap().applied());
    assert_eq!(
        state_of(&f("other").await.unwrap()),
        Some((false, JobState::Failed, Some("in.csv:3:2: bad".into())))
    );
    assert!(matches!(
        store
            .transition_job(
                &job_id(prefix, "nope"),
                JobState::Running,
                JobUpdate::default()
            )
            .await
            .unwrap(),
        Transition::Missing
    ));
    let listed = store.list_jobs(1000).await.unwrap();
    let pos = |id: &JobId| listed.iter().position(|j| j.id == *id);
    assert!(pos(&other) < pos(&id), "most recent first");
}

/// A write bound to one run of the job's execution applies while the job is on that run, and
/// not once a re-run recorded its own execution or a redrive counted itself.
pub async fn only_in_run(store: &dyn JobStore, prefix: &str) {
    let id = job_id(prefix, "runs");
    let first = format!("arn:aws:states:us-east-1:000000000000:execution:p:{id}");
    let rerun = format!("{first}-rerun");
    let job = Job::new(id.clone(), "p", ObjectRef::new("b", "p/r.csv"), Utc::now());
    assert!(store.create_job(&job).await.unwrap());
    let in_run = |arn: &str, redrive_count, why: &str| JobUpdate {
        reason: Some(why.to_string()),
        only_in_run: Some(ExecutionRun {
            execution_arn: arn.to_string(),
            redrive_count,
        }),
        ..Default::default()
    };
    let t = |to, update| store.transition_job(&id, to, update);
    // No execution recorded yet: any run's write applies.
    assert!(
        t(JobState::Running, in_run(&first, 0, "started"))
            .await
            .unwrap()
            .applied()
    );
    let start = |arn: &str| JobUpdate {
        execution_arn: Some(arn.to_string()),
        ..Default::default()
    };
    assert!(t(JobState::Running, start(&first)).await.unwrap().applied());
    assert!(
        t(JobState::Running, in_run(&first, 0, "same run"))
            .await
            .unwrap()
            .applied(),
        "the job's own run"
    );
    // A re-run records its execution: the first run's late write is refused.
    assert!(t(JobState::Running, start(&rerun)).await.unwrap().applied());
    assert_eq!(
        state_of(
            &t(JobState::Failed, in_run(&first, 0, "late"))
                .await
                .unwrap()
        ),
        Some((false, JobState::Running, Some("same run".into()))),
        "a run the job has moved on from"
    );
    // A redrive of the re-run counts itself: run 0's write is refused, run 1's and later apply.
    let redrive = JobUpdate {
        redrive_count: Some(1),
        ..Default::default()
    };
    assert!(t(JobState::Running, redrive).await.unwrap().applied());
    assert!(
        !t(JobState::Failed, in_run(&rerun, 0, "run 0"))
            .await
            .unwrap()
            .applied()
    );
    assert_eq!(
        state_of(
            &t(JobState::Failed, in_run(&rerun, 1, "run 1"))
                .await
                .unwrap()
        ),
        Some((true, JobState::Failed, Some("run 1".into())))
    );
}

fn task(job: &JobId, id: &str, index: u32) -> Task {
    let params = BTreeMap::from([("n".to_string(), serde_json::json!(index))]);
    let id = TaskId::new(id).unwrap();
    Task::pending(job.clone(), id, "tasks", index, params, Utc::now())
}

/// Tasks: index order, never reset by a re-plan, transitions only from allowed states.
pub async fn tasks(store: &dyn JobStore, prefix: &str) {
    let job = job_id(prefix, "tasks");
    store
        .put_tasks(&[
            task(&job, "t-2", 2),
            task(&job, "t-0", 0),
            task(&job, "t-1", 1),
        ])
        .await
        .unwrap();
    let ids: Vec<String> = store
        .list_tasks(&job)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id.to_string())
        .collect();
    assert_eq!(ids, ["t-0", "t-1", "t-2"]);
    assert_eq!(store.count_tasks(&job).await.unwrap(), 3);
    // Recorded again (a re-plan): still three.
    store.put_tasks(&[task(&job, "t-1", 1)]).await.unwrap();
    assert_eq!(store.count_tasks(&job).await.unwrap(), 3);
    assert_eq!(store.count_tasks(&job_id(prefix, "none")).await.unwrap(), 0);
    let t0 = TaskId::new("t-0").unwrap();
    let tr = |to, update| store.transition_task(&job, &t0, to, update);
    assert!(
        tr(
            TaskState::Running,
            TaskUpdate {
                attempts: Some(1),
                ..Default::default()
            }
        )
        .await
        .unwrap()
        .applied()
    );
    assert!(
        tr(
            TaskState::Retrying,
            TaskUpdate {
                last_error: Some(Some("attempt 1 interrupted".into())),
                ..Default::default()
            }
        )
        .await
        .unwrap()
        .applied()
    );
    assert!(
        !tr(TaskState::Succeeded, TaskUpdate::default())
            .await
            .unwrap()
            .applied(),
        "SUCCEEDED only from RUNNING"
    );
    assert!(
        tr(TaskState::Running, TaskUpdate::default())
            .await
            .unwrap()
            .applied()
    );
    let result = ObjectRef::new("data", "r.json");
    match tr(
        TaskState::Succeeded,
        TaskUpdate {
            result: Some(result.clone()),
            last_error: Some(None),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    {
        Transition::Applied(t) => {
            assert_eq!(
                (t.attempts, t.result, t.last_error),
                (1, Some(result), None)
            );
        }
        other => panic!("{other:?}"),
    }
    // A re-plan puts the same tasks again: the finished one keeps its state.
    store.put_tasks(&[task(&job, "t-0", 0)]).await.unwrap();
    let again = store.get_task(&job, &t0).await.unwrap().unwrap();
    assert_eq!(again.state, TaskState::Succeeded);
    for to in [TaskState::Running, TaskState::Retrying, TaskState::Failed] {
        assert!(
            !tr(to, TaskUpdate::default()).await.unwrap().applied(),
            "nothing leaves SUCCEEDED ({to:?})"
        );
    }
    let missing = TaskId::new("t-9").unwrap();
    assert!(matches!(
        store
            .transition_task(&job, &missing, TaskState::Running, TaskUpdate::default())
            .await
            .unwrap(),
        Transition::Missing
    ));
}

/// A job's tasks summed up by state, and the ones not in a state, as they move.
pub async fn tallies(store: &dyn JobStore, prefix: &str) {
    let job = job_id(prefix, "tallies");
    store
        .put_tasks(&[
            task(&job, "t-3", 3),
            task(&job, "t-0", 0),
            task(&job, "t-2", 2),
            task(&job, "t-1", 1),
        ])
        .await
        .unwrap();
    let moves: [(&str, TaskState, TaskUpdate); 7] = [
        (
            "t-0",
            TaskState::Running,
            TaskUpdate {
                attempts: Some(1),
                ..Default::default()
            },
        ),
        ("t-0", TaskState::Succeeded, TaskUpdate::default()),
        (
            "t-1",
            TaskState::Running,
            TaskUpdate {
                attempts: Some(1),
                ..Default::default()
            },
        ),
        (
            "t-1",
            TaskState::Retrying,
            TaskUpdate {
                spot_interruptions: Some(1),
                ..Default::default()
            },
        ),
        (
            "t-1",
            TaskState::Running,
            TaskUpdate {
                attempts: Some(2),
                ..Default::default()
            },
        ),
        ("t-1", TaskState::Failed, TaskUpdate::default()),
        (
            "t-2",
            TaskState::Running,
            TaskUpdate {
                attempts: Some(1),
                ..Default::default()
            },
        ),
    ];
    for (id, to, update) in moves {
        let id = TaskId::new(id).unwrap();
        let moved = store.transition_task(&job, &id, to, update).await.unwrap();
        assert!(moved.applied(), "{id} to {to:?}");
    }
    let tally = store.tally_tasks(&job).await.unwrap();
    let by_state: Vec<u32> = [
        TaskState::Pending,
        TaskState::Running,
        TaskState::Retrying,
        TaskState::Succeeded,
        TaskState::Failed,
    ]
    .iter()
    .map(|s| tally.in_state(*s))
    .collect();
    assert_eq!(by_state, [1, 1, 0, 1, 1]);
    let total = tally.total();
    assert_eq!(
        (total.tasks, total.attempts, total.spot_interruptions),
        (4, 4, 1)
    );
    assert_eq!(tally, TaskTally::of(&store.list_tasks(&job).await.unwrap()));
    let ids =
        |tasks: Vec<Task>| -> Vec<String> { tasks.iter().map(|t| t.id.to_string()).collect() };
    let not_succeeded = store
        .tasks_not_in(&job, TaskState::Succeeded, 10)
        .await
        .unwrap();
    assert_eq!(ids(not_succeeded), ["t-1", "t-2", "t-3"], "in index order");
    let first_two = store
        .tasks_not_in(&job, TaskState::Succeeded, 2)
        .await
        .unwrap();
    assert_eq!(ids(first_two), ["t-1", "t-2"]);
    let not_pending = store
        .tasks_not_in(&job, TaskState::Pending, 10)
        .await
        .unwrap();
    assert_eq!(ids(not_pending), ["t-0", "t-1", "t-2"]);
    let failed = &store
        .tasks_not_in(&job, TaskState::Succeeded, 1)
        .await
        .unwrap()[0];
    assert_eq!(
        (failed.state, failed.attempts, failed.spot_interruptions),
        (TaskState::Failed, 2, 1)
    );
    let none = job_id(prefix, "no-tasks");
    assert_eq!(
        store.tally_tasks(&none).await.unwrap(),
        TaskTally::default()
    );
    assert!(
        store
            .tasks_not_in(&none, TaskState::Succeeded, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // By stage: a job's stages are tallied apart.
    let staged = job_id(prefix, "tallies-by-stage");
    let merge = Task {
        stage: "merge".into(),
        ..task(&staged, "merge", 0)
    };
    store
        .put_tasks(&[task(&staged, "t-0", 0), task(&staged, "t-1", 1), merge])
        .await
        .unwrap();
    let tally = store.tally_tasks(&staged).await.unwrap();
    assert_eq!(tally.total().tasks, 3);
    assert_eq!(tally.stages(|s| s == "tasks").total().tasks, 2);
    let merge = tally.stages(|s| s == "merge");
    assert_eq!(
        (merge.total().tasks, merge.in_state(TaskState::Pending)),
        (1, 1)
    );
}

fn attempt(job: &JobId, n: u32) -> Attempt {
    Attempt {
        key: AttemptKey {
            job_id: job.clone(),
            task_id: TaskId::new("t-0").unwrap(),
            number: n,
        },
        state: AttemptState::Launching,
        capacity: Capacity::Spot,
        task_token: format!("token-{n}"),
        compute_id: None,
        exit_code: None,
        stop_code: None,
        stopped_reason: None,
        event_version: None,
        started_at: Utc::now(),
        stopped_at: None,
        reclaim_notice: None,
        answer: None,
        answered: false,
    }
}

/// Attempts: created once, stale and duplicate events refused, final states final.
pub async fn attempts(store: &dyn JobStore, prefix: &str) {
    let job = job_id(prefix, "attempts");
    let (a1, a2) = (attempt(&job, 1), attempt(&job, 2));
    assert!(store.create_attempt(&a2).await.unwrap());
    assert!(store.create_attempt(&a1).await.unwrap());
    assert!(!store.create_attempt(&a1).await.unwrap(), "created once");
    let numbers: Vec<u32> = store
        .list_attempts(&job, &a1.key.task_id)
        .await
        .unwrap()
        .iter()
        .map(|a| a.key.number)
        .collect();
    assert_eq!(numbers, [1, 2], "attempt order");
    let v = |v: u64, id: &str| AttemptUpdate {
        event_version: Some(v),
        compute_id: Some(id.to_string()),
        ..Default::default()
    };
    let tr = |key: &AttemptKey, to, u| {
        let key = key.clone();
        async move { store.transition_attempt(&key, to, u).await }
    };
    assert!(
        tr(&a1.key, AttemptState::Running, v(2, "c-1"))
            .await
            .unwrap()
            .applied()
    );
    assert!(
        !tr(&a1.key, AttemptState::Failed, v(1, "c-1"))
            .await
            .unwrap()
            .applied(),
        "an older event is stale"
    );
    assert!(
        tr(
            &a1.key,
            AttemptState::Interrupted,
            AttemptUpdate {
                stop_code: Some("RunnerLost".into()),
                ..Default::default()
            }
        )
        .await
        .unwrap()
        .applied()
    );
    match tr(&a1.key, AttemptState::Succeeded, v(5, "c-1"))
        .await
        .unwrap()
    {
        Transition::Rejected(a) => {
            assert_eq!(a.state, AttemptState::Interrupted, "final states are final");
            assert_eq!(a.stop_code.as_deref(), Some("RunnerLost"));
            assert_eq!(a.compute_id.as_deref(), Some("c-1"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        tr(&a2.key, AttemptState::Running, v(1, "c-2"))
            .await
            .unwrap()
            .applied()
    );
    assert!(
        tr(&a2.key, AttemptState::Succeeded, v(3, "c-2"))
            .await
            .unwrap()
            .applied()
    );
    assert!(
        !tr(&a2.key, AttemptState::Succeeded, v(3, "c-2"))
            .await
            .unwrap()
            .applied(),
        "the same event twice applies once"
    );
    let found = store
        .find_attempt_by_compute_id("c-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.key.number, found.state, found.event_version),
        (2, AttemptState::Succeeded, Some(3))
    );
    let missing = AttemptKey {
        number: 7,
        ..a1.key.clone()
    };
    assert!(matches!(
        tr(&missing, AttemptState::Failed, v(1, "x")).await.unwrap(),
        Transition::Missing
    ));
}

/// Reclaim notices land on live attempts only; an answer is stored with the final state and
/// survives a read back; marking it answered needs an answer and may happen twice.
pub async fn reclaims_and_answers(store: &dyn JobStore, prefix: &str) {
    let job = job_id(prefix, "reclaims");
    let (a1, a2) = (attempt(&job, 1), attempt(&job, 2));
    assert!(store.create_attempt(&a1).await.unwrap());
    assert!(store.create_attempt(&a2).await.unwrap());
    let notice = "EC2 Spot Instance Interruption Warning for i-0abc (terminate)";
    match store.note_reclaim(&a1.key, notice).await.unwrap() {
        Transition::Applied(a) => {
            assert_eq!(a.reclaim_notice.as_deref(), Some(notice));
            assert_eq!(
                a.state,
                AttemptState::Launching,
                "a notice changes no state"
            );
        }
        other => panic!("a live attempt takes a notice: {other:?}"),
    }
    assert!(
        store
            .transition_attempt(&a1.key, AttemptState::Running, AttemptUpdate::default())
            .await
            .unwrap()
            .applied()
    );
    let answer = TokenAnswer::Failure {
        error: ErrorName::SpotInterrupted,
        cause: "attempt 1: reclaimed".into(),
    };
    assert!(
        !store.mark_answered(&a1.key).await.unwrap().applied(),
        "nothing to mark before an answer is recorded"
    );
    let update = AttemptUpdate {
        answer: Some(answer.clone()),
        stopped_reason: Some("reclaimed".into()),
        ..Default::default()
    };
    match store
        .transition_attempt(&a1.key, AttemptState::SpotInterrupted, update)
        .await
        .unwrap()
    {
        Transition::Applied(a) => {
            assert_eq!(a.answer.as_ref(), Some(&answer));
            assert!(!a.answered);
            assert_eq!(a.reclaim_notice.as_deref(), Some(notice), "kept");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !store.note_reclaim(&a1.key, "late").await.unwrap().applied(),
        "a final attempt takes no notice"
    );
    assert!(store.mark_answered(&a1.key).await.unwrap().applied());
    assert!(
        store.mark_answered(&a1.key).await.unwrap().applied(),
        "marking twice is harmless"
    );
    let back = store.get_attempt(&a1.key).await.unwrap().unwrap();
    assert!(back.answered);
    assert_eq!(back.answer, Some(answer));
    assert_eq!(back.reclaim_notice.as_deref(), Some(notice));
    // A success answer with its result round-trips too.
    let success = TokenAnswer::Success {
        result: Some(ObjectRef::new("data", "jobs/x/out.json")),
    };
    let update = AttemptUpdate {
        answer: Some(success.clone()),
        ..Default::default()
    };
    assert!(
        store
            .transition_attempt(&a2.key, AttemptState::Succeeded, update)
            .await
            .unwrap()
            .applied()
    );
    let back = store.get_attempt(&a2.key).await.unwrap().unwrap();
    assert_eq!(
        (back.answer, back.answered, back.reclaim_notice),
        (Some(success.clone()), false, None)
    );
    // Ended and recorded answered in one write (a state machine whose sends settle the
    // answer); a later update that does not say so leaves the flag set.
    let a3 = attempt(&job, 3);
    assert!(store.create_attempt(&a3).await.unwrap());
    let update = AttemptUpdate {
        answer: Some(success.clone()),
        answered: true,
        ..Default::default()
    };
    match store
        .transition_attempt(&a3.key, AttemptState::Succeeded, update)
        .await
        .unwrap()
    {
        Transition::Applied(a) => assert!(a.answered, "the returned attempt says so"),
        other => panic!("{other:?}"),
    }
    let back = store.get_attempt(&a3.key).await.unwrap().unwrap();
    assert_eq!((back.answer, back.answered), (Some(success), true));
    let missing = AttemptKey {
        number: 9,
        ..a1.key.clone()
    };
    assert!(matches!(
        store.note_reclaim(&missing, notice).await.unwrap(),
        Transition::Missing
    ));
    assert!(matches!(
        store.mark_answered(&missing).await.unwrap(),
        Transition::Missing
    ));
}

/// The calls that read or write a task and its attempts together: the same outcome as the
/// calls they stand for, and nothing written when the first part is refused.
pub async fn attempts_with_their_task(store: &dyn JobStore, prefix: &str) {
    let job = job_id(prefix, "together");
    let t0 = TaskId::new("t-0").unwrap();
    assert!(
        store
            .get_task_with_attempts(&job, &t0)
            .await
            .unwrap()
            .is_none(),
        "no such task"
    );
    store.put_tasks(&[task(&job, "t-0", 0)]).await.unwrap();
    let (found, attempts) = store
        .get_task_with_attempts(&job, &t0)
        .await
        .unwrap()
        .expect("the task");
    assert_eq!((found.state, attempts.len()), (TaskState::Pending, 0));

    let running = |n| TaskUpdate {
        attempts: Some(n),
        ..Default::default()
    };
    let (a2, a1) = (attempt(&job, 2), attempt(&job, 1));
    assert!(
        store
            .start_attempt(&a2, TaskState::Running, running(2))
            .await
            .unwrap()
    );
    assert!(store.create_attempt(&a1).await.unwrap());
    // An attempt that exists is not started again, and its task is left alone.
    assert!(
        !store
            .start_attempt(&a2, TaskState::Failed, running(9))
            .await
            .unwrap()
    );
    let (found, attempts) = store
        .get_task_with_attempts(&job, &t0)
        .await
        .unwrap()
        .expect("the task");
    assert_eq!((found.state, found.attempts), (TaskState::Running, 2));
    assert_eq!(
        attempts.iter().map(|a| a.key.number).collect::<Vec<_>>(),
        vec![1, 2],
        "in attempt order"
    );

    let succeeded = |result: &str| {
        (
            TaskState::Succeeded,
            TaskUpdate {
                result: Some(ObjectRef::new("data", result)),
                ..Default::default()
            },
        )
    };
    // The run's times, from the stop event, replace the launch as the start.
    let ran_from: DateTime<Utc> = "2026-12-03T10:00:05.25Z".parse().unwrap();
    let ran_to: DateTime<Utc> = "2026-12-03T10:00:07.5Z".parse().unwrap();
    let ended = store
        .end_attempt(
            &a2.key,
            AttemptState::Succeeded,
            AttemptUpdate {
                exit_code: Some(0),
                started_at: Some(ran_from),
                stopped_at: Some(ran_to),
                ..Default::default()
            },
            Some(succeeded("out-2.json")),
        )
        .await
        .unwrap();
    assert!(matches!(&ended, Transition::Applied(a) if a.state == AttemptState::Succeeded));
    let read = store
        .get_attempt(&a2.key)
        .await
        .unwrap()
        .expect("the attempt");
    assert_eq!((read.started_at, read.stopped_at), (ran_from, Some(ran_to)));
    // A second end of the same attempt is refused, and its task move with it.
    let again = store
        .end_attempt(
            &a2.key,
            AttemptState::Failed,
            AttemptUpdate::default(),
            Some((TaskState::Retrying, TaskUpdate::default())),
        )
        .await
        .unwrap();
    assert!(matches!(&again, Transition::Rejected(a) if a.state == AttemptState::Succeeded));
    let (found, _) = store
        .get_task_with_attempts(&job, &t0)
        .await
        .unwrap()
        .expect("the task");
    assert_eq!(found.state, TaskState::Succeeded);
    assert_eq!(found.result, Some(ObjectRef::new("data", "out-2.json")));
    // The job with the task and its attempts, read together: no job, no task, or all three.
    assert!(
        store.get_job_task(&job, &t0).await.unwrap().is_none(),
        "no such job"
    );
    store
        .create_job(&Job::new(
            job.clone(),
            "p",
            ObjectRef::new("b", "p/in.csv"),
            Utc::now(),
        ))
        .await
        .unwrap();
    let (read_job, found) = store
        .get_job_task(&job, &t0)
        .await
        .unwrap()
        .expect("the job");
    assert_eq!(read_job.id, job);
    let (found, attempts) = found.expect("the task");
    assert_eq!((found.state, attempts.len()), (TaskState::Succeeded, 2));
    let (_, none) = store
        .get_job_task(&job, &TaskId::new("t-9").unwrap())
        .await
        .unwrap()
        .expect("the job");
    assert!(none.is_none(), "the job has no task t-9");
    // Ending an attempt without a task move leaves the task as it is.
    let ended = store
        .end_attempt(
            &a1.key,
            AttemptState::SpotInterrupted,
            AttemptUpdate::default(),
            None,
        )
        .await
        .unwrap();
    assert!(matches!(ended, Transition::Applied(_)));
    assert_eq!(
        store.get_task(&job, &t0).await.unwrap().map(|t| t.state),
        Some(TaskState::Succeeded)
    );
}

/// Capacity leases: acquiring again renews a lease, and a release bounded by a time drops only a
/// lease last acquired by then (the end of one run of a job never takes a newer run's
/// capacity). `pool` must hold no other lease: the counts are of the whole pool.
pub async fn capacity(pool: &dyn CapacityPool, prefix: &str) {
    let job = job_id(prefix, "lease");
    let lease = |slots, acquired_at| Lease {
        job_id: job.clone(),
        slots,
        acquired_at,
    };
    let t0 = Utc::now() - Duration::minutes(10);
    assert_eq!(pool.acquire(&lease(2, t0)).await.unwrap().active_leases, 1);
    let s = pool
        .release(&job, Some(t0 - Duration::seconds(1)))
        .await
        .unwrap();
    assert_eq!(s.active_leases, 1, "acquired after the bound: kept");
    // A newer run acquires again (renewing the lease) after the run before stopped at t1.
    let (t1, t2) = (t0 + Duration::minutes(1), t0 + Duration::minutes(2));
    pool.acquire(&lease(2, t2)).await.unwrap();
    let s = pool.release(&job, Some(t1)).await.unwrap();
    assert_eq!(s.active_leases, 1, "renewed after the bound: kept");
    let s = pool.release(&job, Some(t2)).await.unwrap();
    assert_eq!(s.active_leases, 0, "acquired at the bound: released");
    pool.acquire(&lease(1, t2)).await.unwrap();
    assert_eq!(pool.release(&job, None).await.unwrap().active_leases, 0);
    assert_eq!(
        pool.release(&job, None).await.unwrap().active_leases,
        0,
        "releasing what is not held is harmless"
    );
}
