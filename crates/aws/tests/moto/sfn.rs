//! SfnWorkflows against moto's Step Functions executor: idempotent StartExecution and task
//! tokens from a state waiting on `lambda:invoke.waitForTaskToken`.
//!
//! moto runs the Lambda invoke against its docker-free Lambda stub and records the task's
//! parameters, token included, in the TaskScheduled history event; the tests read the token
//! from there, as a real launch Lambda would read it from its payload.

use crate::common::{ACCOUNT, Moto};
use crate::moto_or_skip;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent, HistoryEventType};
use serde_json::json;
use sluice_aws::SfnWorkflows;
use sluice_core::ports::{JobStore, WorkflowError, Workflows};
use std::time::{Duration, Instant};

const WAITING_MACHINE: &str = r#"{
  "StartAt": "Launch",
  "States": {
    "Launch": {
      "Type": "Task",
      "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
      "Parameters": {
        "FunctionName": "sluice-launch",
        "Payload": {"token.$": "$$.Task.Token", "job.$": "$.job"}
      },
      "End": true
    }
  }
}"#;

/// A machine that holds its execution in a Wait state: moto's interpreter ends a Wait at once
/// when the execution is stopped, but not a Task waiting for its token (that one runs on until
/// its callback or timeout), so a stop is seen as ABORTED only here.
const HOLDING_MACHINE: &str = r#"{
  "StartAt": "Hold",
  "States": {"Hold": {"Type": "Wait", "Seconds": 600, "End": true}}
}"#;

/// Let moto execute state machines (with its docker-free Lambda) and create one.
///
/// moto 5.1 starts only one execution per account and region: StartExecution deep-copies the
/// state machine together with its backend, and once an execution (holding a lock) lives in
/// that backend the copy fails with a 500. Tests that need several executions use a region
/// each ([`Moto::sdk_in`]).
pub async fn state_machine(
    moto: &Moto,
    client: &aws_sdk_sfn::Client,
    name: &str,
    definition: &str,
) -> String {
    moto.configure(json!({
        "stepfunctions": {"execute_state_machine": true},
        "lambda": {"use_docker": false}
    }));
    client
        .create_state_machine()
        .name(name)
        .definition(definition)
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/sluice-sfn"))
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_owned()
}

pub async fn history(client: &aws_sdk_sfn::Client, execution: &str) -> Vec<HistoryEvent> {
    client
        .get_execution_history()
        .execution_arn(execution)
        .send()
        .await
        .unwrap()
        .events()
        .to_vec()
}

