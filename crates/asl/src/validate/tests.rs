//! Tests for definition validation: valid definitions that must pass untouched, a table of bad
//! definitions each asserting the exact location and a message fragment, and a property test
//! that validation never panics.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{Diagnostic, validate_definition, validate_str};

/// Wrap states into a minimal definition starting at `start`.
fn def(start: &str, states: Value) -> Value {
    json!({"StartAt": start, "States": states})
}

fn assert_valid(d: &Value) {
    let diags = validate_definition(d);
    assert!(diags.is_empty(), "expected valid, got {diags:#?}\n{d:#}");
}

fn valid_definitions() -> Vec<(&'static str, Value)> {
    vec![
        (
            "single pass",
            def(
                "A",
                json!({"A": {"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.r", "End": true}}),
            ),
        ),
        (
            "task with retry and catch",
            json!({
                "Comment": "retry/catch",
                "Version": "1.0",
                "TimeoutSeconds": 3600,
                "QueryLanguage": "JSONPath",
                "StartAt": "Call",
                "States": {
                    "Call": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"FunctionName": "f", "Payload.$": "$", "Id.$": "$$.Execution.Id",
                                       "Msg.$": "States.Format('hi {}', $.name)"},
                        "ResultSelector": {"body.$": "$.Payload"},
                        "ResultPath": "$.out",
                        "TimeoutSeconds": 60,
                        "HeartbeatSeconds": 10,
                        "Retry": [
                            {"ErrorEquals": ["Lambda.TooManyRequestsException", "States.Timeout"],
                             "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 1.5,
                             "MaxDelaySeconds": 30, "JitterStrategy": "FULL"},
                            {"ErrorEquals": ["States.ALL"], "MaxAttempts": 0}
                        ],
                        "Catch": [
                            {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.err", "Next": "Recover"},
                            {"ErrorEquals": ["States.ALL"], "ResultPath": null, "Next": "Fail"}
                        ],
                        "Next": "Done"
                    },
                    "Recover": {"Type": "Pass", "Next": "Done"},
                    "Fail": {"Type": "Fail", "Error": "Sluice.Failed", "CausePath": "$.err.Cause"},
                    "Done": {"Type": "Succeed", "OutputPath": "$.out"}
                }
            }),
        ),
        (
            "parallel",
            def(
                "Par",
                json!({
                    "Par": {
                        "Type": "Parallel",
                        "Branches": [
                            {"StartAt": "B1", "States": {"B1": {"Type": "Wait", "Seconds": 1, "End": true}}},
                            {"StartAt": "B2", "States": {"B2": {"Type": "Pass", "Next": "B3"},
                                                         "B3": {"Type": "Succeed"}}}
                        ],
                        "ResultSelector": {"first.$": "$[0]"},
                        "Retry": [{"ErrorEquals": ["States.BranchFailed"]}],
                        "End": true
                    }
                }),
            ),
        ),
        (
            "choice and wait variants",
            def(
                "Pick",
                json!({
                    "Pick": {
                        "Type": "Choice",
                        "Choices": [
                            {"Variable": "$.n", "NumericGreaterThan": 10, "Next": "WaitTs"},
                            {"And": [
                                {"Variable": "$.s", "StringEquals": "x"},
                                {"Not": {"Variable": "$.b", "BooleanEquals": true}}
                            ], "Next": "WaitPath"},
                            {"Variable": "$.t", "TimestampLessThanEqualsPath": "$.limit", "Next": "WaitPath"}
                        ],
                        "Default": "Done"
                    },
                    "WaitTs": {"Type": "Wait", "Timestamp": "2026-01-01T00:00:00Z", "Next": "Done"},
                    "WaitPath": {"Type": "Wait", "SecondsPath": "$.delay", "Next": "Done"},
                    "Done": {"Type": "Succeed"}
                }),
            ),
        ),
        (
            "inline map with legacy Iterator",
            def(
                "M",
                json!({
                    "M": {
                        "Type": "Map",
                        "ItemsPath": "$.items",
                        "MaxConcurrency": 2,
                        "Parameters": {"item.$": "$$.Map.Item.Value"},
                        "Iterator": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}},
                        "End": true
                    }
                }),
            ),
        ),
        (
            "distributed map with ItemReader",
            def(
                "Fan",
                json!({
                    "Fan": {
                        "Type": "Map",
                        "Label": "Fanout",
                        "ItemReader": {
                            "Resource": "arn:aws:states:::s3:getObject",
                            "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW", "MaxItems": 100},
                            "Parameters": {"Bucket": "b", "Key.$": "$.key"}
                        },
                        "ItemSelector": {"row.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index"},
                        "ItemBatcher": {"MaxItemsPerBatch": 10, "MaxInputBytesPerBatch": 1024,
                                        "BatchInput": {"run.$": "$.run"}},
                        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                                         "Parameters": {"Bucket": "b", "Prefix": "out"}},
                        "MaxConcurrencyPath": "$.concurrency",
                        "ToleratedFailurePercentage": 5,
                        "ToleratedFailureCount": 10,
                        "ItemProcessor": {
                            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                            "StartAt": "Launch",
                            "States": {
                                "Launch": {
                                    "Type": "Task",
                                    "Resource": "arn:aws:states:::ecs:runTask.sync",
                                    "Parameters": {"Cluster": "c"},
                                    "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 5}],
                                    "End": true
                                }
                            }
                        },
                        "ResultPath": null,
                        "Next": "Done"
                    },
                    "Done": {"Type": "Succeed"}
                }),
            ),
        ),
        (
            "loop with an exit through choice",
            def(
                "Poll",
                json!({
                    "Poll": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:poll",
                             "Next": "Check"},
                    "Check": {"Type": "Choice",
                              "Choices": [{"Variable": "$.done", "BooleanEquals": true, "Next": "End"}],
                              "Default": "Sleep"},
                    "Sleep": {"Type": "Wait", "Seconds": 0, "Next": "Poll"},
                    "End": {"Type": "Pass", "End": true}
                }),
            ),
        ),
        (
            "fail with intrinsic error path",
            def(
                "F",
                json!({"F": {"Type": "Fail", "ErrorPath": "States.Format('E{}', $.code)",
                                   "Cause": "because"}}),
            ),
        ),
    ]
}

