//! What the plan step records, against in-memory ports: a job rejected at planning is FAILED
//! with the reason and announced once, though finish runs after it.

use sluice_core::JobState;
use sluice_core::ports::JobStore;
use sluice_core::testing::{Notification, World};
use sluice_fn_finish::{CaughtError, FinishInput};
use sluice_fn_plan::{PlanRequest, StartInput, handle};

const PIPELINE: &str = r#"
name = "p"
[[stage]]
name = "clean"
command = ["clean.py", "{input}", "{output}"]
[notify]
command = ["notify.sh", "{status}"]
"#;

#[tokio::test]
async fn a_job_rejected_at_planning_is_announced_once() {
    let w = World::declared(sluice_fn_plan::PORT_CALLS);
    w.pipeline(PIPELINE);
    let job = w.running_job("p-1", "p", 0).await.id;
    // Its input object does not exist.
    let err = handle(
        &w.services,
        PlanRequest::Start(StartInput {
            job_id: job.clone(),
            execution_arn: None,
        }),
    )
    .await
    .unwrap_err();
    assert!(err.cause.contains("does not exist"), "{err}");
    let recorded = w.jobs.get_job(&job).await.unwrap().unwrap();
    assert_eq!(recorded.state, JobState::Failed);
    // The state machine's Catch then runs finish with the error: the outcome stands, and it
    // is not announced again.
    sluice_fn_finish::handle(
        &w.services,
        FinishInput {
            job_id: job.clone(),
            execution_arn: None,
            failure: Some(CaughtError {
                error: err.name.as_str().into(),
                cause: Some(err.cause.clone()),
            }),
        },
    )
    .await
    .unwrap();
    let sent = w.notifier.sent();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert!(
        matches!(&sent[0], Notification::Command { argv, .. } if argv == &["notify.sh", "FAILED"]),
        "{sent:#?}"
    );
}

async fn start(w: &World, job: &sluice_core::JobId) {
    handle(
        &w.services,
        PlanRequest::Start(StartInput {
            job_id: job.clone(),
            execution_arn: None,
        }),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn an_execution_keeps_the_pipeline_it_started_with() {
    use sluice_fn_plan::{NextKind, NextStageInput, PlanResponse};
    let w = World::declared(sluice_fn_plan::PORT_CALLS);
    w.pipeline(PIPELINE);
    let job = w.running_job("p-1", "p", 0).await;
    w.objects.insert(&job.input, b"a\n1\n".to_vec());
    start(&w, &job.id).await;
    // The file is replaced while the job runs: its first stage renamed, a stage added.
    w.pipeline(
        &PIPELINE
            .replace("name = \"clean\"", "name = \"tidy\"")
            .replace(
                "[notify]",
                "[[stage]]\nname = \"extra\"\ncommand = [\"x\"]\nwrites = \"nothing\"\n[notify]",
            ),
    );
    let copy = w.services.job_pipeline(&job).await.unwrap();
    let names: Vec<&str> = copy.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["clean"]);
    let PlanResponse::Stage(next) = handle(
        &w.services,
        PlanRequest::NextStage(NextStageInput {
            job_id: job.id.clone(),
            after: -1,
        }),
    )
    .await
    .unwrap() else {
        panic!("a stage plan")
    };
    assert_eq!(
        (next.kind, next.name.as_deref()),
        (NextKind::Tasks, Some("clean"))
    );
    // A new execution (a re-run) takes the pipeline as it is then.
    start(&w, &job.id).await;
    let copy = w.services.job_pipeline(&job).await.unwrap();
    let names: Vec<&str> = copy.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["tidy", "extra"]);
}

const FAN_OUT: &str = r#"
name = "fan"
[input]
columns = { n = "integer" }
[task]
command = ["work", "{n}"]
timeout_seconds = 100
[parallelism]
max = 3
"#;

/// The stage's lease (`slots`), its Map's concurrency and its Task state timeout for a job of
/// `rows` rows when compute holds `ahead` attempts waiting (and times its attempts itself, as
/// compute that holds attempts waiting must).
async fn stage_concurrency(rows: u32, ahead: u32) -> (u32, u32, u64) {
    stage_plan(rows, ahead, ahead > 0).await
}

async fn stage_plan(rows: u32, ahead: u32, times_attempts: bool) -> (u32, u32, u64) {
    use sluice_fn_plan::{NextStageInput, PlanResponse};
    let w = World::new();
    w.pipeline(FAN_OUT);
    *w.compute.launch_ahead.lock().unwrap() = ahead;
    *w.compute.times_attempts.lock().unwrap() = times_attempts;
    let job = w.running_job("fan-1", "fan", 0).await;
    let csv: String = std::iter::once("n".to_string())
        .chain((0..rows).map(|i| i.to_string()))
        .collect::<Vec<_>>()
        .join("\n");
    w.objects.insert(&job.input, csv.into_bytes());
    start(&w, &job.id).await;
    let PlanResponse::Stage(plan) = handle(
        &w.services,
        PlanRequest::NextStage(NextStageInput {
            job_id: job.id.clone(),
            after: -1,
        }),
    )
    .await
    .unwrap() else {
        panic!("a stage plan")
    };
    assert_eq!(plan.task_count, rows);
    (plan.slots, plan.max_concurrency, plan.task_timeout_seconds)
}

