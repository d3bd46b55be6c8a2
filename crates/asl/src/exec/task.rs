//! Task states: resolve the resource, call the mock or the host, wait for callbacks, apply
//! timeouts, and record the task events AWS records.
//!
//! Events per attempt, as in GetExecutionHistory:
//! - bare Lambda ARN: `LambdaFunctionScheduled`, `LambdaFunctionStarted`, then
//!   `LambdaFunctionSucceeded` | `LambdaFunctionFailed` | `LambdaFunctionTimedOut`;
//! - integrations: `TaskScheduled`, `TaskStarted`, [`TaskSubmitted` for `.waitForTaskToken`],
//!   then `TaskSucceeded` | `TaskFailed` | `TaskTimedOut`.
//!
//! A Lambda function error becomes a task error named by the function's error type, with the
//! cause `{"errorMessage": ..., "errorType": ..., "stackTrace": []}` as AWS reports it.

use super::record::{TokenDelivery, TokenMessage, lock};
use super::shim::PathField;
use super::{Branch, Run, input_path, shim};
use crate::clock::{WorkGuard, WorkMark};
use crate::error::{StatesError, names};
use crate::history;
use crate::model::{Seconds, State, TaskState};
use crate::outcome::ExecutionStatus;
use crate::resource::{FunctionError, IntegrationPattern, MockedResult, ServiceCall, TaskResource};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Stops a `.sync` child execution if the parent task is abandoned before the child ends.
struct StopChildOnDrop<'a> {
    run: &'a Run,
    arn: String,
}

impl Drop for StopChildOnDrop<'_> {
    fn drop(&mut self) {
        self.run.host.stop_execution(
            &self.arn,
            Some("States.Aborted".into()),
            Some("The parent execution's task was stopped".into()),
        );
    }
}

/// Closes a task token when the task ends, however it ends (success, error, cancellation).
struct TokenGuard<'a> {
    run: &'a Run,
    token: String,
}

impl Drop for TokenGuard<'_> {
    fn drop(&mut self) {
        self.run.host.close_token(&self.token);
    }
}

fn resolve_seconds(
    s: &Option<Seconds>,
    input: &Value,
    ctx: &Value,
    field: PathField,
) -> Result<Option<u64>, StatesError> {
    match s {
        None => Ok(None),
        Some(Seconds::Fixed(n)) => Ok(Some(*n)),
        Some(Seconds::Path(p)) => {
            let v = shim::select(p, input, ctx, field)?;
            match v.as_u64() {
                Some(n) if n > 0 => Ok(Some(n)),
                _ => Err(StatesError::runtime(format!(
                    "The {} '{p}' must point to a positive integer, got {}",
                    field.as_str(),
                    shim::compact(&v)
                ))),
            }
        }
    }
}

fn function_error(e: FunctionError) -> StatesError {
    let cause = json!({ "errorMessage": e.message, "errorType": e.error_type, "stackTrace": [] });
    StatesError::new(e.error_type, cause.to_string())
}

/// What `lambda:invoke` returns around the function's return value.
fn lambda_invoke_response(payload: Value) -> Value {
    json!({
        "ExecutedVersion": "$LATEST",
        "Payload": payload,
        "SdkHttpMetadata": { "HttpHeaders": {}, "HttpStatusCode": 200 },
        "SdkResponseMetadata": { "RequestId": uuid::Uuid::new_v4().to_string() },
        "StatusCode": 200
    })
}

fn epoch_millis(t: DateTime<Utc>) -> Value {
    json!(t.timestamp_millis())
}

fn missing_resource(what: &str, resource: &str) -> StatesError {
    StatesError::runtime(format!(
        "No {what} is registered with the engine for resource '{resource}' (and no mock response was given)"
    ))
}

