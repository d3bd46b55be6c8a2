//! The executor: interprets a [`StateMachine`] one state at a time, as AWS Step Functions does.
//!
//! - [`launch`] runs an execution (or a redrive of one) as a tokio task, racing it against
//!   StopExecution and the execution-level `TimeoutSeconds`, and records the closing event.
//! - [`Run::run_graph`] walks a [`Graph`] (top level, Parallel branch or Map iteration),
//!   recording `*StateEntered`/`*StateExited`, applying Catch and following transitions.
//! - Each state type's behaviour is in its own function; Task in [`task`], Parallel and Map in
//!   [`map`]; Retry in [`retry`]; paths, templates and AWS's wording of run-time failures in
//!   [`shim`].
//! - [`record`] holds the run-time records the engine reads (an execution's outcome, history,
//!   stop signal, redrive point); [`host`] is what the interpreter needs from the engine, as a
//!   trait the engine implements, so this module never depends on [`crate::engine`].
//!
//! Input/output processing follows the AWS order: InputPath → Parameters / ItemSelector →
//! the state's work → ResultSelector → ResultPath (into the raw state input) → OutputPath.

pub(crate) mod host;
pub(crate) mod map;
pub(crate) mod record;
pub(crate) mod retry;
pub(crate) mod shim;
pub(crate) mod task;

pub(crate) use host::Host;

use crate::checkpoint::ExecutionCheckpoint;
use crate::clock::{Clock, WorkGuard};
use crate::config::EngineConfig;
use crate::data::choice::parse_timestamp;
use crate::error::{StatesError, names};
use crate::history::{self, Details, HistoryLog};
use crate::model::{FailState, Graph, Io, State, StateKind, Transition, WaitState};
use crate::outcome::{ExecutionOutcome, ExecutionStatus};
use crate::resource::TaskMocks;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use record::{ExecutionRecord, RedrivePoint, lock};
use serde_json::{Value, json};
use shim::PathField;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Everything one run (start or redrive) of an execution shares.
pub(crate) struct Run {
    /// The engine running this execution (configuration, tokens, child executions).
    pub(crate) host: Arc<dyn Host>,
    pub(crate) record: Arc<ExecutionRecord>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) mocks: Option<Arc<dyn TaskMocks>>,
    /// Invocations per Task state name, for mock responses.
    pub(crate) invocations: Mutex<HashMap<String, u32>>,
    /// `$$.Execution`, built on first use: it holds a copy of the whole execution input, which
    /// most definitions never read.
    pub(crate) ctx_execution: OnceLock<Value>,
    /// `$$.Execution` without `Input`, for states that never read it (see
    /// `State::reads_execution_input`): the input is not copied for every state entered.
    pub(crate) ctx_execution_light: Value,
    pub(crate) ctx_machine: Value,
    /// What a redrive carries over (Map results by index).
    pub(crate) redrive: Option<RedrivePoint>,
}

/// Where one chain of states (a branch) stands: its history cursor and its clock activity.
pub(crate) struct Branch {
    pub(crate) history: Arc<HistoryLog>,
    /// Id of the last event on this branch (the next event's `previousEventId`). Shared with
    /// the branch's [`AbortGuard`]s, which record from `Drop`.
    pub(crate) prev: Arc<AtomicU64>,
    pub(crate) guard: WorkGuard,
    /// Only the top-level graph keeps redrive points.
    pub(crate) top_level: bool,
    /// `$$.Execution` of a distributed Map child execution (its own ARN, name and input);
    /// `None` uses the execution's.
    pub(crate) execution_ctx: Option<Value>,
}

impl Branch {
    /// Records an event on this branch. `details` is a value or, where building it costs
    /// (a payload serialised to a string), a closure run only if the history is read.
    pub(crate) fn record(&mut self, run: &Run, event_type: &str, details: impl Details) -> u64 {
        let prev = self.prev.load(Ordering::SeqCst);
        let id = self
            .history
            .record(run.clock.now(), event_type, prev, details);
        self.prev.store(id, Ordering::SeqCst);
        id
    }

