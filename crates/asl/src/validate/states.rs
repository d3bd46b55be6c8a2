//! Per-state-type checks: allowed and required fields, End/Next, Retry/Catch, Task timeouts,
//! Wait and Fail exclusivity, Choice rules, Parallel branches and Map (inline and distributed).
//!
//! Each check returns the state's outgoing transitions and whether it can end the execution, so
//! the scope validator can check targets and reachability afterwards, and the typed
//! [`State`] built from the same fields in the same pass (the definition's JSON is walked once:
//! a field is checked where it is read into the model). A state with problems still yields a
//! best-effort model; the caller discards the model when any diagnostic was reported.

use serde_json::{Map, Value};

use super::machine::{Scope, Validator};
use super::rules::{self, KNOWN_STATES_ERRORS, MAX_SECONDS, type_name};
use super::{child, index};
use crate::data::choice::parse_timestamp;
use crate::items::{MAX_INPUT_BYTES_PER_BATCH_LIMIT, ReaderConfig};
use crate::model::{
    Catcher, ChoiceBranch, ChoiceState, FailState, Io, ItemReaderSpec, Jitter, MapMode, MapState,
    NumberOrPath, ParallelState, ResultWriterSpec, Retrier, Seconds, State, StateKind, TaskState,
    Transition, WaitState, reads_execution_input,
};
use crate::resource::TaskResource;

/// What the graph check needs from a state.
#[derive(Debug, Default)]
pub struct StateInfo {
    /// `(target state name, pointer of the field naming it)`.
    pub edges: Vec<(String, String)>,
    /// The state can end the execution (End: true, Succeed, Fail). States whose type could not be
    /// determined count as terminal so one bad state does not also trigger "no terminal state".
    pub terminal: bool,
}

const PASS: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "Next",
    "End",
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "Result",
];
const TASK: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "Next",
    "End",
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "Retry",
    "Catch",
    "Resource",
    "TimeoutSeconds",
    "TimeoutSecondsPath",
    "HeartbeatSeconds",
    "HeartbeatSecondsPath",
    "Credentials",
];
const CHOICE: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "InputPath",
    "OutputPath",
    "Choices",
    "Default",
];
const WAIT: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "Next",
    "End",
    "InputPath",
    "OutputPath",
    "Seconds",
    "SecondsPath",
    "Timestamp",
    "TimestampPath",
];
const SUCCEED: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "InputPath",
    "OutputPath",
];
const FAIL: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "Error",
    "ErrorPath",
    "Cause",
    "CausePath",
];
const PARALLEL: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "Next",
    "End",
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "Retry",
    "Catch",
    "Branches",
];
const MAP: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "Next",
    "End",
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "ItemSelector",
    "ResultSelector",
    "Retry",
    "Catch",
    "ItemProcessor",
    "Iterator",
    "ItemsPath",
    "ItemReader",
    "ItemBatcher",
    "ResultWriter",
    "MaxConcurrency",
    "MaxConcurrencyPath",
    "ToleratedFailurePercentage",
    "ToleratedFailurePercentagePath",
    "ToleratedFailureCount",
    "ToleratedFailureCountPath",
    "Label",
];
/// Map fields that only a Distributed Map accepts.
const DISTRIBUTED_ONLY: &[&str] = &[
    "ItemReader",
    "ItemBatcher",
    "ResultWriter",
    "ToleratedFailurePercentage",
    "ToleratedFailurePercentagePath",
    "ToleratedFailureCount",
    "ToleratedFailureCountPath",
    "Label",
];
/// AWS's MaxConcurrency ceiling for a Distributed Map.
const MAX_DISTRIBUTED_CONCURRENCY: u64 = 10_000;

