//! Distributed Map: items streamed from an ItemReader (or `ItemsPath`) through child
//! executions with bounded concurrency, ItemBatcher, tolerated failures and ResultWriter.
//!
//! Memory stays bounded by the concurrency, not the item count: a blocking reader thread
//! parses the object lazily ([`crate::items::read_items`]) and feeds a bounded channel; at most
//! `MaxConcurrency` children run at once; results come back in item order and are either kept
//! (no ResultWriter: the output is the array of results) or written out in chunks through the
//! host's [`crate::resource::ObjectStore`] as AWS does (`<Prefix>/<MapRun id>/SUCCEEDED_n.json`,
//! `FAILED_n.json`, `manifest.json`).
//!
//! Child executions do not write into the parent's history — AWS keeps them as separate
//! executions too; the parent records `MapRunStarted` and `MapRunSucceeded`/`MapRunFailed`.

use super::super::shim::PathField;
use super::super::{Branch, Run, input_path, iso, shim};
use super::{
    FieldError, item_input, items_array, max_concurrency, tolerated_count, tolerated_percentage,
};
use crate::clock::WorkGuard;
use crate::error::{StatesError, names};
use crate::exec::record::{MapResults, lock};
use crate::history::{self, HistoryLog};
use crate::items::{BatcherConfig, InputType, ReaderConfig, read_items};
use crate::model::{MapState, State};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Entries per result file. AWS splits at 5 GB; smaller files keep memory flat here.
const RESULTS_PER_FILE: usize = 10_000;
/// Items parsed ahead of the children that consume them.
const READ_AHEAD: usize = 256;
/// Items handed from the reader's thread to the Map at once. One by one, the reader blocked
/// on a full channel was woken for every item the Map took: a thread wake-up per item (2% of
/// sluice's CPU on a job of no-op tasks).
const CHUNK: usize = 64;

/// Where the items come from.
enum Source {
    Bytes(Vec<u8>, ReaderConfig),
    Items(Vec<Value>),
}

/// One finished child execution.
struct Child {
    index: usize,
    name: String,
    input: Value,
    output: Result<Value, StatesError>,
    start: DateTime<Utc>,
    stop: DateTime<Utc>,
    /// Its result came from an earlier run (redrive): already checkpointed.
    carried_over: bool,
}

fn reader_failed(cause: impl Into<String>) -> StatesError {
    StatesError::new(names::ITEM_READER_FAILED, cause)
}

fn writer_failed(cause: impl Into<String>) -> StatesError {
    StatesError::new(names::RESULT_WRITER_FAILED, cause)
}

fn str_param<'a>(params: &'a Value, key: &str, what: &str) -> Result<&'a str, StatesError> {
    params.get(key).and_then(Value::as_str).ok_or_else(|| {
        StatesError::runtime(format!(
            "{what} Parameters must include the string field '{key}'"
        ))
    })
}

