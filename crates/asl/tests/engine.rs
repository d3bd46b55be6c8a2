//! Engine behaviour that needs a host: Lambda and service integrations, task tokens,
//! timeouts, concurrency limits, distributed Map over an object store, stop, redrive,
//! child executions and the history sink.

use async_trait::async_trait;
use serde_json::{Value, json};
use sluice_asl::{
    CallbackError, Engine, EngineConfig, ExecutionStatus, FunctionError, HistoryEvent, HistorySink,
    LambdaInvoker, Resources, ServiceCall, ServiceIntegration, StartError, StateMachine,
    StatesError, VirtualClock,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Handler = dyn Fn(&str, Value, usize) -> Result<Value, FunctionError> + Send + Sync;

/// A Lambda host that answers with a closure, counts calls and tracks concurrency.
struct FnLambda {
    handler: Box<Handler>,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    delay: Duration,
}

impl FnLambda {
    fn new(
        handler: impl Fn(&str, Value, usize) -> Result<Value, FunctionError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Self::with_delay(Duration::ZERO, handler)
    }

    fn with_delay(
        delay: Duration,
        handler: impl Fn(&str, Value, usize) -> Result<Value, FunctionError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            handler: Box::new(handler),
            calls: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            delay,
        })
    }
}

#[async_trait]
impl LambdaInvoker for FnLambda {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, FunctionError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        (self.handler)(function, payload, n)
    }
}

fn machine(def: Value) -> Arc<StateMachine> {
    Arc::new(
        StateMachine::from_value(def)
            .unwrap_or_else(|d| panic!("invalid test definition: {d:?}"))
            .named("test"),
    )
}

fn engine_with(resources: Resources, virtual_clock: bool) -> Engine {
    let mut config = EngineConfig {
        resources,
        ..EngineConfig::default()
    };
    if virtual_clock {
        config.clock = Arc::new(VirtualClock::new());
    }
    Engine::new(config)
}

fn types(events: &[HistoryEvent]) -> Vec<String> {
    events.iter().map(|e| e.event_type.clone()).collect()
}

async fn wait(h: &sluice_asl::ExecutionHandle) -> sluice_asl::ExecutionOutcome {
    tokio::time::timeout(Duration::from_secs(60), h.wait())
        .await
        .expect("the execution finishes")
}

#[tokio::test]
async fn retry_backoff_follows_virtual_time() {
    let lambda = FnLambda::new(|_, _, n| {
        if n < 3 {
            Err(FunctionError::new("Sluice.Flaky", "try again"))
        } else {
            Ok(json!({"done": n}))
        }
    });
    let engine = engine_with(Resources::new().with_lambda(lambda.clone()), true);
    let sm = machine(json!({
        "StartAt": "Call",
        "States": {"Call": {
            "Type": "Task",
            "Resource": "arn:aws:lambda:us-east-1:123456789012:function:flaky",
            "Retry": [{"ErrorEquals": ["Sluice.Flaky"], "IntervalSeconds": 3, "BackoffRate": 2.0, "MaxAttempts": 3}],
            "End": true
        }}
    }));
    let h = engine.start_execution(sm, None, json!({})).expect("starts");
    let out = wait(&h).await;
    assert_eq!(out.status, ExecutionStatus::Succeeded);
    assert_eq!(out.output, Some(json!({"done": 3})));
    assert_eq!(lambda.calls.load(Ordering::SeqCst), 4);
    let history = h.history();
    let scheduled: Vec<_> = history
        .iter()
        .filter(|e| e.event_type == "LambdaFunctionScheduled")
        .map(|e| e.timestamp)
        .collect();
    assert_eq!(scheduled.len(), 4);
    let gaps: Vec<i64> = scheduled
        .windows(2)
        .map(|w| (w[1] - w[0]).num_milliseconds())
        .collect();
    assert_eq!(gaps, vec![3000, 6000, 12000]);
    let failed = history
        .iter()
        .filter(|e| e.event_type == "LambdaFunctionFailed")
        .count();
    assert_eq!(failed, 3);
}