impl Validator {
    /// Validate the state `name` at `ptr`; return its transitions and its typed model.
    pub fn state(&mut self, name: &str, v: &Value, ptr: &str) -> (StateInfo, Option<State>) {
        let unknown = StateInfo {
            edges: Vec::new(),
            terminal: true,
        };
        let Some(obj) = v.as_object() else {
            self.err(
                ptr,
                format!("A state must be a JSON object, got {}", type_name(v)),
            );
            return (unknown, None);
        };
        let ty = match obj.get("Type") {
            None => {
                self.err(child(ptr, "Type"), "Missing required field 'Type'");
                return (unknown, None);
            }
            Some(Value::String(s)) => s.as_str(),
            Some(other) => {
                self.err(
                    child(ptr, "Type"),
                    format!("'Type' must be a string, got {}", type_name(other)),
                );
                return (unknown, None);
            }
        };
        let allowed = match ty {
            "Pass" => PASS,
            "Task" => TASK,
            "Choice" => CHOICE,
            "Wait" => WAIT,
            "Succeed" => SUCCEED,
            "Fail" => FAIL,
            "Parallel" => PARALLEL,
            "Map" => MAP,
            other => {
                self.err(
                    child(ptr, "Type"),
                    format!(
                        "Unknown state type '{other}' (expected Pass, Task, Choice, Wait, \
                         Succeed, Fail, Parallel or Map)"
                    ),
                );
                return (unknown, None);
            }
        };
        self.check_fields(obj, ptr, allowed, &format!("state type {ty}"));
        self.opt_string(obj, ptr, "Comment");
        self.check_query_language(obj, ptr);
        self.opt_check(obj, ptr, "InputPath", rules::check_nullable_path);
        self.opt_check(obj, ptr, "OutputPath", rules::check_nullable_path);
        if allowed.contains(&"ResultPath") {
            self.opt_check(obj, ptr, "ResultPath", rules::check_result_path);
        }
        for key in ["Parameters", "ResultSelector", "ItemSelector"] {
            if allowed.contains(&key) {
                self.template_field(obj, ptr, key);
            }
        }

        let mut info = StateInfo::default();
        let transition = if allowed.contains(&"Next") {
            self.next_or_end(obj, ptr, &mut info)
        } else {
            None
        };
        let (retry, catch) = if allowed.contains(&"Retry") {
            (self.retry(obj, ptr), self.catch(obj, ptr, &mut info))
        } else {
            (Vec::new(), Vec::new())
        };
        let kind = match ty {
            "Pass" => Some(StateKind::Pass {
                result: obj.get("Result").cloned(),
            }),
            "Task" => self.task(obj, ptr).map(StateKind::Task),
            "Choice" => Some(StateKind::Choice(self.choice(obj, ptr, &mut info))),
            "Wait" => self.wait(obj, ptr).map(StateKind::Wait),
            "Succeed" => {
                info.terminal = true;
                Some(StateKind::Succeed)
            }
            "Fail" => {
                info.terminal = true;
                Some(StateKind::Fail(self.fail(obj, ptr)))
            }
            "Parallel" => Some(StateKind::Parallel(self.parallel(obj, ptr))),
            _ => self.map(obj, ptr).map(|m| StateKind::Map(Box::new(m))),
        };
        // Which parts of the context object the state may read, decided once here so the
        // executor builds no context (or one without the execution input) for most states.
        let raw = v.to_string();
        let state = kind.map(|kind| State {
            name: name.to_string(),
            comment: opt_str(obj, "Comment"),
            kind,
            transition,
            io: Io {
                input_path: nullable_path(obj, "InputPath"),
                output_path: nullable_path(obj, "OutputPath"),
                result_path: nullable_path(obj, "ResultPath"),
                parameters: obj.get("Parameters").cloned(),
                result_selector: obj.get("ResultSelector").cloned(),
            },
            retry,
            catch,
            reads_execution_input: reads_execution_input(&raw),
            reads_context: raw.contains("$$"),
        });
        (info, state)
    }

    /// A payload template field: must be an object whose `.$` entries are valid.
    fn template_field(&mut self, obj: &Map<String, Value>, ptr: &str, key: &str) {
        let Some(t) = obj.get(key) else { return };
        let fptr = child(ptr, key);
        if !t.is_object() {
            self.err(
                fptr,
                format!("'{key}' must be a JSON object, got {}", type_name(t)),
            );
            return;
        }
        for (suffix, msg) in rules::validate_template(t) {
            self.err(format!("{fptr}{suffix}"), msg);
        }
    }

