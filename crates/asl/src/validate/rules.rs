//! Small value checks shared by the state validators: integers in a range, paths, templates,
//! Choice rules, error names. Each returns a message (or a list of them) and leaves the location
//! to the caller, which knows the pointer.
//!
//! Path syntax comes from [`crate::data::path`]. Payload templates and Choice rules are checked
//! here until the data layer exports `data::template::validate_template` and
//! `data::choice::parse_choice`; the functions keep those signatures so switching is a one-line
//! change.

use serde_json::Value;

use crate::data::path;

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

/// Intrinsic functions of the JSONPath query language.
const INTRINSICS: &[&str] = &[
    "States.Format",
    "States.StringToJson",
    "States.JsonToString",
    "States.Array",
    "States.ArrayPartition",
    "States.ArrayContains",
    "States.ArrayRange",
    "States.ArrayGetItem",
    "States.ArrayLength",
    "States.ArrayUnique",
    "States.Base64Encode",
    "States.Base64Decode",
    "States.Hash",
    "States.JsonMerge",
    "States.MathRandom",
    "States.MathAdd",
    "States.StringSplit",
    "States.UUID",
];

/// A JSON type name for messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

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
        Value::String(s) if s.starts_with("States.") => check_intrinsic(s),
        other => check_reference_path(other),
    }
}

/// Shallow check of an intrinsic call: a known function name followed by a parenthesised
/// argument list. Argument syntax is the data layer's job at run time.
fn check_intrinsic(s: &str) -> Result<(), String> {
    let Some(open) = s.find('(') else {
        return Err(format!("'{s}' is not a valid intrinsic function call"));
    };
    let name = s.get(..open).unwrap_or_default();
    if !INTRINSICS.contains(&name) {
        return Err(format!("'{name}' is not a known intrinsic function"));
    }
    if !s.trim_end().ends_with(')') {
        return Err(format!("The intrinsic function call '{s}' is missing ')'"));
    }
    Ok(())
}

/// Validates a payload template (`Parameters`, `ItemSelector`, `ResultSelector`,
/// `ItemReader.Parameters`, ...). Returns `(pointer suffix, message)` for every problem.
pub fn validate_template(t: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    template_into(t, "", &mut out);
    out
}