#[tokio::test]
async fn max_delay_caps_backoff() {
    let lambda = FnLambda::new(|_, _, _| Err(FunctionError::new("E", "always")));
    let engine = engine_with(Resources::new().with_lambda(lambda.clone()), true);
    let sm = machine(json!({
        "StartAt": "Call",
        "States": {"Call": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "f"},
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 10, "BackoffRate": 10, "MaxAttempts": 3, "MaxDelaySeconds": 50}],
            "End": true
        }}
    }));
    let h = engine.start_execution(sm, None, json!({})).expect("starts");
    let out = wait(&h).await;
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert_eq!(out.error.as_deref(), Some("E"));
    let cause: Value =
        serde_json::from_str(out.cause.as_deref().unwrap_or("null")).expect("cause is JSON");
    assert_eq!(cause["errorMessage"], "always");
    assert_eq!(cause["errorType"], "E");
    let times: Vec<_> = h
        .history()
        .iter()
        .filter(|e| e.event_type == "TaskScheduled")
        .map(|e| e.timestamp)
        .collect();
    let gaps: Vec<i64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).num_seconds())
        .collect();
    assert_eq!(gaps, vec![10, 50, 50]);
}

#[tokio::test]
async fn lambda_invoke_result_shape_and_events() {
    let lambda = FnLambda::new(|f, p, _| Ok(json!({"fn": f, "got": p})));
    let engine = engine_with(Resources::new().with_lambda(lambda), true);
    let sm = machine(json!({
        "StartAt": "Call",
        "States": {"Call": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "plan", "Payload": {"x.$": "$.x"}},
            "ResultSelector": {"payload.$": "$.Payload", "code.$": "$.StatusCode"},
            "ResultPath": "$.r",
            "End": true
        }}
    }));
    let h = engine
        .start_execution(sm, None, json!({"x": 1}))
        .expect("starts");
    let out = wait(&h).await;
    assert_eq!(
        out.output,
        Some(json!({"x": 1, "r": {"payload": {"fn": "plan", "got": {"x": 1}}, "code": 200}}))
    );
    let history = h.history();
    assert_eq!(
        types(&history),
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
    let scheduled = history[2].to_json();
    let d = &scheduled["taskScheduledEventDetails"];
    assert_eq!(d["resourceType"], "lambda");
    assert_eq!(d["resource"], "invoke");
    assert_eq!(d["region"], "local");
    let params: Value = serde_json::from_str(d["parameters"].as_str().unwrap_or("")).expect("JSON");
    assert_eq!(params, json!({"FunctionName": "plan", "Payload": {"x": 1}}));
    // ids are sequential and each event points at the one before it on a linear run
    for (i, e) in history.iter().enumerate() {
        assert_eq!(e.id, i as u64 + 1);
        assert_eq!(e.previous_event_id, i as u64);
    }
}

#[tokio::test]
async fn bare_lambda_events() {
    let lambda = FnLambda::new(|_, p, _| Ok(p));
    let engine = engine_with(Resources::new().with_lambda(lambda), true);
    let sm = machine(json!({
        "StartAt": "Call",
        "States": {"Call": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:echo", "End": true}}
    }));
    let h = engine
        .start_execution(sm, None, json!({"a": [1]}))
        .expect("starts");
    let out = wait(&h).await;
    assert_eq!(out.output, Some(json!({"a": [1]})));
    let t = types(&h.history());
    assert_eq!(
        t,
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "LambdaFunctionScheduled",
            "LambdaFunctionStarted",
            "LambdaFunctionSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
    let ev = h.history()[2].to_json();
    assert_eq!(
        ev["lambdaFunctionScheduledEventDetails"]["resource"],
        "arn:aws:lambda:us-east-1:1:function:echo"
    );
    assert_eq!(
        ev["lambdaFunctionScheduledEventDetails"]["input"],
        "{\"a\":[1]}"
    );
}

/// A service that hands the task token to a callback on another task.
struct TokenService {
    engine: Mutex<Option<Engine>>,
    behaviour: &'static str,
}

#[async_trait]
impl ServiceIntegration for TokenService {
    async fn call(&self, call: ServiceCall) -> Result<Value, StatesError> {
        let token = call
            .task_token
            .clone()
            .ok_or_else(|| StatesError::task_failed("no token"))?;
        let engine = self.engine.lock().map(|e| e.clone()).ok().flatten();
        let Some(engine) = engine else {
            return Err(StatesError::task_failed("no engine"));
        };
        let behaviour = self.behaviour;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            match behaviour {
                "success" => {
                    let _ = engine.send_task_success(&token, json!({"approved": true}));
                }
                "failure" => {
                    let _ = engine.send_task_failure(&token, "Review.Rejected", "looks wrong");
                }
                "heartbeat" => {
                    for _ in 0..6 {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        let _ = engine.send_task_heartbeat(&token);
                    }
                    let _ = engine.send_task_success(&token, json!("late but alive"));
                }
                _ => {}
            }
        });
        Ok(json!({"MessageId": "m-1"}))
    }
}