/// The task token of the execution's waiting task, once moto has scheduled it.
pub async fn wait_for_token(client: &aws_sdk_sfn::Client, execution: &str) -> String {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        for event in history(client, execution).await {
            if let Some(params) = event.task_scheduled_event_details().map(|d| d.parameters()) {
                let params: serde_json::Value = serde_json::from_str(params).unwrap();
                let payload = &params["Payload"];
                if let Some(token) = payload["token"].as_str().or(payload["taskToken"].as_str()) {
                    return token.to_owned();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no task token scheduled for {execution}: {:?}",
        history(client, execution).await
    );
}

/// Waits until the execution's history has an event of type `event`.
pub async fn wait_for_state(
    client: &aws_sdk_sfn::Client,
    execution: &str,
    event: HistoryEventType,
) {
    let start = Instant::now();
    while !history(client, execution)
        .await
        .iter()
        .any(|e| e.r#type() == &event)
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{execution} has no {event:?} event"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn wait_for_status(
    client: &aws_sdk_sfn::Client,
    execution: &str,
    status: ExecutionStatus,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    let start = Instant::now();
    loop {
        let out = client
            .describe_execution()
            .execution_arn(execution)
            .send()
            .await
            .unwrap();
        if out.status() == &status {
            return out;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{execution} is {:?}, expected {status:?}",
            out.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sfn_start_execution_is_idempotent_by_name() {
    let moto = moto_or_skip!();
    let client = aws_sdk_sfn::Client::new(&moto.sdk().await);
    let machine = state_machine(&moto, &client, "sluice", WAITING_MACHINE).await;
    let wf = SfnWorkflows::new(client.clone(), &machine);

    let input = json!({"job": "ber-1", "pipeline": "ber"});
    let arn = wf.start_execution("ber-1", &input).await.unwrap();
    assert_eq!(
        arn,
        format!("arn:aws:states:us-east-1:{ACCOUNT}:execution:sluice:ber-1")
    );
    // Second delivery while running: the same execution.
    assert_eq!(wf.start_execution("ber-1", &input).await.unwrap(), arn);
    // Same JSON, different key order and spacing: still the same input.
    let reordered: serde_json::Value =
        serde_json::from_str(r#"{ "pipeline": "ber", "job": "ber-1" }"#).unwrap();
    assert_eq!(wf.start_execution("ber-1", &reordered).await.unwrap(), arn);
    // A different input under the same name is refused.
    assert!(matches!(
        wf.start_execution("ber-1", &json!({"job": "other"})).await,
        Err(WorkflowError::AlreadyExists(m)) if m.contains(&arn)
    ));

    // After the execution closed, Step Functions raises ExecutionAlreadyExists even for the
    // same input; the adapter still answers with the existing ARN.
    let token = wait_for_token(&client, &arn).await;
    wf.send_task_success(&token, &json!({"ok": true}))
        .await
        .unwrap();
    wait_for_status(&client, &arn, ExecutionStatus::Succeeded).await;
    assert_eq!(wf.start_execution("ber-1", &input).await.unwrap(), arn);

    let listed = client
        .list_executions()
        .state_machine_arn(&machine)
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.executions().len(),
        1,
        "no second execution was started"
    );
}

#[tokio::test]
async fn sfn_task_tokens_success_failure_and_closed() {
    let moto = moto_or_skip!();
    let client = aws_sdk_sfn::Client::new(&moto.sdk().await);
    let machine = state_machine(&moto, &client, "sluice", WAITING_MACHINE).await;
    let wf = SfnWorkflows::new(client.clone(), &machine);

    // Success: the output becomes the execution's output.
    let ok = wf
        .start_execution("job-ok", &json!({"job": "job-ok"}))
        .await
        .unwrap();
    let token = wait_for_token(&client, &ok).await;
    wf.send_task_success(&token, &json!({"result": "s3://data/x.json"}))
        .await
        .unwrap();
    let out = wait_for_status(&client, &ok, ExecutionStatus::Succeeded).await;
    let output: serde_json::Value = serde_json::from_str(out.output().unwrap()).unwrap();
    assert_eq!(output, json!({"result": "s3://data/x.json"}));
    // The token is closed now: reporting again is TokenClosed, not an error to retry.
    // (moto answers this only for SendTaskSuccess: its SendTaskFailure still accepts the token
    // of a closed execution, see docs/aws.md.)
    assert!(matches!(
        wf.send_task_success(&token, &json!({})).await,
        Err(WorkflowError::TokenClosed(_))
    ));

    // Failure: the typed error name reaches the execution, truncated to the API's limits.
    let client = aws_sdk_sfn::Client::new(&moto.sdk_in("eu-west-1").await);
    let machine = state_machine(&moto, &client, "sluice", WAITING_MACHINE).await;
    let wf = SfnWorkflows::new(client.clone(), &machine);
    let bad = wf
        .start_execution("job-bad", &json!({"job": "job-bad"}))
        .await
        .unwrap();
    let token = wait_for_token(&client, &bad).await;
    let cause = "c".repeat(40_000);
    wf.send_task_failure(&token, sluice_core::ErrorName::SpotInterrupted, &cause)
        .await
        .unwrap();
    let out = wait_for_status(&client, &bad, ExecutionStatus::Failed).await;
    assert_eq!(out.error(), Some("Sluice.SpotInterrupted"));
    let events = history(&client, &bad).await;
    let failed = events
        .iter()
        .find(|e| e.r#type() == &HistoryEventType::TaskFailed)
        .and_then(|e| e.task_failed_event_details())
        .expect("TaskFailed event");
    assert_eq!(failed.error(), Some("Sluice.SpotInterrupted"));
    // moto does not record causes in the history (see docs/aws.md); the 40,000-character cause
    // was accepted because the adapter cut it to the API's 32,768.

    // A token that never existed.
    assert!(matches!(
        wf.send_task_success("bogus-token", &json!({})).await,
        Err(WorkflowError::TokenClosed(_))
    ));
    assert!(matches!(
        wf.send_task_failure("bogus-token", sluice_core::ErrorName::Internal, "x")
            .await,
        Err(WorkflowError::TokenClosed(_))
    ));
}

/// `sluice cancel` on AWS is StopExecution through the port. (RedriveExecution, behind
/// `redrive_execution`, is not implemented by moto 5.1; see docs/aws.md.)
#[tokio::test]
async fn sfn_stop_execution_aborts_a_waiting_execution() {
    let moto = moto_or_skip!();
    let client = aws_sdk_sfn::Client::new(&moto.sdk().await);
    let machine = state_machine(&moto, &client, "sluice", HOLDING_MACHINE).await;
    let wf = SfnWorkflows::new(client.clone(), &machine);
    let arn = wf
        .start_execution("ber-stop", &json!({"job": "ber-stop"}))
        .await
        .unwrap();
    wait_for_state(&client, &arn, HistoryEventType::WaitStateEntered).await;
    wf.stop_execution(&arn, "Sluice.Cancelled", "wrong input")
        .await
        .unwrap();
    let out = wait_for_status(&client, &arn, ExecutionStatus::Aborted).await;
    assert!(out.stop_date().is_some());
    let missing = arn.replace("ber-stop", "ber-nope");
    assert!(matches!(
        wf.stop_execution(&missing, "Sluice.Cancelled", "x").await,
        Err(WorkflowError::NoSuchExecution(_))
    ));
}

/// `sluice cancel --aws`: the job's execution found in DynamoDB and stopped in Step Functions.
#[tokio::test]
async fn sfn_cancel_a_job_through_the_job_table() {
    let moto = moto_or_skip!();
    let sdk = moto.sdk().await;
    let client = aws_sdk_sfn::Client::new(&sdk);
    let machine = state_machine(&moto, &client, "sluice", HOLDING_MACHINE).await;
    let wf = SfnWorkflows::new(client.clone(), &machine);
    let store = crate::dynamo::store(&moto).await;
    let job = crate::dynamo::job("ber-c", chrono::Utc::now());
    store.create_job(&job).await.unwrap();
    let arn = wf
        .start_execution("ber-c", &json!({"job": "ber-c"}))
        .await
        .unwrap();
    store
        .transition_job(
            &job.id,
            sluice_core::JobState::Running,
            sluice_core::model::JobUpdate {
                execution_arn: Some(arn.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    wait_for_state(&client, &arn, HistoryEventType::WaitStateEntered).await;
    let stopped = sluice_core::control::cancel(&store, &wf, &job.id, "wrong input")
        .await
        .unwrap();
    assert_eq!(stopped, arn);
    let out = wait_for_status(&client, &arn, ExecutionStatus::Aborted).await;
    assert_eq!(out.status(), &ExecutionStatus::Aborted);
    // moto 5.1 records the abort without the request's error and cause, so they are not
    // checked here (crates/cli/tests/recovery.rs checks a cancel's reason on the embedded
    // engine).
    assert!(
        history(&client, &arn)
            .await
            .iter()
            .any(|e| e.r#type() == &HistoryEventType::ExecutionAborted)
    );
}
