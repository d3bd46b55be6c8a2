//! Distributed Map over an in-memory object store: ItemReader (CSV, JSONL, listObjectsV2),
//! ItemBatcher, tolerated failures, ResultWriter layout, and streaming 100,000 items.

use serde_json::{Value, json};
use sluice_asl::{
    Engine, EngineConfig, ExecutionStatus, InMemoryObjectStore, Resources, StateMachine,
    VirtualClock,
};
use std::sync::Arc;
use std::time::Duration;

fn setup(store: &InMemoryObjectStore) -> Engine {
    Engine::new(EngineConfig {
        resources: Resources::new().with_object_store(Arc::new(store.clone())),
        clock: Arc::new(VirtualClock::new()),
        ..EngineConfig::default()
    })
}

fn machine(def: Value) -> Arc<StateMachine> {
    Arc::new(
        StateMachine::from_value(def)
            .unwrap_or_else(|d| panic!("{d:?}"))
            .named("dmap"),
    )
}

async fn run(
    engine: &Engine,
    def: Value,
    input: Value,
) -> (sluice_asl::ExecutionOutcome, Vec<String>) {
    let h = engine
        .start_execution(machine(def), None, input)
        .expect("starts");
    let out = tokio::time::timeout(Duration::from_secs(300), h.wait())
        .await
        .expect("finishes");
    (
        out,
        h.history().iter().map(|e| e.event_type.clone()).collect(),
    )
}

fn dmap(reader: Value, processor_states: Value, extra: Value) -> Value {
    let mut state = json!({
        "Type": "Map",
        "ItemReader": reader,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Work",
            "States": processor_states
        },
        "End": true
    });
    if let (Some(s), Some(e)) = (state.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    json!({"StartAt": "Fan", "States": {"Fan": state}})
}

#[tokio::test]
async fn csv_items_with_headers() {
    let store = InMemoryObjectStore::new();
    store.insert("in", "rows.csv", "id,name\n1,alpha\n2,beta\n");
    let engine = setup(&store);
    let def = dmap(
        json!({"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
               "Parameters": {"Bucket": "in", "Key.$": "$.key"}}),
        json!({"Work": {"Type": "Pass", "Parameters": {"upper.$": "$.name"}, "End": true}}),
        json!({}),
    );
    let (out, events) = run(&engine, def, json!({"key": "rows.csv"})).await;
    assert_eq!(out.status, ExecutionStatus::Succeeded, "{out:?}");
    assert_eq!(
        out.output,
        Some(json!([{"upper": "alpha"}, {"upper": "beta"}]))
    );
    assert_eq!(
        events,
        [
            "ExecutionStarted",
            "MapStateEntered",
            "MapStateStarted",
            "MapRunStarted",
            "MapRunSucceeded",
            "MapStateSucceeded",
            "MapStateExited",
            "ExecutionSucceeded"
        ]
    );
}

#[tokio::test]
async fn jsonl_batches_and_result_writer() {
    let store = InMemoryObjectStore::new();
    let body: String = (0..5).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    store.insert("in", "items.jsonl", body);
    let engine = setup(&store);
    let def = dmap(
        json!({"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSONL"},
               "Parameters": {"Bucket": "in", "Key": "items.jsonl"}}),
        json!({"Work": {"Type": "Pass", "Parameters": {"count.$": "States.ArrayLength($.Items)", "batch.$": "$.BatchInput.run"}, "End": true}}),
        json!({
            "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"run": "r1"}},
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "out", "Prefix": "results"}},
            "Label": "Batches"
        }),
    );
    let (out, _) = run(&engine, def, json!({})).await;
    assert_eq!(out.status, ExecutionStatus::Succeeded, "{out:?}");
    let output = out.output.unwrap_or_default();
    let key = output["ResultWriterDetails"]["Key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(output["ResultWriterDetails"]["Bucket"], "out");
    assert!(
        key.starts_with("results/") && key.ends_with("/manifest.json"),
        "{key}"
    );
    assert!(
        output["MapRunArn"]
            .as_str()
            .unwrap_or_default()
            .starts_with("arn:aws:states:local:000000000000:mapRun:dmap/Batches:")
    );
    let manifest: Value =
        serde_json::from_slice(&store.get("out", &key).unwrap_or_default()).expect("manifest JSON");
    assert_eq!(manifest["MapRunArn"], output["MapRunArn"]);
    let files = manifest["ResultFiles"]["SUCCEEDED"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(files.len(), 1);
    assert_eq!(manifest["ResultFiles"]["FAILED"], json!([]));
    let results: Value = serde_json::from_slice(
        &store
            .get("out", files[0]["Key"].as_str().unwrap_or(""))
            .unwrap_or_default(),
    )
    .expect("results JSON");
    let outputs: Vec<Value> = results
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    serde_json::from_str(r["Output"].as_str().unwrap_or("null"))
                        .unwrap_or(Value::Null)
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        outputs,
        vec![
            json!({"count": 2, "batch": "r1"}),
            json!({"count": 2, "batch": "r1"}),
            json!({"count": 1, "batch": "r1"})
        ]
    );
    assert!(
        results
            .as_array()
            .is_some_and(|a| a.iter().all(|r| r["Status"] == "SUCCEEDED"))
    );
}