fn token_machine(heartbeat: u64) -> Arc<StateMachine> {
    machine(json!({
        "StartAt": "Ask",
        "States": {
            "Ask": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": "q", "MessageBody": {"token.$": "$$.Task.Token"}},
                "HeartbeatSeconds": heartbeat,
                "ResultPath": "$.answer",
                "Catch": [{"ErrorEquals": ["Review.Rejected"], "ResultPath": "$.rejected", "Next": "Rejected"}],
                "End": true
            },
            "Rejected": {"Type": "Pass", "End": true}
        }
    }))
}

async fn token_run(
    behaviour: &'static str,
    heartbeat: u64,
    virtual_clock: bool,
) -> (Engine, sluice_asl::ExecutionHandle) {
    let service = Arc::new(TokenService {
        engine: Mutex::new(None),
        behaviour,
    });
    let engine = engine_with(
        Resources::new().with_service("sqs", service.clone()),
        virtual_clock,
    );
    if let Ok(mut e) = service.engine.lock() {
        *e = Some(engine.clone());
    }
    let h = engine
        .start_execution(token_machine(heartbeat), None, json!({"id": 1}))
        .expect("starts");
    wait(&h).await;
    (engine, h)
}

#[tokio::test]
async fn wait_for_task_token_success() {
    let (_, h) = token_run("success", 30, false).await;
    let out = h.outcome().expect("finished");
    assert_eq!(out.status, ExecutionStatus::Succeeded);
    assert_eq!(
        out.output,
        Some(json!({"id": 1, "answer": {"approved": true}}))
    );
    assert_eq!(
        types(&h.history()),
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSubmitted",
            "TaskSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
}

#[tokio::test]
async fn wait_for_task_token_failure_is_caught() {
    let (_, h) = token_run("failure", 30, false).await;
    let out = h.outcome().expect("finished");
    assert_eq!(out.status, ExecutionStatus::Succeeded);
    assert_eq!(
        out.output,
        Some(json!({"id": 1, "rejected": {"Error": "Review.Rejected", "Cause": "looks wrong"}}))
    );
}

#[tokio::test]
async fn heartbeats_keep_a_task_alive() {
    let (_, h) = token_run("heartbeat", 1, false).await;
    let out = h.outcome().expect("finished");
    assert_eq!(out.status, ExecutionStatus::Succeeded, "{out:?}");
    assert_eq!(
        out.output,
        Some(json!({"id": 1, "answer": "late but alive"}))
    );
}

#[tokio::test]
async fn heartbeat_timeout_and_late_callbacks() {
    let (engine, h) = token_run("silent", 5, true).await;
    let out = h.outcome().expect("finished");
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert_eq!(out.error.as_deref(), Some("States.HeartbeatTimeout"));
    let history = h.history();
    let timed_out = history
        .iter()
        .find(|e| e.event_type == "TaskTimedOut")
        .expect("TaskTimedOut");
    assert_eq!(
        timed_out.detail().map(|d| d["error"].clone()),
        Some(json!("States.HeartbeatTimeout"))
    );
    // The token was sent to the service in the parameters; it is closed now.
    let scheduled = history
        .iter()
        .find(|e| e.event_type == "TaskScheduled")
        .expect("scheduled");
    let params: Value = serde_json::from_str(
        scheduled
            .detail()
            .and_then(|d| d["parameters"].as_str())
            .unwrap_or(""),
    )
    .expect("JSON");
    let token = params["MessageBody"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    assert_eq!(
        engine.send_task_success(&token, json!(1)),
        Err(CallbackError::TaskTimedOut(token.clone()))
    );
    assert_eq!(
        engine.send_task_heartbeat(&token),
        Err(CallbackError::TaskTimedOut(token.clone()))
    );
    assert_eq!(
        engine.send_task_success("nope", json!(1)),
        Err(CallbackError::InvalidToken("nope".into()))
    );
    // Virtual time moved exactly by the heartbeat interval.
    let started = history
        .iter()
        .find(|e| e.event_type == "TaskStarted")
        .map(|e| e.timestamp);
    let ended = history
        .iter()
        .find(|e| e.event_type == "TaskTimedOut")
        .map(|e| e.timestamp);
    let gap = ended.zip(started).map(|(a, b)| (a - b).num_seconds());
    assert_eq!(gap, Some(5));
}

#[tokio::test]
async fn task_timeout_seconds() {
    let lambda = FnLambda::with_delay(Duration::from_secs(30), |_, _, _| Ok(json!(1)));
    let engine = engine_with(Resources::new().with_lambda(lambda), false);
    let sm = machine(json!({
        "StartAt": "Slow",
        "States": {"Slow": {
            "Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:slow",
            "TimeoutSeconds": 1,
            "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Wrong"}, {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.e", "Next": "Done"}],
            "End": true
        }, "Wrong": {"Type": "Fail"}, "Done": {"Type": "Succeed"}}
    }));
    let started = std::time::Instant::now();
    let h = engine.start_execution(sm, None, json!({})).expect("starts");
    let out = wait(&h).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status, ExecutionStatus::Succeeded);
    assert_eq!(
        out.output.as_ref().map(|o| o["e"]["Error"].clone()),
        Some(json!("States.Timeout"))
    );
    assert!(types(&h.history()).contains(&"LambdaFunctionTimedOut".to_string()));
}

#[tokio::test]
async fn map_respects_max_concurrency() {
    let lambda = FnLambda::with_delay(Duration::from_millis(40), |_, p, _| {
        Ok(json!({"doubled": p["n"].as_i64().unwrap_or(0) * 2}))
    });
    let engine = engine_with(Resources::new().with_lambda(lambda.clone()), false);
    let sm = machine(json!({
        "StartAt": "Each",
        "States": {"Each": {
            "Type": "Map",
            "MaxConcurrency": 2,
            "ItemSelector": {"n.$": "$$.Map.Item.Value"},
            "ItemProcessor": {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:w", "OutputPath": "$.doubled", "End": true}}},
            "End": true
        }}
    }));
    let h = engine
        .start_execution(sm, None, json!([1, 2, 3, 4, 5, 6]))
        .expect("starts");
    let out = wait(&h).await;
    assert_eq!(out.output, Some(json!([2, 4, 6, 8, 10, 12])));
    assert_eq!(lambda.max_in_flight.load(Ordering::SeqCst), 2);
    let history = h.history();
    let iterations = history
        .iter()
        .filter(|e| e.event_type == "MapIterationSucceeded")
        .count();
    assert_eq!(iterations, 6);
    let started = history
        .iter()
        .find(|e| e.event_type == "MapStateStarted")
        .expect("started");
    assert_eq!(
        started.detail().map(|d| d["length"].clone()),
        Some(json!(6))
    );
}

#[tokio::test]
async fn parallel_failure_cancels_other_branches() {
    let finished = Arc::new(AtomicBool::new(false));
    let flag = finished.clone();
    let lambda = FnLambda::with_delay(Duration::from_secs(20), move |_, _, _| {
        flag.store(true, Ordering::SeqCst);
        Ok(json!(1))
    });
    let engine = engine_with(Resources::new().with_lambda(lambda), false);
    let sm = machine(json!({
        "StartAt": "Both",
        "States": {"Both": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Slow", "States": {"Slow": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:slow", "End": true}}},
                {"StartAt": "Fails", "States": {"Fails": {"Type": "Fail", "Error": "Branch.Failed", "Cause": "b2"}}}
            ],
            "End": true
        }}
    }));
    let t = std::time::Instant::now();
    let h = engine.start_execution(sm, None, json!({})).expect("starts");
    let out = wait(&h).await;
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert_eq!(out.error.as_deref(), Some("Branch.Failed"));
    assert_eq!(out.cause.as_deref(), Some("b2"));
    assert!(!finished.load(Ordering::SeqCst));
    assert!(types(&h.history()).contains(&"ParallelStateFailed".to_string()));
}

