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
    let w = World::declared(sluice_fn_task_events::PORT_CALLS);
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
    // Launch's doing, not task-events'.
    let restriction = w.lift();
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
    w.restore(restriction);
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

/// A run stopped by compute for outliving its timeout is recorded as timed out, retried by its
/// own name, and spends the application budget with the other application errors.
#[tokio::test]
async fn a_run_past_its_timeout_is_timed_out_and_spends_the_budget() {
    let (w, job) = world().await;
    launched(&w, &job, 1).await;
    let mut event = stopped(&job, 1, 143, "UserInitiated", 2);
    event["detail"]["stoppedReason"] =
        json!("Job attempt duration exceeded timeout: ran longer than 2 s");
    let report = handle(&w.services, event.clone()).await.unwrap();
    assert_eq!(report.classification, "timed-out");
    let attempt = |n| {
        let w = &w;
        let job = &job;
        async move { w.jobs.get_attempt(&key(job, n)).await.unwrap().unwrap() }
    };
    assert_eq!(attempt(1).await.state, AttemptState::TimedOut);
    // The second delivery of the same event changes nothing.
    let again = handle(&w.services, event).await.unwrap();
    assert!(
        again.action.contains("already TIMED_OUT"),
        "{}",
        again.action
    );
    // The next attempt exits non-zero: with one timeout spent, the budget of 2 is gone.
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
            ("tok-1".to_string(), "Sluice.TaskTimedOut".to_string()),
            ("tok-2".to_string(), "Sluice.RetriesExhausted".to_string())
        ]
    );
}