/// One attempt of a Task state; returns the state output.
pub(crate) async fn run_task(
    run: &Run,
    state: &State,
    task: &TaskState,
    raw_input: &Value,
    ctx: &Value,
    branch: &mut Branch,
) -> Result<Value, StatesError> {
    let selected = input_path(&state.io, Cow::Borrowed(raw_input), ctx)?;
    let timeout = resolve_seconds(&task.timeout, &selected, ctx, PathField::TimeoutSecondsPath)?;
    let heartbeat = resolve_seconds(
        &task.heartbeat,
        &selected,
        ctx,
        PathField::HeartbeatSecondsPath,
    )?;
    let pattern = task.target.pattern();
    let mut token_rx = None;
    let mut _token_guard = None;
    let mut ctx = ctx.clone();
    if pattern == IntegrationPattern::WaitForTaskToken {
        let (token, rx) = run.host.issue_token();
        ctx["Task"] = json!({ "Token": token });
        token_rx = Some(rx);
        _token_guard = Some(TokenGuard {
            run,
            token: token.clone(),
        });
    }
    let token = _token_guard.as_ref().map(|g| g.token.clone());
    let params = match &state.io.parameters {
        Some(t) => shim::render(t, &selected, &ctx)?,
        None => selected.into_owned(),
    };
    let invocation = {
        let mut inv = lock(&run.invocations);
        let n: &mut u32 = inv.entry(state.name.clone()).or_insert(0);
        let i = *n;
        *n = n.saturating_add(1);
        i
    };
    let mock = run
        .mocks
        .as_ref()
        .and_then(|m| m.response(&state.name, invocation));

    let bare_lambda = matches!(task.target, TaskResource::LambdaFunction { .. });
    let resource_type = task.target.resource_type().to_string();
    let resource = task.target.resource_name();
    let scheduled_at = run.clock.now();
    // Details are built only for a history somebody reads (not a distributed Map child's,
    // which nobody does): a payload serialised to a string per event was 2% of sluice's CPU.
    if bare_lambda {
        branch.record(run, "LambdaFunctionScheduled", || {
            let mut d = json!({
                "resource": task.resource,
                "input": history::payload(&params),
                "inputDetails": history::not_truncated(),
            });
            if let Some(t) = timeout {
                d["timeoutInSeconds"] = json!(t);
            }
            Some(("lambdaFunctionScheduledEventDetails", d))
        });
        branch.record(run, "LambdaFunctionStarted", None);
    } else {
        branch.record(run, "TaskScheduled", || {
            let mut d = json!({
                "resourceType": resource_type,
                "resource": resource,
                "region": run.config().region,
                "parameters": history::payload(&params),
            });
            if let Some(t) = timeout {
                d["timeoutInSeconds"] = json!(t);
            }
            if let Some(h) = heartbeat {
                d["heartbeatInSeconds"] = json!(h);
            }
            Some(("taskScheduledEventDetails", d))
        });
        branch.record(run, "TaskStarted", || {
            Some((
                "taskStartedEventDetails",
                json!({ "resourceType": resource_type, "resource": resource }),
            ))
        });
    }

    let deadline =
        timeout.map(|t| scheduled_at + chrono::Duration::seconds(t.min(99_999_999) as i64));
    let timeout_error = || {
        StatesError::new(
            names::TIMEOUT,
            format!(
                "The task '{}' did not finish within its TimeoutSeconds of {}",
                state.name,
                timeout.unwrap_or(0)
            ),
        )
    };
    // The work: a mock response, or the host call followed (for callbacks) by the token wait.
    let outcome: Result<Value, StatesError> = match mock {
        Some(MockedResult::Return(v)) => Ok(v),
        Some(MockedResult::Throw { error, cause }) => Err(StatesError::new(error, cause)),
        None => {
            let call = invoke(run, state, task, params, token.clone(), &mut branch.guard);
            match race(run, call, deadline).await {
                None => Err(timeout_error()),
                Some(Err(e)) => Err(e),
                Some(Ok(v)) => match token_rx {
                    None => Ok(v),
                    Some(rx) => {
                        branch.record(run, "TaskSubmitted", || {
                            Some((
                                "taskSubmittedEventDetails",
                                json!({
                                    "resourceType": resource_type,
                                    "resource": resource,
                                    "output": history::payload(&v),
                                    "outputDetails": history::not_truncated(),
                                }),
                            ))
                        });
                        let wait = wait_for_token(run, rx, heartbeat, &state.name);
                        let raced = race(run, wait, deadline);
                        match branch.guard.idle(raced).await {
                            None => Err(timeout_error()),
                            // The callback's work ends here, now that this branch is at work
                            // again (the mark drops at the end of the arm).
                            Some((r, _handed_over)) => r,
                        }
                    }
                },
            }
        }
    };
    drop(_token_guard);

    match outcome {
        Ok(result) => {
            if bare_lambda {
                branch.record(run, "LambdaFunctionSucceeded", || {
                    Some((
                        "lambdaFunctionSucceededEventDetails",
                        json!({ "output": history::payload(&result), "outputDetails": history::not_truncated() }),
                    ))
                });
            } else {
                branch.record(run, "TaskSucceeded", || {
                    Some((
                        "taskSucceededEventDetails",
                        json!({
                            "resourceType": resource_type,
                            "resource": resource,
                            "output": history::payload(&result),
                            "outputDetails": history::not_truncated(),
                        }),
                    ))
                });
            }
            run.finish_output(&state.io, Cow::Borrowed(raw_input), result, &ctx, true)
        }
        Err(e) => {
            let timed_out = e.error == names::TIMEOUT || e.error == names::HEARTBEAT_TIMEOUT;
            let (ty, key) = match (bare_lambda, timed_out) {
                (true, true) => (
                    "LambdaFunctionTimedOut",
                    "lambdaFunctionTimedOutEventDetails",
                ),
                (true, false) => ("LambdaFunctionFailed", "lambdaFunctionFailedEventDetails"),
                (false, true) => ("TaskTimedOut", "taskTimedOutEventDetails"),
                (false, false) => ("TaskFailed", "taskFailedEventDetails"),
            };
            let mut d = super::error_json(&e);
            if !bare_lambda {
                d["resourceType"] = json!(resource_type);
                d["resource"] = json!(resource);
            }
            branch.record(run, ty, Some((key, d)));
            Err(e)
        }
    }
}