async fn load_source(
    run: &Run,
    state: &State,
    m: &MapState,
    effective: &Value,
    ctx: &Value,
) -> Result<Source, StatesError> {
    let Some(reader) = &m.item_reader else {
        return items_array(m, effective, ctx)
            .map(Source::Items)
            .map_err(FieldError::into_error);
    };
    let params = match &reader.parameters {
        Some(t) => shim::render(t, effective, ctx)?,
        None => json!({}),
    };
    let store = run.config()
        .resources
        .object_store()
        .cloned()
        .ok_or_else(|| {
            reader_failed(format!(
                "No object store is registered with the engine, so the ItemReader '{}' of '{}' cannot read",
                reader.resource, state.name
            ))
        })?;
    let action = reader
        .resource
        .strip_prefix("arn:aws:states:::s3:")
        .or_else(|| reader.resource.strip_prefix("arn:aws:states:::aws-sdk:s3:"))
        .unwrap_or("");
    match action {
        "getObject" => {
            let bucket = str_param(&params, "Bucket", "ItemReader")?;
            let key = str_param(&params, "Key", "ItemReader")?;
            let mut cfg = match &reader.reader_config {
                Some(v) => ReaderConfig::from_json(v).map_err(StatesError::runtime)?,
                None => ReaderConfig::new(InputType::Json),
            };
            if let Some(p) = cfg.max_items_path.clone() {
                let v = shim::select(&p, effective, ctx, PathField::MaxItemsPath)?;
                let n = v.as_u64().ok_or_else(|| {
                    StatesError::runtime(format!(
                        "The MaxItemsPath '{p}' must point to a positive integer, got {}",
                        shim::compact(&v)
                    ))
                })?;
                cfg = cfg.with_max_items(n);
            }
            let bytes = store.get_object(bucket, key).await.map_err(|e| {
                reader_failed(format!(
                    "Cannot read s3://{bucket}/{key}: {}: {}",
                    e.error, e.cause
                ))
            })?;
            Ok(Source::Bytes(bytes, cfg))
        }
        "listObjectsV2" => {
            let bucket = str_param(&params, "Bucket", "ItemReader")?;
            let prefix = params.get("Prefix").and_then(Value::as_str).unwrap_or("");
            let list = store.list_objects(bucket, prefix).await.map_err(|e| {
                reader_failed(format!(
                    "Cannot list s3://{bucket}/{prefix}: {}: {}",
                    e.error, e.cause
                ))
            })?;
            Ok(Source::Items(list.iter().map(|o| o.to_item()).collect()))
        }
        _ => Err(reader_failed(format!(
            "The ItemReader resource '{}' is not supported (use arn:aws:states:::s3:getObject or arn:aws:states:::s3:listObjectsV2)",
            reader.resource
        ))),
    }
}

/// Applies ItemSelector and ItemBatcher to a lazy item iterator and feeds the channel, in
/// chunks of [`CHUNK`]. Runs on a blocking thread; stops after the first error and as soon as
/// the receiver is gone (the Map run ended early).
fn feed<I>(
    items: I,
    m: &MapState,
    batcher: Option<BatcherConfig>,
    effective: &Value,
    ctx: &Value,
    tx: &mpsc::Sender<Vec<Result<Value, StatesError>>>,
) where
    I: Iterator<Item = Result<Value, StatesError>>,
{
    let selected = items
        .enumerate()
        .map(|(i, r)| r.and_then(|item| item_input(m, effective, ctx, i, item)));
    let inputs: Box<dyn Iterator<Item = Result<Value, StatesError>>> = match batcher {
        Some(b) => Box::new(b.batches(selected)),
        None => Box::new(selected),
    };
    let mut chunk = Vec::with_capacity(CHUNK);
    for r in inputs {
        let stop = r.is_err();
        chunk.push(r);
        if stop || chunk.len() == CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if tx.blocking_send(full).is_err() || stop {
                return;
            }
        }
    }
    if !chunk.is_empty() {
        let _ = tx.blocking_send(chunk);
    }
}

