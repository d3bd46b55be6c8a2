//! The executor's single entry point into the data-processing layer ([`crate::data`]).
//!
//! Everything the executor needs from paths, templates and Choice rules goes through here, so
//! the rest of the executor does not care how those functions are spelled, and errors come back
//! already as [`StatesError`]s with AWS's names.

use crate::data::path::{self, PathError};
use crate::error::StatesError;
use serde_json::Value;
use std::borrow::Cow;

/// Selects a path against the input (`$...`) or the context object (`$$...`).
/// A missing definite path is a `States.Runtime` error, as AWS reports for InputPath/OutputPath.
pub(crate) fn select(
    p: &str,
    input: &Value,
    ctx: &Value,
    field: &str,
) -> Result<Value, StatesError> {
    path::select(p, input, ctx).map_err(|e| match e {
        PathError::NotFound(_) => StatesError::runtime(format!(
            "An error occurred while executing the state. Invalid path '{p}' : No results for path: {p} (applying {field} to input {})",
            compact(input)
        )),
        PathError::Invalid(m) => StatesError::runtime(m),
    })
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

/// A parsed Choice rule (from [`crate::data::choice`]).
pub type ChoiceRule = crate::data::choice::ChoiceRule;

/// Parses one element of `Choices`: the rule and its `Next`.
pub(crate) fn parse_choice(v: &Value) -> Result<(ChoiceRule, Option<String>), String> {
    crate::data::choice::parse_choice(v)
}