#[tokio::test]
async fn start_execution_name_rules() {
    let engine = engine_with(Resources::new(), true);
    let sm = machine(
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 10, "End": true}}}),
    );
    let a = engine
        .start_execution(sm.clone(), Some("run-1".into()), json!({"a": 1}))
        .expect("starts");
    assert_eq!(
        a.arn(),
        "arn:aws:states:local:000000000000:execution:test:run-1"
    );
    // Same name and input while running: the same execution.
    let again = engine
        .start_execution(sm.clone(), Some("run-1".into()), json!({"a": 1}))
        .expect("idempotent");
    assert_eq!(again.arn(), a.arn());
    // Different input: refused.
    let other = engine.start_execution(sm.clone(), Some("run-1".into()), json!({"a": 2}));
    assert!(matches!(other, Err(StartError::ExecutionAlreadyExists(_))));
    wait(&a).await;
    // Closed: refused even with the same input.
    let closed = engine.start_execution(sm.clone(), Some("run-1".into()), json!({"a": 1}));
    assert!(matches!(closed, Err(StartError::ExecutionAlreadyExists(_))));
    assert!(matches!(
        engine.start_execution(sm, Some("bad name".into()), json!({})),
        Err(StartError::InvalidName(_))
    ));
}

#[tokio::test]
async fn stop_execution_aborts() {
    let engine = engine_with(Resources::new(), false);
    let sm = machine(
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1000, "End": true}}}),
    );
    let h = engine
        .start_execution(sm, Some("stop-me".into()), json!({}))
        .expect("starts");
    tokio::time::sleep(Duration::from_millis(50)).await;
    engine
        .stop_execution(h.arn(), Some("User.Stop".into()), Some("enough".into()))
        .expect("stops");
    let out = wait(&h).await;
    assert_eq!(out.status, ExecutionStatus::Aborted);
    assert_eq!(out.error.as_deref(), Some("User.Stop"));
    let last = h.history().last().map(|e| e.to_json()).unwrap_or_default();
    assert_eq!(last["type"], "ExecutionAborted");
    assert_eq!(last["executionAbortedEventDetails"]["cause"], "enough");
    let d = engine.describe_execution(h.arn()).expect("described");
    assert_eq!(d.status, ExecutionStatus::Aborted);
    assert!(d.stop_date.is_some());
}

