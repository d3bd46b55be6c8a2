//! The product's own state machine (`statemachines/pipeline.asl.json`) on the engine with fake
//! functions: plan → the stage loop (a distributed fan-out with callback tasks — a Spot reclaim
//! that is retried, a task that keeps failing and is caught as lost — then the aggregate stage)
//! → finish → scale down → notify. It runs on the virtual clock; the fake launcher marks its callback as work on the
//! clock (`Clock::work_started`/`work_stopped`), as a host that answers asynchronously must.
//!
//! And a stage of 2,000 tasks: with the definition's ResultWriter the children's outputs go to
//! the object store and the job succeeds; without it they are gathered into the Map's result,
//! which exceeds the 256 KiB payload limit (States.DataLimitExceeded) as on AWS.

use async_trait::async_trait;
use serde_json::{Value, json};
use sluice_asl::{
    Clock, Engine, EngineConfig, ExecutionStatus, FunctionError, InMemoryObjectStore,
    LambdaInvoker, Resources, ServiceCall, ServiceIntegration, StateMachine, StatesError,
    VirtualClock,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Functions {
    engine: Mutex<Option<Engine>>,
    clock: Arc<VirtualClock>,
    launches: Mutex<HashMap<String, usize>>,
    /// Tasks of the fan-out stage, and how many run at once.
    tasks: usize,
    max_concurrency: usize,
    /// Every task succeeds at once, answering what task-events answers on AWS.
    all_succeed: bool,
}

#[async_trait]
impl LambdaInvoker for Functions {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, FunctionError> {
        match function {
            // Two stages: a fan-out over the manifest, then the built-in aggregate.
            "plan" => {
                let stage = |index: i64, kind: &str| {
                    json!({
                        "index": index, "name": format!("s{index}"), "kind": kind,
                        "taskCount": self.tasks, "slots": self.max_concurrency,
                        "maxConcurrency": self.max_concurrency,
                        "taskTimeoutSeconds": 600,
                        "manifest": {"bucket": "jobs", "key": "J1/manifest.json"}
                    })
                };
                match (payload["action"].as_str(), payload["after"].as_i64()) {
                    (Some("start"), _) => Ok(json!({"stages": 2})),
                    (Some("next-stage"), Some(-1)) => Ok(stage(0, "tasks")),
                    (Some("next-stage"), Some(0)) => Ok(stage(1, "aggregate")),
                    (Some("next-stage"), _) => Ok(stage(2, "done")),
                    (Some("close-stage"), _) => {
                        Ok(json!({"index": payload["stage"], "succeeded": 2}))
                    }
                    _ => Err(FunctionError::new(
                        "Sluice.InvalidInput",
                        format!("{payload}"),
                    )),
                }
            }
            "scale" => Ok(json!({"desiredSlots": 2})),
            "aggregate" => Ok(json!({"tasks": 2, "groups": 1, "results": []})),
            "finish" => Ok(
                json!({"status": "SUCCEEDED", "error": null, "reason": null, "summary": {"tasks": 3}}),
            ),
            "launch" => {
                let task = payload["taskId"].as_str().unwrap_or_default().to_string();
                let token = payload["taskToken"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let attempt = {
                    let mut l = self
                        .launches
                        .lock()
                        .map_err(|_| FunctionError::new("Lock", "poisoned"))?;
                    let n = l.entry(task.clone()).or_insert(0);
                    *n += 1;
                    *n
                };
                let engine = self.engine.lock().ok().and_then(|e| e.clone());
                let Some(engine) = engine else {
                    return Err(FunctionError::new("Setup", "no engine"));
                };
                // The container "runs" on another task; until it reports, it is work in flight.
                self.clock.work_started();
                let clock = self.clock.clone();
                let all_succeed = self.all_succeed;
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    let _ = match (task.as_str(), attempt) {
                        // The output task-events sends for a task that wrote its result.
                        _ if all_succeed => engine.send_task_success(
                            &token,
                            json!({"taskId": task, "attempt": 1, "result": {
                                "bucket": "sluice-data-123456789012-us-east-1",
                                "key": format!("jobs/ber-0123456789abcdef/stages/tasks/output/{task}.json")
                            }}),
                        ),
                        ("t2", 1) => {
                            engine.send_task_failure(&token, "Sluice.SpotInterrupted", "reclaimed")
                        }
                        ("t3", _) => {
                            engine.send_task_failure(&token, "Sluice.TaskFailed", "exit 1")
                        }
                        _ => {
                            engine.send_task_success(&token, json!({"taskId": task, "exitCode": 0}))
                        }
                    };
                    clock.work_stopped();
                });
                Ok(json!({"launched": true}))
            }
            other => Err(FunctionError::new(
                "Lambda.ResourceNotFoundException",
                format!("Function not found: {other}"),
            )),
        }
    }
}

struct Sns(Mutex<Vec<Value>>);

#[async_trait]
impl ServiceIntegration for Sns {
    async fn call(&self, call: ServiceCall) -> Result<Value, StatesError> {
        if let Ok(mut v) = self.0.lock() {
            v.push(call.parameters);
        }
        Ok(json!({"MessageId": "m-1"}))
    }
}

/// The pipeline definition with the test's function names, or `None` outside the repository.
fn definition() -> Option<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../statemachines/pipeline.asl.json"
    );
    // The definition lives outside this crate; nothing to check without it.
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.replace("${PlanFunctionArn}", "plan")
            .replace("${ScaleFunctionArn}", "scale")
            .replace("${LaunchFunctionArn}", "launch")
            .replace("${AggregateFunctionArn}", "aggregate")
            .replace("${FinishFunctionArn}", "finish")
            .replace(
                "${NotificationTopicArn}",
                "arn:aws:sns:local:000000000000:sluice",
            ),
    )
}

