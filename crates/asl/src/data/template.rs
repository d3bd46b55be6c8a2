//! Payload templates: `Parameters`, `ItemSelector`, `ResultSelector` and Map `Parameters`.
//!
//! A template is JSON copied as written, except that an object key ending in `.$` is dynamic:
//! its value (a path or an intrinsic call) is evaluated and stored under the key without the
//! suffix. Failures are named as AWS names them: a path that matches nothing fails the state with
//! `States.Runtime` (AWS's executor does so in Parameters, ItemSelector and ResultSelector alike,
//! although the States Language spec describes `States.ParameterPathFailure`), an intrinsic call
//! that fails with `States.IntrinsicFailure`.

use serde_json::{Map, Value};

use crate::StatesError;
use crate::data::intrinsics;
use crate::data::path::{self, PathError, compact};

/// The suffix that marks a dynamic field.
const DYNAMIC_SUFFIX: &str = ".$";

/// Render a payload template (Parameters, ItemSelector, ResultSelector, Map Parameters): keys ending in ".$" are evaluated — a path ("$...", "$$...") or an intrinsic function call ("States.Format(...)") — and the ".$" suffix dropped; nested objects/arrays are rendered recursively; other values are copied. A path that doesn't match → States.Runtime (cause names the path and the field like AWS: "The JSONPath '$.x' specified for the field 'y.$' could not be found in the input '<input json>'", where the input is the context object for a `$$` path); intrinsic errors → States.IntrinsicFailure.
pub fn render(template: &Value, input: &Value, ctx: &Value) -> Result<Value, StatesError> {
    match template {
        Value::Object(fields) => {
            let mut out = Map::with_capacity(fields.len());
            for (key, value) in fields {
                match key.strip_suffix(DYNAMIC_SUFFIX) {
                    Some(name) => {
                        out.insert(name.to_owned(), dynamic(key, value, input, ctx)?);
                    }
                    None => {
                        out.insert(key.clone(), render(value, input, ctx)?);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .map(|item| render(item, input, ctx))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

/// Evaluates the value of the dynamic field `key`.
fn dynamic(key: &str, value: &Value, input: &Value, ctx: &Value) -> Result<Value, StatesError> {
    let Value::String(expr) = value else {
        return Err(StatesError::runtime(format!(
            "The value for the field '{key}' must be a STRING that contains a JSONPath or an \
             intrinsic function, but was {}",
            compact(value)
        )));
    };
    if intrinsics::is_intrinsic(expr) {
        return intrinsics::evaluate(expr, input, ctx);
    }
    path::select(expr, input, ctx).map_err(|e| {
        let doc = if expr.starts_with("$$") { ctx } else { input };
        StatesError::runtime(match e {
            PathError::NotFound(_) => format!(
                "The JSONPath '{expr}' specified for the field '{key}' could not be found in the input '{}'",
                compact(doc)
            ),
            PathError::Invalid(msg) => {
                format!("The value for the field '{key}' is not a valid JSONPath: {msg}")
            }
        })
    })
}

/// Static check of a template, for the validator: every ".$" value is a string that is a valid path or a parseable intrinsic call. Returns (json-pointer-suffix, message) problems.
pub fn validate_template(template: &Value) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    check(template, &mut String::new(), &mut problems);
    problems
}

fn check(value: &Value, pointer: &mut String, problems: &mut Vec<(String, String)>) {
    let base = pointer.len();
    match value {
        Value::Object(fields) => {
            for (key, v) in fields {
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                match key.strip_suffix(DYNAMIC_SUFFIX) {
                    Some(name) => {
                        if let Some(message) = check_dynamic(key, v) {
                            problems.push((pointer.clone(), message));
                        }
                        if fields.contains_key(name) {
                            problems.push((
                                pointer.clone(),
                                format!("The fields '{name}' and '{key}' produce the same field '{name}'"),
                            ));
                        }
                    }
                    None => check(v, pointer, problems),
                }
                pointer.truncate(base);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                pointer.push('/');
                pointer.push_str(&i.to_string());
                check(item, pointer, problems);
                pointer.truncate(base);
            }
        }
        _ => {}
    }
}

/// The problem with the dynamic field `key`, if any.
fn check_dynamic(key: &str, value: &Value) -> Option<String> {
    let Value::String(expr) = value else {
        return Some(format!(
            "The value for the field '{key}' must be a STRING that contains a JSONPath or an \
             intrinsic function"
        ));
    };
    if intrinsics::is_intrinsic(expr) {
        return intrinsics::parse(expr).err().map(|e| {
            format!("The value for the field '{key}' must be a valid intrinsic function call: {e}")
        });
    }
    path::validate_path(expr)
        .err()
        .map(|e| format!("The value for the field '{key}' must be a valid JSONPath: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::names;
    use proptest::prelude::*;
    use serde_json::json;

    fn ctx() -> Value {
        json!({"Execution": {"Id": "arn:aws:states:::execution:m:e1", "Name": "e1"}, "Map": {"Item": {"Index": 0, "Value": {"x": 1}}}})
    }

    #[test]
    fn parameters_example_from_the_developer_guide() {
        // "Parameters" example of the input/output processing chapter.
        let template = json!({
            "comment": "Selecting what I care about.",
            "MyDetails": {
                "size.$": "$.product.details.size",
                "exists.$": "$.product.availability",
                "StaticValue": "foo"
            }
        });
        let input = json!({
            "comment": "Example for Parameters.",
            "product": {
                "details": {"color": "blue", "size": "small", "material": "cotton"},
                "availability": "in stock",
                "sku": "2317",
                "cost": "$23"
            }
        });
        assert_eq!(
            render(&template, &input, &ctx()),
            Ok(json!({
                "comment": "Selecting what I care about.",
                "MyDetails": {"size": "small", "exists": "in stock", "StaticValue": "foo"}
            }))
        );
    }

    #[test]
    fn context_object_and_arrays() {
        let template = json!({
            "execution.$": "$$.Execution.Id",
            "item.$": "$$.Map.Item.Value",
            "list": [{"a.$": "$.a"}, "plain", 3, null],
            "whole.$": "$"
        });
        let input = json!({"a": [1, 2]});
        assert_eq!(
            render(&template, &input, &ctx()),
            Ok(json!({
                "execution": "arn:aws:states:::execution:m:e1",
                "item": {"x": 1},
                "list": [{"a": [1, 2]}, "plain", 3, null],
                "whole": {"a": [1, 2]}
            }))
        );
    }

    #[test]
    fn map_item_selector_with_context_example() {
        // The Map state's ItemSelector example: index and value of the current item.
        let template = json!({
            "ContextIndex.$": "$$.Map.Item.Index",
            "ContextValue.$": "$$.Map.Item.Value",
            "ExecutionName.$": "$$.Execution.Name"
        });
        assert_eq!(
            render(&template, &json!({"ignored": true}), &ctx()),
            Ok(json!({"ContextIndex": 0, "ContextValue": {"x": 1}, "ExecutionName": "e1"}))
        );
    }

    #[test]
    fn indefinite_paths_in_templates_yield_arrays() {
        let input = json!({"items": [{"id": 1, "ok": true}, {"id": 2, "ok": false}]});
        let template = json!({
            "ids.$": "$.items[*].id",
            "good.$": "$.items[?(@.ok == true)].id",
            "none.$": "$.items[?(@.id > 5)]",
            "count.$": "$.items.length()"
        });
        assert_eq!(
            render(&template, &input, &ctx()),
            Ok(json!({"ids": [1, 2], "good": [1], "none": [], "count": 2}))
        );
    }

    #[test]
    fn result_selector_flattening_example() {
        let template = json!({"flattenArray.$": "$[*][*]"});
        let input = json!([[1, 2, 3], [4, 5, 6], [7, 8, 9]]);
        assert_eq!(
            render(&template, &input, &ctx()),
            Ok(json!({"flattenArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]}))
        );
    }

    #[test]
    fn intrinsic_values() {
        let template = json!({"greeting.$": "States.Format('Hello, {}', $.name)", "ids.$": "States.Array($.id, $$.Execution.Name)"});
        assert_eq!(
            render(&template, &json!({"name": "Ana", "id": 7}), &ctx()),
            Ok(json!({"greeting": "Hello, Ana", "ids": [7, "e1"]}))
        );
        let err = render(
            &json!({"n.$": "States.MathAdd($.a, 1)"}),
            &json!({"a": "x"}),
            &ctx(),
        )
        .unwrap_err();
        assert_eq!(err.error, names::INTRINSIC_FAILURE);
    }

    #[test]
    fn non_dynamic_strings_are_copied_verbatim() {
        let template = json!({"path": "$.not.evaluated", "call": "States.Format('x')"});
        assert_eq!(render(&template, &json!({}), &ctx()), Ok(template.clone()));
        assert_eq!(
            render(&json!("scalar"), &json!({}), &ctx()),
            Ok(json!("scalar"))
        );
    }

    #[test]
    fn missing_path_is_a_runtime_error_with_aws_cause() {
        let err = render(&json!({"y.$": "$.x"}), &json!({"a": 1}), &ctx()).unwrap_err();
        assert_eq!(err.error, names::RUNTIME);
        assert_eq!(
            err.cause,
            "The JSONPath '$.x' specified for the field 'y.$' could not be found in the input '{\"a\":1}'"
        );
        // A `$$` path is looked up in the context object, which the cause then shows.
        let nested = render(&json!({"a": [{"b.$": "$$.Nope"}]}), &json!({}), &ctx()).unwrap_err();
        assert_eq!(nested.error, names::RUNTIME);
        assert_eq!(
            nested.cause,
            format!(
                "The JSONPath '$$.Nope' specified for the field 'b.$' could not be found in the input '{}'",
                compact(&ctx())
            )
        );
        let not_string = render(&json!({"a.$": 5}), &json!({}), &ctx()).unwrap_err();
        assert_eq!(not_string.error, names::RUNTIME);
    }

    #[test]
    fn validation_reports_json_pointers() {
        let template = json!({
            "ok.$": "$.a",
            "okcall.$": "States.UUID()",
            "bad.$": "nope",
            "nested": {"list": [{"x/y.$": 3}], "c.$": "States.Nope(1)"},
            "dup": 1,
            "dup.$": "$.d",
            "plain": "$.not checked"
        });
        let problems = validate_template(&template);
        let pointers: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            pointers,
            vec!["/bad.$", "/nested/list/0/x~1y.$", "/nested/c.$", "/dup.$"]
        );
        assert!(problems[0].1.contains("'bad.$'"));
        assert!(problems[2].1.contains("unknown intrinsic function"));
        assert!(validate_template(&json!({"a": {"b.$": "$$.Execution.Id"}})).is_empty());
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            "[$.a-zA-Z()',\\[\\]*? {}]{0,20}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(("[a-z]{0,3}(\\.\\$)?", inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn render_never_panics(template in arb_json(), input in arb_json()) {
            let _ = render(&template, &input, &ctx());
            let _ = validate_template(&template);
        }
    }
}