/// Runs `fut` unless `deadline` passes first (`None` then).
async fn race<F: std::future::Future>(
    run: &Run,
    fut: F,
    deadline: Option<DateTime<Utc>>,
) -> Option<F::Output> {
    match deadline {
        None => Some(fut.await),
        Some(d) => {
            let sleep = run.clock.sleep_until(d);
            tokio::select! {
                r = fut => Some(r),
                _ = sleep => None,
            }
        }
    }
}

/// Waits for SendTaskSuccess / SendTaskFailure, restarting the heartbeat countdown on each
/// SendTaskHeartbeat. Returns the outcome with the work the callback handed over, for the
/// caller to drop once it is at work again.
async fn wait_for_token(
    run: &Run,
    mut rx: mpsc::UnboundedReceiver<TokenDelivery>,
    heartbeat: Option<u64>,
    state: &str,
) -> (Result<Value, StatesError>, Option<WorkMark>) {
    loop {
        let beat = heartbeat
            .map(|h| run.clock.now() + chrono::Duration::seconds(h.min(99_999_999) as i64));
        let msg = race(run, rx.recv(), beat).await;
        match msg {
            None => {
                let error = StatesError::new(
                    names::HEARTBEAT_TIMEOUT,
                    format!(
                        "The task '{state}' sent no heartbeat within its HeartbeatSeconds of {}",
                        heartbeat.unwrap_or(0)
                    ),
                );
                return (Err(error), None);
            }
            Some(None) => {
                let error =
                    StatesError::runtime(format!("the task token of '{state}' was dropped"));
                return (Err(error), None);
            }
            Some(Some(TokenDelivery { message, work })) => match message {
                TokenMessage::Success(v) => return (Ok(v), Some(work)),
                TokenMessage::Failure(e) => return (Err(e), Some(work)),
                TokenMessage::Heartbeat => continue,
            },
        }
    }
}