    /// Exactly one of `Next` (a string) and `End: true`.
    fn next_or_end(
        &mut self,
        obj: &Map<String, Value>,
        ptr: &str,
        info: &mut StateInfo,
    ) -> Option<Transition> {
        let end = match obj.get("End") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.err(
                    child(ptr, "End"),
                    format!("'End' must be a boolean, got {}", type_name(other)),
                );
                false
            }
        };
        match (obj.get("Next"), end) {
            (Some(_), true) => {
                self.err(ptr, "A state cannot have both 'Next' and \"End\": true");
                None
            }
            (Some(Value::String(s)), false) => {
                info.edges.push((s.clone(), child(ptr, "Next")));
                Some(Transition::Next(s.clone()))
            }
            (Some(other), false) => {
                self.err(
                    child(ptr, "Next"),
                    format!("'Next' must be a string, got {}", type_name(other)),
                );
                None
            }
            (None, true) => {
                info.terminal = true;
                Some(Transition::End)
            }
            (None, false) => {
                self.err(
                    ptr,
                    "A state of this type must have either 'Next' or \"End\": true",
                );
                None
            }
        }
    }

    /// `ErrorEquals` of a retrier or catcher at `eptr` (the entry); `last` says whether the
    /// entry is the last of its array, where `States.ALL` must be.
    fn error_equals(
        &mut self,
        entry: &Map<String, Value>,
        eptr: &str,
        last: bool,
        what: &str,
    ) -> Vec<String> {
        let fptr = child(eptr, "ErrorEquals");
        let list = match entry.get("ErrorEquals") {
            None => {
                self.err(fptr, "Missing required field 'ErrorEquals'");
                return Vec::new();
            }
            Some(Value::Array(a)) if a.is_empty() => {
                self.err(
                    fptr,
                    "'ErrorEquals' must be a non-empty array of error names",
                );
                return Vec::new();
            }
            Some(Value::Array(a)) => a,
            Some(other) => {
                self.err(
                    fptr,
                    format!("'ErrorEquals' must be an array, got {}", type_name(other)),
                );
                return Vec::new();
            }
        };
        let mut names = Vec::with_capacity(list.len());
        let mut has_all = false;
        for (j, name) in list.iter().enumerate() {
            let Some(name) = name.as_str() else {
                self.err(
                    index(&fptr, j),
                    format!("An error name must be a string, got {}", type_name(name)),
                );
                continue;
            };
            names.push(name.to_string());
            if name == "States.ALL" {
                has_all = true;
            } else if name.starts_with("States.") && !KNOWN_STATES_ERRORS.contains(&name) {
                self.err(
                    index(&fptr, j),
                    format!(
                        "'{name}' is not a predefined error name; names starting with \
                         'States.' are reserved"
                    ),
                );
            }
        }
        if has_all && list.len() > 1 {
            self.err(&fptr, "'States.ALL' must appear alone in 'ErrorEquals'");
        }
        if has_all && !last {
            self.err(
                &fptr,
                format!("'States.ALL' must appear only in the last {what}"),
            );
        }
        names
    }

    fn entries<'v>(
        &mut self,
        obj: &'v Map<String, Value>,
        ptr: &str,
        key: &str,
    ) -> Option<&'v Vec<Value>> {
        match obj.get(key)? {
            Value::Array(a) => Some(a),
            other => {
                self.err(
                    child(ptr, key),
                    format!("'{key}' must be an array, got {}", type_name(other)),
                );
                None
            }
        }
    }

    fn retry(&mut self, obj: &Map<String, Value>, ptr: &str) -> Vec<Retrier> {
        let Some(list) = self.entries(obj, ptr, "Retry") else {
            return Vec::new();
        };
        let rptr = child(ptr, "Retry");
        let mut out = Vec::with_capacity(list.len());
        for (i, r) in list.iter().enumerate() {
            let eptr = index(&rptr, i);
            let Some(r) = r.as_object() else {
                self.err(
                    eptr,
                    format!("A retrier must be an object, got {}", type_name(r)),
                );
                continue;
            };
            self.check_fields(
                r,
                &eptr,
                &[
                    "ErrorEquals",
                    "IntervalSeconds",
                    "MaxAttempts",
                    "BackoffRate",
                    "MaxDelaySeconds",
                    "JitterStrategy",
                    "Comment",
                ],
                "a Retrier",
            );
            let error_equals = self.error_equals(r, &eptr, i + 1 == list.len(), "retrier");
            self.opt_string(r, &eptr, "Comment");
            self.opt_check(r, &eptr, "IntervalSeconds", |v| {
                rules::int_in(v, 1, MAX_SECONDS).map(|_| ())
            });
            self.opt_check(r, &eptr, "MaxAttempts", |v| {
                rules::int_in(v, 0, MAX_SECONDS).map(|_| ())
            });
            self.opt_check(r, &eptr, "MaxDelaySeconds", |v| {
                rules::int_in(v, 1, 31_622_400).map(|_| ())
            });
            self.opt_check(r, &eptr, "BackoffRate", |v| match v.as_f64() {
                Some(x) if x >= 1.0 => Ok(()),
                _ => Err(format!(
                    "must be a number greater than or equal to 1.0, got {v}"
                )),
            });
            self.opt_check(r, &eptr, "JitterStrategy", |v| match v.as_str() {
                Some("FULL" | "NONE") => Ok(()),
                _ => Err(format!("must be FULL or NONE, got {v}")),
            });
            let number = |key: &str| r.get(key).and_then(Value::as_f64);
            out.push(Retrier {
                error_equals,
                interval_seconds: number("IntervalSeconds").unwrap_or(1.0),
                max_attempts: r.get("MaxAttempts").and_then(Value::as_u64).unwrap_or(3),
                backoff_rate: number("BackoffRate").unwrap_or(2.0),
                max_delay_seconds: number("MaxDelaySeconds"),
                jitter: match r.get("JitterStrategy").and_then(Value::as_str) {
                    Some("FULL") => Jitter::Full,
                    _ => Jitter::None,
                },
            });
        }
        out
    }

    fn catch(&mut self, obj: &Map<String, Value>, ptr: &str, info: &mut StateInfo) -> Vec<Catcher> {
        let Some(list) = self.entries(obj, ptr, "Catch") else {
            return Vec::new();
        };
        let cptr = child(ptr, "Catch");
        let mut out = Vec::with_capacity(list.len());
        for (i, c) in list.iter().enumerate() {
            let eptr = index(&cptr, i);
            let Some(c) = c.as_object() else {
                self.err(
                    eptr,
                    format!("A catcher must be an object, got {}", type_name(c)),
                );
                continue;
            };
            self.check_fields(
                c,
                &eptr,
                &["ErrorEquals", "Next", "ResultPath", "Comment"],
                "a Catcher",
            );
            let error_equals = self.error_equals(c, &eptr, i + 1 == list.len(), "catcher");
            self.opt_string(c, &eptr, "Comment");
            self.opt_check(c, &eptr, "ResultPath", rules::check_result_path);
            match c.get("Next") {
                None => self.err(child(&eptr, "Next"), "Missing required field 'Next'"),
                Some(Value::String(s)) => {
                    info.edges.push((s.clone(), child(&eptr, "Next")));
                    out.push(Catcher {
                        error_equals,
                        next: s.clone(),
                        result_path: nullable_path(c, "ResultPath"),
                    });
                }
                Some(other) => self.err(
                    child(&eptr, "Next"),
                    format!("'Next' must be a string, got {}", type_name(other)),
                ),
            }
        }
        out
    }

    /// A `X` / `XPath` pair: at most one of them; `X` passes `literal`, `XPath` is a reference
    /// path. Returns the literal value when it is valid.
    fn exclusive_pair(
        &mut self,
        obj: &Map<String, Value>,
        ptr: &str,
        key: &str,
        literal: impl Fn(&Value) -> Result<u64, String>,
    ) -> Option<u64> {
        let path_key = format!("{key}Path");
        if obj.contains_key(key) && obj.contains_key(&path_key) {
            self.err(
                ptr,
                format!("'{key}' and '{path_key}' are mutually exclusive"),
            );
        }
        self.opt_check(obj, ptr, &path_key, rules::check_reference_path);
        match obj.get(key).map(&literal) {
            Some(Ok(n)) => Some(n),
            Some(Err(e)) => {
                self.err(child(ptr, key), format!("'{key}' {e}"));
                None
            }
            None => None,
        }
    }

    fn task(&mut self, obj: &Map<String, Value>, ptr: &str) -> Option<TaskState> {
        let mut target = None;
        match obj.get("Resource") {
            None => self.err(child(ptr, "Resource"), "Missing required field 'Resource'"),
            Some(v) => {
                if let Err(e) = rules::check_arn(v) {
                    self.err(child(ptr, "Resource"), format!("'Resource' {e}"));
                } else if let Some(resource) = v.as_str() {
                    match TaskResource::parse(resource) {
                        Ok(t) => target = Some((resource.to_string(), t)),
                        Err(m) => self.err(child(ptr, "Resource"), m),
                    }
                }
                let pattern = v.as_str().and_then(|r| {
                    [".sync", ".sync:2", ".waitForTaskToken"]
                        .into_iter()
                        .find(|p| r.ends_with(p))
                });
                if let (true, Some(p)) = (self.in_express, pattern) {
                    self.err(
                        child(ptr, "Resource"),
                        format!(
                            "The '{p}' integration pattern is not supported in an EXPRESS child \
                             workflow of a Distributed Map (use ExecutionType STANDARD)"
                        ),
                    );
                }
            }
        }
        let seconds = |v: &Value| rules::int_in(v, 1, MAX_SECONDS);
        let timeout = self.exclusive_pair(obj, ptr, "TimeoutSeconds", seconds);
        let heartbeat = self.exclusive_pair(obj, ptr, "HeartbeatSeconds", seconds);
        if let (Some(t), Some(h)) = (timeout, heartbeat)
            && h >= t
        {
            self.err(
                child(ptr, "HeartbeatSeconds"),
                format!("'HeartbeatSeconds' ({h}) must be smaller than 'TimeoutSeconds' ({t})"),
            );
        }
        if let Some(c) = obj.get("Credentials") {
            match c.as_object() {
                Some(m) => {
                    self.check_fields(
                        m,
                        &child(ptr, "Credentials"),
                        &["RoleArn", "RoleArn.$"],
                        "Credentials",
                    );
                    for (suffix, msg) in rules::validate_template(c) {
                        self.err(format!("{}{suffix}", child(ptr, "Credentials")), msg);
                    }
                }
                None => self.err(
                    child(ptr, "Credentials"),
                    format!("'Credentials' must be an object, got {}", type_name(c)),
                ),
            }
        }
        let (resource, target) = target?;
        Some(TaskState {
            resource,
            target,
            timeout: seconds_or_path(obj, "TimeoutSeconds"),
            heartbeat: seconds_or_path(obj, "HeartbeatSeconds"),
        })
    }

    fn choice(&mut self, obj: &Map<String, Value>, ptr: &str, info: &mut StateInfo) -> ChoiceState {
        let mut choices = Vec::new();
        let cptr = child(ptr, "Choices");
        match obj.get("Choices") {
            None => self.err(&cptr, "Missing required field 'Choices'"),
            Some(Value::Array(a)) if a.is_empty() => {
                self.err(&cptr, "'Choices' must contain at least one rule");
            }
            Some(Value::Array(rules_list)) => {
                for (i, rule) in rules_list.iter().enumerate() {
                    let rptr = index(&cptr, i);
                    match crate::data::choice::parse_choice(rule) {
                        Ok((rule, Some(next))) => {
                            info.edges.push((next.clone(), child(&rptr, "Next")));
                            choices.push(ChoiceBranch { rule, next });
                        }
                        Ok((_, None)) => self.err(
                            child(&rptr, "Next"),
                            "A top-level Choice rule must have 'Next'",
                        ),
                        Err(e) => self.err(rptr, e),
                    }
                }
            }
            Some(other) => self.err(
                &cptr,
                format!("'Choices' must be an array, got {}", type_name(other)),
            ),
        }
        match obj.get("Default") {
            None => {}
            Some(Value::String(s)) => info.edges.push((s.clone(), child(ptr, "Default"))),
            Some(other) => self.err(
                child(ptr, "Default"),
                format!("'Default' must be a string, got {}", type_name(other)),
            ),
        }
        ChoiceState {
            choices,
            default: opt_str(obj, "Default"),
        }
    }

    fn wait(&mut self, obj: &Map<String, Value>, ptr: &str) -> Option<WaitState> {
        let present: Vec<&str> = ["Seconds", "Timestamp", "SecondsPath", "TimestampPath"]
            .into_iter()
            .filter(|k| obj.contains_key(*k))
            .collect();
        if present.len() != 1 {
            self.err(
                ptr,
                format!(
                    "A Wait state must have exactly one of 'Seconds', 'Timestamp', \
                     'SecondsPath' or 'TimestampPath' (found {})",
                    if present.is_empty() {
                        "none".to_string()
                    } else {
                        present.join(", ")
                    }
                ),
            );
        }
        self.opt_check(obj, ptr, "Seconds", |v| {
            rules::int_in(v, 0, MAX_SECONDS).map(|_| ())
        });
        // AWS's form: RFC 3339 with an uppercase T and Z (or a numeric offset).
        self.opt_check(obj, ptr, "Timestamp", |v| match v.as_str() {
            Some(s) if parse_timestamp(s).is_some() => Ok(()),
            _ => Err(format!("must be an RFC 3339 timestamp string with an uppercase T and Z (or a numeric offset), e.g. 2016-03-14T01:59:00Z, got {v}")),
        });
        self.opt_check(obj, ptr, "SecondsPath", rules::check_reference_path);
        self.opt_check(obj, ptr, "TimestampPath", rules::check_reference_path);
        if let Some(n) = obj.get("Seconds").and_then(Value::as_u64) {
            Some(WaitState::Seconds(n))
        } else if let Some(s) = opt_str(obj, "Timestamp") {
            Some(WaitState::Timestamp(s))
        } else if let Some(p) = opt_str(obj, "SecondsPath") {
            Some(WaitState::SecondsPath(p))
        } else {
            opt_str(obj, "TimestampPath").map(WaitState::TimestampPath)
        }
    }

    fn fail(&mut self, obj: &Map<String, Value>, ptr: &str) -> FailState {
        for (lit, path) in [("Error", "ErrorPath"), ("Cause", "CausePath")] {
            if obj.contains_key(lit) && obj.contains_key(path) {
                self.err(ptr, format!("'{lit}' and '{path}' are mutually exclusive"));
            }
            self.opt_string(obj, ptr, lit);
            self.opt_check(obj, ptr, path, rules::check_path_or_intrinsic);
        }
        FailState {
            error: opt_str(obj, "Error"),
            error_path: opt_str(obj, "ErrorPath"),
            cause: opt_str(obj, "Cause"),
            cause_path: opt_str(obj, "CausePath"),
        }
    }

    fn parallel(&mut self, obj: &Map<String, Value>, ptr: &str) -> ParallelState {
        let mut graphs = Vec::new();
        let bptr = child(ptr, "Branches");
        match obj.get("Branches") {
            None => self.err(&bptr, "Missing required field 'Branches'"),
            Some(Value::Array(a)) if a.is_empty() => {
                self.err(&bptr, "'Branches' must contain at least one branch");
            }
            Some(Value::Array(branches)) => {
                for (i, b) in branches.iter().enumerate() {
                    if let Some(g) = self.machine(b, &index(&bptr, i), Scope::Branch) {
                        graphs.push(g);
                    }
                }
            }
            Some(other) => self.err(
                &bptr,
                format!("'Branches' must be an array, got {}", type_name(other)),
            ),
        }
        ParallelState { branches: graphs }
    }

    fn map(&mut self, obj: &Map<String, Value>, ptr: &str) -> Option<MapState> {
        let processor_key = match (obj.get("ItemProcessor"), obj.get("Iterator")) {
            (Some(_), Some(_)) => {
                self.err(
                    ptr,
                    "'ItemProcessor' and 'Iterator' are mutually exclusive (Iterator is the \
                     deprecated name of ItemProcessor)",
                );
                Some("ItemProcessor")
            }
            (Some(_), None) => Some("ItemProcessor"),
            (None, Some(_)) => Some("Iterator"),
            (None, None) => {
                self.err(
                    child(ptr, "ItemProcessor"),
                    "Missing required field 'ItemProcessor'",
                );
                None
            }
        };
        if obj.contains_key("Parameters") && obj.contains_key("ItemSelector") {
            self.err(
                ptr,
                "'Parameters' and 'ItemSelector' are mutually exclusive (Parameters is the \
                 deprecated name of ItemSelector)",
            );
        }
        let mut graph = None;
        let mut mode = MapMode::Inline;
        let distributed = match processor_key {
            Some(key) => {
                let pptr = child(ptr, key);
                let processor = obj.get(key).unwrap_or(&Value::Null);
                let distributed = self.processor_config(processor, &pptr);
                let execution_type = processor
                    .pointer("/ProcessorConfig/ExecutionType")
                    .and_then(Value::as_str);
                let express = distributed && execution_type == Some("EXPRESS");
                if distributed {
                    mode = MapMode::Distributed {
                        execution_type: execution_type.unwrap_or("STANDARD").to_string(),
                    };
                }
                let outer = self.in_express;
                self.in_express = outer || express;
                graph = self.machine(processor, &pptr, Scope::Processor);
                self.in_express = outer;
                distributed
            }
            None => false,
        };
        if !distributed {
            for key in DISTRIBUTED_ONLY {
                if obj.contains_key(*key) {
                    self.err(
                        child(ptr, key),
                        format!(
                            "Field '{key}' is only supported by a Distributed Map \
                             (ProcessorConfig.Mode DISTRIBUTED)"
                        ),
                    );
                }
            }
        }
        self.opt_check(obj, ptr, "ItemsPath", rules::check_reference_path);
        let max_concurrency = if distributed {
            MAX_DISTRIBUTED_CONCURRENCY
        } else {
            u64::from(u32::MAX)
        };
        self.exclusive_pair(obj, ptr, "MaxConcurrency", |v| {
            rules::int_in(v, 0, max_concurrency)
        });
        if distributed {
            self.distributed_map(obj, ptr);
        }
        let item_reader = obj.get("ItemReader").and_then(|r| {
            Some(ItemReaderSpec {
                resource: opt_str(r.as_object()?, "Resource")?,
                parameters: r.get("Parameters").cloned(),
                reader_config: r.get("ReaderConfig").cloned(),
            })
        });
        let result_writer = obj.get("ResultWriter").map(|w| ResultWriterSpec {
            resource: w
                .get("Resource")
                .and_then(Value::as_str)
                .map(str::to_string),
            parameters: w.get("Parameters").cloned(),
            writer_config: w.get("WriterConfig").cloned(),
        });
        Some(MapState {
            items_path: opt_str(obj, "ItemsPath").unwrap_or_else(|| "$".into()),
            item_selector: obj
                .get("ItemSelector")
                .or_else(|| obj.get("Parameters"))
                .cloned(),
            max_concurrency: number_or_path(obj, "MaxConcurrency")
                .unwrap_or(NumberOrPath::Fixed(0.0)),
            processor: graph?,
            mode,
            item_reader,
            item_batcher: obj.get("ItemBatcher").cloned(),
            result_writer,
            tolerated_failure_percentage: number_or_path(obj, "ToleratedFailurePercentage"),
            tolerated_failure_count: number_or_path(obj, "ToleratedFailureCount"),
            label: opt_str(obj, "Label"),
        })
    }

    /// The fields only a Distributed Map has.
    fn distributed_map(&mut self, obj: &Map<String, Value>, ptr: &str) {
        self.exclusive_pair(obj, ptr, "ToleratedFailureCount", |v| {
            rules::int_in(v, 0, u64::from(u32::MAX))
        });
        let pct_key = "ToleratedFailurePercentage";
        if obj.contains_key(pct_key) && obj.contains_key("ToleratedFailurePercentagePath") {
            self.err(
                ptr,
                "'ToleratedFailurePercentage' and 'ToleratedFailurePercentagePath' are \
                 mutually exclusive",
            );
        }
        self.opt_check(obj, ptr, pct_key, |v| match v.as_f64() {
            Some(x) if (0.0..=100.0).contains(&x) => Ok(()),
            _ => Err(format!("must be a number between 0 and 100, got {v}")),
        });
        self.opt_check(
            obj,
            ptr,
            "ToleratedFailurePercentagePath",
            rules::check_reference_path,
        );
        self.opt_check(obj, ptr, "Label", rules::check_label);
        if obj.contains_key("ItemsPath") && obj.contains_key("ItemReader") {
            self.err(
                ptr,
                "'ItemsPath' and 'ItemReader' are mutually exclusive: a Distributed Map reads \
                 its items either from the input or from the ItemReader",
            );
        }
        if let Some(r) = obj.get("ItemReader") {
            self.item_reader(r, &child(ptr, "ItemReader"));
        }
        if let Some(b) = obj.get("ItemBatcher") {
            self.item_batcher(b, &child(ptr, "ItemBatcher"));
        }
        if let Some(w) = obj.get("ResultWriter") {
            self.result_writer(w, &child(ptr, "ResultWriter"));
        }
    }

    /// Check `ProcessorConfig` and return whether the Map is distributed.
    fn processor_config(&mut self, processor: &Value, pptr: &str) -> bool {
        let Some(cfg) = processor.get("ProcessorConfig") else {
            return false;
        };
        let cptr = child(pptr, "ProcessorConfig");
        let Some(cfg) = cfg.as_object() else {
            self.err(
                cptr,
                format!(
                    "'ProcessorConfig' must be an object, got {}",
                    type_name(cfg)
                ),
            );
            return false;
        };
        self.check_fields(cfg, &cptr, &["Mode", "ExecutionType"], "ProcessorConfig");
        let distributed = match cfg.get("Mode") {
            None => false,
            Some(Value::String(m)) if m == "INLINE" => false,
            Some(Value::String(m)) if m == "DISTRIBUTED" => true,
            Some(other) => {
                self.err(
                    child(&cptr, "Mode"),
                    format!("'Mode' must be INLINE or DISTRIBUTED, got {other}"),
                );
                false
            }
        };
        match (cfg.get("ExecutionType"), distributed) {
            (None, true) => self.err(
                child(&cptr, "ExecutionType"),
                "A Distributed Map requires 'ExecutionType' (STANDARD or EXPRESS)",
            ),
            (Some(Value::String(t)), true) if t == "STANDARD" || t == "EXPRESS" => {}
            (Some(other), true) => self.err(
                child(&cptr, "ExecutionType"),
                format!("'ExecutionType' must be STANDARD or EXPRESS, got {other}"),
            ),
            (Some(_), false) => self.err(
                child(&cptr, "ExecutionType"),
                "'ExecutionType' is only supported when 'Mode' is DISTRIBUTED",
            ),
            (None, false) => {}
        }
        distributed
    }

    fn item_reader(&mut self, r: &Value, rptr: &str) {
        let Some(obj) = r.as_object() else {
            self.err(
                rptr,
                format!("'ItemReader' must be an object, got {}", type_name(r)),
            );
            return;
        };
        self.check_fields(
            obj,
            rptr,
            &["Resource", "Parameters", "ReaderConfig"],
            "ItemReader",
        );
        match obj.get("Resource") {
            None => self.err(child(rptr, "Resource"), "Missing required field 'Resource'"),
            Some(v) => {
                if let Err(e) = rules::check_arn(v) {
                    self.err(child(rptr, "Resource"), format!("'Resource' {e}"));
                }
            }
        }
        self.template_field(obj, rptr, "Parameters");
        if let Some(cfg) = obj.get("ReaderConfig") {
            let cptr = child(rptr, "ReaderConfig");
            match ReaderConfig::from_json(cfg) {
                Ok(parsed) => {
                    if let Some(p) = &parsed.max_items_path
                        && let Err(e) = crate::data::path::validate_reference_path(p)
                    {
                        self.err(child(&cptr, "MaxItemsPath"), format!("'MaxItemsPath' {e}"));
                    }
                }
                Err(e) => self.err(cptr, e),
            }
        }
    }

    fn item_batcher(&mut self, b: &Value, bptr: &str) {
        let Some(obj) = b.as_object() else {
            self.err(
                bptr,
                format!("'ItemBatcher' must be an object, got {}", type_name(b)),
            );
            return;
        };
        self.check_fields(
            obj,
            bptr,
            &[
                "MaxItemsPerBatch",
                "MaxItemsPerBatchPath",
                "MaxInputBytesPerBatch",
                "MaxInputBytesPerBatchPath",
                "BatchInput",
            ],
            "ItemBatcher",
        );
        if obj.is_empty() {
            // Every field is optional, but an empty batcher configures nothing (CDK rejects it
            // as well); without limits a batch is capped only by the 256 KiB input size.
            self.err(
                bptr,
                "'ItemBatcher' needs at least one of 'MaxItemsPerBatch', \
                 'MaxInputBytesPerBatch' (or their Path forms) or 'BatchInput'",
            );
        }
        self.exclusive_pair(obj, bptr, "MaxItemsPerBatch", |v| {
            rules::int_in(v, 1, u64::from(u32::MAX))
        });
        self.exclusive_pair(obj, bptr, "MaxInputBytesPerBatch", |v| {
            rules::int_in(v, 1, MAX_INPUT_BYTES_PER_BATCH_LIMIT)
        });
        self.template_field(obj, bptr, "BatchInput");
    }

    fn result_writer(&mut self, w: &Value, wptr: &str) {
        let Some(obj) = w.as_object() else {
            self.err(
                wptr,
                format!("'ResultWriter' must be an object, got {}", type_name(w)),
            );
            return;
        };
        self.check_fields(
            obj,
            wptr,
            &["Resource", "Parameters", "WriterConfig"],
            "ResultWriter",
        );
        if !obj.contains_key("Resource") && !obj.contains_key("WriterConfig") {
            self.err(wptr, "'ResultWriter' needs 'Resource' or 'WriterConfig'");
        }
        if obj.contains_key("Resource") && !obj.contains_key("Parameters") {
            self.err(
                child(wptr, "Parameters"),
                "'ResultWriter' with a 'Resource' requires 'Parameters' (Bucket and Prefix)",
            );
        }
        self.opt_check(obj, wptr, "Resource", rules::check_arn);
        self.template_field(obj, wptr, "Parameters");
        if let Some(cfg) = obj.get("WriterConfig") {
            let cptr = child(wptr, "WriterConfig");
            let Some(cfg) = cfg.as_object() else {
                self.err(cptr, "'WriterConfig' must be an object");
                return;
            };
            self.check_fields(
                cfg,
                &cptr,
                &["OutputType", "Transformation"],
                "WriterConfig",
            );
            self.opt_check(cfg, &cptr, "OutputType", |v| match v.as_str() {
                Some("JSON" | "JSONL") => Ok(()),
                _ => Err(format!("must be JSON or JSONL, got {v}")),
            });
            self.opt_check(cfg, &cptr, "Transformation", |v| match v.as_str() {
                Some("NONE" | "COMPACT" | "FLATTEN") => Ok(()),
                _ => Err(format!("must be NONE, COMPACT or FLATTEN, got {v}")),
            });
        }
    }
}

/// An optional string field (its type was checked where it was validated).
fn opt_str(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).map(str::to_string)
}

/// `InputPath`, `OutputPath`, `ResultPath`: absent is `$`, null is `None`.
fn nullable_path(obj: &Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key) {
        None => Some("$".into()),
        Some(Value::Null) => None,
        Some(v) => Some(v.as_str().unwrap_or("$").to_string()),
    }
}

/// `X` (a number of seconds) or `XPath`.
fn seconds_or_path(obj: &Map<String, Value>, key: &str) -> Option<Seconds> {
    match obj.get(key).and_then(Value::as_u64) {
        Some(n) => Some(Seconds::Fixed(n)),
        None => opt_str(obj, &format!("{key}Path")).map(Seconds::Path),
    }
}

/// `X` (a number) or `XPath`.
fn number_or_path(obj: &Map<String, Value>, key: &str) -> Option<NumberOrPath> {
    match obj.get(key).and_then(Value::as_f64) {
        Some(n) => Some(NumberOrPath::Fixed(n)),
        None => opt_str(obj, &format!("{key}Path")).map(NumberOrPath::Path),
    }
}
