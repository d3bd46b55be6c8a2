//! Parallel and Map states.
//!
//! - Parallel runs every branch on the state's effective input; the result is the array of
//!   branch outputs in branch order. The first branch to fail fails the state with that branch's
//!   error, and the other branches are cancelled (their futures are dropped).
//! - Inline Map runs the item processor once per item of `ItemsPath`, at most `MaxConcurrency`
//!   at a time (0 = no limit), keeping results in item order; the first failed iteration fails
//!   the state with its error.
//! - Distributed Map ([`distributed`]) streams items from an ItemReader through child
//!   "executions" with bounded concurrency, tolerated failures and a ResultWriter.

pub(crate) mod distributed;

use super::shim::PathField;
use super::{Branch, Run, input_path, shim};
use crate::clock::WorkGuard;
use crate::error::StatesError;
use crate::exec::record::{MapResults, lock};
use crate::model::{MapMode, MapState, NumberOrPath, ParallelState, State};
use futures::StreamExt;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// One attempt of a Parallel state; returns the state output.
pub(crate) async fn run_parallel(
    run: &Run,
    state: &State,
    p: &ParallelState,
    raw_input: &Value,
    ctx: &Value,
    branch: &mut Branch,
) -> Result<Value, StatesError> {
    let effective = run.effective_input(&state.io, Cow::Borrowed(raw_input), ctx)?;
    let started = branch.record(run, "ParallelStateStarted", None);
    let futures = p.branches.iter().map(|g| {
        let mut b = Branch {
            history: branch.history.clone(),
            prev: Arc::new(AtomicU64::new(started)),
            guard: WorkGuard::new(run.clock.clone()),
            top_level: false,
            execution_ctx: None,
        };
        let input = Value::clone(&effective);
        async move { run.run_graph(g, Cow::Owned(input), &mut b, None).await }
    });
    let joined = join_branches(futures.collect());
    let results = branch.guard.idle(joined).await;
    close(
        run,
        state,
        raw_input,
        ctx,
        branch,
        results,
        ("ParallelStateSucceeded", "ParallelStateFailed"),
    )
}

/// Runs Parallel branches the way AWS starts them: all at once. Every round polls every
/// branch still running, so a branch that fails does not keep its siblings from taking the
/// steps they take at the same moment (a sibling of only Pass states completes, as on AWS);
/// once a round ends with a failure, the first failed branch (in branch order) fails the state
/// and the branches still running are dropped, which records their `...Aborted` events.
async fn join_branches<F, T>(branches: Vec<F>) -> Result<Vec<T>, StatesError>
where
    F: std::future::Future<Output = Result<T, StatesError>>,
{
    let mut running: Vec<Option<std::pin::Pin<Box<F>>>> =
        branches.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut done: Vec<Option<T>> = running.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let mut failed = None;
        for (slot, result) in running.iter_mut().zip(done.iter_mut()) {
            let Some(future) = slot else { continue };
            match future.as_mut().poll(cx) {
                std::task::Poll::Ready(Ok(v)) => {
                    *result = Some(v);
                    *slot = None;
                }
                std::task::Poll::Ready(Err(e)) => {
                    *slot = None;
                    failed.get_or_insert(e);
                }
                std::task::Poll::Pending => {}
            }
        }
        if let Some(e) = failed {
            // Dropping the branches still running records their aborted events now.
            running.clear();
            return std::task::Poll::Ready(Err(e));
        }
        if running.iter().all(Option::is_none) {
            return std::task::Poll::Ready(Ok(done.iter_mut().filter_map(Option::take).collect()));
        }
        std::task::Poll::Pending
    })
    .await
}

/// Records the `succeeded` or `failed` event of a Parallel or inline Map state and, on success,
/// turns the branch or iteration results into the state output.
fn close(
    run: &Run,
    state: &State,
    raw_input: &Value,
    ctx: &Value,
    branch: &mut Branch,
    results: Result<Vec<Value>, StatesError>,
    (succeeded, failed): (&'static str, &'static str),
) -> Result<Value, StatesError> {
    match results {
        Ok(results) => {
            branch.record(run, succeeded, None);
            run.finish_output(
                &state.io,
                Cow::Borrowed(raw_input),
                Value::Array(results),
                ctx,
                true,
            )
        }
        Err(e) => {
            branch.record(run, failed, None);
            Err(e)
        }
    }
}

/// Why a Map field (ItemsPath, MaxConcurrencyPath, ToleratedFailure*Path) gave no usable
/// value. AWS fails the Map state first (`MapStateFailed`) when the path selects nothing, but
/// fails the execution at once when it refuses the value the path selected.
pub(crate) enum FieldError {
    Missing(StatesError),
    Refused(StatesError),
}

impl FieldError {
    /// The error, after recording `MapStateFailed` when AWS records it.
    pub(crate) fn fail(self, run: &Run, branch: &mut Branch) -> StatesError {
        match self {
            FieldError::Missing(e) => {
                branch.record(run, "MapStateFailed", None);
                e
            }
            FieldError::Refused(e) => e,
        }
    }