#[tokio::test]
async fn execution_context_object() {
    let engine = engine_with(Resources::new(), true);
    let sm = machine(
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {
        "id.$": "$$.Execution.Id", "name.$": "$$.Execution.Name", "input.$": "$$.Execution.Input",
        "sm.$": "$$.StateMachine.Id", "redrives.$": "$$.Execution.RedriveCount", "entered.$": "$$.State.EnteredTime"
    }, "End": true}}}),
    );
    let h = engine
        .start_execution(sm, Some("ctx".into()), json!({"k": "v"}))
        .expect("starts");
    let out = wait(&h).await.output.unwrap_or_default();
    assert_eq!(
        out["id"],
        "arn:aws:states:local:000000000000:execution:test:ctx"
    );
    assert_eq!(out["name"], "ctx");
    assert_eq!(out["input"], json!({"k": "v"}));
    assert_eq!(
        out["sm"],
        "arn:aws:states:local:000000000000:stateMachine:test"
    );
    assert_eq!(out["redrives"], 0);
    assert_eq!(out["entered"], "2024-01-01T00:00:00.000Z");
}

struct Recorder(Mutex<Vec<(String, u64, String)>>);

impl HistorySink for Recorder {
    fn record(&self, arn: &str, event: &HistoryEvent) {
        if let Ok(mut v) = self.0.lock() {
            v.push((arn.to_string(), event.id, event.event_type.clone()));
        }
    }
}

#[tokio::test]
async fn history_sink_sees_events_and_branch_chains() {
    let sink = Arc::new(Recorder(Mutex::new(Vec::new())));
    let engine = Engine::new(EngineConfig {
        history_sink: Some(sink.clone()),
        clock: Arc::new(VirtualClock::new()),
        ..EngineConfig::default()
    });
    let sm = machine(
        json!({"StartAt": "Par", "States": {"Par": {"Type": "Parallel", "Branches": [
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
        {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}}}
    ], "End": true}}}),
    );
    let h = engine
        .start_execution(sm, Some("sink".into()), json!(1))
        .expect("starts");
    wait(&h).await;
    let history = h.history();
    let seen = sink.0.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(seen.len(), history.len());
    assert!(seen.iter().all(|(arn, _, _)| arn.ends_with(":sink")));
    let started = history
        .iter()
        .find(|e| e.event_type == "ParallelStateStarted")
        .expect("started");
    let branch_entries: Vec<_> = history
        .iter()
        .filter(|e| e.event_type == "PassStateEntered")
        .collect();
    assert_eq!(branch_entries.len(), 2);
    assert!(
        branch_entries
            .iter()
            .all(|e| e.previous_event_id == started.id)
    );
    assert_eq!(h.outcome().and_then(|o| o.output), Some(json!([1, 1])));
}