#[test]
fn valid_definitions_have_no_diagnostics() {
    for (name, d) in valid_definitions() {
        eprintln!("checking {name}");
        assert_valid(&d);
    }
}

#[test]
fn validate_str_returns_the_value_when_valid() {
    let text = r#"{"StartAt":"A","States":{"A":{"Type":"Succeed"}}}"#;
    let v = validate_str(text).expect("valid");
    assert_eq!(v["StartAt"], "A");
}

#[test]
fn validate_str_reports_syntax_errors_with_line_and_column() {
    let diags = validate_str("{\n  \"StartAt\": \"A\",\n  \"States\": {]\n}").expect_err("syntax");
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].location, "");
    assert!(diags[0].message.contains("line 3"), "{}", diags[0].message);
    assert!(
        diags[0].message.contains("column 14"),
        "{}",
        diags[0].message
    );
    assert!(diags[0].to_string().starts_with("/: Invalid JSON"));
}

#[test]
fn diagnostic_display_and_serialize() {
    let d = Diagnostic::new("/States/A", "bad");
    assert_eq!(d.to_string(), "/States/A: bad");
    assert_eq!(
        serde_json::to_value(&d).expect("serialize"),
        json!({"location": "/States/A", "message": "bad"})
    );
}

/// `(case name, definition, expected location, message fragment)`.
fn bad_definitions() -> Vec<(&'static str, Value, &'static str, &'static str)> {
    let succeed = json!({"Type": "Succeed"});
    vec![
        ("not an object", json!([1]), "", "must be a JSON object"),
        (
            "missing StartAt",
            json!({"States": {"A": succeed}}),
            "/StartAt",
            "Missing required field 'StartAt'",
        ),
        (
            "missing States",
            json!({"StartAt": "A"}),
            "/States",
            "Missing required field 'States'",
        ),
        (
            "empty States",
            json!({"StartAt": "A", "States": {}}),
            "/States",
            "at least one state",
        ),
        (
            "StartAt unknown",
            def("Nope", json!({"A": succeed})),
            "/StartAt",
            "'Nope' is not a state",
        ),
        (
            "bad Comment",
            json!({"Comment": 1, "StartAt": "A", "States": {"A": succeed}}),
            "/Comment",
            "must be a string",
        ),
        (
            "bad Version",
            json!({"Version": 1.0, "StartAt": "A", "States": {"A": succeed}}),
            "/Version",
            "must be a string",
        ),
        (
            "bad TimeoutSeconds",
            json!({"TimeoutSeconds": 0, "StartAt": "A", "States": {"A": succeed}}),
            "/TimeoutSeconds",
            "between 1",
        ),
        (
            "unknown top-level field",
            json!({"Foo": 1, "StartAt": "A", "States": {"A": succeed}}),
            "/Foo",
            "not supported by a state machine definition",
        ),
        (
            "JSONata top level",
            json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": succeed}}),
            "/QueryLanguage",
            "unsupported",
        ),
        (
            "JSONata state",
            def(
                "A",
                json!({"A": {"Type": "Succeed", "QueryLanguage": "JSONata"}}),
            ),
            "/States/A/QueryLanguage",
            "unsupported",
        ),
        (
            "Assign",
            def(
                "A",
                json!({"A": {"Type": "Pass", "Assign": {"x": 1}, "End": true}}),
            ),
            "/States/A/Assign",
            "unsupported",
        ),
        (
            "Output (JSONata)",
            def(
                "A",
                json!({"A": {"Type": "Pass", "Output": {}, "End": true}}),
            ),
            "/States/A/Output",
            "JSONata",
        ),
        (
            "Arguments (JSONata)",
            def(
                "A",
                json!({"A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Arguments": {}, "End": true}}),
            ),
            "/States/A/Arguments",
            "JSONata",
        ),
        (
            "unknown field",
            def("A", json!({"A": {"Type": "Pass", "Foo": 1, "End": true}})),
            "/States/A/Foo",
            "Field 'Foo' is not supported by state type Pass",
        ),
        (
            "Resource on Pass",
            def(
                "A",
                json!({"A": {"Type": "Pass", "Resource": "x", "End": true}}),
            ),
            "/States/A/Resource",
            "not supported by state type Pass",
        ),
        (
            "missing Type",
            def("A", json!({"A": {"End": true}})),
            "/States/A/Type",
            "Missing required field 'Type'",
        ),
        (
            "unknown Type",
            def("A", json!({"A": {"Type": "Lambda"}})),
            "/States/A/Type",
            "Unknown state type 'Lambda'",
        ),
        (
            "state not object",
            def("A", json!({"A": 3})),
            "/States/A",
            "must be a JSON object",
        ),
        (
            "Next and End",
            def(
                "A",
                json!({"A": {"Type": "Pass", "Next": "B", "End": true}, "B": succeed}),
            ),
            "/States/A",
            "both 'Next'",
        ),
        (
            "neither Next nor End",
            def("A", json!({"A": {"Type": "Pass"}})),
            "/States/A",
            "either 'Next'",
        ),
        (
            "End false",
            def("A", json!({"A": {"Type": "Pass", "End": false}})),
            "/States/A",
            "either 'Next'",
        ),
        (
            "End not bool",
            def("A", json!({"A": {"Type": "Pass", "End": "yes"}})),
            "/States/A/End",
            "boolean",
        ),
        (
            "Next missing target",
            def(
                "A",
                json!({"A": {"Type": "Pass", "Next": "Ghost"}, "B": {"Type": "Succeed"}}),
            ),
            "/States/A/Next",
            "'Ghost' is not a state",
        ),
        (
            "End on Choice",
            def(
                "C",
                json!({"C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "IsPresent": true, "Next": "S"}], "End": true}, "S": succeed}),
            ),
            "/States/C/End",
            "not supported by state type Choice",
        ),
        (
            "Next on Succeed",
            def("A", json!({"A": {"Type": "Succeed", "Next": "A"}})),
            "/States/A/Next",
            "not supported by state type Succeed",
        ),
        (
            "unreachable",
            def(
                "A",
                json!({"A": {"Type": "Succeed"}, "B": {"Type": "Succeed"}}),
            ),
            "/States/B",
            "not reachable",
        ),
        (
            "no terminal",
            def(
                "A",
                json!({"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}}),
            ),
            "/States",
            "No terminal state",
        ),
        (
            "name too long",
            def(&"N".repeat(81), json!({"N".repeat(81): succeed})),
            "/States/NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
            "between 1 and 80",
        ),
        (
            "name with slash is escaped",
            def(
                "a/b~c",
                json!({"a/b~c": {"Type": "Pass", "Foo": 1, "End": true}}),
            ),
            "/States/a~1b~0c/Foo",
            "not supported",
        ),
        (
            "choice without Choices",
            def(
                "C",
                json!({"C": {"Type": "Choice", "Default": "S"}, "S": succeed}),
            ),
            "/States/C/Choices",
            "Missing required field 'Choices'",
        ),
        (
            "choice with empty Choices",
            def(
                "C",
                json!({"C": {"Type": "Choice", "Choices": [], "Default": "S"}, "S": succeed}),
            ),
            "/States/C/Choices",
            "at least one",
        ),
        (
            "choice rule without Next",
            def(
                "C",
                json!({"C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "IsNull": true}], "Default": "S"}, "S": succeed}),
            ),
            "/States/C/Choices/0/Next",
            "must have 'Next'",
        ),
        (
            "choice rule bad operator",
            def(
                "C",
                json!({"C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "StringEquals": 3, "Next": "S"}]}, "S": succeed}),
            ),
            "/States/C/Choices/0",
            "StringEquals",
        ),
        (
            "choice default missing target",
            def(
                "C",
                json!({"C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "IsNull": true, "Next": "S"}], "Default": "Ghost"}, "S": succeed}),
            ),
            "/States/C/Default",
            "'Ghost'",
        ),
        (
            "choice rule missing target",
            def(
                "C",
                json!({"C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "IsNull": true, "Next": "Ghost"}], "Default": "S"}, "S": succeed}),
            ),
            "/States/C/Choices/0/Next",
            "'Ghost'",
        ),
        (
            "task without Resource",
            def("T", json!({"T": {"Type": "Task", "End": true}})),
            "/States/T/Resource",
            "Missing required field 'Resource'",
        ),
        (
            "task bad Resource",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "lambda", "End": true}}),
            ),
            "/States/T/Resource",
            "not a valid resource ARN",
        ),
        (
            "timeout exclusive",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "TimeoutSeconds": 5, "TimeoutSecondsPath": "$.t", "End": true}}),
            ),
            "/States/T",
            "'TimeoutSeconds' and 'TimeoutSecondsPath' are mutually exclusive",
        ),
        (
            "timeout zero",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "TimeoutSeconds": 0, "End": true}}),
            ),
            "/States/T/TimeoutSeconds",
            "between 1",
        ),
        (
            "heartbeat >= timeout",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "TimeoutSeconds": 5, "HeartbeatSeconds": 5, "End": true}}),
            ),
            "/States/T/HeartbeatSeconds",
            "smaller than 'TimeoutSeconds'",
        ),
        (
            "heartbeat path not reference",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "HeartbeatSecondsPath": "$.a[*]", "End": true}}),
            ),
            "/States/T/HeartbeatSecondsPath",
            "Reference Path",
        ),
        (
            "bad InputPath",
            def(
                "A",
                json!({"A": {"Type": "Pass", "InputPath": "a.b", "End": true}}),
            ),
            "/States/A/InputPath",
            "must start with '$'",
        ),
        (
            "bad ResultPath",
            def(
                "A",
                json!({"A": {"Type": "Pass", "ResultPath": "$.a[*]", "End": true}}),
            ),
            "/States/A/ResultPath",
            "Reference Path",
        ),
        (
            "ResultPath to context",
            def(
                "A",
                json!({"A": {"Type": "Pass", "ResultPath": "$$.a", "End": true}}),
            ),
            "/States/A/ResultPath",
            "context object",
        ),
        (
            "Parameters not object",
            def(
                "A",
                json!({"A": {"Type": "Pass", "Parameters": [1], "End": true}}),
            ),
            "/States/A/Parameters",
            "must be a JSON object",
        ),
        (
            "template bad path",
            def(
                "A",
                json!({"A": {"Type": "Pass", "Parameters": {"x": {"y.$": "foo"}}, "End": true}}),
            ),
            "/States/A/Parameters/x/y.$",
            "must be a valid JSONPath",
        ),
        (
            "template non-string",
            def(
                "A",
                json!({"A": {"Type": "Pass", "Parameters": {"y.$": 1}, "End": true}}),
            ),
            "/States/A/Parameters/y.$",
            "must be a STRING",
        ),
        (
            "template unknown intrinsic",
            def(
                "A",
                json!({"A": {"Type": "Pass", "Parameters": {"y.$": "States.Nope(1)"}, "End": true}}),
            ),
            "/States/A/Parameters/y.$",
            "unknown intrinsic function",
        ),
        (
            "ResultSelector in array",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "ResultSelector": {"a": [{"b.$": "x"}]}, "End": true}}),
            ),
            "/States/T/ResultSelector/a/0/b.$",
            "must be a valid JSONPath",
        ),
        (
            "wait with none",
            def("W", json!({"W": {"Type": "Wait", "End": true}})),
            "/States/W",
            "exactly one of",
        ),
        (
            "wait with two",
            def(
                "W",
                json!({"W": {"Type": "Wait", "Seconds": 1, "SecondsPath": "$.s", "End": true}}),
            ),
            "/States/W",
            "exactly one of",
        ),
        (
            "wait bad timestamp",
            def(
                "W",
                json!({"W": {"Type": "Wait", "Timestamp": "tomorrow", "End": true}}),
            ),
            "/States/W/Timestamp",
            "RFC 3339",
        ),
        (
            "wait negative seconds",
            def(
                "W",
                json!({"W": {"Type": "Wait", "Seconds": -1, "End": true}}),
            ),
            "/States/W/Seconds",
            "between 0",
        ),
        (
            "fail error exclusive",
            def(
                "F",
                json!({"F": {"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}}),
            ),
            "/States/F",
            "'Error' and 'ErrorPath' are mutually exclusive",
        ),
        (
            "fail bad intrinsic ErrorPath",
            def(
                "F",
                json!({"F": {"Type": "Fail", "ErrorPath": "States.Format('x'"}}),
            ),
            "/States/F/ErrorPath",
            "not a valid intrinsic function call",
        ),
        (
            "fail cause exclusive",
            def(
                "F",
                json!({"F": {"Type": "Fail", "Cause": "c", "CausePath": "$.c"}}),
            ),
            "/States/F",
            "'Cause' and 'CausePath'",
        ),
        (
            "fail InputPath",
            def("F", json!({"F": {"Type": "Fail", "InputPath": "$"}})),
            "/States/F/InputPath",
            "not supported by state type Fail",
        ),
        (
            "retry empty ErrorEquals",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Retry": [{"ErrorEquals": []}], "End": true}}),
            ),
            "/States/T/Retry/0/ErrorEquals",
            "non-empty",
        ),
        (
            "retry missing ErrorEquals",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Retry": [{}], "End": true}}),
            ),
            "/States/T/Retry/0/ErrorEquals",
            "Missing required field",
        ),
        (
            "retry IntervalSeconds 0",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 0}], "End": true}}),
            ),
            "/States/T/Retry/0/IntervalSeconds",
            "between 1",
        ),
        (
            "retry IntervalSeconds float",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 1.5}], "End": true}}),
            ),
            "/States/T/Retry/0/IntervalSeconds",
            "integer",
        ),
        (
            "retry MaxAttempts negative",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Retry": [{"ErrorEquals": ["E"], "MaxAttempts": -1}], "End": true}}),
            ),
            "/States/T/Retry/0/MaxAttempts",
            "between 0",
        ),
        (
            "retry BackoffRate < 1",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Retry": [{"ErrorEquals": ["E"], "BackoffRate": 0.5}], "End": true}}),
            ),
            "/States/T/Retry/0/BackoffRate",
            "1.0",
        ),
        (
            "retry MaxDelaySeconds 0",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Retry": [{"ErrorEquals": ["E"], "MaxDelaySeconds": 0}], "End": true}}),
            ),
            "/States/T/Retry/0/MaxDelaySeconds",
            "between 1",
        ),
        (
            "retry bad JitterStrategy",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Retry": [{"ErrorEquals": ["E"], "JitterStrategy": "HALF"}], "End": true}}),
            ),
            "/States/T/Retry/0/JitterStrategy",
            "FULL or NONE",
        ),
        (
            "retry unknown field",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Retry": [{"ErrorEquals": ["E"], "Delay": 1}], "End": true}}),
            ),
            "/States/T/Retry/0/Delay",
            "not supported by a Retrier",
        ),
        (
            "States.ALL not alone",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Retry": [{"ErrorEquals": ["States.ALL", "E"]}], "End": true}}),
            ),
            "/States/T/Retry/0/ErrorEquals",
            "alone",
        ),
        (
            "States.ALL not last retrier",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["E"]}], "End": true}}),
            ),
            "/States/T/Retry/0/ErrorEquals",
            "last retrier",
        ),
        (
            "reserved error name",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Retry": [{"ErrorEquals": ["E", "States.Oops"]}], "End": true}}),
            ),
            "/States/T/Retry/0/ErrorEquals/1",
            "reserved",
        ),
        (
            "catch missing Next",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Catch": [{"ErrorEquals": ["E"]}], "End": true}}),
            ),
            "/States/T/Catch/0/Next",
            "Missing required field 'Next'",
        ),
        (
            "catch Next missing target",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Catch": [{"ErrorEquals": ["E"], "Next": "Ghost"}], "End": true}}),
            ),
            "/States/T/Catch/0/Next",
            "'Ghost'",
        ),
        (
            "catch bad ResultPath",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Catch": [{"ErrorEquals": ["E"], "Next": "T", "ResultPath": "nope"}], "End": true}}),
            ),
            "/States/T/Catch/0/ResultPath",
            "must start with '$'",
        ),
        (
            "States.ALL not last catcher",
            def(
                "T",
                json!({"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "T"}, {"ErrorEquals": ["E"], "Next": "T"}], "End": true}}),
            ),
            "/States/T/Catch/0/ErrorEquals",
            "last catcher",
        ),
        (
            "Retry on Pass",
            def(
                "A",
                json!({"A": {"Type": "Pass", "Retry": [], "End": true}}),
            ),
            "/States/A/Retry",
            "not supported by state type Pass",
        ),
        (
            "parallel no branches",
            def(
                "P",
                json!({"P": {"Type": "Parallel", "Branches": [], "End": true}}),
            ),
            "/States/P/Branches",
            "at least one branch",
        ),
        (
            "parallel branch bad StartAt",
            def(
                "P",
                json!({"P": {"Type": "Parallel", "Branches": [{"StartAt": "X", "States": {"Y": {"Type": "Succeed"}}}], "End": true}}),
            ),
            "/States/P/Branches/0/StartAt",
            "'X' is not a state in a Parallel branch",
        ),
        (
            "branch cannot jump out",
            def(
                "P",
                json!({"P": {"Type": "Parallel", "Branches": [{"StartAt": "X", "States": {"X": {"Type": "Pass", "Next": "Out"}}}], "Next": "Out"}, "Out": succeed}),
            ),
            "/States/P/Branches/0/States/X/Next",
            "'Out' is not a state in a Parallel branch",
        ),
        (
            "duplicate name across scopes",
            def(
                "P",
                json!({"P": {"Type": "Parallel", "Branches": [{"StartAt": "P", "States": {"P": {"Type": "Succeed"}}}], "End": true}}),
            ),
            "/States/P/Branches/0/States/P",
            "Duplicate state name 'P'",
        ),
        (
            "branch unknown field",
            def(
                "P",
                json!({"P": {"Type": "Parallel", "Branches": [{"StartAt": "X", "Version": "1", "States": {"X": {"Type": "Succeed"}}}], "End": true}}),
            ),
            "/States/P/Branches/0/Version",
            "not supported by a Parallel branch",
        ),
        (
            "map without processor",
            def("M", json!({"M": {"Type": "Map", "End": true}})),
            "/States/M/ItemProcessor",
            "Missing required field 'ItemProcessor'",
        ),
        (
            "map both processors",
            def(
                "M",
                json!({"M": {"Type": "Map", "End": true,
            "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}},
            "Iterator": {"StartAt": "J", "States": {"J": {"Type": "Succeed"}}}}}),
            ),
            "/States/M",
            "mutually exclusive",
        ),
        (
            "map Parameters and ItemSelector",
            def(
                "M",
                json!({"M": {"Type": "Map", "End": true, "Parameters": {}, "ItemSelector": {},
            "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}}}}),
            ),
            "/States/M",
            "'Parameters' and 'ItemSelector'",
        ),
        (
            "map bad Mode",
            def(
                "M",
                json!({"M": {"Type": "Map", "End": true,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "FAST"}, "StartAt": "I", "States": {"I": {"Type": "Succeed"}}}}}),
            ),
            "/States/M/ItemProcessor/ProcessorConfig/Mode",
            "INLINE or DISTRIBUTED",
        ),
        (
            "distributed without ExecutionType",
            def(
                "M",
                json!({"M": {"Type": "Map", "End": true,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, "StartAt": "I", "States": {"I": {"Type": "Succeed"}}}}}),
            ),
            "/States/M/ItemProcessor/ProcessorConfig/ExecutionType",
            "requires 'ExecutionType'",
        ),
        (
            "inline with ExecutionType",
            def(
                "M",
                json!({"M": {"Type": "Map", "End": true,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE", "ExecutionType": "EXPRESS"}, "StartAt": "I", "States": {"I": {"Type": "Succeed"}}}}}),
            ),
            "/States/M/ItemProcessor/ProcessorConfig/ExecutionType",
            "only supported when 'Mode' is DISTRIBUTED",
        ),
        (
            "ItemReader on inline map",
            def(
                "M",
                json!({"M": {"Type": "Map", "End": true, "ItemReader": {"Resource": "arn:aws:states:::s3:getObject"},
            "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}}}}),
            ),
            "/States/M/ItemReader",
            "only supported by a Distributed Map",
        ),
        (
            "Label on inline map",
            def(
                "M",
                json!({"M": {"Type": "Map", "End": true, "Label": "x",
            "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}}}}),
            ),
            "/States/M/Label",
            "Distributed Map",
        ),
        (
            "MaxConcurrency exclusive",
            def(
                "M",
                json!({"M": {"Type": "Map", "End": true, "MaxConcurrency": 1, "MaxConcurrencyPath": "$.c",
            "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}}}}),
            ),
            "/States/M",
            "'MaxConcurrency' and 'MaxConcurrencyPath'",
        ),
        (
            "ItemsPath not reference",
            def(
                "M",
                json!({"M": {"Type": "Map", "End": true, "ItemsPath": "$..x",
            "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}}}}),
            ),
            "/States/M/ItemsPath",
            "Reference Path",
        ),
        (
            "map inner state error location",
            def(
                "Fan",
                json!({"Fan": {"Type": "Map", "End": true,
            "ItemProcessor": {"StartAt": "Launch", "States": {"Launch": {"Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.sync",
                "Retry": [{"ErrorEquals": ["States.ALL", "X"]}], "End": true}}}}}),
            ),
            "/States/Fan/ItemProcessor/States/Launch/Retry/0/ErrorEquals",
            "alone",
        ),
        (
            "label too long",
            distributed(json!({"Label": "L".repeat(41)})),
            "/States/M/Label",
            "between 1 and 40",
        ),
        (
            "label reserved char",
            distributed(json!({"Label": "a:b"})),
            "/States/M/Label",
            "':'",
        ),
        (
            "tolerated percentage > 100",
            distributed(json!({"ToleratedFailurePercentage": 101})),
            "/States/M/ToleratedFailurePercentage",
            "between 0 and 100",
        ),
        (
            "tolerated count exclusive",
            distributed(json!({"ToleratedFailureCount": 1, "ToleratedFailureCountPath": "$.n"})),
            "/States/M",
            "mutually exclusive",
        ),
        (
            "distributed MaxConcurrency too high",
            distributed(json!({"MaxConcurrency": 10001})),
            "/States/M/MaxConcurrency",
            "between 0 and 10000",
        ),
        (
            "item reader bad config",
            distributed(
                json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "GIVEN"}}}),
            ),
            "/States/M/ItemReader/ReaderConfig",
            "requires CSVHeaders",
        ),
        (
            "item reader missing resource",
            distributed(json!({"ItemReader": {"Parameters": {}}})),
            "/States/M/ItemReader/Resource",
            "Missing required field",
        ),
        (
            "item reader unknown field",
            distributed(
                json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Bucket": "b"}}),
            ),
            "/States/M/ItemReader/Bucket",
            "not supported by ItemReader",
        ),
        (
            "sync task in express child",
            def(
                "M",
                json!({"M": {"Type": "Map", "End": true, "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                "StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
                    {"StartAt": "Run", "States": {"Run": {"Type": "Task",
                        "Resource": "arn:aws:states:::ecs:runTask.sync", "End": true}}}]}}}}}),
            ),
            "/States/M/ItemProcessor/States/P/Branches/0/States/Run/Resource",
            "'.sync' integration pattern is not supported in an EXPRESS",
        ),
        (
            "item batcher empty",
            distributed(json!({"ItemBatcher": {}})),
            "/States/M/ItemBatcher",
            "at least one of",
        ),
        (
            "ItemsPath with ItemReader",
            distributed(json!({"ItemsPath": "$.items", "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "Parameters": {"Bucket": "b", "Key": "k"}}})),
            "/States/M",
            "'ItemsPath' and 'ItemReader' are mutually exclusive",
        ),
        (
            "item batcher bytes too large",
            distributed(json!({"ItemBatcher": {"MaxInputBytesPerBatch": 300000}})),
            "/States/M/ItemBatcher/MaxInputBytesPerBatch",
            "262144",
        ),
        (
            "result writer bad config",
            distributed(json!({"ResultWriter": {"WriterConfig": {"OutputType": "XML"}}})),
            "/States/M/ResultWriter/WriterConfig/OutputType",
            "JSON or JSONL",
        ),
    ]
}

/// A distributed Map state `M` with `extra` fields merged in.
fn distributed(extra: Value) -> Value {
    let mut m = json!({
        "Type": "Map",
        "End": true,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
            "StartAt": "Inner",
            "States": {"Inner": {"Type": "Succeed"}}
        }
    });
    if let (Some(obj), Some(extra)) = (m.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            obj.insert(k.clone(), v.clone());
        }
    }
    def("M", json!({"M": m}))
}

#[test]
fn bad_definitions_report_location_and_message() {
    let mut failures = Vec::new();
    for (name, d, location, fragment) in bad_definitions() {
        let diags = validate_definition(&d);
        let hit = diags
            .iter()
            .any(|x| x.location == location && x.message.contains(fragment));
        if !hit {
            failures.push(format!(
                "{name}: expected {location:?} containing {fragment:?}, got {diags:#?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn all_problems_are_collected() {
    let d = def(
        "A",
        json!({
            "A": {"Type": "Pass", "Foo": 1, "Next": "Ghost"},
            "B": {"Type": "Wait", "End": true},
            "C": {"Type": "Task", "End": true}
        }),
    );
    let diags = validate_definition(&d);
    let locations: Vec<&str> = diags.iter().map(|d| d.location.as_str()).collect();
    for expected in [
        "/States/A/Foo",
        "/States/A/Next",
        "/States/B",
        "/States/C/Resource",
    ] {
        assert!(
            locations.contains(&expected),
            "{expected} missing from {diags:#?}"
        );
    }
}

#[test]
fn unknown_state_types_do_not_cascade() {
    // One bad Type should not also produce "no terminal state".
    let diags = validate_definition(&def("A", json!({"A": {"Type": "Nope"}})));
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0].location, "/States/A/Type");
}

#[test]
fn map_processor_scope_is_checked_for_reachability() {
    let d = def(
        "M",
        json!({"M": {"Type": "Map", "End": true, "ItemProcessor": {
            "StartAt": "I", "States": {"I": {"Type": "Succeed"}, "Orphan": {"Type": "Succeed"}}}}}),
    );
    let diags = validate_definition(&d);
    assert_eq!(
        diags,
        vec![Diagnostic::new(
            "/States/M/ItemProcessor/States/Orphan",
            "State 'Orphan' is not reachable from StartAt"
        )]
    );
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        prop_oneof![
            "[a-zA-Z$.\\[\\]'*@()?]{0,12}".prop_map(Value::String),
            prop::sample::select(vec![
                "Pass",
                "Task",
                "Choice",
                "Wait",
                "Succeed",
                "Fail",
                "Parallel",
                "Map",
                "States.ALL",
                "$",
                "$$",
                "$.a",
                "A",
                "B",
                "DISTRIBUTED",
                "INLINE",
                "CSV",
                "GIVEN",
            ])
            .prop_map(|s| Value::String(s.to_string())),
        ],
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        let keys = prop::sample::select(vec![
            "StartAt",
            "States",
            "Type",
            "Next",
            "End",
            "A",
            "B",
            "Choices",
            "Variable",
            "Branches",
            "ItemProcessor",
            "Iterator",
            "ProcessorConfig",
            "Mode",
            "Retry",
            "Catch",
            "ErrorEquals",
            "Parameters",
            "x.$",
            "ItemReader",
            "ReaderConfig",
            "InputType",
            "ItemBatcher",
            "Default",
            "Resource",
            "Seconds",
            "And",
            "Not",
            "ResultPath",
            "Label",
            "TimeoutSeconds",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys, inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

proptest! {
    #[test]
    fn validate_str_never_panics_on_strings(s in ".{0,200}") {
        let _ = validate_str(&s);
    }

    #[test]
    fn validate_definition_never_panics_on_json(v in arb_json()) {
        let _ = validate_definition(&v);
        let _ = validate_str(&v.to_string());
    }
}

#[test]
fn repository_state_machines_are_valid() {
    // The pipeline's own definitions run on AWS, so they must pass the same checks here.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../statemachines");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.to_string_lossy().ends_with(".asl.json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable definition");
        if let Err(diags) = validate_str(&text) {
            let lines: Vec<String> = diags.iter().map(ToString::to_string).collect();
            panic!("{}:\n{}", path.display(), lines.join("\n"));
        }
    }
}