#[tokio::test]
async fn the_map_runs_ahead_of_the_lease_by_what_compute_holds_waiting() {
    // AWS compute holds nothing waiting: the Map runs exactly the leased slots, and the Task
    // state's timeout is the stage's (100 s).
    assert_eq!(stage_concurrency(10, 0).await, (3, 3, 100));
    // One attempt waiting per slot: six iterations, three processes; an attempt may wait for
    // one run of 100 s before its own, plus the margin.
    assert_eq!(stage_concurrency(10, 3).await, (3, 6, 260));
    // Seven waiting for three slots: up to three runs before its own.
    assert_eq!(stage_concurrency(10, 12).await, (3, 10, 460));
    // Never more iterations than tasks, never fewer than the slots.
    assert_eq!(stage_concurrency(4, 3).await, (3, 4, 260));
    // Two tasks, two slots: none waits, but compute still times the run, so the Task state's
    // timeout stays a backstop (it must not fire before compute's, from an earlier start).
    assert_eq!(stage_concurrency(2, 3).await, (2, 2, 160));
    // Compute that times its attempts with none waiting (AWS Batch); one that does not (ECS).
    assert_eq!(stage_plan(10, 0, true).await, (3, 3, 160));
    assert_eq!(stage_plan(10, 0, false).await, (3, 3, 100));
}

const TWO_STAGES: &str = r#"
name = "two"
[[stage]]
name = "clean"
command = ["clean.py", "{input}", "{output}"]
[[stage]]
name = "merge"
command = ["merge.py", "{input}", "{output}"]
"#;

/// Closing a stage: its tasks counted (those recorded without a stage belong to the first),
/// every one that did not succeed failed with its reason, the other stages' tasks untouched.
#[tokio::test]
async fn a_stage_closes_on_its_own_tasks_only() {
    use sluice_core::ports::{TaskUpdate, Transition};
    use sluice_core::{Task, TaskId, TaskState};
    use sluice_fn_plan::{CloseStageInput, PlanResponse, StageClosed};
    /// A case: its name, the states the first stage's two tasks ended in, the merge task's
    /// state, and the answer (how many succeeded, or the reason the stage failed).
    type Case = (
        &'static str,
        [TaskState; 2],
        TaskState,
        Result<u32, &'static str>,
    );
    let cases: [Case; 3] = [
        (
            "all succeeded, another stage's task failed",
            [TaskState::Succeeded, TaskState::Succeeded],
            TaskState::Failed,
            Ok(2),
        ),
        (
            "one ended without a result",
            [TaskState::Succeeded, TaskState::Running],
            TaskState::Pending,
            Err("stage 'clean': 1 of 2 tasks failed: t-1 (task ended RUNNING without a result)"),
        ),
        (
            "none succeeded",
            [TaskState::Failed, TaskState::Retrying],
            TaskState::Succeeded,
            Err("stage 'clean': 2 of 2 tasks failed: t-0 (boom); t-1 (boom)"),
        ),
    ];
    for (case, first, merge_state, answer) in cases {
        let w = World::declared(sluice_fn_plan::PORT_CALLS);
        w.pipeline(TWO_STAGES);
        let job = w.running_job("two-1", "two", 2).await.id;
        let merge = Task {
            stage: "merge".into(),
            id: TaskId::new("merge").unwrap(),
            index: 5,
            ..w.jobs
                .get_task(&job, &TaskId::new("t-0").unwrap())
                .await
                .unwrap()
                .unwrap()
        };
        w.jobs.put_tasks(&[merge]).await.unwrap();
        let ended = [("t-0", first[0]), ("t-1", first[1]), ("merge", merge_state)];
        for (id, state) in ended {
            let id = TaskId::new(id).unwrap();
            let path: &[TaskState] = match state {
                TaskState::Pending => &[],
                TaskState::Running => &[TaskState::Running],
                TaskState::Retrying | TaskState::Succeeded => &[TaskState::Running, state],
                TaskState::Failed => &[TaskState::Running, TaskState::Failed],
            };
            for to in path {
                let update = TaskUpdate {
                    attempts: Some(1),
                    last_error: (*to != TaskState::Succeeded && *to != TaskState::Running)
                        .then(|| Some("boom".to_string())),
                    ..Default::default()
                };
                let moved = w
                    .jobs
                    .transition_task(&job, &id, *to, update)
                    .await
                    .unwrap();
                assert!(
                    matches!(moved, Transition::Applied(_)),
                    "{case}: {id} to {to:?}"
                );
            }
        }
        let closed = handle(
            &w.services,
            PlanRequest::CloseStage(CloseStageInput {
                job_id: job.clone(),
                stage: 0,
            }),
        )
        .await;
        match (closed, answer) {
            (Ok(PlanResponse::Closed(StageClosed { index, succeeded })), Ok(n)) => {
                assert_eq!((index, succeeded), (0, n), "{case}");
            }
            (Err(e), Err(reason)) => {
                assert_eq!(e.name, sluice_core::ErrorName::TasksFailed, "{case}");
                assert_eq!(e.cause, reason, "{case}");
            }
            (got, want) => panic!("{case}: {got:?}, expected {want:?}"),
        }
        let states: Vec<TaskState> = w
            .jobs
            .list_tasks(&job)
            .await
            .unwrap()
            .iter()
            .map(|t| t.state)
            .collect();
        let first_after = first.map(|s| match s {
            TaskState::Succeeded => s,
            _ => TaskState::Failed,
        });
        assert_eq!(
            states,
            [first_after[0], first_after[1], merge_state],
            "{case}: the stage's unfinished tasks failed, the merge task as it was"
        );
    }
}