    /// A guard that records `event` on this branch if it is dropped while still armed.
    pub(crate) fn abort_guard(
        &self,
        run: &Run,
        event: &'static str,
        details: Option<(&'static str, Value)>,
    ) -> AbortGuard {
        AbortGuard {
            history: self.history.clone(),
            clock: run.clock.clone(),
            prev: self.prev.clone(),
            event: Some((event, details)),
        }
    }
}

/// Records an `...Aborted` event when the work it guards is cancelled: a state of a branch
/// that lost to a failing Parallel sibling, a Map iteration cancelled by a failed one, or
/// anything running when the execution is stopped — as AWS records `WaitStateAborted`,
/// `MapIterationAborted`, ...
pub(crate) struct AbortGuard {
    history: Arc<HistoryLog>,
    clock: Arc<dyn Clock>,
    prev: Arc<AtomicU64>,
    event: Option<(&'static str, Option<(&'static str, Value)>)>,
}

impl AbortGuard {
    /// The guarded work completed: record nothing.
    pub(crate) fn disarm(&mut self) {
        self.event = None;
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if let Some((event, details)) = self.event.take() {
            let prev = self.prev.load(Ordering::SeqCst);
            let id = self.history.record(self.clock.now(), event, prev, details);
            self.prev.store(id, Ordering::SeqCst);
        }
    }
}

/// While a top-level state runs: if the execution ends inside it (stopped, timed out), the
/// redrive point becomes this state with its input — copied only then, not for every state.
struct RedriveGuard<'a> {
    run: &'a Run,
    state: &'a str,
    /// `None` once the state has finished (its end records the point itself).
    input: Option<&'a Value>,
}

impl Drop for RedriveGuard<'_> {
    fn drop(&mut self) {
        if let Some(input) = self.input {
            lock(&self.run.record.redrive).state = Some((self.state.to_owned(), input.clone()));
        }
    }
}

pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Starts (or redrives) `record` on `runtime`.
pub(crate) fn launch(
    host: Arc<dyn Host>,
    record: Arc<ExecutionRecord>,
    runtime: &tokio::runtime::Handle,
    redrive: Option<RedrivePoint>,
) {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    *lock(&record.stop) = Some(stop_tx);
    let config = host.config();
    let clock = config.clock.clone();
    let redrive_count = *lock(&record.redrive_count);
    let machine_arn = config.state_machine_arn(&record.machine.name);
    let run = Arc::new(Run {
        ctx_execution: OnceLock::new(),
        ctx_execution_light: json!({
            "Id": record.arn,
            "Name": record.name,
            "RoleArn": config.role_arn,
            "StartTime": iso(record.start_date),
            "RedriveCount": redrive_count,
        }),
        ctx_machine: json!({ "Id": machine_arn, "Name": record.machine.name }),
        host,
        mocks: record.mocks.clone(),
        record,
        clock,
        invocations: Mutex::new(HashMap::new()),
        redrive,
    });
    runtime.spawn(execute(run, stop_rx));
}