/// One attempt of a distributed Map state; returns the state output.
pub(crate) async fn run_distributed(
    run: &Run,
    state: &State,
    m: &MapState,
    raw_input: &Value,
    ctx: &Value,
    branch: &mut Branch,
) -> Result<Value, StatesError> {
    let effective = input_path(&state.io, Cow::Borrowed(raw_input), ctx)?;
    let config = &run.config();
    let label = m.label.clone().unwrap_or_else(|| state.name.clone());
    let run_id = uuid::Uuid::new_v4().to_string();
    let machine_name = &run.record.machine.name;
    let map_run_arn = format!(
        "arn:aws:states:{}:{}:mapRun:{machine_name}/{label}:{run_id}",
        config.region, config.account
    );
    // AWS's order: MaxConcurrencyPath and ItemsPath before MapStateStarted (whose length is 0
    // for an ItemReader, read later), the tolerances after it, so a bad tolerance value fails
    // the state with MapStateStarted already recorded.
    let concurrency =
        max_concurrency(&m.max_concurrency, &effective, ctx).map_err(|e| e.fail(run, branch))?;
    let concurrency = match usize::try_from(concurrency) {
        Ok(0) => config.distributed_map_default_concurrency.max(1),
        Ok(n) => n,
        Err(_) => usize::MAX,
    };
    let items = match &m.item_reader {
        None => Some(items_array(m, &effective, ctx).map_err(|e| e.fail(run, branch))?),
        Some(_) => None,
    };
    branch.record(
        run,
        "MapStateStarted",
        Some((
            "mapStateStartedEventDetails",
            json!({ "length": items.as_ref().map_or(0, Vec::len) }),
        )),
    );
    let tolerated_count = m
        .tolerated_failure_count
        .as_ref()
        .map(|n| tolerated_count(n, &effective, ctx))
        .transpose()
        .map_err(|e| e.fail(run, branch))?;
    let tolerated_pct = m
        .tolerated_failure_percentage
        .as_ref()
        .map(|n| tolerated_percentage(n, &effective, ctx))
        .transpose()
        .map_err(|e| e.fail(run, branch))?;
    let batcher = m
        .item_batcher
        .as_ref()
        .map(|b| BatcherConfig::from_json(b, &effective, ctx))
        .transpose()?;

    branch.record(
        run,
        "MapRunStarted",
        Some((
            "mapRunStartedEventDetails",
            json!({ "mapRunArn": map_run_arn }),
        )),
    );
    let result = map_run(
        run,
        state,
        m,
        &effective,
        ctx,
        branch,
        &map_run_arn,
        &run_id,
        &label,
        concurrency,
        tolerated_count,
        tolerated_pct,
        batcher,
        items,
    )
    .await;
    match result {
        Ok(output) => {
            branch.record(run, "MapRunSucceeded", None);
            branch.record(run, "MapStateSucceeded", None);
            run.finish_output(&state.io, Cow::Borrowed(raw_input), output, ctx, true)
        }
        Err(e) => {
            branch.record(
                run,
                "MapRunFailed",
                Some(("mapRunFailedEventDetails", super::super::error_json(&e))),
            );
            // A runtime error fails the execution at once; other errors fail the state first.
            if e.error != names::RUNTIME {
                branch.record(run, "MapStateFailed", None);
            }
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn map_run(
    run: &Run,
    state: &State,
    m: &MapState,
    effective: &Value,
    ctx: &Value,
    branch: &mut Branch,
    map_run_arn: &str,
    run_id: &str,
    label: &str,
    concurrency: usize,
    tolerated_count: Option<f64>,
    tolerated_pct: Option<f64>,
    batcher: Option<BatcherConfig>,
    items: Option<Vec<Value>>,
) -> Result<Value, StatesError> {
    let source = match items {
        Some(items) => Source::Items(items),
        None => load_source(run, state, m, effective, ctx).await?,
    };
    let (tx, rx) = mpsc::channel::<Vec<Result<Value, StatesError>>>(READ_AHEAD / CHUNK);
    {
        let m = m.clone();
        let effective = effective.clone();
        let ctx = ctx.clone();
        tokio::task::spawn_blocking(move || match source {
            Source::Bytes(bytes, cfg) => {
                feed(read_items(&bytes, &cfg), &m, batcher, &effective, &ctx, &tx)
            }
            Source::Items(items) => feed(
                items.into_iter().map(Ok),
                &m,
                batcher,
                &effective,
                &ctx,
                &tx,
            ),
        });
    }
    let config = &run.config();
    let machine_name = run.record.machine.name.clone();
    let child_arn_prefix = format!(
        "arn:aws:states:{}:{}:execution:{machine_name}/{label}:",
        config.region, config.account
    );
    let redriven: Option<MapResults> = run
        .redrive
        .as_ref()
        .and_then(|p| p.map_results.as_ref())
        .filter(|(n, _)| branch.top_level && *n == state.name)
        .map(|(_, r)| r.clone());
    let checkpoint: Option<MapResults> = branch.top_level.then(|| {
        let cp = Arc::new(Mutex::new(Vec::new()));
        lock(&run.record.redrive).map_results = Some((state.name.clone(), cp.clone()));
        cp
    });

    let items = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (futures::stream::iter(chunk), rx))
    })
    .flatten();
    let children = items
        .enumerate()
        .map(|(index, item)| {
            let done = redriven
                .as_ref()
                .and_then(|r| lock(r).get(index).cloned().flatten());
            let prefix = &child_arn_prefix;
            async move {
                let input = item?;
                let name = uuid::Uuid::new_v4().to_string();
                let start = run.clock.now();
                if let Some(v) = done {
                    return Ok(Child {
                        index,
                        name,
                        input,
                        output: Ok(v),
                        start,
                        stop: start,
                        carried_over: true,
                    });
                }
                let arn = format!("{prefix}{name}");
                let output = run_child(run, &m.processor, arn, &name, &input, start).await;
                Ok::<_, StatesError>(Child {
                    index,
                    name,
                    input,
                    output,
                    start,
                    stop: run.clock.now(),
                    carried_over: false,
                })
            }
        })
        // Unordered: a failure counts against the tolerance when it happens, and a slow early
        // item never holds finished ones in memory. Results are put back in item order.
        .buffer_unordered(concurrency);

    let writer = match &m.result_writer {
        Some(w) => Some(ResultWriter::new(
            run,
            w,
            effective,
            ctx,
            map_run_arn,
            run_id,
        )?),
        None => None,
    };
    let discard = state.io.result_path.is_none();
    // Without a ResultWriter, AWS gathers every child's output into the Map's result before
    // ResultPath applies, so `ResultPath: null` does not keep a big fan-out under the payload
    // quota: past it the state fails with States.DataLimitExceeded. The size is counted (the
    // outputs themselves are still not kept).
    let limit = run.config().payload_limit_bytes;
    let mut gathered: usize = 2; // "[" and "]"
    let collect = async {
        let mut children = std::pin::pin!(children);
        let mut writer = writer;
        let mut results: Vec<Option<Value>> = Vec::new();
        let (mut total, mut failed) = (0u64, 0u64);
        while let Some(child) = children.next().await {
            let child = child.map_err(|e| {
                if e.error == names::ITEM_READER_FAILED {
                    e
                } else {
                    reader_failed(format!("{}: {}", e.error, e.cause))
                }
            })?;
            total += 1;
            if child.output.is_err() {
                failed += 1;
                if tolerated_count.is_some_and(|n| failed as f64 > n) {
                    return Err(threshold_error());
                }
                if tolerated_count.is_none() && tolerated_pct.is_none() {
                    return Err(threshold_error());
                }
            }
            if let (Some(cp), Ok(v)) = (&checkpoint, &child.output) {
                if let Some(sink) = run
                    .config()
                    .checkpoint_sink
                    .as_ref()
                    .filter(|_| !child.carried_over)
                {
                    sink.map_iteration_succeeded(&run.record.arn, &state.name, child.index, v);
                }
                super::store_result(cp, child.index, v.clone());
            }
            match &mut writer {
                Some(w) => w.push(&child, &child_arn_prefix, &machine_name).await?,
                // `ResultPath: null` throws the results away: do not keep 100,000 of them.
                None if discard => {
                    let size = match &child.output {
                        Ok(v) => serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0),
                        Err(e) => serde_json::to_vec(&super::super::error_output(e))
                            .map(|b| b.len())
                            .unwrap_or(0),
                    };
                    gathered += size + usize::from(total > 1);
                    if limit.is_some_and(|l| gathered > l) {
                        return Err(StatesError::new(
                            names::DATA_LIMIT_EXCEEDED,
                            format!(
                                "The state/task '{}' returned a result with a size exceeding the maximum number of bytes service limit.",
                                state.name
                            ),
                        ));
                    }
                }
                None => {
                    if results.len() <= child.index {
                        results.resize(child.index + 1, None);
                    }
                    results[child.index] = Some(match &child.output {
                        Ok(v) => v.clone(),
                        Err(e) => super::super::error_output(e),
                    });
                }
            }
        }
        if tolerated_pct.is_some_and(|p| total > 0 && (failed as f64) * 100.0 > p * total as f64) {
            return Err(threshold_error());
        }
        match writer {
            Some(w) => w.finish().await,
            None => Ok(Value::Array(
                results.into_iter().map(Option::unwrap_or_default).collect(),
            )),
        }
    };
    branch.guard.idle(collect).await
}

