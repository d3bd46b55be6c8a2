//! The typed model of a state machine definition.
//!
//! [`crate::validate`] checks a definition and builds this model in one walk of its JSON, so
//! the executor never re-parses JSON or meets a missing field at run time. Nested state
//! machines (Parallel branches, Map item processors) are [`Graph`]s of their own.

pub use crate::validate::Diagnostic;

use crate::resource::TaskResource;
use serde_json::Value;
use std::collections::HashMap;

/// A parsed, validated state machine.
#[derive(Debug, Clone)]
pub struct StateMachine {
    /// The state machine's name (ARNs, `$$.StateMachine.Name`, mock-config lookups).
    pub name: String,
    pub comment: Option<String>,
    /// The top-level states.
    pub graph: Graph,
    /// Execution-level `TimeoutSeconds`.
    pub timeout_seconds: Option<u64>,
    definition: Value,
}

impl StateMachine {
    /// Validates and parses a definition (JSON text). The name defaults to `"StateMachine"`;
    /// set it with [`StateMachine::named`].
    pub fn from_json(text: &str) -> Result<Self, Vec<Diagnostic>> {
        let (value, graph) = crate::validate::build_str(text)?;
        Ok(Self::new(value, graph))
    }

    /// Validates and parses an already-parsed definition.
    pub fn from_value(value: Value) -> Result<Self, Vec<Diagnostic>> {
        let graph = crate::validate::build(&value)?;
        Ok(Self::new(value, graph))
    }

    fn new(definition: Value, graph: Graph) -> Self {
        Self {
            name: "StateMachine".into(),
            comment: definition
                .get("Comment")
                .and_then(Value::as_str)
                .map(str::to_string),
            graph,
            timeout_seconds: definition.get("TimeoutSeconds").and_then(Value::as_u64),
            definition,
        }
    }

    /// Sets the name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The definition as given.
    pub fn definition(&self) -> &Value {
        &self.definition
    }
}

/// A set of states with a start state: the top level, a Parallel branch or a Map processor.
#[derive(Debug, Clone)]
pub struct Graph {
    pub start_at: String,
    pub states: HashMap<String, State>,
}

impl Graph {
    /// Looks a state up by name.
    pub fn state(&self, name: &str) -> Option<&State> {
        self.states.get(name)
    }

    /// Finds a state by name in this graph or any nested graph, with the chain of enclosing
    /// states (outermost first) — redrive uses this to find where a failed state lives.
    pub fn find_path(&self, name: &str) -> Option<Vec<&State>> {
        if let Some(s) = self.states.get(name) {
            return Some(vec![s]);
        }
        for s in self.states.values() {
            let nested: Vec<&Graph> = match &s.kind {
                StateKind::Parallel(p) => p.branches.iter().collect(),
                StateKind::Map(m) => vec![&m.processor],
                _ => Vec::new(),
            };
            for g in nested {
                if let Some(mut chain) = g.find_path(name) {
                    chain.insert(0, s);
                    return Some(chain);
                }
            }
        }
        None
    }
}

/// Where a state goes when it completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Next(String),
    End,
}

/// Input/output processing fields. A `None` path means the field was `null`.
#[derive(Debug, Clone, PartialEq)]
pub struct Io {
    /// `InputPath`; default `$`.
    pub input_path: Option<String>,
    /// `OutputPath`; default `$`.
    pub output_path: Option<String>,
    /// `ResultPath`; default `$`.
    pub result_path: Option<String>,
    /// `Parameters` (Map: `ItemSelector` lives on [`MapState`]).
    pub parameters: Option<Value>,
    pub result_selector: Option<Value>,
}

impl Default for Io {
    fn default() -> Self {
        Self {
            input_path: Some("$".into()),
            output_path: Some("$".into()),
            result_path: Some("$".into()),
            parameters: None,
            result_selector: None,
        }
    }
}

/// A literal number of seconds or a reference path that yields one.
#[derive(Debug, Clone, PartialEq)]
pub enum Seconds {
    Fixed(u64),
    Path(String),
}

/// A literal number or a reference path that yields one (Map concurrency and tolerances).
#[derive(Debug, Clone, PartialEq)]
pub enum NumberOrPath {
    Fixed(f64),
    Path(String),
}

/// `JitterStrategy` of a retrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    #[default]
    None,
    Full,
}

/// One `Retry` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: f64,
    pub max_attempts: u64,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<f64>,
    pub jitter: Jitter,
}

/// One `Catch` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    /// Default `$`; `None` = `null`.
    pub result_path: Option<String>,
}

/// One state of a graph.
#[derive(Debug, Clone)]
pub struct State {
    pub name: String,
    pub comment: Option<String>,
    pub kind: StateKind,
    /// `None` for Choice, Succeed and Fail, which do not transition by Next/End.
    pub transition: Option<Transition>,
    pub io: Io,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
    /// Whether anything in the state (or in states nested in it) may read `$$.Execution.Input`.
    /// Most states don't; for them the executor leaves the execution input out of the context
    /// object instead of copying it for every state entered (which made an inline Map over the
    /// input quadratic).
    pub reads_execution_input: bool,
    /// Whether anything in the state (or nested in it) mentions `$$` at all. A state that
    /// doesn't never reads the context object, so the executor does not build one for it.
    pub reads_context: bool,
}