#[tokio::test]
async fn interrupted_attempts_never_spend_the_application_budget() {
    let (w, job) = world().await;
    // Attempt 1 was left by a dead runner and interrupted on redrive.
    launched(&w, &job, 1).await;
    // Another handler's doing (it stops containers, which task-events never does).
    w.restrict(None);
    sluice_core::interrupt::interrupt_job(
        &w.services,
        &job,
        None,
        sluice_core::Interruption::RunnerLost,
        "runner died",
    )
    .await
    .unwrap();
    w.restrict(Some(sluice_fn_task_events::PORT_CALLS));
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
    let w = World::declared(sluice_fn_task_events::PORT_CALLS);
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

fn answers(w: &World) -> usize {
    w.workflows
        .calls()
        .into_iter()
        .filter(|c| {
            matches!(
                c,
                WorkflowCall::Success { .. } | WorkflowCall::Failure { .. }
            )
        })
        .count()
}

/// The lost callback: the state machine could not be told (throttled), so the Lambda fails;
/// the redelivered event finds the attempt final but unanswered and sends the same answer.
#[tokio::test]
async fn an_answer_that_could_not_be_sent_is_sent_on_redelivery() {
    let (w, job) = world().await;
    launched(&w, &job, 1).await;
    let event = stopped(&job, 1, 3, "EssentialContainerExited", 2);
    *w.workflows.fail_next.lock().unwrap() = 1;
    let first = handle(&w.services, event.clone()).await;
    assert!(
        first
            .as_ref()
            .is_err_and(|e| e.name == sluice_core::ErrorName::Internal),
        "{first:?}"
    );
    let a = w.jobs.get_attempt(&key(&job, 1)).await.unwrap().unwrap();
    assert_eq!((a.state, a.answered), (AttemptState::Failed, false));
    assert_eq!(answers(&w), 0, "nothing reached the state machine");
    let t = w
        .jobs
        .get_task(&job, &TaskId::new("t-0").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.state, TaskState::Retrying, "the task is recorded first");

    let again = handle(&w.services, event.clone()).await.unwrap();
    assert!(
        again.action.starts_with("again: reported"),
        "{}",
        again.action
    );
    assert_eq!(again.error.as_deref(), Some("Sluice.TaskFailed"));
    assert_eq!(
        failures(&w),
        [("tok-1".to_string(), "Sluice.TaskFailed".to_string())],
        "the same answer, once it could be sent"
    );
    assert!(
        w.jobs
            .get_attempt(&key(&job, 1))
            .await
            .unwrap()
            .unwrap()
            .answered
    );
    let third = handle(&w.services, event).await.unwrap();
    assert!(
        third.action.starts_with("ignored: duplicate"),
        "{}",
        third.action
    );
    assert_eq!(answers(&w), 1, "answered once");
    // The failure counted once against the budget of 2: the next one is the last.
    launched(&w, &job, 2).await;
    handle(
        &w.services,
        stopped(&job, 2, 3, "EssentialContainerExited", 2),
    )
    .await
    .unwrap();
    assert_eq!(failures(&w)[1].1, "Sluice.RetriesExhausted");
}

#[tokio::test]
async fn a_success_that_could_not_be_sent_is_sent_on_redelivery() {
    let (w, job) = world().await;
    launched(&w, &job, 1).await;
    let result = ObjectRef::new(
        "data",
        format!("{}t-0.json", layout::stage_output(&job, "tasks")),
    );
    w.objects.insert(&result, b"{}".to_vec());
    let event = stopped(&job, 1, 0, "EssentialContainerExited", 3);
    *w.workflows.fail_next.lock().unwrap() = 1;
    assert!(handle(&w.services, event.clone()).await.is_err());
    let again = handle(&w.services, event).await.unwrap();
    assert_eq!(again.classification, "succeeded");
    assert_eq!(
        w.workflows.calls(),
        [WorkflowCall::Success {
            token: "tok-1".into(),
            output: json!({"taskId": "t-0", "attempt": 1, "result": result}),
        }]
    );
}

/// A token that closed meanwhile (its Task state timed out) counts as answered.
#[tokio::test]
async fn a_closed_token_counts_as_answered() {
    let (w, job) = world().await;
    launched(&w, &job, 1).await;
    w.workflows
        .closed_tokens
        .lock()
        .unwrap()
        .push("tok-1".into());
    let event = stopped(&job, 1, 3, "EssentialContainerExited", 2);
    let r = handle(&w.services, event.clone()).await.unwrap();
    assert!(r.action.contains("already closed"), "{}", r.action);
    let dup = handle(&w.services, event).await.unwrap();
    assert!(
        dup.action.starts_with("ignored: duplicate"),
        "{}",
        dup.action
    );
}

/// An answer recorded for an attempt that a newer one has replaced is still sent (to its
/// closed token), but never moves the task, which now belongs to the newer attempt.
#[tokio::test]
async fn a_late_resend_does_not_move_a_task_that_moved_on() {
    let (w, job) = world().await;
    launched(&w, &job, 1).await;
    let event = stopped(&job, 1, 3, "EssentialContainerExited", 2);
    *w.workflows.fail_next.lock().unwrap() = 1;
    assert!(handle(&w.services, event.clone()).await.is_err());
    // The Task state timed out and was retried: attempt 2 runs.
    launched(&w, &job, 2).await;
    w.workflows
        .closed_tokens
        .lock()
        .unwrap()
        .push("tok-1".into());
    handle(&w.services, event).await.unwrap();
    let t = w
        .jobs
        .get_task(&job, &TaskId::new("t-0").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((t.state, t.attempts), (TaskState::Running, 2));
}

fn ec2(detail_type: &str, detail: Value) -> Value {
    json!({
        "version": "0", "id": "e-1", "detail-type": detail_type, "source": "aws.ec2",
        "account": "000000000000", "time": "2026-12-03T10:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:ec2:us-east-1:000000000000:instance/i-0abc"],
        "detail": detail
    })
}

fn spot_warning(instance: &str) -> Value {
    ec2(
        "EC2 Spot Instance Interruption Warning",
        json!({"instance-id": instance, "instance-action": "terminate"}),
    )
}

/// On EC2 a reclaimed task's STOPPED event may carry nothing but an exit code. With the Spot
/// warning noted on its attempt, it is a reclaim: retried without spending the budget, however
/// often it happens (the issue: two such reclaims used to fail the job).
#[tokio::test]
async fn after_a_spot_warning_an_exit_code_is_a_reclaim() {
    let (w, job) = world().await;
    for n in 1..=2 {
        launched(&w, &job, n).await;
        w.compute
            .instances
            .lock()
            .unwrap()
            .insert(format!("i-{n}"), vec![format!("arn:task/{n}")]);
        let noted = handle(&w.services, spot_warning(&format!("i-{n}")))
            .await
            .unwrap();
        assert_eq!(noted.reclaimed, [key(&job, n).to_string()], "{noted:?}");
        let r = handle(
            &w.services,
            stopped(&job, n, 137, "EssentialContainerExited", 2),
        )
        .await
        .unwrap();
        assert_eq!(r.classification, "spot-interrupted", "{r:?}");
        assert!(
            r.reason
                .contains("Spot Instance Interruption Warning for i-")
        );
    }
    assert_eq!(
        failures(&w),
        [
            ("tok-1".to_string(), "Sluice.SpotInterrupted".to_string()),
            ("tok-2".to_string(), "Sluice.SpotInterrupted".to_string())
        ]
    );
    let t = w
        .jobs
        .get_task(&job, &TaskId::new("t-0").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((t.state, t.spot_interruptions), (TaskState::Retrying, 2));
    // The application budget (2) is untouched: a real failure now is retried.
    launched(&w, &job, 3).await;
    handle(
        &w.services,
        stopped(&job, 3, 3, "EssentialContainerExited", 2),
    )
    .await
    .unwrap();
    assert_eq!(failures(&w)[2].1, "Sluice.TaskFailed");
}

#[tokio::test]
async fn a_shutting_down_instance_is_a_reclaim_too_and_success_stands() {
    let (w, job) = world().await;
    launched(&w, &job, 1).await;
    w.compute.instances.lock().unwrap().insert(
        "i-0abc".into(),
        vec!["arn:task/1".into(), "arn:task/other".into()],
    );
    let r = handle(
        &w.services,
        ec2(
            "EC2 Instance State-change Notification",
            json!({"instance-id": "i-0abc", "state": "shutting-down"}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.reclaimed, [key(&job, 1).to_string()]);
    let result = ObjectRef::new(
        "data",
        format!("{}t-0.json", layout::stage_output(&job, "tasks")),
    );
    w.objects.insert(&result, b"{}".to_vec());
    let done = handle(
        &w.services,
        stopped(&job, 1, 0, "EssentialContainerExited", 2),
    )
    .await
    .unwrap();
    assert_eq!(done.classification, "succeeded", "the work was done");
}

#[tokio::test]
async fn ec2_events_that_touch_no_live_attempt_change_nothing() {
    let (w, job) = world().await;
    launched(&w, &job, 1).await;
    // Not one of our instances.
    let r = handle(&w.services, spot_warning("i-unknown"))
        .await
        .unwrap();
    assert!(
        r.reclaimed.is_empty() && r.action.starts_with("ignored"),
        "{r:?}"
    );
    // An instance that starts.
    let r = handle(
        &w.services,
        ec2(
            "EC2 Instance State-change Notification",
            json!({"instance-id": "i-1", "state": "running"}),
        ),
    )
    .await
    .unwrap();
    assert!(r.action.starts_with("ignored"), "{r:?}");
    // A compute that cannot tell (Batch).
    *w.compute.cannot_tell_instances.lock().unwrap() = true;
    let r = handle(&w.services, spot_warning("i-1")).await.unwrap();
    assert!(r.action.contains("Host EC2"), "{r:?}");
    // A finished attempt takes no notice.
    *w.compute.cannot_tell_instances.lock().unwrap() = false;
    w.compute
        .instances
        .lock()
        .unwrap()
        .insert("i-1".into(), vec!["arn:task/1".into()]);
    handle(
        &w.services,
        stopped(&job, 1, 3, "EssentialContainerExited", 2),
    )
    .await
    .unwrap();
    let r = handle(&w.services, spot_warning("i-1")).await.unwrap();
    assert!(r.reclaimed.is_empty(), "{r:?}");
    let a = w.jobs.get_attempt(&key(&job, 1)).await.unwrap().unwrap();
    assert_eq!((a.state, a.reclaim_notice), (AttemptState::Failed, None));
}

#[tokio::test]
async fn truncated_ec2_events_are_clear_errors() {
    let (w, _job) = world().await;
    for (kind, detail) in [
        ("EC2 Spot Instance Interruption Warning", json!({})),
        (
            "EC2 Instance State-change Notification",
            json!({"instance-id": "i-1"}),
        ),
    ] {
        let err = handle(&w.services, ec2(kind, detail)).await.unwrap_err();
        assert_eq!(err.name, sluice_core::ErrorName::InvalidInput);
        assert!(
            err.cause.contains(&format!("malformed {kind}")),
            "{}",
            err.cause
        );
    }
}

/// An attempt's recorded run is the one its stop event reports: launched ahead, it may have
/// waited for capacity (or a slot) before it ran. An event without the times keeps the launch
/// as the start and stamps the stop when it is handled.
#[tokio::test]
async fn the_attempt_records_when_it_ran_from_its_stop_event() {
    let (w, job) = world().await;
    launched(&w, &job, 1).await;
    let launched_at = w
        .jobs
        .get_attempt(&key(&job, 1))
        .await
        .unwrap()
        .unwrap()
        .started_at;
    let mut event = stopped(&job, 1, 3, "EssentialContainerExited", 2);
    event["detail"]["startedAt"] = json!("2026-12-03T10:00:05.25Z");
    event["detail"]["stoppedAt"] = json!("2026-12-03T10:00:07.5Z");
    handle(&w.services, event).await.unwrap();
    let a = w.jobs.get_attempt(&key(&job, 1)).await.unwrap().unwrap();
    assert_eq!(a.state, AttemptState::Failed);
    assert_eq!(a.started_at.to_rfc3339(), "2026-12-03T10:00:05.250+00:00");
    assert_eq!(
        a.stopped_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2026-12-03T10:00:07.500+00:00")
    );

    launched(&w, &job, 2).await;
    let before = chrono::Utc::now();
    handle(
        &w.services,
        stopped(&job, 2, 3, "EssentialContainerExited", 2),
    )
    .await
    .unwrap();
    let a = w.jobs.get_attempt(&key(&job, 2)).await.unwrap().unwrap();
    assert!(a.started_at >= launched_at && a.started_at <= before);
    assert!(a.stopped_at.is_some_and(|t| t >= before));
}

/// A state machine whose sends settle the answer (the embedded engine) gets the attempt
/// recorded answered in the write that ends it: one write fewer than Step Functions, where
/// the flag is written once the send went through. Either way a duplicate changes nothing.
#[tokio::test]
async fn where_sends_settle_the_answer_the_end_records_it_answered_in_one_write_less() {
    let mut writes = Vec::new();
    for settles in [false, true] {
        let (w, job) = world().await;
        *w.workflows.settles_answers.lock().unwrap() = settles;
        launched(&w, &job, 1).await;
        let before = w.jobs.writes();
        let event = stopped(&job, 1, 0, "EssentialContainerExited", 2);
        let setup = w.lift();
        w.objects.insert(
            &ObjectRef::new(
                w.services.buckets.data.clone(),
                format!("{}t-0.json", layout::stage_output(&job, "tasks")),
            ),
            "{}",
        );
        w.restore(setup);
        let report = handle(&w.services, event.clone()).await.unwrap();
        assert_eq!(report.classification, "succeeded", "{report:?}");
        writes.push(w.jobs.writes() - before);
        let setup = w.lift();
        let a = w.jobs.get_attempt(&key(&job, 1)).await.unwrap().unwrap();
        w.restore(setup);
        assert_eq!((a.state, a.answered), (AttemptState::Succeeded, true));
        assert_eq!(answers(&w), 1);
        let again = handle(&w.services, event).await.unwrap();
        assert!(again.action.starts_with("ignored"), "{}", again.action);
        assert_eq!(answers(&w), 1, "a duplicate sends nothing");
    }
    assert_eq!(
        writes[1] + 1,
        writes[0],
        "writes without / with settling sends: {writes:?}"
    );
}
