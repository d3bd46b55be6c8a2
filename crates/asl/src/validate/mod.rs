//! Static validation of a state machine definition, the checks AWS runs before creating one,
//! and the construction of its typed model ([`crate::model`]) in the same walk.
//!
//! [`validate_definition`] walks the raw JSON once: every field is checked where it is read
//! into the model, so validation and the model cannot disagree, and every problem is reported
//! with the exact JSON pointer of the offending value, e.g.
//! `/States/Fan/ItemProcessor/States/Launch/Retry/0/ErrorEquals`. It collects every problem
//! instead of stopping at the first, like `CreateStateMachine`/`ValidateStateMachineDefinition`
//! do, so a user can fix a definition in one pass.
//!
//! What is checked (JSONPath query language only; JSONata, `Assign` and variables are rejected as
//! unsupported):
//! - the top level (`StartAt`, `States`, `Comment`, `Version`, `TimeoutSeconds`) and, recursively,
//!   every Parallel branch and Map `ItemProcessor`/`Iterator`;
//! - per state type, the required and allowed fields (unknown fields are errors);
//! - transitions: `Next`/`Default`/`Catch[].Next` targets exist in the same scope, `End` xor
//!   `Next`, unreachable states, at least one reachable terminal state, unique state names across
//!   the whole machine, names of at most 80 characters;
//! - Retry/Catch entries, reserved `States.*` error names and `States.ALL` placement;
//! - paths, reference paths, payload templates and Choice rules (through [`crate::data`]);
//! - Task timeouts, Wait and Fail field exclusivity, Map modes and Distributed Map fields.
//!
//! The module is split into `machine` (scopes and transitions), `states` (per-type checks) and
//! `rules` (small reusable value checks).

mod machine;
mod rules;
mod states;

#[cfg(test)]
mod tests;

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::model::Graph;

/// One validation problem: where it is (a JSON pointer into the definition, `""` for the whole
/// document) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub location: String,
    pub message: String,
}

impl Diagnostic {
    pub fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The root pointer is the empty string; show it as "/" so the line never starts with ':'.
        let loc = if self.location.is_empty() {
            "/"
        } else {
            &self.location
        };
        write!(f, "{loc}: {}", self.message)
    }
}

/// Validate a parsed definition. An empty vector means the definition is valid.
pub fn validate_definition(def: &Value) -> Vec<Diagnostic> {
    match build(def) {
        Ok(_) => Vec::new(),
        Err(diagnostics) => diagnostics,
    }
}

/// Validates a definition and returns its top-level graph, or every problem found.
pub(crate) fn build(def: &Value) -> Result<Graph, Vec<Diagnostic>> {
    let mut v = machine::Validator::default();
    let graph = v.top_level(def);
    let diagnostics = v.into_diagnostics();
    match graph {
        Some(graph) if diagnostics.is_empty() => Ok(graph),
        // Every path that yields no graph reports why, but never return an empty error list.
        _ if diagnostics.is_empty() => Err(vec![Diagnostic::new(
            "",
            "the definition could not be parsed",
        )]),
        _ => Err(diagnostics),
    }
}

/// Parse `json` and validate it. A JSON syntax error is reported as a single diagnostic at the
/// root whose message carries the line and column.
pub fn validate_str(json: &str) -> Result<Value, Vec<Diagnostic>> {
    let def = parse_json(json)?;
    let diags = validate_definition(&def);
    if diags.is_empty() {
        Ok(def)
    } else {
        Err(diags)
    }
}

/// JSON text to a value; a syntax error is one diagnostic at the root.
fn parse_json(json: &str) -> Result<Value, Vec<Diagnostic>> {
    serde_json::from_str(json).map_err(|e| {
        vec![Diagnostic::new(
            "",
            format!(
                "Invalid JSON at line {}, column {}: {}",
                e.line(),
                e.column(),
                e
            ),
        )]
    })
}

/// Parses `json`, validates it and builds its top-level graph.
pub(crate) fn build_str(json: &str) -> Result<(Value, Graph), Vec<Diagnostic>> {
    let def = parse_json(json)?;
    let graph = build(&def)?;
    Ok((def, graph))
}

/// Append `key` to a JSON pointer, escaping `~` and `/` as RFC 6901 requires (state names may
/// contain both).
pub(crate) fn child(ptr: &str, key: &str) -> String {
    let mut out = String::with_capacity(ptr.len() + key.len() + 1);
    out.push_str(ptr);
    out.push('/');
    for c in key.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

/// Append an array index to a JSON pointer.
pub(crate) fn index(ptr: &str, i: usize) -> String {
    format!("{ptr}/{i}")
}