/// Runs one child execution of a Map Run. A child has its own `$$.Execution` (ARN, name,
/// input) and its own history, which reaches the host's sink only when
/// `EngineConfig::record_child_executions` is set.
async fn run_child(
    run: &Run,
    processor: &crate::model::Graph,
    arn: String,
    name: &str,
    input: &Value,
    start: DateTime<Utc>,
) -> Result<Value, StatesError> {
    let config = &run.config();
    let execution_ctx = json!({
        "Id": arn,
        "Input": input,
        "Name": name,
        "RoleArn": config.role_arn,
        "StartTime": iso(start),
        "RedriveCount": 0,
    });
    let sink = if config.record_child_executions {
        config.history_sink.clone()
    } else {
        None
    };
    let mut b = Branch {
        // A child's events are read only through the sink (nobody asks a finished child
        // for its history), so none are kept in memory.
        history: Arc::new(HistoryLog::new(arn, sink, false, 0)),
        prev: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        guard: WorkGuard::new(run.clock.clone()),
        top_level: false,
        execution_ctx: Some(execution_ctx),
    };
    b.record(run, "ExecutionStarted", || {
        Some((
            "executionStartedEventDetails",
            json!({
                "input": history::payload(input),
                "inputDetails": history::not_truncated(),
                "roleArn": config.role_arn,
            }),
        ))
    });
    let output = run
        .run_graph(processor, Cow::Borrowed(input), &mut b, None)
        .await;
    match &output {
        Ok(v) => b.record(run, "ExecutionSucceeded", || {
            Some((
                "executionSucceededEventDetails",
                json!({ "output": history::payload(v), "outputDetails": history::not_truncated() }),
            ))
        }),
        Err(e) => b.record(run, "ExecutionFailed", || {
            Some(("executionFailedEventDetails", super::super::error_json(e)))
        }),
    };
    output
}

