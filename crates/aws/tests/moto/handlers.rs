//! The Lambda handlers end to end on moto, wired exactly as a Lambda cold start wires them
//! (`sluice_aws::services`): ingest turns an S3 "Object Created" event into one job and one
//! execution (and a redelivery into nothing new); task-events turns an ECS Spot reclaim into a
//! SendTaskFailure the execution's history shows, and, on EC2, a Spot warning for the task's
//! instance followed by a bare exit code into the same.

use crate::common::{ACCOUNT, Moto};
use crate::moto_or_skip;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use chrono::Utc;
use serde_json::json;
use sluice_aws::AwsConfig;
use sluice_core::model::{
    Attempt, AttemptKey, AttemptState, Capacity, JobUpdate, ObjectRef, Task, TaskState,
};
use sluice_core::ports::{Compute, TaskUpdate};
use sluice_core::{Job, JobId, JobState, Services, TaskId};
use std::collections::BTreeMap;

const PIPELINE_TOML: &str = include_str!("../../../../examples/ber/pipeline.toml");

/// A state machine whose single task waits for its token, like the pipeline's RunTask state.
const WAITING_MACHINE: &str = r#"{
  "StartAt": "RunTask",
  "States": {
    "RunTask": {
      "Type": "Task",
      "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
      "Parameters": {
        "FunctionName": "sluice-launch",
        "Payload": {"jobId.$": "$.jobId", "taskToken.$": "$$.Task.Token"}
      },
      "End": true
    }
  }
}"#;