struct Run {
    functions: Arc<Functions>,
    sns: Arc<Sns>,
    store: Arc<InMemoryObjectStore>,
    handle: sluice_asl::ExecutionHandle,
}

/// Starts job J1 of `text` with a fan-out stage of `tasks` tasks.
fn start(text: &str, tasks: usize, max_concurrency: usize, all_succeed: bool) -> Run {
    let machine = Arc::new(
        StateMachine::from_json(text)
            .expect("the pipeline is valid")
            .named("pipeline"),
    );
    let store = Arc::new(InMemoryObjectStore::new());
    let items: Vec<Value> = (1..=tasks)
        .map(|i| json!({"taskId": format!("t{i}")}))
        .collect();
    store.insert("jobs", "J1/manifest.json", Value::Array(items).to_string());
    let clock = Arc::new(VirtualClock::new());
    let functions = Arc::new(Functions {
        engine: Mutex::new(None),
        clock: clock.clone(),
        launches: Mutex::new(HashMap::new()),
        tasks,
        max_concurrency,
        all_succeed,
    });
    let sns = Arc::new(Sns(Mutex::new(Vec::new())));
    let engine = Engine::new(EngineConfig {
        resources: Resources::new()
            .with_lambda(functions.clone())
            .with_service("sns", sns.clone())
            .with_object_store(store.clone()),
        clock,
        ..EngineConfig::default()
    });
    if let Ok(mut e) = functions.engine.lock() {
        *e = Some(engine.clone());
    }
    let handle = engine
        .start_execution(
            machine,
            Some("J1".into()),
            json!({"jobId": "J1", "pipeline": "p", "input": {"bucket": "in", "key": "rows.csv"}}),
        )
        .expect("starts");
    Run {
        functions,
        sns,
        store,
        handle,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_runs_end_to_end() {
    let Some(text) = definition() else {
        return;
    };
    let Run {
        functions,
        sns,
        handle: h,
        ..
    } = start(&text, 3, 2, false);
    let out = tokio::time::timeout(Duration::from_secs(120), h.wait())
        .await
        .expect("finishes");
    assert_eq!(out.status, ExecutionStatus::Succeeded, "{out:?}");
    let launches = functions
        .launches
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    assert_eq!(launches.get("t1"), Some(&1));
    assert_eq!(launches.get("t2"), Some(&2), "a Spot reclaim is retried");
    assert_eq!(
        launches.get("t3"),
        Some(&11),
        "Sluice.TaskFailed: 1 try + MaxAttempts 10"
    );
    let types: Vec<String> = h.history().iter().map(|e| e.event_type.clone()).collect();
    for t in ["MapRunStarted", "MapRunSucceeded", "ExecutionSucceeded"] {
        assert!(types.contains(&t.to_string()), "{t} missing from {types:?}");
    }
    let messages = sns.0.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["Subject"], "sluice job J1");
}

/// AWS gathers the outputs of a distributed Map's children into its result, even with
/// `ResultPath: null`, and fails the state past 256 KiB: about a thousand tasks. The
/// definition's ResultWriter sends them to S3 instead, so a 2,000-task stage succeeds; the same
/// definition without it fails with States.DataLimitExceeded (which no Catch can catch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2000_task_stage_keeps_its_results_out_of_the_state() {
    let Some(text) = definition() else {
        return;
    };
    let run = start(&text, 2000, 500, true);
    let out = tokio::time::timeout(Duration::from_secs(300), run.handle.wait())
        .await
        .expect("finishes");
    assert_eq!(out.status, ExecutionStatus::Succeeded, "{out:?}");
    let launched = run.functions.launches.lock().map(|l| l.len()).unwrap_or(0);
    assert_eq!(launched, 2000);
    // Every child's result is in the ResultWriter's files, under map-results/ in the bucket
    // the manifest came from: its output alone (COMPACT), one JSON line each (JSONL).
    let keys = run.store.keys("jobs");
    let manifests: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("map-results/") && k.ends_with("/manifest.json"))
        .collect();
    assert_eq!(manifests.len(), 1, "{keys:?}");
    let written: usize = keys
        .iter()
        .filter(|k| k.starts_with("map-results/") && k.contains("/SUCCEEDED_"))
        .map(|k| {
            let body = run.store.get("jobs", k).unwrap_or_default();
            String::from_utf8_lossy(&body)
                .lines()
                .filter(|line| {
                    serde_json::from_str::<Value>(line)
                        .is_ok_and(|v| v.get("taskId").is_some() && v.get("ExecutionArn").is_none())
                })
                .count()
        })
        .sum();
    assert_eq!(written, 2000);
    assert_eq!(
        run.sns.0.lock().map(|v| v.len()).unwrap_or(0),
        1,
        "notified"
    );

    // The control: the same definition without its ResultWriter hits the payload limit.
    let mut without: Value = serde_json::from_str(&text).expect("JSON");
    let map = without["States"]["RunTasks"]
        .as_object_mut()
        .expect("RunTasks");
    assert!(map.remove("ResultWriter").is_some());
    let run = start(&without.to_string(), 2000, 500, true);
    let out = tokio::time::timeout(Duration::from_secs(300), run.handle.wait())
        .await
        .expect("finishes");
    assert_eq!(out.status, ExecutionStatus::Failed, "{out:?}");
    assert_eq!(
        out.error.as_deref(),
        Some("States.DataLimitExceeded"),
        "{out:?}"
    );
}