fn threshold_error() -> StatesError {
    StatesError::new(
        names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
        "The specified tolerated failure threshold was exceeded",
    )
}

/// Writes child results to the object store in AWS's layout.
struct ResultWriter {
    store: Option<Arc<dyn crate::resource::ObjectStore>>,
    bucket: String,
    base: String,
    map_run_arn: String,
    machine_arn: String,
    /// `NONE` (full execution records), `COMPACT` (outputs) or `FLATTEN`.
    transformation: String,
    jsonl: bool,
    succeeded: Vec<Value>,
    failed: Vec<Value>,
    files: [Vec<Value>; 2],
    counts: [usize; 2],
    /// WriterConfig without Resource: results are returned, not written.
    preview: Option<Vec<Value>>,
}

impl ResultWriter {
    fn new(
        run: &Run,
        spec: &crate::model::ResultWriterSpec,
        effective: &Value,
        ctx: &Value,
        map_run_arn: &str,
        run_id: &str,
    ) -> Result<Self, StatesError> {
        let writer_config = spec.writer_config.clone().unwrap_or(Value::Null);
        let transformation = writer_config
            .get("Transformation")
            .and_then(Value::as_str)
            .unwrap_or(if spec.writer_config.is_some() {
                "COMPACT"
            } else {
                "NONE"
            })
            .to_string();
        let jsonl = writer_config.get("OutputType").and_then(Value::as_str) == Some("JSONL");
        let (store, bucket, base) = match &spec.resource {
            None => (None, String::new(), String::new()),
            Some(_) => {
                let params = match &spec.parameters {
                    Some(t) => shim::render(t, effective, ctx)?,
                    None => json!({}),
                };
                let bucket = str_param(&params, "Bucket", "ResultWriter")?.to_string();
                let prefix = params.get("Prefix").and_then(Value::as_str).unwrap_or("");
                let base = if prefix.is_empty() {
                    format!("{run_id}/")
                } else {
                    format!("{}/{run_id}/", prefix.trim_end_matches('/'))
                };
                let store = run
                    .config()
                    .resources
                    .object_store()
                    .cloned()
                    .ok_or_else(|| {
                        writer_failed(
                            "No object store is registered with the engine for the ResultWriter",
                        )
                    })?;
                (Some(store), bucket, base)
            }
        };
        Ok(Self {
            preview: store.is_none().then(Vec::new),
            store,
            bucket,
            base,
            map_run_arn: map_run_arn.to_string(),
            machine_arn: run.config().state_machine_arn(&run.record.machine.name),
            transformation,
            jsonl,
            succeeded: Vec::new(),
            failed: Vec::new(),
            files: [Vec::new(), Vec::new()],
            counts: [0, 0],
        })
    }

