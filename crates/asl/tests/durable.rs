//! Durable executions: an execution checkpointed by one engine is restored into another (as a
//! new process would) and redriven there. Only the work that had not succeeded runs again.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sluice_asl::{
    CheckpointSink, Engine, EngineConfig, ExecutionCheckpoint, ExecutionOutcome, ExecutionStatus,
    FunctionError, HistoryEvent, HistorySink, InMemoryObjectStore, LambdaInvoker,
    PersistedExecution, Resources, StateMachine,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The host side: keeps what a database would (last state entered, Map results, status,
/// history), and reads it back as a [`PersistedExecution`].
#[derive(Default)]
struct Journal {
    inner: Mutex<JournalState>,
}

#[derive(Default)]
struct JournalState {
    name: String,
    input: Value,
    start: Option<DateTime<Utc>>,
    redrives: u32,
    status: Option<ExecutionStatus>,
    error: Option<String>,
    cause: Option<String>,
    state: Option<(String, Value)>,
    results: BTreeMap<(String, usize), Value>,
    history: Vec<HistoryEvent>,
}

impl CheckpointSink for Journal {
    fn execution_started(&self, e: &ExecutionCheckpoint<'_>) {
        let mut j = self.inner.lock().unwrap();
        j.name = e.name.to_string();
        j.input = e.input.clone();
        j.start = Some(e.start_date);
        j.redrives = e.redrive_count;
        j.status = Some(ExecutionStatus::Running);
    }
    fn state_entered(&self, _arn: &str, state: &str, input: &Value, resumed: bool) {
        let mut j = self.inner.lock().unwrap();
        if !resumed {
            j.results.retain(|(s, _), _| s != state);
        }
        j.state = Some((state.to_string(), input.clone()));
    }
    fn map_iteration_succeeded(&self, _arn: &str, state: &str, index: usize, output: &Value) {
        self.inner
            .lock()
            .unwrap()
            .results
            .insert((state.to_string(), index), output.clone());
    }
    fn execution_closed(&self, _arn: &str, o: &ExecutionOutcome, _stop: DateTime<Utc>) {
        let mut j = self.inner.lock().unwrap();
        j.status = Some(o.status);
        j.error = o.error.clone();
        j.cause = o.cause.clone();
    }
}

impl HistorySink for Journal {
    fn record(&self, _arn: &str, event: &HistoryEvent) {
        self.inner.lock().unwrap().history.push(event.clone());
    }
}

impl Journal {
    fn persisted(&self, arn: &str) -> PersistedExecution {
        let j = self.inner.lock().unwrap();
        let current = j.state.as_ref().map(|(s, _)| s.clone()).unwrap_or_default();
        let mine: Vec<(usize, &Value)> = j
            .results
            .iter()
            .filter(|((s, _), _)| *s == current)
            .map(|((_, i), v)| (*i, v))
            .collect();
        let len = mine.iter().map(|(i, _)| i + 1).max().unwrap_or(0);
        let mut map_results = vec![None; len];
        for (i, v) in mine {
            map_results[i] = Some(v.clone());
        }
        PersistedExecution {
            execution_arn: arn.to_string(),
            name: j.name.clone(),
            input: j.input.clone(),
            start_date: j.start.expect("started"),
            redrive_count: j.redrives,
            status: j.status.expect("started"),
            error: j.error.clone(),
            cause: j.cause.clone(),
            stop_date: None,
            last_event_id: j.history.last().map_or(0, |e| e.id),
            state: j.state.clone(),
            map_results,
        }
    }

    fn history_types(&self) -> Vec<String> {
        let j = self.inner.lock().unwrap();
        j.history.iter().map(|e| e.event_type.clone()).collect()
    }
}

/// Work that finishes for the items in `finishes` and hangs for the others, as a task does
/// when the process running the execution dies under it. Records every item it is called for.
struct Work {
    finishes: Box<dyn Fn(i64) -> bool + Send + Sync>,
    called: Mutex<Vec<i64>>,
}

#[async_trait]
impl LambdaInvoker for Work {
    async fn invoke(&self, _f: &str, payload: Value) -> Result<Value, FunctionError> {
        let item = payload["item"].as_i64().expect("item");
        self.called.lock().unwrap().push(item);
        if !(self.finishes)(item) {
            std::future::pending::<()>().await;
        }
        Ok(json!({"done": item * 10}))
    }
}

fn engine(work: Arc<Work>, journal: Arc<Journal>, objects: Option<InMemoryObjectStore>) -> Engine {
    let mut resources = Resources::new().with_lambda(work);
    if let Some(o) = objects {
        resources = resources.with_object_store(Arc::new(o));
    }
    Engine::new(EngineConfig {
        resources,
        history_sink: Some(journal.clone()),
        checkpoint_sink: Some(journal),
        keep_history: false,
        ..EngineConfig::default()
    })
}

fn machine(mode: &str) -> Arc<StateMachine> {
    let config = match mode {
        "DISTRIBUTED" => json!({"Mode": mode, "ExecutionType": "STANDARD"}),
        _ => json!({"Mode": mode}),
    };
    let def = json!({
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Result": [1, 2, 3, 4, 5, 6], "ResultPath": "$.items", "Next": "Fan"},
            "Fan": {
                "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 6,
                "ItemSelector": {"item.$": "$$.Map.Item.Value"},
                "ItemProcessor": {
                    "ProcessorConfig": config,
                    "StartAt": "Work",
                    "States": {"Work": {
                        "Type": "Task", "Resource": "arn:aws:lambda:local:000000000000:function:work",
                        "OutputPath": "$.done", "End": true
                    }}
                },
                "ResultPath": "$.results",
                "Next": "Done"
            },
            "Done": {"Type": "Pass", "Parameters": {"results.$": "$.results", "redrives.$": "$$.Execution.RedriveCount"}, "End": true}
        }
    });
    Arc::new(
        StateMachine::from_value(def)
            .expect("valid")
            .named("durable"),
    )
}

