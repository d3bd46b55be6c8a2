//! State machine scopes: the top-level definition, Parallel branches and Map processors all have
//! `StartAt` + `States`, and transitions never leave the scope they are declared in. This module
//! checks a scope's own fields, runs the per-state checks, then checks the transition graph
//! (targets exist, every state reachable, some terminal state reachable). Each scope also
//! comes back as the typed [`Graph`] of its states, built in the same walk.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};

use super::rules::{self, MAX_SECONDS, type_name};
use super::states::StateInfo;
use super::{Diagnostic, child};
use crate::model::Graph;

/// AWS's limit on state name length (in characters).
pub const MAX_STATE_NAME_LEN: usize = 80;

/// Which kind of `StartAt`/`States` object is being validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Top,
    Branch,
    /// Map `ItemProcessor` or legacy `Iterator`.
    Processor,
}

impl Scope {
    fn describe(self) -> &'static str {
        match self {
            Scope::Top => "a state machine definition",
            Scope::Branch => "a Parallel branch",
            Scope::Processor => "a Map ItemProcessor",
        }
    }

    fn allowed(self) -> &'static [&'static str] {
        match self {
            Scope::Top => &[
                "Comment",
                "StartAt",
                "States",
                "Version",
                "TimeoutSeconds",
                "QueryLanguage",
            ],
            Scope::Branch => &["Comment", "StartAt", "States"],
            Scope::Processor => &["Comment", "StartAt", "States", "ProcessorConfig"],
        }
    }
}

/// Accumulates diagnostics and the state names seen so far (names are unique machine-wide).
#[derive(Default)]
pub struct Validator {
    diags: Vec<Diagnostic>,
    names: HashMap<String, String>,
    /// Set while validating the child workflow of a Distributed Map with `ExecutionType:
    /// EXPRESS`, where AWS rejects the `.sync` and `.waitForTaskToken` integration patterns.
    pub(super) in_express: bool,
}