fn failing_processor() -> Value {
    json!({
        "Work": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": false, "Next": "Bad"}], "Default": "Good"},
        "Bad": {"Type": "Fail", "Error": "Item.Bad", "Cause": "not ok"},
        "Good": {"Type": "Pass", "End": true}
    })
}

#[tokio::test]
async fn tolerated_failures() {
    let store = InMemoryObjectStore::new();
    store.insert(
        "in",
        "items.json",
        r#"[{"ok":true},{"ok":false},{"ok":true},{"ok":false}]"#,
    );
    let engine = setup(&store);
    let reader = json!({"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"}, "Parameters": {"Bucket": "in", "Key": "items.json"}});
    // Two failures tolerated by count.
    let (out, _) = run(
        &engine,
        dmap(
            reader.clone(),
            failing_processor(),
            json!({"ToleratedFailureCount": 2}),
        ),
        json!({}),
    )
    .await;
    assert_eq!(out.status, ExecutionStatus::Succeeded, "{out:?}");
    assert_eq!(
        out.output.as_ref().map(|o| o[1]["Error"].clone()),
        Some(json!("Item.Bad"))
    );
    // 50% failed > 25% tolerated.
    let (out, events) = run(
        &engine,
        dmap(
            reader.clone(),
            failing_processor(),
            json!({"ToleratedFailurePercentage": 25}),
        ),
        json!({}),
    )
    .await;
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert_eq!(
        out.error.as_deref(),
        Some("States.ExceedToleratedFailureThreshold")
    );
    assert!(events.contains(&"MapRunFailed".to_string()));
    // No tolerance: the first failure fails the run.
    let (out, _) = run(
        &engine,
        dmap(reader, failing_processor(), json!({})),
        json!({}),
    )
    .await;
    assert_eq!(
        out.error.as_deref(),
        Some("States.ExceedToleratedFailureThreshold")
    );
}

