//! The product's own state machine (`statemachines/pipeline.asl.json`) on the engine with fake
//! functions: plan → the stage loop (a distributed fan-out with callback tasks — a Spot reclaim
//! that is retried, a task that keeps failing and is caught as lost — then the aggregate stage)
//! → finish → scale down → notify. It runs on the virtual clock; the fake launcher marks its callback as work on the
//! clock (`Clock::work_started`/`work_stopped`), as a host that answers asynchronously must.

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
                        "taskCount": 3, "maxConcurrency": 2, "taskTimeoutSeconds": 600,
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
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    let _ = match (task.as_str(), attempt) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_runs_end_to_end() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../statemachines/pipeline.asl.json"
    );
    let Ok(text) = std::fs::read_to_string(path) else {
        // The definition lives outside this crate; nothing to check without it.
        return;
    };
    let text = text
        .replace("${PlanFunctionArn}", "plan")
        .replace("${ScaleFunctionArn}", "scale")
        .replace("${LaunchFunctionArn}", "launch")
        .replace("${AggregateFunctionArn}", "aggregate")
        .replace("${FinishFunctionArn}", "finish")
        .replace(
            "${NotificationTopicArn}",
            "arn:aws:sns:local:000000000000:sluice",
        );
    let machine = Arc::new(
        StateMachine::from_json(&text)
            .expect("the pipeline is valid")
            .named("pipeline"),
    );
    let store = InMemoryObjectStore::new();
    store.insert(
        "jobs",
        "J1/manifest.json",
        r#"[{"taskId":"t1"},{"taskId":"t2"},{"taskId":"t3"}]"#,
    );
    let clock = Arc::new(VirtualClock::new());
    let functions = Arc::new(Functions {
        engine: Mutex::new(None),
        clock: clock.clone(),
        launches: Mutex::new(HashMap::new()),
    });
    let sns = Arc::new(Sns(Mutex::new(Vec::new())));
    let engine = Engine::new(EngineConfig {
        resources: Resources::new()
            .with_lambda(functions.clone())
            .with_service("sns", sns.clone())
            .with_object_store(Arc::new(store)),
        clock,
        ..EngineConfig::default()
    });
    if let Ok(mut e) = functions.engine.lock() {
        *e = Some(engine.clone());
    }
    let h = engine
        .start_execution(
            machine,
            Some("J1".into()),
            json!({"jobId": "J1", "pipeline": "p", "input": {"bucket": "in", "key": "rows.csv"}}),
        )
        .expect("starts");
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