async fn until(cond: impl Fn() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached in 5 s");
}

/// The first engine runs until the even items are done and the odd ones hang, then is
/// dropped as a killed process would be; a second engine restores the RUNNING execution from
/// the journal and redrives it.
async fn continue_in_a_new_engine(mode: &str) {
    let journal = Arc::new(Journal::default());
    let first = Arc::new(Work {
        finishes: Box::new(|i| i % 2 == 0),
        called: Mutex::new(Vec::new()),
    });
    let objects = InMemoryObjectStore::default();
    let arn = {
        let e1 = engine(first.clone(), journal.clone(), Some(objects.clone()));
        let h = e1
            .start_execution(machine(mode), Some("job-1".into()), json!({"job": 1}))
            .expect("started");
        until(|| journal.inner.lock().unwrap().results.len() == 3).await;
        until(|| first.called.lock().unwrap().len() == 6).await;
        assert!(h.outcome().is_none(), "still running");
        h.arn().to_string()
        // e1 is dropped here with its execution stuck: it never closes.
    };
    assert_eq!(
        journal.inner.lock().unwrap().status,
        Some(ExecutionStatus::Running)
    );
    let persisted = journal.persisted(&arn);
    assert_eq!(
        persisted.state.as_ref().map(|(s, _)| s.as_str()),
        Some("Fan")
    );

    let second = Arc::new(Work {
        finishes: Box::new(|_| true),
        called: Mutex::new(Vec::new()),
    });
    let e2 = engine(second.clone(), journal.clone(), Some(objects));
    let restored = e2.restore(machine(mode), persisted);
    assert!(restored.outcome().is_none(), "restored as RUNNING");
    let h = e2
        .redrive(&arn)
        .expect("an orphaned RUNNING execution is redrivable");
    assert!(
        e2.redrive(&arn).is_err(),
        "a redriven execution is running again: not redrivable twice"
    );
    let outcome = tokio::time::timeout(Duration::from_secs(10), h.wait())
        .await
        .expect("the redrive ends");
    assert_eq!(outcome.status, ExecutionStatus::Succeeded, "{outcome:?}");
    assert_eq!(
        outcome.output,
        Some(json!({"results": [10, 20, 30, 40, 50, 60], "redrives": 1}))
    );
    let rerun: BTreeSet<i64> = second.called.lock().unwrap().iter().copied().collect();
    assert_eq!(
        rerun,
        BTreeSet::from([1, 3, 5]),
        "only the iterations that had not succeeded run again"
    );

    // The history continues where the dead engine left it, with the redrive recorded.
    let types = journal.history_types();
    let ids: Vec<u64> = journal
        .inner
        .lock()
        .unwrap()
        .history
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "ids run on"
    );
    let redriven = types
        .iter()
        .position(|t| t == "ExecutionRedriven")
        .expect("ExecutionRedriven recorded");
    assert_eq!(types[redriven + 1], "MapStateEntered");
    assert_eq!(types.last().map(String::as_str), Some("ExecutionSucceeded"));
    assert_eq!(
        journal.inner.lock().unwrap().status,
        Some(ExecutionStatus::Succeeded)
    );
}