#[tokio::test]
async fn child_execution_sync() {
    let engine = engine_with(Resources::new(), true);
    let child = Arc::new(
        StateMachine::from_value(json!({"StartAt": "Double", "States": {"Double": {"Type": "Pass", "Parameters": {"twice.$": "States.MathAdd($.n, $.n)"}, "End": true}}}))
            .expect("valid")
            .named("child"),
    );
    engine.register_state_machine(child);
    let parent = machine(json!({"StartAt": "Run", "States": {"Run": {
        "Type": "Task",
        "Resource": "arn:aws:states:::states:startExecution.sync:2",
        "Parameters": {"StateMachineArn": "arn:aws:states:local:000000000000:stateMachine:child", "Input": {"n.$": "$.n"}},
        "OutputPath": "$.Output",
        "End": true
    }}}));
    let h = engine
        .start_execution(parent, None, json!({"n": 21}))
        .expect("starts");
    let out = wait(&h).await;
    assert_eq!(out.status, ExecutionStatus::Succeeded, "{out:?}");
    assert_eq!(out.output, Some(json!({"twice": 42})));
}

#[tokio::test]
async fn redrive_restarts_from_the_failed_state() {
    let first_calls = Arc::new(AtomicUsize::new(0));
    let fc = first_calls.clone();
    let lambda = FnLambda::new(move |f, p, _| {
        if f.ends_with("first") {
            fc.fetch_add(1, Ordering::SeqCst);
            return Ok(json!({"step": 1, "in": p}));
        }
        // "second" fails on its first call only.
        static SECOND: AtomicUsize = AtomicUsize::new(0);
        if SECOND.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(FunctionError::new("Sluice.Transient", "first try fails"))
        } else {
            Ok(json!({"step": 2, "in": p}))
        }
    });
    let engine = engine_with(Resources::new().with_lambda(lambda), true);
    let sm = machine(json!({"StartAt": "First", "States": {
        "First": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:first", "Next": "Second"},
        "Second": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:second", "End": true}
    }}));
    let h = engine
        .start_execution(sm, Some("redrive".into()), json!({"x": 1}))
        .expect("starts");
    let out = wait(&h).await;
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert!(engine.redrive("arn:nope").is_err());
    let h2 = engine.redrive(h.arn()).expect("redrivable");
    assert_eq!(h2.arn(), h.arn());
    let out = wait(&h2).await;
    assert_eq!(out.status, ExecutionStatus::Succeeded);
    assert_eq!(
        out.output,
        Some(json!({"step": 2, "in": {"step": 1, "in": {"x": 1}}}))
    );
    assert_eq!(first_calls.load(Ordering::SeqCst), 1, "First is not re-run");
    let t = types(&h2.history());
    assert!(t.contains(&"ExecutionFailed".to_string()));
    assert!(t.contains(&"ExecutionRedriven".to_string()));
    assert_eq!(t.last().map(String::as_str), Some("ExecutionSucceeded"));
    assert_eq!(
        engine.describe_execution(h.arn()).map(|d| d.redrive_count),
        Ok(1)
    );
    assert!(
        engine.redrive(h.arn()).is_err(),
        "a succeeded execution is not redrivable"
    );
}

#[tokio::test]
async fn redrive_map_reruns_only_failed_iterations() {
    let calls: Arc<Mutex<HashMap<i64, usize>>> = Arc::new(Mutex::new(HashMap::new()));
    let c = calls.clone();
    let lambda = FnLambda::new(move |_, p, _| {
        let n = p.as_i64().unwrap_or(-1);
        let count = {
            let mut m = c.lock().expect("lock");
            let e = m.entry(n).or_insert(0);
            *e += 1;
            *e
        };
        if n == 3 && count == 1 {
            Err(FunctionError::new("Item.Failed", "3 fails once"))
        } else {
            Ok(json!(n * 10))
        }
    });
    let engine = engine_with(Resources::new().with_lambda(lambda), true);
    let sm = machine(json!({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "MaxConcurrency": 1,
        "ItemProcessor": {"StartAt": "W", "States": {"W": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:w", "End": true}}},
        "End": true
    }}}));
    let h = engine
        .start_execution(sm, None, json!([1, 2, 3, 4, 5]))
        .expect("starts");
    assert_eq!(wait(&h).await.status, ExecutionStatus::Failed);
    let h2 = engine.redrive(h.arn()).expect("redrivable");
    let out = wait(&h2).await;
    assert_eq!(out.output, Some(json!([10, 20, 30, 40, 50])));
    let calls = calls.lock().map(|m| m.clone()).unwrap_or_default();
    assert_eq!(calls.get(&1), Some(&1));
    assert_eq!(calls.get(&2), Some(&1));
    assert_eq!(calls.get(&3), Some(&2));
    assert_eq!(calls.get(&4), Some(&1));
    assert_eq!(calls.get(&5), Some(&1));
}