/// Conservative: true unless every `$$` in the state's JSON is a path that provably stays away
/// from `$$.Execution.Input` (e.g. `$$.Task.Token`, `$$.Map.Item.Value`, `$$.Execution.Id`).
pub(crate) fn reads_execution_input(raw: &str) -> bool {
    let mut rest = raw;
    while let Some(i) = rest.find("$$") {
        let after = &rest[i + 2..];
        rest = after;
        let Some(field) = after.strip_prefix('.') else {
            return true; // `$$` itself, `$$[...]`
        };
        if field.starts_with('.') || field.starts_with('[') || field.starts_with('*') {
            return true; // recursive descent, brackets, wildcards
        }
        if let Some(exec) = field.strip_prefix("Execution") {
            match exec.strip_prefix('.') {
                Some(sub)
                    if sub.starts_with("Input")
                        || sub.starts_with('.')
                        || sub.starts_with('*')
                        || sub.starts_with('[') =>
                {
                    return true;
                }
                Some(_) => {}
                None if exec.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') => {}
                None => return true, // `$$.Execution` as a whole
            }
        }
    }
    false
}

impl State {
    /// The history event types of entering, leaving and aborting this state, e.g.
    /// `("PassStateEntered", "PassStateExited", "PassStateAborted")`.
    pub fn event_types(&self) -> (&'static str, &'static str, &'static str) {
        match &self.kind {
            StateKind::Pass { .. } => ("PassStateEntered", "PassStateExited", "PassStateAborted"),
            StateKind::Task(_) => ("TaskStateEntered", "TaskStateExited", "TaskStateAborted"),
            StateKind::Choice(_) => (
                "ChoiceStateEntered",
                "ChoiceStateExited",
                "ChoiceStateAborted",
            ),
            StateKind::Wait(_) => ("WaitStateEntered", "WaitStateExited", "WaitStateAborted"),
            StateKind::Succeed => (
                "SucceedStateEntered",
                "SucceedStateExited",
                "SucceedStateAborted",
            ),
            StateKind::Fail(_) => ("FailStateEntered", "FailStateExited", "FailStateAborted"),
            StateKind::Parallel(_) => (
                "ParallelStateEntered",
                "ParallelStateExited",
                "ParallelStateAborted",
            ),
            StateKind::Map(_) => ("MapStateEntered", "MapStateExited", "MapStateAborted"),
        }
    }

    /// `"Pass"`, `"Task"`, ... as written in the definition.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            StateKind::Pass { .. } => "Pass",
            StateKind::Task(_) => "Task",
            StateKind::Choice(_) => "Choice",
            StateKind::Wait(_) => "Wait",
            StateKind::Succeed => "Succeed",
            StateKind::Fail(_) => "Fail",
            StateKind::Parallel(_) => "Parallel",
            StateKind::Map(_) => "Map",
        }
    }
}

/// The type-specific part of a state.
#[derive(Debug, Clone)]
pub enum StateKind {
    Pass { result: Option<Value> },
    Task(TaskState),
    Choice(ChoiceState),
    Wait(WaitState),
    Succeed,
    Fail(FailState),
    Parallel(ParallelState),
    Map(Box<MapState>),
}

#[derive(Debug, Clone)]
pub struct TaskState {
    /// The `Resource` string as written.
    pub resource: String,
    pub target: TaskResource,
    pub timeout: Option<Seconds>,
    pub heartbeat: Option<Seconds>,
}

#[derive(Debug, Clone)]
pub struct ChoiceBranch {
    pub rule: crate::data::choice::ChoiceRule,
    pub next: String,
}

#[derive(Debug, Clone)]
pub struct ChoiceState {
    pub choices: Vec<ChoiceBranch>,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WaitState {
    Seconds(u64),
    Timestamp(String),
    SecondsPath(String),
    TimestampPath(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FailState {
    pub error: Option<String>,
    pub error_path: Option<String>,
    pub cause: Option<String>,
    pub cause_path: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ParallelState {
    pub branches: Vec<Graph>,
}

/// `ProcessorConfig.Mode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapMode {
    Inline,
    Distributed { execution_type: String },
}

/// `ItemReader`.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemReaderSpec {
    pub resource: String,
    pub parameters: Option<Value>,
    pub reader_config: Option<Value>,
}

/// `ResultWriter`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultWriterSpec {
    pub resource: Option<String>,
    pub parameters: Option<Value>,
    pub writer_config: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct MapState {
    pub items_path: String,
    /// `ItemSelector`, or the legacy `Parameters` of a Map.
    pub item_selector: Option<Value>,
    pub max_concurrency: NumberOrPath,
    pub processor: Graph,
    pub mode: MapMode,
    pub item_reader: Option<ItemReaderSpec>,
    pub item_batcher: Option<Value>,
    pub result_writer: Option<ResultWriterSpec>,
    pub tolerated_failure_percentage: Option<NumberOrPath>,
    pub tolerated_failure_count: Option<NumberOrPath>,
    pub label: Option<String>,
}

#[cfg(test)]
mod context_tests {
    use super::reads_execution_input as r;

    #[test]
    fn execution_input_references_are_detected_conservatively() {
        assert!(!r(
            r#"{"Parameters":{"t.$":"$$.Task.Token","i.$":"$$.Map.Item.Value","id.$":"$$.Execution.Id"}}"#
        ));
        assert!(!r(r#"{"Type":"Pass"}"#));
        assert!(r(r#"{"Parameters":{"x.$":"$$.Execution.Input.a"}}"#));
        assert!(r(r#"{"Parameters":{"x.$":"$$.Execution"}}"#));
        assert!(r(r#"{"Parameters":{"x.$":"$$"}}"#));
        assert!(r(r#"{"Parameters":{"x.$":"$$..Input"}}"#));
        assert!(r(r#"{"Parameters":{"x.$":"$$.Execution['Input']"}}"#));
        assert!(r(
            r#"{"Parameters":{"x.$":"States.JsonToString($$.Execution)"}}"#
        ));
    }
}