async fn execute(
    run: Arc<Run>,
    stop_rx: tokio::sync::oneshot::Receiver<(Option<String>, Option<String>)>,
) {
    let record = run.record.clone();
    let history = record.history.clone();
    let mut branch = Branch {
        history: history.clone(),
        prev: Arc::new(AtomicU64::new(record.history.last_id())),
        guard: WorkGuard::new(run.clock.clone()),
        top_level: true,
        execution_ctx: None,
    };
    let (start_state, input) = match &run.redrive {
        None => {
            branch.record(&run, "ExecutionStarted", || {
                Some((
                    "executionStartedEventDetails",
                    json!({
                        "input": history::payload(&record.input),
                        "inputDetails": history::not_truncated(),
                        "roleArn": run.config().role_arn,
                    }),
                ))
            });
            (None, Cow::Borrowed(&record.input))
        }
        Some(point) => {
            let count = *lock(&record.redrive_count);
            branch.record(
                &run,
                "ExecutionRedriven",
                Some((
                    "executionRedrivenEventDetails",
                    json!({ "redriveCount": count }),
                )),
            );
            match &point.state {
                Some((state, input)) => (Some(state.clone()), Cow::Borrowed(input)),
                None => (None, Cow::Borrowed(&record.input)),
            }
        }
    };
    let machine = record.machine.clone();
    if let Some(sink) = &run.config().checkpoint_sink {
        sink.execution_started(&ExecutionCheckpoint {
            execution_arn: &record.arn,
            name: &record.name,
            state_machine: &machine.name,
            input: &record.input,
            start_date: record.start_date,
            redrive_count: *lock(&record.redrive_count),
        });
    }
    // A redrive gets the full execution timeout again, counted from the redrive.
    let timeout_base = if run.redrive.is_some() {
        run.clock.now()
    } else {
        record.start_date
    };
    let deadline = machine
        .timeout_seconds
        .map(|s| timeout_base + chrono::Duration::seconds(s.min(99_999_999) as i64));
    let timeout = async {
        match deadline {
            Some(d) => run.clock.sleep_until(d).await,
            None => std::future::pending::<()>().await,
        }
    };
    let work = run.run_graph(&machine.graph, input, &mut branch, start_state);
    enum End {
        Done(Result<Value, StatesError>),
        Stopped(Option<String>, Option<String>),
        TimedOut,
    }
    let end = tokio::select! {
        r = work => End::Done(r),
        s = stop_rx => match s {
            Ok((e, c)) => End::Stopped(e, c),
            Err(_) => End::Stopped(None, None),
        },
        _ = timeout => End::TimedOut,
    };
    let outcome = match end {
        End::Done(Ok(output)) => {
            branch.record(&run, "ExecutionSucceeded", || {
                Some((
                    "executionSucceededEventDetails",
                    json!({ "output": history::payload(&output), "outputDetails": history::not_truncated() }),
                ))
            });
            ExecutionOutcome {
                status: ExecutionStatus::Succeeded,
                output: Some(output),
                error: None,
                cause: None,
            }
        }
        End::Done(Err(e)) => {
            branch.record(
                &run,
                "ExecutionFailed",
                Some(("executionFailedEventDetails", error_json(&e))),
            );
            ExecutionOutcome {
                status: ExecutionStatus::Failed,
                output: None,
                error: non_empty(&e.error),
                cause: non_empty(&e.cause),
            }
        }
        End::Stopped(error, cause) => {
            let mut d = serde_json::Map::new();
            if let Some(e) = &error {
                d.insert("error".into(), json!(e));
            }
            if let Some(c) = &cause {
                d.insert("cause".into(), json!(c));
            }
            branch.record(
                &run,
                "ExecutionAborted",
                Some(("executionAbortedEventDetails", Value::Object(d))),
            );
            ExecutionOutcome {
                status: ExecutionStatus::Aborted,
                output: None,
                error,
                cause,
            }
        }
        End::TimedOut => {
            let e = StatesError::new(
                names::TIMEOUT,
                format!(
                    "The execution exceeded its TimeoutSeconds of {}",
                    machine.timeout_seconds.unwrap_or(0)
                ),
            );
            branch.record(
                &run,
                "ExecutionTimedOut",
                Some(("executionTimedOutEventDetails", error_json(&e))),
            );
            ExecutionOutcome {
                status: ExecutionStatus::TimedOut,
                output: None,
                error: Some(e.error),
                cause: Some(e.cause),
            }
        }
    };
    drop(branch);
    let stop_date = run.clock.now();
    *lock(&record.stop_date) = Some(stop_date);
    lock(&record.stop).take();
    if let Some(sink) = &run.config().checkpoint_sink {
        sink.execution_closed(&record.arn, &outcome, stop_date);
    }
    record.outcome.send_replace(Some(outcome));
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// `{"error","cause"}` without empty members, as AWS omits absent ones.
pub(crate) fn error_json(e: &StatesError) -> Value {
    let mut d = serde_json::Map::new();
    if !e.error.is_empty() {
        d.insert("error".into(), json!(e.error));
    }
    if !e.cause.is_empty() {
        d.insert("cause".into(), json!(e.cause));
    }
    Value::Object(d)
}

/// The Catch/Retry error output: `{"Error","Cause"}`.
pub(crate) fn error_output(e: &StatesError) -> Value {
    json!({ "Error": e.error, "Cause": e.cause })
}

/// What a state's work produced: its output and where to go next.
pub(crate) enum Step {
    Next(Value, String),
    End(Value),
}

impl Run {
    pub(crate) fn config(&self) -> &EngineConfig {
        self.host.config()
    }

    /// The context object for a state.
    pub(crate) fn context(
        &self,
        branch: &Branch,
        state: &State,
        entered: DateTime<Utc>,
        retry_count: u64,
    ) -> Value {
        if !state.reads_context {
            // Nothing in the state mentions `$$`: no path or intrinsic can read the context.
            return Value::Object(serde_json::Map::new());
        }
        let execution = match &branch.execution_ctx {
            Some(child) => child,
            None if state.reads_execution_input => self.full_execution_ctx(),
            None => &self.ctx_execution_light,
        };
        // AWS's `$$.State` has `RetryCount` only in the states that can retry.
        let state_ctx = if matches!(
            state.kind,
            StateKind::Task(_) | StateKind::Parallel(_) | StateKind::Map(_)
        ) {
            json!({ "EnteredTime": iso(entered), "Name": state.name, "RetryCount": retry_count })
        } else {
            json!({ "EnteredTime": iso(entered), "Name": state.name })
        };
        json!({
            "Execution": execution,
            "State": state_ctx,
            "StateMachine": self.ctx_machine,
        })
    }

    /// `$$.Execution` with the execution input.
    fn full_execution_ctx(&self) -> &Value {
        self.ctx_execution.get_or_init(|| {
            let mut full = serde_json::Map::new();
            if let Value::Object(light) = &self.ctx_execution_light {
                for (k, v) in light {
                    full.insert(k.clone(), v.clone());
                    if k == "Id" {
                        full.insert("Input".into(), self.record.input.clone());
                    }
                }
            }
            Value::Object(full)
        })
    }

    /// A cause that prints the context object (a `$$` path that matched nothing) shows it as
    /// AWS does, with `$$.Execution.Input`, which the state's own context object left out.
    fn with_full_context(&self, branch: &Branch, mut e: StatesError) -> StatesError {
        if e.error != names::RUNTIME || branch.execution_ctx.is_some() {
            return e;
        }
        let light = shim::compact(&self.ctx_execution_light);
        if e.cause.contains(&light) {
            e.cause = e
                .cause
                .replace(&light, &shim::compact(self.full_execution_ctx()));
        }
        e
    }

    /// Runs a graph from its start (or from `start`) until it ends; returns its output.
    ///
    /// The input may be borrowed (the execution input, which the record keeps for
    /// DescribeExecution and redrive) and is copied only where a state's output contains it.
    pub(crate) fn run_graph<'a>(
        &'a self,
        graph: &'a Graph,
        input: Cow<'a, Value>,
        branch: &'a mut Branch,
        start: Option<String>,
    ) -> BoxFuture<'a, Result<Value, StatesError>> {
        Box::pin(async move {
            // A redrive re-enters the state it continues from; everything after is entered anew.
            let mut resumed = start.is_some();
            let mut current = start.unwrap_or_else(|| graph.start_at.clone());
            let mut input = input;
            loop {
                let Some(state) = graph.state(&current) else {
                    return Err(StatesError::runtime(format!(
                        "The state '{current}' does not exist in the state machine"
                    )));
                };
                let (entered_event, exited_event, aborted_event) = state.event_types();
                let entered = self.clock.now();
                let entered_event = branch.record(self, entered_event, || {
                    Some(history::state_entered(&state.name, &input))
                });
                if branch.top_level
                    && let Some(sink) = &self.config().checkpoint_sink
                {
                    sink.state_entered(&self.record.arn, &state.name, &input, resumed);
                }
                resumed = false;
                let mut abort = branch.abort_guard(self, aborted_event, None);
                // The raw input stays here when a Catch may need it (ResultPath) or a redrive
                // may restart from this state (top level); otherwise it is handed over, so
                // passing it on costs no copy.
                let keep_input = branch.top_level || !state.catch.is_empty();
                let result = if keep_input {
                    let redrive_guard = branch.top_level.then(|| RedriveGuard {
                        run: self,
                        state: &state.name,
                        input: Some(&*input),
                    });
                    let r = self
                        .run_state(state, Cow::Borrowed(&*input), branch, entered)
                        .await;
                    if let Some(mut g) = redrive_guard {
                        g.input = None;
                    }
                    r
                } else {
                    let owned = std::mem::replace(&mut input, Cow::Owned(Value::Null));
                    self.run_state(state, owned, branch, entered).await
                };
                abort.disarm();
                let result = result.map_err(|e| {
                    shim::in_state(
                        self.with_full_context(branch, e),
                        &state.name,
                        entered_event,
                    )
                });
                let step = match result {
                    Ok(step) => Ok(step),
                    Err(err) => match retry::find_catcher(&state.catch, &err) {
                        Some(catcher) => shim::apply_result_path(
                            Cow::Borrowed(&*input),
                            error_output(&err),
                            catcher.result_path.as_deref(),
                        )
                        .map(|out| Step::Next(out, catcher.next.clone())),
                        None => Err(err),
                    },
                };
                let step = step.and_then(|step| {
                    if matches!(state.kind, StateKind::Fail(_)) {
                        // Fail states end in an error; this is unreachable by construction.
                        return Err(StatesError::runtime("a Fail state completed"));
                    }
                    let (Step::Next(output, _) | Step::End(output)) = &step;
                    self.check_payload(&state.name, output)?;
                    Ok(step)
                });
                let step = match step {
                    Ok(step) => step,
                    Err(e) => {
                        let e = shim::in_state(e, &state.name, entered_event);
                        if branch.top_level {
                            // A redrive restarts here, with this state's input.
                            lock(&self.record.redrive).state =
                                Some((state.name.clone(), input.into_owned()));
                        }
                        return Err(e);
                    }
                };
                let (Step::Next(output, _) | Step::End(output)) = &step;
                branch.record(self, exited_event, || {
                    Some(history::state_exited(&state.name, output))
                });
                match step {
                    Step::Next(o, next) => {
                        current = next;
                        input = Cow::Owned(o);
                    }
                    Step::End(o) => return Ok(o),
                }
            }
        })
    }

    /// One state's work on its raw input, which stays the caller's (a Catch needs it): a
    /// state copies it only where its output really contains it.
    fn run_state<'a>(
        &'a self,
        state: &'a State,
        input: Cow<'a, Value>,
        branch: &'a mut Branch,
        entered: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Step, StatesError>> {
        Box::pin(async move {
            let ctx = self.context(branch, state, entered, 0);
            let output = match &state.kind {
                StateKind::Pass { result } if state.io.result_path.as_deref() == Some("$") => {
                    // The output is the result alone, so the raw input is not needed after
                    // the effective input: hand it over rather than copy it.
                    let result = match result {
                        Some(r) => r.clone(),
                        None => self.effective_input(&state.io, input, &ctx)?.into_owned(),
                    };
                    output_path(&state.io, Cow::Owned(result), &ctx)?
                }
                StateKind::Pass { result } => {
                    let result = match result {
                        Some(r) => r.clone(),
                        None => self
                            .effective_input(&state.io, Cow::Borrowed(&*input), &ctx)?
                            .into_owned(),
                    };
                    self.finish_output(&state.io, input, result, &ctx, false)?
                }
                StateKind::Succeed => {
                    let effective = input_path(&state.io, input, &ctx)?;
                    return Ok(Step::End(output_path(&state.io, effective, &ctx)?));
                }
                StateKind::Fail(f) => return Err(self.fail_error(f, &input, &ctx)),
                StateKind::Choice(c) => {
                    let effective = input_path(&state.io, input, &ctx)?;
                    let mut next = None;
                    for choice in &c.choices {
                        if choice.rule.evaluate(&effective, &ctx)? {
                            next = Some(choice.next.clone());
                            break;
                        }
                    }
                    let Some(next) = next.or_else(|| c.default.clone()) else {
                        return Err(StatesError::new(
                            names::NO_CHOICE_MATCHED,
                            format!(
                                "No Choice rule matched and no Default was given in state '{}'",
                                state.name
                            ),
                        ));
                    };
                    return Ok(Step::Next(output_path(&state.io, effective, &ctx)?, next));
                }
                StateKind::Wait(w) => {
                    let effective = input_path(&state.io, input, &ctx)?;
                    let until = wait_deadline(w, &effective, &ctx, entered)?;
                    let sleep = self.clock.sleep_until(until);
                    branch.guard.idle(sleep).await;
                    output_path(&state.io, effective, &ctx)?
                }
                StateKind::Task(_) | StateKind::Parallel(_) | StateKind::Map(_) => {
                    retry::with_retry(self, state, &input, branch, entered).await?
                }
            };
            Ok(match &state.transition {
                Some(Transition::Next(n)) => Step::Next(output, n.clone()),
                _ => Step::End(output),
            })
        })
    }

    /// AWS fails a state whose output exceeds the payload quota (256 KiB) with the terminal
    /// `States.DataLimitExceeded`; checking here keeps local runs honest about what would fail
    /// on AWS.
    fn check_payload(&self, state: &str, output: &Value) -> Result<(), StatesError> {
        let Some(limit) = self.config().payload_limit_bytes else {
            return Ok(());
        };
        let size = serde_json::to_vec(output).map(|v| v.len()).unwrap_or(0);
        if size > limit {
            return Err(StatesError::new(
                names::DATA_LIMIT_EXCEEDED,
                format!(
                    "The state/task '{state}' returned a result with a size exceeding the maximum number of bytes service limit."
                ),
            ));
        }
        Ok(())
    }

    /// InputPath then Parameters (the input passed on as it is when neither changes it).
    pub(crate) fn effective_input<'v>(
        &self,
        io: &Io,
        input: Cow<'v, Value>,
        ctx: &Value,
    ) -> Result<Cow<'v, Value>, StatesError> {
        let selected = input_path(io, input, ctx)?;
        match &io.parameters {
            Some(t) => shim::render(t, &selected, ctx).map(Cow::Owned),
            None => Ok(selected),
        }
    }

    /// ResultSelector (when `select`), ResultPath into the raw input, then OutputPath.
    pub(crate) fn finish_output(
        &self,
        io: &Io,
        raw_input: Cow<'_, Value>,
        result: Value,
        ctx: &Value,
        select: bool,
    ) -> Result<Value, StatesError> {
        let result = match (&io.result_selector, select) {
            (Some(t), true) => shim::render(t, &result, ctx)?,
            _ => result,
        };
        let combined = shim::apply_result_path(raw_input, result, io.result_path.as_deref())?;
        output_path(io, Cow::Owned(combined), ctx)
    }

    fn fail_error(&self, f: &FailState, input: &Value, ctx: &Value) -> StatesError {
        let resolve = |path: &Option<String>, fixed: &Option<String>, field| match (path, fixed) {
            (Some(p), _) => shim::dynamic_string(p, input, ctx, field),
            (None, Some(s)) => Ok(s.clone()),
            (None, None) => Ok(String::new()),
        };
        match (
            resolve(&f.error_path, &f.error, PathField::ErrorPath),
            resolve(&f.cause_path, &f.cause, PathField::CausePath),
        ) {
            (Ok(error), Ok(cause)) => StatesError::new(error, cause),
            (Err(e), _) | (_, Err(e)) => e,
        }
    }
}

