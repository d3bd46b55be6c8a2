//! execution-events on moto: an execution stopped on AWS stops the job's ECS task (StopTask),
//! records the job ABORTED and its attempt INTERRUPTED in DynamoDB, and scales the Auto
//! Scaling group down by releasing the job's lease. (moto emits no EventBridge events; the test
//! delivers the "Step Functions Execution Status Change" event the rule would.)

use crate::common::Moto;
use crate::moto_or_skip;
use serde_json::json;
use sluice_aws::config::CapacityConfig;
use sluice_aws::{AsgCapacity, EcsCompute};
use sluice_core::model::{AttemptKey, AttemptState, Lease};
use sluice_core::ports::{
    Buckets, CapacityPool, Compute, JobStore, Services, TaskUpdate, Transition,
};
use sluice_core::testing::{FixedPipelines, MemoryObjects, RecordingWorkflows, launching_attempt};
use sluice_core::{Job, JobId, JobState, TaskId, TaskState};
use std::sync::Arc;

#[tokio::test]
async fn execution_events_stop_the_jobs_ecs_tasks_and_release_its_capacity() {
    let moto: Moto = moto_or_skip!();
    let sdk = moto.sdk().await;
    let ecs = crate::ecs::ecs_client(&sdk);
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    crate::ecs::cluster(&ecs, &asg, "ber-sim", 512).await;
    crate::capacity::group(&asg, "sluice-spot", 0).await;
    let store = crate::dynamo::store(&moto).await;
    let compute = EcsCompute::new(ecs.clone(), crate::ecs::ecs_config("ber-sim"));
    let capacity = AsgCapacity::new(
        asg.clone(),
        store.clone(),
        CapacityConfig {
            spot_asg: Some("sluice-spot".into()),
            on_demand_asg: None,
            slots_per_instance: 4,
            max_instances: 5,
        },
    );
    let services = Services {
        objects: Arc::new(MemoryObjects::default()),
        jobs: Arc::new(store.clone()),
        compute: Arc::new(compute.clone()),
        capacity: Arc::new(capacity.clone()),
        workflows: Arc::new(RecordingWorkflows::default()),
        pipelines: Arc::new(FixedPipelines::default()),
        notifier: Arc::new(sluice_core::testing::RecordingNotifier::default()),
        buckets: Buckets {
            ingest: "ingest".into(),
            data: "data".into(),
        },
        job_pipelines: Default::default(),
    };

    // A running job with one task whose attempt runs on ECS, holding a lease of 4 slots.
    let job_id = JobId::new("ber-cancel").unwrap();
    let job = Job::new(
        job_id.clone(),
        "ber",
        sluice_core::model::ObjectRef::new("ingest", "ber/x.csv"),
        chrono::Utc::now(),
    );
    store.create_job(&job).await.unwrap();
    store
        .put_tasks(&[sluice_core::Task::pending(
            job_id.clone(),
            TaskId::new("t-0").unwrap(),
            "",
            0,
            Default::default(),
            chrono::Utc::now(),
        )])
        .await
        .unwrap();
    store
        .transition_job(&job_id, JobState::Running, Default::default())
        .await
        .unwrap();
    let launched = compute
        .launch(&crate::ecs::launch_request("ber-cancel", "t-0", 1))
        .await
        .unwrap();
    let key = AttemptKey {
        job_id: job_id.clone(),
        task_id: TaskId::new("t-0").unwrap(),
        number: 1,
    };
    store
        .create_attempt(&launching_attempt(
            key.clone(),
            "tok-1",
            Some(launched.compute_id.clone()),
        ))
        .await
        .unwrap();
    store
        .transition_attempt(&key, AttemptState::Running, Default::default())
        .await
        .unwrap();
    store
        .transition_task(
            &job_id,
            &key.task_id,
            TaskState::Running,
            TaskUpdate::default(),
        )
        .await
        .unwrap();
    capacity
        .acquire(&Lease {
            job_id: job_id.clone(),
            slots: 4,
            acquired_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    assert_eq!(crate::capacity::desired(&asg, "sluice-spot").await, 1);

    let event = json!({
        "version": "0", "id": "e", "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states", "account": "123456789012", "time": "2026-12-03T10:00:00Z",
        "region": "us-east-1", "resources": [],
        "detail": {
            "executionArn": "arn:aws:states:us-east-1:123456789012:execution:sluice:ber-cancel",
            "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:sluice",
            "name": "ber-cancel", "status": "ABORTED", "startDate": 1764756000000_i64,
            // Stopped now: after the attempt and the lease set up above.
            "stopDate": chrono::Utc::now().timestamp_millis(),
            "input": "{\"jobId\":\"ber-cancel\"}",
            "error": "Sluice.Cancelled", "cause": "stopped in the console", "redriveCount": 0
        }
    });
    let report = sluice_fn_execution_events::handle(&services, event.clone())
        .await
        .unwrap();
    assert_eq!(report.interrupted, 1, "{report:?}");

    let described = ecs
        .describe_tasks()
        .cluster(crate::ecs::CLUSTER)
        .tasks(&launched.compute_id)
        .send()
        .await
        .unwrap();
    let task = &described.tasks()[0];
    assert_eq!(
        task.desired_status(),
        Some("STOPPED"),
        "StopTask reached ECS"
    );
    assert!(
        task.stopped_reason().unwrap_or("").starts_with("sluice:"),
        "{:?}",
        task.stopped_reason()
    );
    let job = store.get_job(&job_id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Aborted);
    assert!(job.reason.unwrap().contains("stopped in the console"));
    let attempt = store.get_attempt(&key).await.unwrap().unwrap();
    assert_eq!(attempt.state, AttemptState::Interrupted);
    assert_eq!(attempt.stop_code.as_deref(), Some("JobStopped"));
    assert_eq!(
        crate::capacity::desired(&asg, "sluice-spot").await,
        0,
        "the lease is released: the group scales down"
    );

    // The event delivered again: nothing more happens.
    let again = sluice_fn_execution_events::handle(&services, event)
        .await
        .unwrap();
    assert_eq!(again.interrupted, 0);
    assert!(matches!(
        store
            .transition_job(&job_id, JobState::Succeeded, Default::default())
            .await
            .unwrap(),
        Transition::Rejected(_)
    ));
}
