//! What aggregate decides, against in-memory ports: every succeeded task's result counted once,
//! read many at a time in task order, and a result that is not JSON named with its task.

use sluice_core::TaskState;
use sluice_core::model::ObjectRef;
use sluice_core::ports::{JobStore, TaskUpdate};
use sluice_core::testing::World;
use sluice_fn_aggregate::{AggregateInput, RESULT_READS, handle};

const PIPELINE: &str = r#"
name = "p"
[input]
columns = { n = "integer" }
[task]
command = ["work", "--out", "{output}"]
[aggregate]
group_by = "k"
sum = ["n"]
"#;

/// A job of `n` tasks that all succeeded, task i having written `result(i)`.
async fn finished_job(n: u32, result: impl Fn(u32) -> String) -> (World, sluice_core::JobId) {
    let w = World::declared(sluice_fn_aggregate::PORT_CALLS);
    w.pipeline(PIPELINE);
    let job = w.running_job("p-1", "p", n).await;
    let setup = w.lift();
    for task in w.jobs.list_tasks(&job.id).await.unwrap() {
        let object = ObjectRef::new("data", format!("results/{}.json", task.id));
        w.objects.insert(&object, result(task.index));
        for state in [TaskState::Running, TaskState::Succeeded] {
            let update = TaskUpdate {
                result: Some(object.clone()),
                ..Default::default()
            };
            w.jobs
                .transition_task(&job.id, &task.id, state, update)
                .await
                .unwrap();
        }
    }
    w.restore(setup);
    (w, job.id)
}

async fn results_csv(w: &World, job: &sluice_core::JobId) -> String {
    let out = ObjectRef::new(
        w.services.buckets.data.clone(),
        format!("jobs/{job}/stages/aggregate/output/results.csv"),
    );
    let setup = w.lift();
    let bytes = sluice_core::ports::ObjectStore::get(w.objects.as_ref(), &out)
        .await
        .unwrap();
    w.restore(setup);
    String::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn results_are_read_many_at_a_time_and_each_counted_once() {
    let n = 200;
    let (w, job) = finished_job(n, |i| format!(r#"{{"k": "x", "n": {i}}}"#)).await;
    let out = handle(
        &w.services,
        AggregateInput {
            job_id: job.clone(),
            stage: 1,
        },
    )
    .await
    .unwrap();
    assert_eq!((out.tasks, out.groups), (n, 1));
    let sum: u32 = (0..n).sum();
    assert_eq!(
        results_csv(&w, &job).await,
        format!("k,tasks,n\nx,{n},{sum}\n")
    );
    let most = w.objects.most_gets_at_once();
    assert!(
        most > 1 && most <= RESULT_READS,
        "{most} results read at once (at most {RESULT_READS})"
    );
}

#[tokio::test]
async fn a_result_that_is_not_json_fails_the_stage_naming_its_task() {
    let (w, job) = finished_job(50, |i| {
        if i == 37 {
            "not json".into()
        } else {
            format!(r#"{{"k": "x", "n": {i}}}"#)
        }
    })
    .await;
    let err = handle(
        &w.services,
        AggregateInput {
            job_id: job,
            stage: 1,
        },
    )
    .await
    .unwrap_err();
    assert!(
        err.cause.contains("task t-37") && err.cause.contains("is not JSON"),
        "{err}"
    );
}