    /// The error, where no Map event is due (the items are read inside the map run).
    pub(crate) fn into_error(self) -> StatesError {
        match self {
            FieldError::Missing(e) | FieldError::Refused(e) => e,
        }
    }
}

/// `select` for a Map field: a path that selects nothing is [`FieldError::Missing`].
fn select_field(
    p: &str,
    input: &Value,
    ctx: &Value,
    field: PathField,
) -> Result<Value, FieldError> {
    shim::select(p, input, ctx, field).map_err(FieldError::Missing)
}

/// The integer a `*Path` value stands for, read as AWS reads it (Java's `parseInt` of the
/// value's text): an integer, or a string holding one. Anything else (a fraction, an object,
/// text) is `None`.
fn integer_value(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The value as AWS quotes it in `refers to value "..."`: a string as it is, else JSON.
fn refers_to(field: PathField, p: &str, v: &Value, what: &str) -> FieldError {
    FieldError::Refused(StatesError::runtime(format!(
        "The {} field refers to value \"{}\" which is not a valid {what}: {p}",
        field.as_str(),
        shim::quoted_value(v)
    )))
}

/// MaxConcurrency or MaxConcurrencyPath: 0 means no limit.
pub(crate) fn max_concurrency(
    n: &NumberOrPath,
    input: &Value,
    ctx: &Value,
) -> Result<u64, FieldError> {
    let field = PathField::MaxConcurrencyPath;
    match n {
        NumberOrPath::Fixed(f) => Ok(f.max(0.0) as u64),
        NumberOrPath::Path(p) => {
            let v = select_field(p, input, ctx, field)?;
            let n = integer_value(&v).ok_or_else(|| refers_to(field, p, &v, "integer"))?;
            u64::try_from(n).map_err(|_| {
                FieldError::Refused(StatesError::runtime(format!(
                    "Expected non-negative integer for MaxConcurrency, got '{n}' instead."
                )))
            })
        }
    }
}

/// ToleratedFailureCount or ToleratedFailureCountPath.
pub(crate) fn tolerated_count(
    n: &NumberOrPath,
    input: &Value,
    ctx: &Value,
) -> Result<f64, FieldError> {
    let field = PathField::ToleratedFailureCountPath;
    match n {
        NumberOrPath::Fixed(f) => Ok(*f),
        NumberOrPath::Path(p) => {
            let v = select_field(p, input, ctx, field)?;
            let n = integer_value(&v).ok_or_else(|| refers_to(field, p, &v, "integer"))?;
            if n < 0 {
                return Err(FieldError::Refused(StatesError::runtime(
                    "ToleratedFailureCount cannot be negative.",
                )));
            }
            Ok(n as f64)
        }
    }
}

/// ToleratedFailurePercentage or ToleratedFailurePercentagePath: a number from 0 to 100.
pub(crate) fn tolerated_percentage(
    n: &NumberOrPath,
    input: &Value,
    ctx: &Value,
) -> Result<f64, FieldError> {
    let field = PathField::ToleratedFailurePercentagePath;
    match n {
        NumberOrPath::Fixed(f) => Ok(*f),
        NumberOrPath::Path(p) => {
            let v = select_field(p, input, ctx, field)?;
            let pct = match &v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
                _ => None,
            }
            .ok_or_else(|| refers_to(field, p, &v, "float"))?;
            if !(0.0..=100.0).contains(&pct) {
                return Err(FieldError::Refused(StatesError::runtime(
                    "ToleratedFailurePercentage must be between 0 and 100.",
                )));
            }
            Ok(pct)
        }
    }
}

/// The input of iteration `index`: ItemSelector rendered with `$$.Map.Item`, or the item.
pub(crate) fn item_input(
    m: &MapState,
    effective: &Value,
    ctx: &Value,
    index: usize,
    item: Value,
) -> Result<Value, StatesError> {
    match &m.item_selector {
        None => Ok(item),
        Some(t) => {
            let mut ctx = ctx.clone();
            ctx["Map"] = json!({ "Item": { "Index": index, "Value": item } });
            shim::render(t, effective, &ctx)
        }
    }
}

