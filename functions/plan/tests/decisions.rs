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