/// Buckets with the `ber` pipeline, the table, a state machine, and the services over them.
async fn deployment(moto: &Moto, region: &'static str) -> (aws_config::SdkConfig, Services) {
    let sdk = moto.sdk_in(region).await;
    let s3 = sluice_aws::s3_client(&sdk);
    for bucket in ["ingest", "data"] {
        let mut create = s3.create_bucket().bucket(bucket);
        if region != "us-east-1" {
            create = create.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        create.send().await.unwrap();
    }
    s3.put_object()
        .bucket("data")
        .key("pipelines/ber.toml")
        .body(PIPELINE_TOML.as_bytes().to_vec().into())
        .send()
        .await
        .unwrap();
    sluice_aws::dynamo::create_table(&aws_sdk_dynamodb::Client::new(&sdk), "sluice")
        .await
        .unwrap();
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let machine = crate::sfn::state_machine(moto, &sfn, "sluice", WAITING_MACHINE).await;
    let vars: BTreeMap<String, String> = [
        ("SLUICE_TABLE", "sluice"),
        ("SLUICE_INGEST_BUCKET", "ingest"),
        ("SLUICE_DATA_BUCKET", "data"),
        ("SLUICE_STATE_MACHINE_ARN", machine.as_str()),
        ("SLUICE_CLUSTER", "sluice"),
        ("SLUICE_TASK_DEFINITION", "ber-sim"),
        ("SLUICE_CONTAINER_NAME", "worker"),
        ("SLUICE_SPOT_CAPACITY_PROVIDER", "sluice-spot"),
        ("SLUICE_ON_DEMAND_CAPACITY_PROVIDER", "sluice-on-demand"),
        ("SLUICE_SPOT_ASG", "sluice-spot"),
        ("SLUICE_SLOTS_PER_INSTANCE", "4"),
        ("SLUICE_MAX_INSTANCES", "8"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = AwsConfig::from_vars(&vars).unwrap();
    let services = sluice_aws::services(&sdk, &config);
    (sdk, services)
}

#[tokio::test]
async fn handler_ingest_object_created_starts_one_job_once() {
    let moto = moto_or_skip!();
    let (sdk, services) = deployment(&moto, "us-east-1").await;
    let csv = "ebn0_db,seed\n0.0,1\n2.0,2\n";
    sluice_aws::s3_client(&sdk)
        .put_object()
        .bucket("ingest")
        .key("ber/run-1.csv")
        .body(csv.as_bytes().to_vec().into())
        .send()
        .await
        .unwrap();
    let event = sluice_fn_ingest::object_created_event(
        "ingest",
        "ber/run-1.csv",
        csv.len() as u64,
        "etag-1",
        "0062F1A2B3C4D5E6F7",
    );

    let first = sluice_fn_ingest::handle(&services, event.clone())
        .await
        .unwrap();
    assert_eq!(first["status"], "started", "{first}");
    let job_id = first["jobId"].as_str().unwrap().to_owned();
    let arn = format!("arn:aws:states:us-east-1:{ACCOUNT}:execution:sluice:{job_id}");
    assert_eq!(first["executionArn"], json!(arn));

    let jobs = services.jobs.list_jobs(10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id.as_str(), job_id);
    assert_eq!(jobs[0].pipeline, "ber");
    assert_eq!(jobs[0].input, ObjectRef::new("ingest", "ber/run-1.csv"));
    // Ingest records the execution on the SUBMITTED job; the plan step (not run here) moves
    // it to RUNNING.
    assert_eq!(jobs[0].state, JobState::Submitted);
    // Recorded by ingest's SUBMITTED -> SUBMITTED write (`JobState::transition_sources`).
    assert_eq!(jobs[0].execution_arn.as_deref(), Some(arn.as_str()));

    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let execution = sfn
        .describe_execution()
        .execution_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(execution.name(), Some(job_id.as_str()));
    let input: serde_json::Value = serde_json::from_str(execution.input().unwrap()).unwrap();
    assert_eq!(
        input,
        json!({"jobId": job_id, "pipeline": "ber", "input": {"bucket": "ingest", "key": "ber/run-1.csv"}})
    );

    // EventBridge delivers at least once: the same event again creates nothing new.
    let second = sluice_fn_ingest::handle(&services, event).await.unwrap();
    assert_eq!(second["status"], "duplicate", "{second}");
    assert_eq!(second["jobId"], json!(job_id));
    assert_eq!(services.jobs.list_jobs(10).await.unwrap().len(), 1);
    let machine = execution.state_machine_arn().to_owned();
    let listed = sfn
        .list_executions()
        .state_machine_arn(&machine)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.executions().len(), 1);
    assert_eq!(listed.executions()[0].name(), job_id);
}

#[tokio::test]
async fn handler_task_events_spot_reclaim_fails_the_waiting_task() {
    let moto = moto_or_skip!();
    let (sdk, services) = deployment(&moto, "us-west-2").await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);

    // A running job whose task's first attempt waits on a real moto task token.
    let job_id = JobId::new("ber-spot-0001").unwrap();
    let task_id = TaskId::new("t-0001").unwrap();
    let now = Utc::now();
    let job = Job::new(
        job_id.clone(),
        "ber",
        ObjectRef::new("ingest", "ber/spot.csv"),
        now,
    );
    assert!(services.jobs.create_job(&job).await.unwrap());
    let arn = services
        .workflows
        .start_execution(job_id.as_str(), &json!({"jobId": job_id}))
        .await
        .unwrap();
    services
        .jobs
        .transition_job(
            &job_id,
            JobState::Running,
            JobUpdate {
                execution_arn: Some(arn.clone()),
                task_count: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let token = crate::sfn::wait_for_token(&sfn, &arn).await;
    services
        .jobs
        .put_tasks(&[Task::pending(
            job_id.clone(),
            task_id.clone(),
            "",
            0,
            BTreeMap::from([
                ("ebn0_db".to_owned(), json!(2.0)),
                ("seed".to_owned(), json!(7)),
            ]),
            now,
        )])
        .await
        .unwrap();
    services
        .jobs
        .transition_task(
            &job_id,
            &task_id,
            TaskState::Running,
            TaskUpdate {
                attempts: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let task_arn =
        "arn:aws:ecs:us-west-2:123456789012:task/sluice/5b0e5d1d3c2f4e6a9b8c7d6e5f4a3b2c";
    let key = AttemptKey {
        job_id: job_id.clone(),
        task_id: task_id.clone(),
        number: 1,
    };
    services
        .jobs
        .create_attempt(&Attempt {
            key: key.clone(),
            state: AttemptState::Running,
            capacity: Capacity::Spot,
            task_token: token,
            compute_id: Some(task_arn.to_owned()),
            exit_code: None,
            stop_code: None,
            stopped_reason: None,
            event_version: Some(3),
            started_at: now,
            stopped_at: None,
            reclaim_notice: None,
            answer: None,
            answered: false,
        })
        .await
        .unwrap();

    // ECS reclaims the Spot capacity: the STOPPED event EventBridge delivers.
    let event = json!({
        "version": "0",
        "id": "6d1b6c3e-3a0e-4b1f-9f43-1c8f3c1d2e3f",
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": ACCOUNT,
        "time": "2026-11-22T03:10:00Z",
        "region": "us-west-2",
        "resources": [task_arn],
        "detail": {
            "clusterArn": "arn:aws:ecs:us-west-2:123456789012:cluster/sluice",
            "taskArn": task_arn,
            "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED",
            "stopCode": "SpotInterruption",
            "stoppedReason": "Your Spot Task was interrupted.",
            "capacityProviderName": "sluice-spot",
            "containers": [{"name": "worker", "lastStatus": "STOPPED", "exitCode": 137}],
            "overrides": {"containerOverrides": [{
                "name": "worker",
                "environment": [
                    {"name": "SLUICE_JOB_ID", "value": job_id.as_str()},
                    {"name": "SLUICE_TASK_ID", "value": task_id.as_str()},
                    {"name": "SLUICE_ATTEMPT", "value": "1"}
                ]
            }]},
            "version": 5
        }
    });
    let report = sluice_fn_task_events::handle(&services, event.clone())
        .await
        .unwrap();
    assert_eq!(
        report.error.as_deref(),
        Some("Sluice.SpotInterrupted"),
        "{report:?}"
    );

    // The execution saw the typed error through SendTaskFailure.
    let out = crate::sfn::wait_for_status(&sfn, &arn, ExecutionStatus::Failed).await;
    assert_eq!(out.error(), Some("Sluice.SpotInterrupted"));
    let events = crate::sfn::history(&sfn, &arn).await;
    let failed = events
        .iter()
        .find(|e| e.r#type() == &HistoryEventType::TaskFailed)
        .and_then(|e| e.task_failed_event_details())
        .expect("TaskFailed in the execution history");
    assert_eq!(failed.error(), Some("Sluice.SpotInterrupted"));
    // (moto keeps no cause in the history; the task record below carries it.)

    // The records moved exactly once.
    let attempt = services.jobs.get_attempt(&key).await.unwrap().unwrap();
    assert_eq!(attempt.state, AttemptState::SpotInterrupted);
    assert_eq!(attempt.event_version, Some(5));
    assert_eq!(attempt.stop_code.as_deref(), Some("SpotInterruption"));
    let task = services
        .jobs
        .get_task(&job_id, &task_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(task.state, TaskState::Retrying);
    assert_eq!(task.spot_interruptions, 1);
    assert!(
        task.last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("Sluice.SpotInterrupted")
                && e.contains("Your Spot Task was interrupted.")),
        "{:?}",
        task.last_error
    );

    // A redelivered event changes nothing and reports nothing.
    let again = sluice_fn_task_events::handle(&services, event)
        .await
        .unwrap();
    assert_eq!(again.error, None, "{again:?}");
    assert!(again.action.starts_with("ignored"), "{}", again.action);
    let task = services
        .jobs
        .get_task(&job_id, &task_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(task.spot_interruptions, 1);
}

/// The EC2 path end to end on moto: a task really placed on a container instance (moto ECS),
/// the instance's "EC2 Spot Instance Interruption Warning" (AWS's documented shape), then a
/// STOPPED event that says nothing of Spot, only exit code 137. task-events finds the task
/// through ECS (ListContainerInstances, DescribeContainerInstances, ListTasks), notes the
/// reclaim in DynamoDB, and reports Sluice.SpotInterrupted to the waiting execution.
#[tokio::test]
async fn handler_task_events_ec2_spot_warning_makes_an_exit_code_a_reclaim() {
    let moto = moto_or_skip!();
    let (sdk, services) = deployment(&moto, "us-east-1").await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let ecs = crate::ecs::ecs_client(&sdk);
    let instance = crate::ecs::cluster(
        &ecs,
        &aws_sdk_autoscaling::Client::new(&sdk),
        "ber-sim",
        512,
    )
    .await;

    let job_id = JobId::new("ber-ec2-0001").unwrap();
    let task_id = TaskId::new("t-0001").unwrap();
    let now = Utc::now();
    let job = Job::new(
        job_id.clone(),
        "ber",
        ObjectRef::new("ingest", "ber/ec2.csv"),
        now,
    );
    assert!(services.jobs.create_job(&job).await.unwrap());
    let arn = services
        .workflows
        .start_execution(job_id.as_str(), &json!({"jobId": job_id}))
        .await
        .unwrap();
    services
        .jobs
        .transition_job(
            &job_id,
            JobState::Running,
            JobUpdate {
                execution_arn: Some(arn.clone()),
                task_count: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let token = crate::sfn::wait_for_token(&sfn, &arn).await;
    services
        .jobs
        .put_tasks(&[Task::pending(
            job_id.clone(),
            task_id.clone(),
            "",
            0,
            BTreeMap::from([
                ("ebn0_db".to_owned(), json!(2.0)),
                ("seed".to_owned(), json!(7)),
            ]),
            now,
        )])
        .await
        .unwrap();
    services
        .jobs
        .transition_task(
            &job_id,
            &task_id,
            TaskState::Running,
            TaskUpdate {
                attempts: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // The attempt's container, placed by RunTask on the instance. (Launched through the ECS
    // test's client, which turns the numbers moto gives RunTask's cpu/memory into strings;
    // task-events below uses the deployment's own.)
    let launched = sluice_aws::EcsCompute::new(ecs.clone(), crate::ecs::ecs_config("ber-sim"))
        .launch(&crate::ecs::launch_request(
            job_id.as_str(),
            task_id.as_str(),
            1,
        ))
        .await
        .unwrap();
    let key = AttemptKey {
        job_id: job_id.clone(),
        task_id: task_id.clone(),
        number: 1,
    };
    services
        .jobs
        .create_attempt(&Attempt {
            key: key.clone(),
            state: AttemptState::Running,
            capacity: Capacity::Spot,
            task_token: token,
            compute_id: Some(launched.compute_id.clone()),
            exit_code: None,
            stop_code: None,
            stopped_reason: None,
            event_version: None,
            started_at: now,
            stopped_at: None,
            reclaim_notice: None,
            answer: None,
            answered: false,
        })
        .await
        .unwrap();

    let warning = json!({
        "version": "0", "id": "12345678-1234-1234-1234-123456789012",
        "detail-type": "EC2 Spot Instance Interruption Warning", "source": "aws.ec2",
        "account": ACCOUNT, "time": "2026-11-22T03:08:00Z", "region": "us-east-1",
        "resources": [format!("arn:aws:ec2:us-east-1:{ACCOUNT}:instance/{instance}")],
        "detail": {"instance-id": instance, "instance-action": "terminate"}
    });
    let noted = sluice_fn_task_events::handle(&services, warning)
        .await
        .unwrap();
    assert_eq!(noted.reclaimed, [key.to_string()], "{noted:?}");

    let stopped = json!({
        "version": "0", "id": "6d1b6c3e-3a0e-4b1f-9f43-1c8f3c1d2e40",
        "detail-type": "ECS Task State Change", "source": "aws.ecs",
        "account": ACCOUNT, "time": "2026-11-22T03:10:00Z", "region": "us-east-1",
        "resources": [launched.compute_id],
        "detail": {
            "clusterArn": format!("arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/sluice"),
            "taskArn": launched.compute_id,
            "lastStatus": "STOPPED", "desiredStatus": "STOPPED",
            "stopCode": "EssentialContainerExited",
            "stoppedReason": "Essential container in task exited",
            "containers": [{"name": "worker", "lastStatus": "STOPPED", "exitCode": 137}],
            "overrides": {"containerOverrides": [{
                "name": "worker",
                "environment": [
                    {"name": "SLUICE_JOB_ID", "value": job_id.as_str()},
                    {"name": "SLUICE_TASK_ID", "value": task_id.as_str()},
                    {"name": "SLUICE_ATTEMPT", "value": "1"}
                ]
            }]},
            "version": 4
        }
    });
    let report = sluice_fn_task_events::handle(&services, stopped)
        .await
        .unwrap();
    assert_eq!(report.classification, "spot-interrupted", "{report:?}");
    assert_eq!(report.error.as_deref(), Some("Sluice.SpotInterrupted"));
    let out = crate::sfn::wait_for_status(&sfn, &arn, ExecutionStatus::Failed).await;
    assert_eq!(out.error(), Some("Sluice.SpotInterrupted"));

    let attempt = services.jobs.get_attempt(&key).await.unwrap().unwrap();
    assert_eq!(attempt.state, AttemptState::SpotInterrupted);
    assert_eq!(attempt.exit_code, Some(137));
    assert!(attempt.answered, "{attempt:?}");
    assert!(
        attempt
            .reclaim_notice
            .as_deref()
            .is_some_and(|n| n.contains(&instance)),
        "{attempt:?}"
    );
    let task = services
        .jobs
        .get_task(&job_id, &task_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (task.state, task.spot_interruptions),
        (TaskState::Retrying, 1)
    );
}