fn template_into(t: &Value, ptr: &str, out: &mut Vec<(String, String)>) {
    match t {
        Value::Object(map) => {
            for (k, v) in map {
                let p = super::child(ptr, k);
                if let Some(base) = k.strip_suffix(".$") {
                    if map.contains_key(base) {
                        out.push((
                            p.clone(),
                            format!("The template has both '{base}' and '{k}'"),
                        ));
                    }
                    match v {
                        Value::String(s) if s.starts_with('$') => {
                            if let Err(e) = path::validate_path(s) {
                                out.push((p, e));
                            }
                        }
                        Value::String(s) if s.starts_with("States.") => {
                            if let Err(e) = check_intrinsic(s) {
                                out.push((p, e));
                            }
                        }
                        Value::String(s) => out.push((
                            p,
                            format!(
                                "The value of '{k}' must be a path starting with '$' or an \
                                 intrinsic function, got '{s}'"
                            ),
                        )),
                        other => out.push((
                            p,
                            format!(
                                "The value of '{k}' must be a string (path or intrinsic \
                                 function), got {}",
                                type_name(other)
                            ),
                        )),
                    }
                } else {
                    template_into(v, &p, out);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                template_into(v, &super::index(ptr, i), out);
            }
        }
        _ => {}
    }
}

/// Comparison operators of a JSONPath Choice rule and the operand each expects.
#[derive(Clone, Copy)]
enum Operand {
    String,
    Number,
    Bool,
    Timestamp,
    Path,
}

fn operator(name: &str) -> Option<Operand> {
    use Operand::*;
    let op = match name {
        "StringEquals"
        | "StringLessThan"
        | "StringGreaterThan"
        | "StringLessThanEquals"
        | "StringGreaterThanEquals"
        | "StringMatches" => String,
        "NumericEquals"
        | "NumericLessThan"
        | "NumericGreaterThan"
        | "NumericLessThanEquals"
        | "NumericGreaterThanEquals" => Number,
        "BooleanEquals" | "IsNull" | "IsPresent" | "IsNumeric" | "IsString" | "IsBoolean"
        | "IsTimestamp" => Bool,
        "TimestampEquals"
        | "TimestampLessThan"
        | "TimestampGreaterThan"
        | "TimestampLessThanEquals"
        | "TimestampGreaterThanEquals" => Timestamp,
        "StringEqualsPath"
        | "StringLessThanPath"
        | "StringGreaterThanPath"
        | "StringLessThanEqualsPath"
        | "StringGreaterThanEqualsPath"
        | "NumericEqualsPath"
        | "NumericLessThanPath"
        | "NumericGreaterThanPath"
        | "NumericLessThanEqualsPath"
        | "NumericGreaterThanEqualsPath"
        | "BooleanEqualsPath"
        | "TimestampEqualsPath"
        | "TimestampLessThanPath"
        | "TimestampGreaterThanPath"
        | "TimestampLessThanEqualsPath"
        | "TimestampGreaterThanEqualsPath" => Path,
        _ => return None,
    };
    Some(op)
}

/// Checks one top-level Choice rule and returns its `Next`. Mirrors
/// `data::choice::parse_choice(rule).map(|(_, next)| next)`.
pub fn check_choice_rule(rule: &Value) -> Result<Option<String>, String> {
    choice_rule(rule, true)
}

fn choice_rule(rule: &Value, top: bool) -> Result<Option<String>, String> {
    let obj = rule
        .as_object()
        .ok_or_else(|| format!("A Choice rule must be an object, got {}", type_name(rule)))?;
    let next = match obj.get("Next") {
        None => None,
        Some(_) if !top => {
            return Err("A nested Choice rule (inside And/Or/Not) must not have 'Next'".into());
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(format!("'Next' must be a string, got {}", type_name(other))),
    };
    let mut combinators = 0;
    let mut operators = Vec::new();
    for (k, v) in obj {
        match k.as_str() {
            "Next" | "Variable" => {}
            "Comment" if top => {
                if !v.is_string() {
                    return Err("'Comment' must be a string".into());
                }
            }
            "And" | "Or" => {
                combinators += 1;
                let items = v
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| format!("'{k}' must be a non-empty array of rules"))?;
                for (i, r) in items.iter().enumerate() {
                    choice_rule(r, false).map_err(|e| format!("{k}[{i}]: {e}"))?;
                }
            }
            "Not" => {
                combinators += 1;
                choice_rule(v, false).map_err(|e| format!("Not: {e}"))?;
            }
            "Assign" | "Condition" => {
                return Err(format!(
                    "Field '{k}' belongs to JSONata/variables, which are unsupported"
                ));
            }
            other => match operator(other) {
                Some(op) => operators.push((other, op, v)),
                None => return Err(format!("Field '{other}' is not a valid Choice rule field")),
            },
        }
    }
    let variable = obj.get("Variable");
    match (combinators, operators.len(), variable) {
        (1, 0, None) => Ok(next),
        (0, 1, Some(var)) => {
            check_reference_path(var).map_err(|e| format!("Variable {e}"))?;
            if let Some((name, op, value)) = operators.first() {
                check_operand(name, *op, value)?;
            }
            Ok(next)
        }
        (0, 0, _) => Err("A Choice rule needs a comparison operator or And/Or/Not".into()),
        (0, 1, None) => Err("A comparison Choice rule requires 'Variable'".into()),
        (c, _, Some(_)) if c > 0 => Err("'Variable' cannot be combined with And/Or/Not".into()),
        _ => Err("A Choice rule must have exactly one comparison operator or combinator".into()),
    }
}

fn check_operand(name: &str, op: Operand, v: &Value) -> Result<(), String> {
    let ok = match op {
        Operand::String => v.is_string(),
        Operand::Number => v.is_number(),
        Operand::Bool => v.is_boolean(),
        Operand::Timestamp => v
            .as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
        Operand::Path => return check_reference_path(v).map_err(|e| format!("{name} {e}")),
    };
    if ok {
        Ok(())
    } else {
        let want = match op {
            Operand::String => "a string",
            Operand::Number => "a number",
            Operand::Bool => "a boolean",
            Operand::Timestamp => "an RFC 3339 timestamp string",
            Operand::Path => "a reference path",
        };
        Err(format!("The value of '{name}' must be {want}, got {v}"))
    }
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