#[tokio::test]
async fn list_objects_reader_and_missing_object() {
    let store = InMemoryObjectStore::new();
    store.insert("logs", "2024/a.log", "aaa");
    store.insert("logs", "2024/b.log", "bb");
    store.insert("logs", "2023/c.log", "c");
    let engine = setup(&store);
    let def = dmap(
        json!({"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": "logs", "Prefix": "2024/"}}),
        json!({"Work": {"Type": "Pass", "Parameters": {"k.$": "$.Key", "s.$": "$.Size"}, "End": true}}),
        json!({}),
    );
    let (out, _) = run(&engine, def, json!({})).await;
    assert_eq!(
        out.output,
        Some(json!([{"k": "2024/a.log", "s": 3}, {"k": "2024/b.log", "s": 2}]))
    );
    let missing = dmap(
        json!({"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "logs", "Key": "nope.json"}}),
        json!({"Work": {"Type": "Pass", "End": true}}),
        json!({}),
    );
    let (out, _) = run(&engine, missing, json!({})).await;
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert_eq!(out.error.as_deref(), Some("States.ItemReaderFailed"));
}

/// Items reach the children in their order across the reader's hand-overs (a chunk at a
/// time), and a bad row far in fails the Map with its line, after the rows before it.
#[tokio::test]
async fn items_keep_their_order_and_a_bad_row_fails_the_map_naming_its_line() {
    let store = InMemoryObjectStore::new();
    let mut rows: String = (0..150).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    store.insert("in", "good.jsonl", rows.clone());
    rows.push_str("{\"n\": oops}\n");
    rows.extend((151..200).map(|i| format!("{{\"n\":{i}}}\n")));
    store.insert("in", "bad.jsonl", rows);
    let engine = setup(&store);
    let reader = |key: &str| {
        json!({"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSONL"},
               "Parameters": {"Bucket": "in", "Key": key}})
    };
    let work = json!({"Work": {"Type": "Pass", "End": true}});

    let (out, _) = run(
        &engine,
        dmap(reader("good.jsonl"), work.clone(), json!({})),
        json!({}),
    )
    .await;
    assert_eq!(out.status, ExecutionStatus::Succeeded, "{out:?}");
    let expected: Vec<Value> = (0..150).map(|i| json!({"n": i})).collect();
    assert_eq!(out.output, Some(Value::Array(expected)));

    let (out, _) = run(
        &engine,
        dmap(reader("bad.jsonl"), work, json!({})),
        json!({}),
    )
    .await;
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert_eq!(out.error.as_deref(), Some("States.ItemReaderFailed"));
    let cause = out.cause.unwrap_or_default();
    assert!(cause.contains("line 151"), "{cause}");
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_items_stream_in_bounded_memory() {
    let store = InMemoryObjectStore::new();
    let mut body = String::with_capacity(3_000_000);
    for i in 0..100_000u32 {
        body.push_str(&format!("{{\"i\":{i}}}\n"));
    }
    store.insert("in", "big.jsonl", body);
    let engine = setup(&store);
    let def = dmap(
        json!({"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSONL"}, "Parameters": {"Bucket": "in", "Key": "big.jsonl"}}),
        json!({"Work": {"Type": "Pass", "End": true}}),
        json!({
            "MaxConcurrency": 500,
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "out", "Prefix": "big"}, "WriterConfig": {"Transformation": "COMPACT", "OutputType": "JSONL"}}
        }),
    );
    let (out, _) = run(&engine, def, json!({})).await;
    assert_eq!(out.status, ExecutionStatus::Succeeded, "{out:?}");
    let keys = store.keys("out");
    let lines: usize = keys
        .iter()
        .filter(|k| k.contains("SUCCEEDED_"))
        .map(|k| {
            store
                .get("out", k)
                .map(|b| b.iter().filter(|c| **c == b'\n').count())
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(lines, 100_000);
    assert_eq!(keys.iter().filter(|k| k.contains("SUCCEEDED_")).count(), 10);
    if let Some(kib) = peak_rss_kib() {
        assert!(kib < 500 * 1024, "peak RSS {kib} KiB");
    }
}

#[tokio::test]
async fn children_have_their_own_execution_context_and_history() {
    use sluice_asl::{HistoryEvent, HistorySink};
    use std::sync::Mutex;
    struct Sink(Mutex<Vec<String>>);
    impl HistorySink for Sink {
        fn record(&self, arn: &str, _event: &HistoryEvent) {
            if let Ok(mut v) = self.0.lock() {
                v.push(arn.to_string());
            }
        }
    }
    let sink = Arc::new(Sink(Mutex::new(Vec::new())));
    let engine = Engine::new(EngineConfig {
        clock: Arc::new(VirtualClock::new()),
        history_sink: Some(sink.clone()),
        record_child_executions: true,
        ..EngineConfig::default()
    });
    let def = json!({"StartAt": "Fan", "States": {"Fan": {
        "Type": "Map", "ItemsPath": "$.items", "Label": "Kids",
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Who", "States": {"Who": {"Type": "Pass", "Parameters": {"id.$": "$$.Execution.Id", "input.$": "$$.Execution.Input"}, "End": true}}},
        "End": true
    }}});
    let (out, _) = run(&engine, def, json!({"items": [1, 2]})).await;
    let output = out.output.unwrap_or_default();
    let ids: Vec<&str> = output
        .as_array()
        .map(|a| a.iter().filter_map(|o| o["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids.len(), 2);
    assert!(
        ids.iter()
            .all(|id| id.starts_with("arn:aws:states:local:000000000000:execution:dmap/Kids:")),
        "{ids:?}"
    );
    assert_ne!(ids[0], ids[1]);
    assert_eq!(output[1]["input"], json!(2));
    let arns = sink.0.lock().map(|v| v.clone()).unwrap_or_default();
    // Each child records ExecutionStarted, PassStateEntered, PassStateExited, ExecutionSucceeded.
    assert_eq!(arns.iter().filter(|a| a.as_str() == ids[0]).count(), 4);
}

#[tokio::test]
async fn redrive_reruns_only_failed_children() {
    let store = InMemoryObjectStore::new();
    store.insert(
        "in",
        "items.json",
        r#"[{"ok":true},{"ok":false},{"ok":true}]"#,
    );
    let engine = setup(&store);
    let reader = json!({"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "in", "Key": "items.json"}});
    let processor = json!({
        "Work": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": false, "Next": "Bad"}], "Default": "Good"},
        "Bad": {"Type": "Fail", "Error": "Item.Bad"},
        "Good": {"Type": "Pass", "Parameters": {"done.$": "$.ok"}, "End": true}
    });
    let h = engine
        .start_execution(
            machine(dmap(reader, processor, json!({"MaxConcurrency": 1}))),
            Some("dm".into()),
            json!({}),
        )
        .expect("starts");
    let out = h.wait().await;
    assert_eq!(
        out.error.as_deref(),
        Some("States.ExceedToleratedFailureThreshold")
    );
    // Fix the data, then redrive: the first item's result is kept, the rest re-run.
    store.insert(
        "in",
        "items.json",
        r#"[{"ok":"changed"},{"ok":true},{"ok":true}]"#,
    );
    let h2 = engine.redrive(h.arn()).expect("redrivable");
    let out = tokio::time::timeout(Duration::from_secs(60), h2.wait())
        .await
        .expect("finishes");
    assert_eq!(out.status, ExecutionStatus::Succeeded, "{out:?}");
    assert_eq!(
        out.output,
        Some(json!([{"done": true}, {"done": true}, {"done": true}]))
    );
}

#[tokio::test]
async fn result_path_null_discards_results() {
    let store = InMemoryObjectStore::new();
    let engine = setup(&store);
    let def = json!({"StartAt": "Fan", "States": {"Fan": {
        "Type": "Map", "ItemsPath": "$.items", "ResultPath": null,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
            "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "End": true
    }}});
    let (out, _) = run(&engine, def, json!({"items": [1, 2, 3], "keep": "me"})).await;
    assert_eq!(out.output, Some(json!({"items": [1, 2, 3], "keep": "me"})));
}
