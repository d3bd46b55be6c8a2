//! Small value checks shared by the state validators: integers in a range, paths, templates,
//! Choice rules, error names. Each returns a message (or a list of them) and leaves the location
//! to the caller, which knows the pointer.
//!
//! The syntax of paths, payload templates, intrinsic calls and Choice rules is owned by the data
//! layer ([`crate::data`]) so that validation and execution can never disagree; this module only
//! adapts those checks to the validator.

use serde_json::Value;

use crate::data::{intrinsics, path, template};

/// AWS's upper bound for `TimeoutSeconds`, `HeartbeatSeconds`, `Seconds`, retry intervals.
pub const MAX_SECONDS: u64 = 99_999_999;

/// `States.*` error names that may appear in `ErrorEquals` (AWS's predefined errors).
pub const KNOWN_STATES_ERRORS: &[&str] = &[
    "States.ALL",
    "States.DataLimitExceeded",
    "States.ExceedToleratedFailureThreshold",
    "States.HeartbeatTimeout",
    "States.Http.Socket",
    "States.IntrinsicFailure",
    "States.ItemReaderFailed",
    "States.NoChoiceMatched",
    "States.ParameterPathFailure",
    "States.Permissions",
    "States.QueryEvaluationError",
    "States.ResultPathMatchFailure",
    "States.ResultWriterFailed",
    "States.Runtime",
    "States.TaskFailed",
    "States.Timeout",
    "States.BranchFailed",
];

pub use crate::data::type_name;

/// An integer in `min..=max`.
pub fn int_in(v: &Value, min: u64, max: u64) -> Result<u64, String> {
    match v.as_u64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "must be an integer between {min} and {max}, got {v}"
        )),
    }
}

/// A Path (`InputPath`, `OutputPath`, `*Path` operands that may select several nodes).
pub fn check_path(v: &Value) -> Result<(), String> {
    match v {
        Value::String(s) => path::validate_path(s),
        other => Err(format!("must be a string path, got {}", type_name(other))),
    }
}

/// A Reference Path (`ItemsPath`, `SecondsPath`, `Variable`, `*Path` fields).
pub fn check_reference_path(v: &Value) -> Result<(), String> {
    match v {
        Value::String(s) => path::validate_reference_path(s),
        other => Err(format!(
            "must be a string reference path, got {}",
            type_name(other)
        )),
    }
}

/// `ResultPath`: a Reference Path into the input, or null to discard the result.
pub fn check_result_path(v: &Value) -> Result<(), String> {
    match v {
        Value::Null => Ok(()),
        Value::String(s) => path::validate_result_path(s),
        other => Err(format!(
            "must be a reference path or null, got {}",
            type_name(other)
        )),
    }
}

/// `InputPath`/`OutputPath`: a Path, or null for "{}".
pub fn check_nullable_path(v: &Value) -> Result<(), String> {
    match v {
        Value::Null => Ok(()),
        other => check_path(other),
    }
}

/// A reference path or an intrinsic function call (`ErrorPath`, `CausePath`).
pub fn check_path_or_intrinsic(v: &Value) -> Result<(), String> {
    match v {
        Value::String(s) if intrinsics::is_intrinsic(s) => intrinsics::parse(s)
            .map(|_| ())
            .map_err(|e| format!("is not a valid intrinsic function call: {e}")),
        other => check_reference_path(other),
    }
}

/// Validates a payload template (`Parameters`, `ItemSelector`, `ResultSelector`,
/// `ItemReader.Parameters`, ...). Returns `(pointer suffix, message)` for every problem.
pub fn validate_template(t: &Value) -> Vec<(String, String)> {
    template::validate_template(t)
}

/// Label of a Distributed Map: ≤ 40 characters, none of AWS's reserved characters.
pub fn check_label(v: &Value) -> Result<(), String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("must be a string, got {}", type_name(v)))?;
    if s.is_empty() || s.chars().count() > 40 {
        return Err("must be between 1 and 40 characters".into());
    }
    if let Some(c) = s.chars().find(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(
                c,
                '<' | '>'
                    | '{'
                    | '}'
                    | '['
                    | ']'
                    | '?'
                    | '*'
                    | '"'
                    | '#'
                    | '%'
                    | '\\'
                    | '^'
                    | '|'
                    | '~'
                    | '`'
                    | '$'
                    | '&'
                    | ','
                    | ';'
                    | ':'
                    | '/'
            )
    }) {
        return Err(format!("must not contain the character {c:?}"));
    }
    Ok(())
}

/// A `Resource` ARN: `arn:partition:service:region:account:resource...`.
pub fn check_arn(v: &Value) -> Result<(), String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("must be a string ARN, got {}", type_name(v)))?;
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    if parts.len() < 6
        || parts.first() != Some(&"arn")
        || parts.get(1).is_none_or(|p| p.is_empty())
        || parts.get(2).is_none_or(|p| p.is_empty())
        || parts.get(5).is_none_or(|p| p.is_empty())
    {
        return Err(format!("'{s}' is not a valid resource ARN"));
    }
    Ok(())
}