#[tokio::test]
async fn oversized_output_is_data_limit_exceeded() {
    let lambda = FnLambda::new(|_, _, _| Ok(json!("x".repeat(300_000))));
    let engine = engine_with(Resources::new().with_lambda(lambda), true);
    let sm = machine(json!({"StartAt": "Big", "States": {
        "Big": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:big",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], "End": true},
        "Caught": {"Type": "Succeed"}
    }}));
    let h = engine.start_execution(sm, None, json!({})).expect("starts");
    let out = wait(&h).await;
    // Terminal: States.ALL does not catch it.
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert_eq!(out.error.as_deref(), Some("States.DataLimitExceeded"));
}

#[tokio::test]
async fn stopping_a_parent_stops_its_sync_child() {
    let engine = engine_with(Resources::new(), false);
    let child = Arc::new(
        StateMachine::from_value(json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1000, "End": true}}}))
            .expect("valid")
            .named("slow-child"),
    );
    engine.register_state_machine(child);
    let parent = machine(json!({"StartAt": "Run", "States": {"Run": {
        "Type": "Task",
        "Resource": "arn:aws:states:::states:startExecution.sync",
        "Parameters": {"StateMachineArn": "slow-child", "Name": "the-child"},
        "End": true
    }}}));
    let h = engine
        .start_execution(parent, None, json!({}))
        .expect("starts");
    tokio::time::sleep(Duration::from_millis(100)).await;
    engine.stop_execution(h.arn(), None, None).expect("stops");
    assert_eq!(wait(&h).await.status, ExecutionStatus::Aborted);
    let child = engine
        .execution("arn:aws:states:local:000000000000:execution:slow-child:the-child")
        .expect("child exists");
    assert_eq!(wait(&child).await.status, ExecutionStatus::Aborted);
}

#[tokio::test]
async fn cancelled_iterations_and_states_are_recorded_as_aborted() {
    let engine = engine_with(Resources::new(), true);
    let sm = machine(json!({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "MaxConcurrency": 0,
        "ItemProcessor": {"StartAt": "Route", "States": {
            "Route": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 0, "Next": "Boom"}], "Default": "Sleep"},
            "Boom": {"Type": "Fail", "Error": "Item.Failed"},
            "Sleep": {"Type": "Wait", "Seconds": 60, "End": true}
        }},
        "End": true
    }}}));
    let h = engine
        .start_execution(sm, None, json!([1, 0]))
        .expect("starts");
    let out = wait(&h).await;
    assert_eq!(out.error.as_deref(), Some("Item.Failed"));
    let t = types(&h.history());
    let pos = |name: &str| t.iter().position(|x| x == name);
    assert!(
        pos("WaitStateAborted") < pos("MapIterationAborted"),
        "{t:?}"
    );
    assert!(pos("MapIterationAborted") < pos("MapStateFailed"), "{t:?}");
    let aborted = h
        .history()
        .into_iter()
        .find(|e| e.event_type == "MapIterationAborted")
        .expect("aborted");
    assert_eq!(aborted.detail().map(|d| d["index"].clone()), Some(json!(0)));
}