impl Validator {
    pub fn err(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(location, message));
    }

    pub fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diags
    }

    /// Report every key of `obj` not in `allowed`. JSONata-only fields and `Assign` get a message
    /// saying they are unsupported rather than unknown, because they are valid ASL elsewhere.
    pub fn check_fields(
        &mut self,
        obj: &Map<String, Value>,
        ptr: &str,
        allowed: &[&str],
        what: &str,
    ) {
        for key in obj.keys() {
            if allowed.contains(&key.as_str()) {
                continue;
            }
            let msg = match key.as_str() {
                "Assign" => "Field 'Assign' is unsupported: workflow variables are not supported \
                             by this engine (JSONPath only)"
                    .to_string(),
                "Arguments" | "Output" | "Items" | "Condition" => format!(
                    "Field '{key}' is unsupported: it belongs to the JSONata query language, \
                     and only JSONPath is supported"
                ),
                _ => format!("Field '{key}' is not supported by {what}"),
            };
            self.err(child(ptr, key), msg);
        }
    }

    /// `QueryLanguage` (top level or per state): only `JSONPath` is accepted.
    pub fn check_query_language(&mut self, obj: &Map<String, Value>, ptr: &str) {
        match obj.get("QueryLanguage") {
            None => {}
            Some(Value::String(s)) if s == "JSONPath" => {}
            Some(Value::String(s)) if s == "JSONata" => self.err(
                child(ptr, "QueryLanguage"),
                "QueryLanguage 'JSONata' is unsupported: only JSONPath is supported",
            ),
            Some(other) => self.err(
                child(ptr, "QueryLanguage"),
                format!("QueryLanguage must be 'JSONPath' or 'JSONata', got {other}"),
            ),
        }
    }

    /// An optional string field.
    pub fn opt_string(&mut self, obj: &Map<String, Value>, ptr: &str, key: &str) {
        if let Some(v) = obj.get(key).filter(|v| !v.is_string()) {
            self.err(
                child(ptr, key),
                format!("'{key}' must be a string, got {}", type_name(v)),
            );
        }
    }

    /// Run a `rules` check on an optional field and report its message at the field.
    pub fn opt_check(
        &mut self,
        obj: &Map<String, Value>,
        ptr: &str,
        key: &str,
        check: impl Fn(&Value) -> Result<(), String>,
    ) {
        if let Some(v) = obj.get(key)
            && let Err(e) = check(v)
        {
            self.err(child(ptr, key), format!("'{key}' {e}"));
        }
    }

    pub fn top_level(&mut self, def: &Value) -> Option<Graph> {
        self.machine(def, "", Scope::Top)
    }

    /// Validate one scope (top level, branch or processor) at `ptr` and build its graph.
    pub fn machine(&mut self, v: &Value, ptr: &str, scope: Scope) -> Option<Graph> {
        let Some(obj) = v.as_object() else {
            self.err(
                ptr,
                format!(
                    "{} must be a JSON object, got {}",
                    scope.describe(),
                    type_name(v)
                ),
            );
            return None;
        };
        self.check_fields(obj, ptr, scope.allowed(), scope.describe());
        self.opt_string(obj, ptr, "Comment");
        if scope == Scope::Top {
            self.opt_string(obj, ptr, "Version");
            self.opt_check(obj, ptr, "TimeoutSeconds", |v| {
                rules::int_in(v, 1, MAX_SECONDS).map(|_| ())
            });
            self.check_query_language(obj, ptr);
        }

        let start_at = match obj.get("StartAt") {
            None => {
                self.err(child(ptr, "StartAt"), "Missing required field 'StartAt'");
                None
            }
            Some(Value::String(s)) => Some(s.as_str()),
            Some(other) => {
                self.err(
                    child(ptr, "StartAt"),
                    format!("'StartAt' must be a string, got {}", type_name(other)),
                );
                None
            }
        };
        let states_ptr = child(ptr, "States");
        let states = match obj.get("States") {
            None => {
                self.err(&states_ptr, "Missing required field 'States'");
                return None;
            }
            Some(Value::Object(m)) if m.is_empty() => {
                self.err(&states_ptr, "'States' must contain at least one state");
                return None;
            }
            Some(Value::Object(m)) => m,
            Some(other) => {
                self.err(
                    &states_ptr,
                    format!("'States' must be an object, got {}", type_name(other)),
                );
                return None;
            }
        };

        let mut infos: Vec<(&str, String, StateInfo)> = Vec::with_capacity(states.len());
        let mut built = std::collections::HashMap::with_capacity(states.len());
        for (name, state) in states {
            let sptr = child(&states_ptr, name);
            let len = name.chars().count();
            if len == 0 || len > MAX_STATE_NAME_LEN {
                self.err(
                    &sptr,
                    format!(
                        "State name must be between 1 and {MAX_STATE_NAME_LEN} characters, \
                         '{name}' has {len}"
                    ),
                );
            }
            if let Some(first) = self.names.get(name) {
                self.err(
                    &sptr,
                    format!(
                        "Duplicate state name '{name}' (first defined at {first}); state names \
                         must be unique across the whole state machine"
                    ),
                );
            } else {
                self.names.insert(name.clone(), sptr.clone());
            }
            let (info, model) = self.state(name, state, &sptr);
            if let Some(model) = model {
                built.insert(name.clone(), model);
            }
            infos.push((name.as_str(), sptr, info));
        }

        let known: HashSet<&str> = states.keys().map(String::as_str).collect();
        let start_ok = match start_at {
            Some(s) if known.contains(s) => true,
            Some(s) => {
                self.err(
                    child(ptr, "StartAt"),
                    format!("StartAt '{s}' is not a state in {}", scope.describe()),
                );
                false
            }
            None => false,
        };
        for (_, _, info) in &infos {
            for (target, tptr) in &info.edges {
                if !known.contains(target.as_str()) {
                    self.err(
                        tptr,
                        format!(
                            "Missing transition target: '{target}' is not a state in {}",
                            scope.describe()
                        ),
                    );
                }
            }
        }
        // Reachability is only meaningful from a valid start state.
        if let (true, Some(start)) = (start_ok, start_at) {
            self.graph(start, &infos, &states_ptr);
        }
        Some(Graph {
            start_at: start_at?.to_string(),
            states: built,
        })
    }

    fn graph(&mut self, start: &str, infos: &[(&str, String, StateInfo)], states_ptr: &str) {
        let by_name: HashMap<&str, &StateInfo> = infos.iter().map(|(n, _, i)| (*n, i)).collect();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut queue = VecDeque::from([start]);
        let mut terminal = false;
        while let Some(name) = queue.pop_front() {
            if !seen.insert(name) {
                continue;
            }
            let Some(info) = by_name.get(name) else {
                continue;
            };
            terminal |= info.terminal;
            for (target, _) in &info.edges {
                if by_name.contains_key(target.as_str()) && !seen.contains(target.as_str()) {
                    queue.push_back(target.as_str());
                }
            }
        }
        for (name, sptr, _) in infos {
            if !seen.contains(name) {
                self.err(
                    sptr,
                    format!("State '{name}' is not reachable from StartAt"),
                );
            }
        }
        if !terminal {
            self.err(
                states_ptr,
                "No terminal state is reachable: at least one state must have \"End\": true \
                 or be a Succeed or Fail state",
            );
        }
    }
}