/// InputPath (`null` → `{}`): `$` passes the input on as it is (borrowed stays borrowed, owned
/// is moved); any other path copies only what it selects.
pub(crate) fn input_path<'v>(
    io: &Io,
    input: Cow<'v, Value>,
    ctx: &Value,
) -> Result<Cow<'v, Value>, StatesError> {
    match &io.input_path {
        None => Ok(Cow::Owned(json!({}))),
        Some(p) if p == "$" => Ok(input),
        Some(p) => shim::select(p, &input, ctx, PathField::InputPath).map(Cow::Owned),
    }
}

/// OutputPath (`null` → `{}`); copies only what it selects.
pub(crate) fn output_path<'v>(
    io: &Io,
    output: Cow<'v, Value>,
    ctx: &Value,
) -> Result<Value, StatesError> {
    match &io.output_path {
        None => Ok(json!({})),
        Some(p) if p == "$" => Ok(output.into_owned()),
        Some(p) => shim::select(p, &output, ctx, PathField::OutputPath),
    }
}

/// AWS's largest wait, in seconds (the bound of the `Seconds` field).
const MAX_WAIT_SECONDS: u64 = 99_999_999;

/// When a Wait state ends. A SecondsPath or TimestampPath value AWS cannot use fails the state
/// with `States.Runtime` and AWS's cause: not an integer, negative, beyond the largest wait, or
/// not an ISO-8601 extended offset date-time (`2016-03-14T01:59:00Z`; a timestamp without a
/// zone or without the `T` is refused).
fn wait_deadline(
    w: &WaitState,
    input: &Value,
    ctx: &Value,
    entered: DateTime<Utc>,
) -> Result<DateTime<Utc>, StatesError> {
    let seconds = |n: u64| entered + chrono::Duration::seconds(n.min(MAX_WAIT_SECONDS) as i64);
    let bad_timestamp = |field: &str, p: &str, v: &Value| {
        StatesError::runtime(format!(
            "The {field} parameter does not reference a valid ISO-8601 extended offset date-time format string: {p} == {}",
            shim::quoted_value(v)
        ))
    };
    match w {
        WaitState::Seconds(n) => Ok(seconds(*n)),
        WaitState::Timestamp(s) => parse_timestamp(s)
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| bad_timestamp("Timestamp", s, &Value::String(s.clone()))),
        WaitState::SecondsPath(p) => {
            let v = shim::select(p, input, ctx, PathField::SecondsPath)?;
            let described = || format!("{p} == {}", shim::quoted_value(&v));
            match (v.as_i64(), v.as_u64()) {
                (Some(n), _) if n < 0 => Err(StatesError::runtime(format!(
                    "The SecondsPath parameter references a negative value: {}",
                    described()
                ))),
                (_, Some(n)) if n > MAX_WAIT_SECONDS => Err(StatesError::runtime(format!(
                    "The SecondsPath parameter references a value greater than the maximum wait of {MAX_WAIT_SECONDS} seconds: {}",
                    described()
                ))),
                (_, Some(n)) => Ok(seconds(n)),
                _ => Err(StatesError::runtime(format!(
                    "The SecondsPath parameter cannot be parsed as a long value: {}",
                    described()
                ))),
            }
        }
        WaitState::TimestampPath(p) => {
            let v = shim::select(p, input, ctx, PathField::TimestampPath)?;
            v.as_str()
                .and_then(parse_timestamp)
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| bad_timestamp("TimestampPath", p, &v))
        }
    }
}