    fn entry(&self, child: &Child, arn_prefix: &str) -> Vec<Value> {
        match (&child.output, self.transformation.as_str()) {
            (Ok(v), "COMPACT") => vec![v.clone()],
            (Ok(Value::Array(a)), "FLATTEN") => a.clone(),
            (Ok(v), "FLATTEN") => vec![v.clone()],
            (output, _) => {
                let mut e = json!({
                    "ExecutionArn": format!("{arn_prefix}{}", child.name),
                    "Input": history::payload(&child.input),
                    "InputDetails": { "Included": true },
                    "Name": child.name,
                    "RedriveCount": 0,
                    "RedriveStatus": "NOT_REDRIVABLE",
                    "StartDate": iso(child.start),
                    "StateMachineArn": self.machine_arn,
                    "StopDate": iso(child.stop),
                });
                match output {
                    Ok(v) => {
                        e["Output"] = history::payload(v);
                        e["OutputDetails"] = json!({ "Included": true });
                        e["Status"] = json!("SUCCEEDED");
                    }
                    Err(err) => {
                        e["Error"] = json!(err.error);
                        e["Cause"] = json!(err.cause);
                        e["Status"] = json!("FAILED");
                    }
                }
                vec![e]
            }
        }
    }

    async fn push(
        &mut self,
        child: &Child,
        arn_prefix: &str,
        _machine: &str,
    ) -> Result<(), StatesError> {
        let entries = self.entry(child, arn_prefix);
        if let Some(p) = &mut self.preview {
            p.extend(entries);
            return Ok(());
        }
        let kind = usize::from(child.output.is_err());
        self.files[kind].extend(entries);
        if self.files[kind].len() >= RESULTS_PER_FILE {
            self.flush(kind).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, kind: usize) -> Result<(), StatesError> {
        let Some(store) = self.store.clone() else {
            return Ok(());
        };
        let entries = std::mem::take(&mut self.files[kind]);
        let status = if kind == 0 { "SUCCEEDED" } else { "FAILED" };
        let key = format!("{}{status}_{}.json", self.base, self.counts[kind]);
        self.counts[kind] += 1;
        let body = if self.jsonl {
            let mut out = String::new();
            for e in &entries {
                out.push_str(&e.to_string());
                out.push('\n');
            }
            out.into_bytes()
        } else {
            serde_json::to_vec(&entries).unwrap_or_default()
        };
        let size = body.len();
        store
            .put_object(&self.bucket, &key, body)
            .await
            .map_err(|e| {
                writer_failed(format!(
                    "Cannot write s3://{}/{key}: {}: {}",
                    self.bucket, e.error, e.cause
                ))
            })?;
        let list = if kind == 0 {
            &mut self.succeeded
        } else {
            &mut self.failed
        };
        list.push(json!({ "Key": key, "Size": size }));
        Ok(())
    }

    async fn finish(mut self) -> Result<Value, StatesError> {
        if let Some(p) = self.preview.take() {
            return Ok(Value::Array(p));
        }
        for kind in 0..2 {
            if !self.files[kind].is_empty() {
                self.flush(kind).await?;
            }
        }
        let Some(store) = self.store.clone() else {
            return Ok(Value::Null);
        };
        let manifest_key = format!("{}manifest.json", self.base);
        let manifest = json!({
            "DestinationBucket": self.bucket,
            "MapRunArn": self.map_run_arn,
            "ResultFiles": { "FAILED": self.failed, "PENDING": [], "SUCCEEDED": self.succeeded },
        });
        store
            .put_object(
                &self.bucket,
                &manifest_key,
                manifest.to_string().into_bytes(),
            )
            .await
            .map_err(|e| {
                writer_failed(format!(
                    "Cannot write the manifest: {}: {}",
                    e.error, e.cause
                ))
            })?;
        Ok(json!({
            "MapRunArn": self.map_run_arn,
            "ResultWriterDetails": { "Bucket": self.bucket, "Key": manifest_key },
        }))
    }
}