#[tokio::test]
async fn redrive_after_abort_resumes_the_interrupted_state() {
    let engine = engine_with(Resources::new(), false);
    let sm = machine(json!({"StartAt": "Prepare", "States": {
        "Prepare": {"Type": "Pass", "Result": "prepared", "ResultPath": "$.step", "Next": "Hold"},
        "Hold": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "Done"},
        "Done": {"Type": "Pass", "Parameters": {"step.$": "$.step", "redrives.$": "$$.Execution.RedriveCount"}, "End": true}
    }}));
    let h = engine
        .start_execution(sm, Some("abort-redrive".into()), json!({"wait": 1000}))
        .expect("starts");
    tokio::time::sleep(Duration::from_millis(50)).await;
    engine.stop_execution(h.arn(), None, None).expect("stops");
    assert_eq!(wait(&h).await.status, ExecutionStatus::Aborted);
    assert!(types(&h.history()).contains(&"WaitStateAborted".to_string()));
    // The Wait would take 1000 s again; stop the redrive too, then check where it restarted.
    let h2 = engine
        .redrive(h.arn())
        .expect("aborted executions are redrivable");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let history = h2.history();
    let redriven = history
        .iter()
        .position(|e| e.event_type == "ExecutionRedriven")
        .expect("redriven");
    let next = history
        .get(redriven + 1)
        .map(|e| e.to_json())
        .unwrap_or_default();
    assert_eq!(next["type"], "WaitStateEntered");
    let input: Value = serde_json::from_str(
        next["stateEnteredEventDetails"]["input"]
            .as_str()
            .unwrap_or("null"),
    )
    .expect("JSON");
    assert_eq!(input, json!({"wait": 1000, "step": "prepared"}));
    assert_eq!(
        engine.describe_execution(h.arn()).map(|d| d.status),
        Ok(ExecutionStatus::Running)
    );
    engine.stop_execution(h.arn(), None, None).expect("stops");
    assert_eq!(wait(&h2).await.status, ExecutionStatus::Aborted);
    assert_eq!(
        engine.describe_execution(h.arn()).map(|d| d.redrive_count),
        Ok(1)
    );
}

#[tokio::test]
async fn list_and_forget_executions() {
    let engine = engine_with(Resources::new(), true);
    let sm = machine(json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}));
    let a = engine
        .start_execution(sm.clone(), Some("a".into()), json!(1))
        .expect("starts");
    let b = engine
        .start_execution(sm, Some("b".into()), json!(2))
        .expect("starts");
    wait(&a).await;
    wait(&b).await;
    let names: Vec<String> = engine
        .list_executions()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"a".to_string()) && names.contains(&"b".to_string()));
    assert!(engine.forget_execution(a.arn()));
    assert!(!engine.forget_execution(a.arn()));
    assert_eq!(engine.list_executions().len(), 1);
    assert!(engine.describe_execution(a.arn()).is_err());
}

#[tokio::test]
async fn redrive_after_stop_restarts_in_the_state_that_was_running() {
    // Real clock: the Wait is long, so the execution is certainly inside it when stopped.
    let engine = engine_with(Resources::new(), false);
    let sm = machine(json!({"StartAt": "Mark", "States": {
        "Mark": {"Type": "Pass", "Result": "marked", "ResultPath": "$.mark", "Next": "Hold"},
        "Hold": {"Type": "Wait", "Seconds": 3600, "Next": "Done"},
        "Done": {"Type": "Pass", "End": true}
    }}));
    let h = engine
        .start_execution(sm, Some("stopped".into()), json!({"x": 1}))
        .expect("starts");
    // Wait until the execution is inside Hold.
    for _ in 0..500 {
        if types(&h.history()).contains(&"WaitStateEntered".to_string()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    engine
        .stop_execution(h.arn(), Some("Stop".into()), None)
        .expect("stops");
    assert_eq!(wait(&h).await.status, ExecutionStatus::Aborted);

    let h2 = engine
        .redrive(h.arn())
        .expect("an aborted execution is redrivable");
    // Restarted inside Hold with Hold's input (Mark already applied), not from Mark.
    for _ in 0..500 {
        if types(&h2.history())
            .iter()
            .filter(|t| *t == "WaitStateEntered")
            .count()
            == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let history = h2.history();
    let t = types(&history);
    let redriven = t
        .iter()
        .position(|e| e == "ExecutionRedriven")
        .expect("redriven");
    assert_eq!(
        t.get(redriven + 1).map(String::as_str),
        Some("WaitStateEntered"),
        "{t:?}"
    );
    assert_eq!(
        t.iter().filter(|e| *e == "PassStateEntered").count(),
        1,
        "Mark is not run again: {t:?}"
    );
    let input = history[redriven + 1]
        .detail()
        .and_then(|d| d["input"].as_str())
        .map(|s| serde_json::from_str::<Value>(s).expect("json"));
    assert_eq!(input, Some(json!({"x": 1, "mark": "marked"})));
    engine.stop_execution(h2.arn(), None, None).expect("stops");
    wait(&h2).await;
}