#[tokio::test]
async fn inline_map_continues_in_a_new_engine() {
    continue_in_a_new_engine("INLINE").await;
}

#[tokio::test]
async fn distributed_map_continues_in_a_new_engine() {
    continue_in_a_new_engine("DISTRIBUTED").await;
}

#[tokio::test]
async fn a_closed_execution_restores_closed() {
    let journal = Arc::new(Journal::default());
    let work = Arc::new(Work {
        finishes: Box::new(|_| true),
        called: Mutex::new(Vec::new()),
    });
    let e1 = engine(work, journal.clone(), None);
    let h = e1
        .start_execution(machine("INLINE"), Some("job-2".into()), json!({}))
        .expect("started");
    assert_eq!(h.wait().await.status, ExecutionStatus::Succeeded);
    let persisted = journal.persisted(h.arn());
    assert_eq!(persisted.status, ExecutionStatus::Succeeded);
    assert_eq!(
        persisted.state.as_ref().map(|(s, _)| s.as_str()),
        Some("Done")
    );
    assert!(
        persisted.map_results.is_empty(),
        "the last state entered is not the Map: a redrive would not need its results"
    );

    let e2 = engine(
        Arc::new(Work {
            finishes: Box::new(|_| true),
            called: Mutex::new(Vec::new()),
        }),
        journal.clone(),
        None,
    );
    let restored = e2.restore(machine("INLINE"), persisted);
    assert_eq!(
        restored.outcome().map(|o| o.status),
        Some(ExecutionStatus::Succeeded)
    );
    assert!(
        e2.redrive(h.arn()).is_err(),
        "a succeeded execution is not redrivable"
    );
}

#[tokio::test]
async fn a_running_execution_of_this_engine_is_not_redrivable() {
    let journal = Arc::new(Journal::default());
    let started = Arc::new(AtomicBool::new(false));
    let flag = started.clone();
    let work = Arc::new(Work {
        finishes: Box::new(move |_| {
            flag.store(true, Ordering::SeqCst);
            false
        }),
        called: Mutex::new(Vec::new()),
    });
    let e = engine(work, journal, None);
    let h = e
        .start_execution(machine("INLINE"), Some("job-3".into()), json!({}))
        .expect("started");
    until(|| started.load(Ordering::SeqCst)).await;
    assert!(e.redrive(h.arn()).is_err());
    // Restoring what this engine already runs hands back the live execution.
    let again = e.restore(
        machine("INLINE"),
        PersistedExecution {
            execution_arn: h.arn().to_string(),
            name: "job-3".into(),
            input: json!({}),
            start_date: Utc::now(),
            redrive_count: 0,
            status: ExecutionStatus::Running,
            error: None,
            cause: None,
            stop_date: None,
            last_event_id: 0,
            state: None,
            map_results: Vec::new(),
        },
    );
    assert!(e.redrive(again.arn()).is_err());
}