/// One attempt of a Map state; returns the state output.
pub(crate) async fn run_map(
    run: &Run,
    state: &State,
    m: &MapState,
    raw_input: &Value,
    ctx: &Value,
    branch: &mut Branch,
) -> Result<Value, StatesError> {
    if let MapMode::Distributed { .. } = m.mode {
        return distributed::run_distributed(run, state, m, raw_input, ctx, branch).await;
    }
    let effective = input_path(&state.io, Cow::Borrowed(raw_input), ctx)?;
    // AWS evaluates MaxConcurrencyPath before ItemsPath, both before MapStateStarted.
    let concurrency =
        max_concurrency(&m.max_concurrency, &effective, ctx).map_err(|e| e.fail(run, branch))?;
    let items = items_array(m, &effective, ctx).map_err(|e| e.fail(run, branch))?;
    let concurrency = match usize::try_from(concurrency) {
        Ok(0) => items.len().max(1),
        Ok(n) => n,
        Err(_) => usize::MAX,
    };
    let started = branch.record(
        run,
        "MapStateStarted",
        Some((
            "mapStateStartedEventDetails",
            json!({ "length": items.len() }),
        )),
    );
    // One store for the results, filled in as iterations succeed and pre-filled with those of
    // an earlier run (redrive). At top level it is also the checkpoint a redrive reads, so a
    // result is never held twice. (It is emptied when the Map succeeds: a redrive then starts
    // after this state and does not need it.)
    let previous = previous_results(run, state, branch, items.len());
    let total = previous.len();
    let results: MapResults = Arc::new(Mutex::new(previous));
    if branch.top_level {
        lock(&run.record.redrive).map_results = Some((state.name.clone(), results.clone()));
    }
    let history_log = branch.history.clone();
    let checkpoints = branch
        .top_level
        .then(|| run.config().checkpoint_sink.clone())
        .flatten();
    let mut inputs = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        inputs.push(item_input(m, &effective, ctx, index, item)?);
    }
    let name = state.name.as_str();
    let stream = futures::stream::iter(inputs.into_iter().enumerate().map(|(index, input)| {
        let history_log = history_log.clone();
        let results = results.clone();
        let checkpoints = checkpoints.clone();
        async move {
            if lock(&results).get(index).is_some_and(Option::is_some) {
                return Ok(());
            }
            let wants_details = history_log.wants_details();
            let mut b = Branch {
                history: history_log,
                prev: Arc::new(AtomicU64::new(started)),
                guard: WorkGuard::new(run.clock.clone()),
                top_level: false,
                execution_ctx: None,
            };
            let details = || json!({ "name": name, "index": index });
            b.record(run, "MapIterationStarted", || {
                Some(("mapIterationStartedEventDetails", details()))
            });
            let mut abort = b.abort_guard(
                run,
                "MapIterationAborted",
                wants_details.then(|| ("mapIterationAbortedEventDetails", details())),
            );
            let r = run
                .run_graph(&m.processor, Cow::Owned(input), &mut b, None)
                .await;
            abort.disarm();
            match r {
                Ok(v) => {
                    b.record(run, "MapIterationSucceeded", || {
                        Some(("mapIterationSucceededEventDetails", details()))
                    });
                    if let Some(sink) = &checkpoints {
                        sink.map_iteration_succeeded(&run.record.arn, name, index, &v);
                    }
                    store_result(&results, index, v);
                    Ok(())
                }
                Err(e) => {
                    b.record(run, "MapIterationFailed", || {
                        Some(("mapIterationFailedEventDetails", details()))
                    });
                    Err(e)
                }
            }
        }
    }))
    // Unordered, so the first failure is seen as soon as it happens (AWS fails the Map state
    // then, whatever earlier iterations are still doing).
    .buffer_unordered(concurrency);
    let collect = async {
        let mut stream = std::pin::pin!(stream);
        while let Some(r) = stream.next().await {
            r?;
        }
        Ok::<_, StatesError>(())
    };
    let outcome = branch.guard.idle(collect).await.map(|()| {
        let mut done = std::mem::take(&mut *lock(&results));
        done.resize(total, None);
        done.into_iter().map(Option::unwrap_or_default).collect()
    });
    close(
        run,
        state,
        raw_input,
        ctx,
        branch,
        outcome,
        ("MapStateSucceeded", "MapStateFailed"),
    )
}

/// The items `ItemsPath` selects from the effective input, which must be an array.
pub(crate) fn items_array(
    m: &MapState,
    effective: &Value,
    ctx: &Value,
) -> Result<Vec<Value>, FieldError> {
    match select_field(&m.items_path, effective, ctx, PathField::ItemsPath)? {
        Value::Array(a) => Ok(a),
        other => Err(FieldError::Refused(StatesError::runtime(format!(
            "The JSONPath '{}' specified for the field 'ItemsPath' does not reference a JSON array: {}",
            m.items_path,
            shim::compact(&other)
        )))),
    }
}

/// Records a succeeded iteration in the redrive checkpoint (growing it when needed, for
/// distributed Maps whose item count is only known at the end).
pub(crate) fn store_result(checkpoint: &MapResults, index: usize, v: Value) {
    let mut cp = lock(checkpoint);
    if cp.len() <= index {
        cp.resize(index + 1, None);
    }
    cp[index] = Some(v);
}

/// Results of iterations that succeeded before a redrive, for a top-level Map being redriven.
pub(crate) fn previous_results(
    run: &Run,
    state: &State,
    branch: &Branch,
    len: usize,
) -> Vec<Option<Value>> {
    let mut out = vec![None; len];
    if !branch.top_level {
        return out;
    }
    let previous = run
        .redrive
        .as_ref()
        .and_then(|p| p.map_results.as_ref())
        .filter(|(name, _)| *name == state.name)
        .map(|(_, results)| lock(results).clone());
    // A checkpoint read back from a host ends at the last succeeded iteration.
    if let Some(mut prev) = previous.filter(|p| p.len() <= len) {
        prev.resize(len, None);
        out = prev;
    }
    out
}
