//! The executor's single entry point into the data-processing layer ([`crate::data`]), and the
//! place where run-time failures get the names and texts AWS gives them.
//!
//! Everything the executor needs from paths and templates goes through here, so errors come
//! back already as [`StatesError`]s with AWS's names and causes. AWS reports a `States.Runtime`
//! failure inside a state as `An error occurred while executing the state '<name>' (entered at
//! the event id #<id>). <cause>`: the specific cause is built here, the prefix by
//! [`in_state`] once the failing state is known.

use crate::data::path::{self, ParsedPath, PathError};
use crate::error::{StatesError, names};
use serde_json::Value;
use std::borrow::Cow;

/// The field a path is evaluated for: it decides how AWS words a path that matches nothing.
// The variants are AWS's field names, which all end in `Path`.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathField {
    InputPath,
    OutputPath,
    TimeoutSecondsPath,
    HeartbeatSecondsPath,
    SecondsPath,
    TimestampPath,
    ItemsPath,
    MaxConcurrencyPath,
    ToleratedFailureCountPath,
    ToleratedFailurePercentagePath,
    MaxItemsPath,
    ErrorPath,
    CausePath,
}

impl PathField {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::InputPath => "InputPath",
            Self::OutputPath => "OutputPath",
            Self::TimeoutSecondsPath => "TimeoutSecondsPath",
            Self::HeartbeatSecondsPath => "HeartbeatSecondsPath",
            Self::SecondsPath => "SecondsPath",
            Self::TimestampPath => "TimestampPath",
            Self::ItemsPath => "ItemsPath",
            Self::MaxConcurrencyPath => "MaxConcurrencyPath",
            Self::ToleratedFailureCountPath => "ToleratedFailureCountPath",
            Self::ToleratedFailurePercentagePath => "ToleratedFailurePercentagePath",
            Self::MaxItemsPath => "MaxItemsPath",
            Self::ErrorPath => "ErrorPath",
            Self::CausePath => "CausePath",
        }
    }
}

/// Selects a path against the input (`$...`) or the context object (`$$...`) for `field`. A
/// definite path that matches nothing is `States.Runtime`, worded as AWS words it for that
/// field: `Invalid path '$.x' : No results for path: $['x']` for InputPath, OutputPath and the
/// Task timeouts, `The SecondsPath parameter does not reference an input value: $.x` for a
/// Wait, `The JSONPath '$.x' could not be found in the input '{...}'` for the fields a Map
/// reads while it runs (ItemsPath, MaxConcurrencyPath, ...), and `The JSONPath '$.x' specified
/// for the field 'ErrorPath' could not be found in the input '{...}'` for the others.
pub(crate) fn select(
    p: &str,
    input: &Value,
    ctx: &Value,
    field: PathField,
) -> Result<Value, StatesError> {
    let parsed = path::parse_cached(p).map_err(|e| StatesError::runtime(e.to_string()))?;
    parsed.select(input, ctx).map_err(|e| match e {
        PathError::NotFound(_) => not_found(&parsed, input, ctx, field),
        PathError::Invalid(m) => StatesError::runtime(m),
    })
}

fn not_found(parsed: &ParsedPath, input: &Value, ctx: &Value, field: PathField) -> StatesError {
    let p = parsed.as_str();
    StatesError::runtime(match field {
        PathField::InputPath
        | PathField::OutputPath
        | PathField::TimeoutSecondsPath
        | PathField::HeartbeatSecondsPath => format!(
            "Invalid path '{p}' : No results for path: {}",
            parsed.jayway_form()
        ),
        PathField::SecondsPath => {
            format!("The SecondsPath parameter does not reference an input value: {p}")
        }
        // Read by the Map state's own work rather than as a state field: no field named.
        PathField::ItemsPath
        | PathField::MaxConcurrencyPath
        | PathField::ToleratedFailureCountPath
        | PathField::ToleratedFailurePercentagePath
        | PathField::MaxItemsPath => {
            let doc = if p.starts_with("$$") { ctx } else { input };
            format!(
                "The JSONPath '{p}' could not be found in the input '{}'",
                compact(doc)
            )
        }
        _ => {
            let doc = if p.starts_with("$$") { ctx } else { input };
            format!(
                "The JSONPath '{p}' specified for the field '{}' could not be found in the input '{}'",
                field.as_str(),
                compact(doc)
            )
        }
    })
}

/// The first words of every decorated cause (see [`in_state`]).
const IN_STATE_PREFIX: &str = "An error occurred while executing the state '";

/// AWS's wording of a `States.Runtime` failure inside `state`, entered at history event
/// `entered_event`. Other errors are returned as they are, and so is a cause that already
/// names its state: a runtime error inside a Map iteration or a Parallel branch names the
/// state it happened in, not the Map or Parallel around it.
pub(crate) fn in_state(mut e: StatesError, state: &str, entered_event: u64) -> StatesError {
    if e.error == names::RUNTIME && !e.cause.starts_with(IN_STATE_PREFIX) {
        e.cause = format!(
            "{IN_STATE_PREFIX}{state}' (entered at the event id #{entered_event}). {}",
            e.cause
        );
    }
    e
}

/// A value as AWS quotes it after `==` in a cause (`$.x == -3`): strings without quotes,
/// anything else as compact JSON.
pub(crate) fn quoted_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => compact(other),
    }
}

/// ResultPath (`None` = `null`); a borrowed input is copied only if the output contains it.
pub(crate) fn apply_result_path(
    input: Cow<'_, Value>,
    result: Value,
    result_path: Option<&str>,
) -> Result<Value, StatesError> {
    path::apply_result_path_cow(input, result, result_path)
}

pub(crate) fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Renders a payload template (Parameters, ItemSelector, ResultSelector, ...).
pub(crate) fn render(template: &Value, input: &Value, ctx: &Value) -> Result<Value, StatesError> {
    crate::data::template::render(template, input, ctx)
}

/// Evaluates a Fail state's ErrorPath or CausePath: a reference path or an intrinsic call
/// that must give a string.
pub(crate) fn dynamic_string(
    expr: &str,
    input: &Value,
    ctx: &Value,
    field: PathField,
) -> Result<String, StatesError> {
    let v = if crate::data::intrinsics::is_intrinsic(expr) {
        crate::data::intrinsics::evaluate(expr, input, ctx)?
    } else {
        select(expr, input, ctx, field)?
    };
    match v {
        Value::String(s) => Ok(s),
        other => Err(StatesError::runtime(format!(
            "The {} '{expr}' must resolve to a string, got {}",
            field.as_str(),
            compact(&other)
        ))),
    }
}