/// Calls the host for one Task attempt (no mock).
async fn invoke(
    run: &Run,
    state: &State,
    task: &TaskState,
    params: Value,
    token: Option<String>,
    guard: &mut WorkGuard,
) -> Result<Value, StatesError> {
    let resources = &run.config().resources;
    match &task.target {
        TaskResource::LambdaFunction { arn } => {
            let lambda = resources
                .lambda()
                .ok_or_else(|| missing_resource("Lambda invoker", &task.resource))?;
            lambda.invoke(arn, params).await.map_err(function_error)
        }
        TaskResource::LambdaInvoke { .. } => {
            let Some(function) = params.get("FunctionName").and_then(Value::as_str) else {
                return Err(StatesError::runtime(format!(
                    "The Parameters of '{}' must include FunctionName for lambda:invoke",
                    state.name
                )));
            };
            let lambda = resources.lambda().ok_or_else(|| {
                missing_resource(
                    "Lambda invoker",
                    &format!("{} (function '{function}')", task.resource),
                )
            })?;
            let payload = params.get("Payload").cloned().unwrap_or_else(|| json!({}));
            let ret = lambda
                .invoke(function, payload)
                .await
                .map_err(function_error)?;
            Ok(lambda_invoke_response(ret))
        }
        TaskResource::StartExecution {
            pattern,
            json_output,
        } => start_child(run, state, params, *pattern, *json_output, guard).await,
        TaskResource::Service {
            service,
            action,
            pattern,
        } => {
            let integration = resources.service(service).ok_or_else(|| {
                missing_resource(&format!("'{service}' service integration"), &task.resource)
            })?;
            integration
                .call(ServiceCall {
                    service: service.clone(),
                    action: action.clone(),
                    pattern: *pattern,
                    parameters: params,
                    task_token: token,
                    state_name: state.name.clone(),
                    execution_arn: run.record.arn.clone(),
                })
                .await
        }
        TaskResource::Activity { arn } => Err(StatesError::runtime(format!(
            "Activities are not supported by the embedded engine (resource '{arn}')"
        ))),
    }
}

/// `states:startExecution[.sync[:2]|.waitForTaskToken]`: a child execution on this engine.
async fn start_child(
    run: &Run,
    state: &State,
    params: Value,
    pattern: IntegrationPattern,
    json_output: bool,
    guard: &mut WorkGuard,
) -> Result<Value, StatesError> {
    let Some(machine_arn) = params.get("StateMachineArn").and_then(Value::as_str) else {
        return Err(StatesError::runtime(format!(
            "The Parameters of '{}' must include StateMachineArn for states:startExecution",
            state.name
        )));
    };
    let machine = run.host.state_machine(machine_arn).ok_or_else(|| {
        StatesError::new(
            "StepFunctions.StateMachineDoesNotExistException",
            format!("State Machine Does Not Exist: '{machine_arn}' (register it with Engine::register_state_machine)"),
        )
    })?;
    let input = match params.get("Input") {
        None => json!({}),
        // AWS accepts the input as JSON text too.
        Some(Value::String(s)) => {
            serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))
        }
        Some(v) => v.clone(),
    };
    let name = params
        .get("Name")
        .and_then(Value::as_str)
        .map(str::to_string);
    let child =
        run.host
            .start_execution(Arc::clone(&machine), input.clone(), name, run.mocks.clone())?;
    let start = child.start_date;
    if pattern != IntegrationPattern::Sync {
        return Ok(json!({ "ExecutionArn": child.arn, "StartDate": epoch_millis(start) }));
    }
    // Stopping the parent (or a parent timeout) stops the child, as AWS does for `.sync`.
    let stop_child = StopChildOnDrop {
        run,
        arn: child.arn.clone(),
    };
    let outcome = guard.idle(child.wait()).await;
    // The child has ended, so this stop is a no-op (StopExecution on a closed execution).
    drop(stop_child);
    let stop = lock(&child.stop_date).unwrap_or_else(|| run.clock.now());
    let as_payload = |v: &Value| {
        if json_output {
            v.clone()
        } else {
            Value::String(v.to_string())
        }
    };
    let mut out = json!({
        "ExecutionArn": child.arn,
        "Input": as_payload(&input),
        "InputDetails": { "Included": true },
        "Name": child.name,
        "RedriveCount": 0,
        "StartDate": epoch_millis(start),
        "StateMachineArn": run.config().state_machine_arn(&machine.name),
        "Status": outcome.status.as_str(),
        "StopDate": epoch_millis(stop),
    });
    if let Some(o) = &outcome.output {
        out["Output"] = as_payload(o);
        out["OutputDetails"] = json!({ "Included": true });
    }
    if outcome.status == ExecutionStatus::Succeeded {
        return Ok(out);
    }
    if let Some(e) = &outcome.error {
        out["Error"] = json!(e);
    }
    if let Some(c) = &outcome.cause {
        out["Cause"] = json!(c);
    }
    Err(StatesError::new(names::TASK_FAILED, out.to_string()))
}
