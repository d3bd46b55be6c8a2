//! Intrinsic functions (`States.Format`, `States.Array`, `States.Hash`, ...) of the JSONPath
//! query language: recognising a call, parsing it into a typed AST ([`parser`]) and evaluating
//! it against the state input and context object ([`functions`]).
//!
//! Every runtime failure — a path argument that matches nothing, a wrong argument type, a
//! limit exceeded — is a `States.IntrinsicFailure` whose cause names the function.

pub mod functions;
pub mod parser;

use serde_json::Value;

use crate::StatesError;
use crate::data::cache;
use crate::data::path::{PathError, compact, select};
pub use parser::{Arg, Call, Function, MAX_NESTING, parse};

use functions::FormatTemplate;

/// True when `s` starts with `States.` followed by a name and `(` — i.e. it is meant as an
/// intrinsic call rather than a path (it may still fail to parse).
pub fn is_intrinsic(s: &str) -> bool {
    let Some(rest) = s.trim_start().strip_prefix("States.") else {
        return false;
    };
    let name_len = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    name_len > 0
        && rest
            .get(name_len..)
            .is_some_and(|r| r.trim_start().starts_with('('))
}

/// Parses and evaluates an intrinsic call against `input` (paths `$...`) and `ctx` (`$$...`).
pub fn evaluate(expr: &str, input: &Value, ctx: &Value) -> Result<Value, StatesError> {
    let call = cache::cached(&PARSED, expr, parse).map_err(StatesError::intrinsic_failure)?;
    evaluate_call(&call, input, ctx)
}

thread_local! {
    /// Parsed calls by their text (see [`crate::data::cache`]).
    static PARSED: cache::Cache<Call> = std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Evaluates an already-parsed call (the parser bounds its nesting, so recursion is bounded).
pub fn evaluate_call(call: &Call, input: &Value, ctx: &Value) -> Result<Value, StatesError> {
    let mut values = Vec::with_capacity(call.args.len());
    for arg in &call.args {
        values.push(match arg {
            Arg::String { value, .. } => Value::String(value.clone()),
            Arg::Number(n) => Value::Number(n.clone()),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Null => Value::Null,
            Arg::Path(path) => select(path, input, ctx).map_err(|e| {
                let doc = if path.starts_with("$$") { ctx } else { input };
                StatesError::intrinsic_failure(match e {
                    PathError::NotFound(_) => format!(
                        "{}: the JsonPath argument '{path}' could not be found in the input '{}'",
                        call.name,
                        compact(doc)
                    ),
                    PathError::Invalid(msg) => format!("{}: {msg}", call.name),
                })
            })?,
            Arg::Call(inner) => evaluate_call(inner, input, ctx)?,
        });
    }
    let template = match (call.name, call.args.first()) {
        (Function::Format, Some(Arg::String { raw, .. })) => FormatTemplate::Raw(raw),
        _ => FormatTemplate::Value,
    };
    functions::apply(call.name, &values, template).map_err(StatesError::intrinsic_failure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::names;
    use proptest::prelude::*;
    use serde_json::json;

    fn eval(expr: &str, input: Value) -> Result<Value, StatesError> {
        evaluate(expr, &input, &json!({"Execution": {"Name": "run-1"}}))
    }

    fn fails(expr: &str, input: Value, cause_part: &str) {
        let err = eval(expr, input).expect_err(expr);
        assert_eq!(err.error, names::INTRINSIC_FAILURE, "{expr}");
        assert!(err.cause.contains(cause_part), "{expr}: {}", err.cause);
    }

    #[test]
    fn recognises_calls() {
        assert!(is_intrinsic("States.Format('x')"));
        assert!(is_intrinsic("  States.UUID ()"));
        assert!(is_intrinsic("States.Nope(1)")); // looks like a call; parse reports the name
        assert!(!is_intrinsic("$.States.Format"));
        assert!(!is_intrinsic("States.Format"));
        assert!(!is_intrinsic("States.(1)"));
        assert!(!is_intrinsic("states.Format('x')"));
    }

    #[test]
    fn format_examples() {
        let input = json!({"name": "Arnav", "template": "Hello, my name is {}."});
        assert_eq!(
            eval(
                "States.Format('Hello, my name is {}.', $.name)",
                input.clone()
            ),
            Ok(json!("Hello, my name is Arnav."))
        );
        assert_eq!(
            eval("States.Format($.template, $.name)", input),
            Ok(json!("Hello, my name is Arnav."))
        );
        // Numbers, booleans and null are rendered as their JSON text (the spec's example).
        assert_eq!(
            eval(
                "States.Format('Your name is {}, we are in the year {}', $.name, 2020)",
                json!({"name": "Foo", "zebra": "stripe"})
            ),
            Ok(json!("Your name is Foo, we are in the year 2020"))
        );
        assert_eq!(
            eval(
                "States.Format('{} {} {} {}', 1.5, true, null, $.n)",
                json!({"n": -3})
            ),
            Ok(json!("1.5 true null -3"))
        );
        // Arrays and objects print the way AWS's Java executor prints lists and maps.
        assert_eq!(
            eval(
                "States.Format('{}', $.o)",
                json!({"o": {"k": "v", "n": [1, "two", null], "e": {}}})
            ),
            Ok(json!("{k=v, n=[1, two, null], e={}}"))
        );
        assert_eq!(
            eval("States.Format('{}', States.Array(1, 'a'))", json!({})),
            Ok(json!("[1, a]"))
        );
        // Non-integer numbers as Java's Double.toString prints them.
        assert_eq!(
            eval(
                "States.Format('{} {} {} {}', $.a, $.b, $.c, $.d)",
                json!({"a": 100.0, "b": 1e21, "c": 0.00000015, "d": -0.0})
            ),
            Ok(json!("100.0 1.0E21 1.5E-7 -0"))
        );
        // Escaped braces are text, not placeholders.
        assert_eq!(
            eval(r"States.Format('\{}{}\\', 'x')", json!({})),
            Ok(json!(r"{}x\"))
        );
        assert_eq!(
            eval(r"States.Format('It\'s {}', $$.Execution.Name)", json!({})),
            Ok(json!("It's run-1"))
        );
        fails("States.Format('{} {}', 1)", json!({}), "2 placeholder(s)");
        fails("States.Format('{}', 1, 2)", json!({}), "1 placeholder(s)");
        fails("States.Format($.n, 1)", json!({"n": 5}), "must be a string");
    }

    #[test]
    fn json_string_conversions() {
        assert_eq!(
            eval(
                "States.StringToJson($.escapedJsonString)",
                json!({"escapedJsonString": "{\"foo\": \"bar\"}"})
            ),
            Ok(json!({"foo": "bar"}))
        );
        assert_eq!(
            eval(
                "States.JsonToString($.unescapedJson)",
                json!({"unescapedJson": {"foo": "bar"}})
            ),
            Ok(json!("{\"foo\":\"bar\"}"))
        );
        assert_eq!(
            eval(
                "States.StringToJson(States.JsonToString($.x))",
                json!({"x": [1, {"a": null}]})
            ),
            Ok(json!([1, {"a": null}]))
        );
        fails("States.StringToJson('{nope')", json!({}), "not valid JSON");
        // An empty or blank string is null, not a parse error.
        assert_eq!(eval("States.StringToJson('')", json!({})), Ok(Value::Null));
        assert_eq!(
            eval("States.StringToJson($.s)", json!({"s": " \n\t "})),
            Ok(Value::Null)
        );
        fails(
            "States.StringToJson($.n)",
            json!({"n": 1}),
            "must be a string",
        );
    }

    #[test]
    fn array_examples() {
        let input = json!({"Id": 123456, "inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "lookingFor": 5, "index": 5});
        assert_eq!(
            eval("States.Array($.Id)", input.clone()),
            Ok(json!([123456]))
        );
        assert_eq!(eval("States.Array()", input.clone()), Ok(json!([])));
        assert_eq!(
            eval("States.Array('Foo', 2020, $.Id, null)", input.clone()),
            Ok(json!(["Foo", 2020, 123456, null]))
        );
        assert_eq!(
            eval("States.ArrayPartition($.inputArray,4)", input.clone()),
            Ok(json!([[1, 2, 3, 4], [5, 6, 7, 8], [9]]))
        );
        assert_eq!(
            eval(
                "States.ArrayContains($.inputArray, $.lookingFor)",
                input.clone()
            ),
            Ok(json!(true))
        );
        assert_eq!(
            eval("States.ArrayContains($.inputArray, 10)", input.clone()),
            Ok(json!(false))
        );
        assert_eq!(
            eval("States.ArrayRange(1, 9, 2)", json!({})),
            Ok(json!([1, 3, 5, 7, 9]))
        );
        assert_eq!(
            eval("States.ArrayRange(9, 1, -2)", json!({})),
            Ok(json!([9, 7, 5, 3, 1]))
        );
        assert_eq!(
            eval("States.ArrayRange(1, 10, 4)", json!({})),
            Ok(json!([1, 5, 9]))
        );
        assert_eq!(
            eval("States.ArrayRange(5, 5, 3)", json!({})),
            Ok(json!([5]))
        );
        assert_eq!(
            eval("States.ArrayRange(1, 9, -1)", json!({})),
            Ok(json!([]))
        );
        assert_eq!(
            eval("States.ArrayGetItem($.inputArray, $.index)", input.clone()),
            Ok(json!(6))
        );
        assert_eq!(
            eval("States.ArrayLength($.inputArray)", input.clone()),
            Ok(json!(9))
        );
        assert_eq!(
            eval(
                "States.ArrayUnique($.a)",
                json!({"a": [1, 2, 3, 3, 3, 3, 3, 3, 4]})
            ),
            Ok(json!([1, 2, 3, 4]))
        );
        assert_eq!(
            eval(
                "States.ArrayUnique($.a)",
                json!({"a": [{"x": 1, "y": 2}, {"y": 2, "x": 1}, "1", 1]})
            ),
            Ok(json!([{"x": 1, "y": 2}, "1", 1]))
        );
    }

    #[test]
    fn array_argument_checks() {
        let input = json!({"a": [1, 2, 3]});
        fails(
            "States.ArrayPartition($.a, 0)",
            input.clone(),
            "positive integer",
        );
        fails(
            "States.ArrayPartition($.a, -2)",
            input.clone(),
            "positive integer",
        );
        // Non-integer sizes and range bounds are rounded (Java's Math.round), as AWS does.
        assert_eq!(
            eval("States.ArrayPartition($.a, 1.5)", input.clone()),
            Ok(json!([[1, 2], [3]]))
        );
        fails(
            "States.ArrayPartition('x', 1)",
            input.clone(),
            "must be an array",
        );
        fails("States.ArrayRange(1, 9, 0)", json!({}), "must not be zero");
        fails("States.ArrayRange(1, 1001, 1)", json!({}), "1001 elements");
        assert_eq!(
            eval("States.ArrayRange(1.5, 4.4, 1)", json!({})),
            Ok(json!([2, 3, 4]))
        );
        fails(
            "States.ArrayRange('1', 9, 1)",
            json!({}),
            "must be a number",
        );
        assert_eq!(
            eval(
                "States.ArrayLength(States.ArrayRange(0, 999, 1))",
                json!({})
            ),
            Ok(json!(1000))
        );
        fails(
            "States.ArrayGetItem($.a, 3)",
            input.clone(),
            "out of bounds",
        );
        fails(
            "States.ArrayGetItem($.a, -1)",
            input.clone(),
            "out of bounds",
        );
        fails("States.ArrayLength($.missing)", input, "could not be found");
    }

    #[test]
    fn base64_examples() {
        assert_eq!(
            eval(
                "States.Base64Encode($.input)",
                json!({"input": "Data to encode"})
            ),
            Ok(json!("RGF0YSB0byBlbmNvZGU="))
        );
        assert_eq!(
            eval(
                "States.Base64Decode($.base64)",
                json!({"base64": "RGF0YSB0byBlbmNvZGU="})
            ),
            Ok(json!("Data to encode"))
        );
        assert_eq!(
            eval("States.Base64Decode('RGF0YSB0byBlbmNvZGU')", json!({})),
            Ok(json!("Data to encode"))
        );
        let long = "a".repeat(10_001);
        fails(
            "States.Base64Encode($.s)",
            json!({"s": long}),
            "at most 10000",
        );
        assert!(eval("States.Base64Encode($.s)", json!({"s": "a".repeat(10_000)})).is_ok());
        fails("States.Base64Decode('***')", json!({}), "not valid Base64");
        fails("States.Base64Decode('/w==')", json!({}), "not valid UTF-8");
        fails("States.Base64Encode(1)", json!({}), "must be a string");
    }

    #[test]
    fn hash_algorithms() {
        // The guide's example hashes "input data" with SHA-1; its printed value has lost one
        // hex digit ("...d18d7485e8..."), so the real 40-digit digest is asserted.
        assert_eq!(
            eval(
                "States.Hash($.Data, $.Algorithm)",
                json!({"Data": "input data", "Algorithm": "SHA-1"})
            ),
            Ok(json!("aaff4a450a104cd177d28d18d74485e8cae074b7"))
        );
        assert_eq!(
            eval("States.Hash('input data', 'MD5')", json!({})),
            Ok(json!("812f45842bc6d66ee14572ce20db8e86"))
        );
        for (algorithm, hex_len) in [
            ("MD5", 32),
            ("SHA-1", 40),
            ("SHA-256", 64),
            ("SHA-384", 96),
            ("SHA-512", 128),
        ] {
            let out = eval(
                "States.Hash('input data', $.alg)",
                json!({"alg": algorithm}),
            )
            .unwrap();
            let text = out.as_str().unwrap();
            assert_eq!(text.len(), hex_len, "{algorithm}");
            assert!(
                text.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
                "{algorithm}"
            );
        }
        assert_eq!(
            eval("States.Hash('', 'MD5')", json!({})),
            Ok(json!("d41d8cd98f00b204e9800998ecf8427e"))
        );
        assert_eq!(
            eval("States.Hash('abc', 'SHA-256')", json!({})),
            Ok(json!(
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            ))
        );
        assert_eq!(
            eval("States.Hash('abc', 'SHA-384')", json!({})),
            Ok(json!(
                "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
            ))
        );
        assert_eq!(
            eval("States.Hash('abc', 'SHA-512')", json!({})),
            Ok(json!(
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
            ))
        );
        // Non-string data is hashed in its compact JSON form.
        assert_eq!(
            eval("States.Hash(123, 'MD5')", json!({})),
            eval("States.Hash('123', 'MD5')", json!({}))
        );
        fails(
            "States.Hash('x', 'sha-1')",
            json!({}),
            "unsupported algorithm",
        );
        fails(
            "States.Hash($.s, 'MD5')",
            json!({"s": "b".repeat(10_001)}),
            "at most 10000",
        );
    }

    #[test]
    fn json_merge_example() {
        let input = json!({"json1": {"a": {"a1": 1, "a2": 2}, "b": 2}, "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}});
        assert_eq!(
            eval("States.JsonMerge($.json1, $.json2, false)", input.clone()),
            Ok(json!({"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3}))
        );
        fails(
            "States.JsonMerge($.json1, $.json2, true)",
            input.clone(),
            "deep merging is not supported",
        );
        fails(
            "States.JsonMerge($.json1, $.json2, 'no')",
            input.clone(),
            "must be a boolean",
        );
        fails(
            "States.JsonMerge($.json1, 1, false)",
            input,
            "must be a JSON object",
        );
    }

    #[test]
    fn math_functions() {
        assert_eq!(
            eval(
                "States.MathAdd($.value1, $.step)",
                json!({"value1": 111, "step": -1})
            ),
            Ok(json!(110))
        );
        // Non-integers are rounded the Java way (Math.round: halves towards +infinity).
        assert_eq!(eval("States.MathAdd(1.5, 1)", json!({})), Ok(json!(3)));
        assert_eq!(eval("States.MathAdd(-2.5, 0)", json!({})), Ok(json!(-2)));
        assert_eq!(eval("States.MathAdd(-2.6, 0.4)", json!({})), Ok(json!(-3)));
        fails("States.MathAdd('1', 1)", json!({}), "must be a number");
        fails(
            "States.MathAdd(9223372036854775807, 1)",
            json!({}),
            "overflows",
        );
        for _ in 0..50 {
            let r = eval(
                "States.MathRandom($.start, $.end)",
                json!({"start": 1, "end": 999}),
            )
            .ok()
            .and_then(|v| v.as_i64());
            assert!(r.is_some_and(|r| (1..999).contains(&r)), "{r:?}");
        }
        let seeded = eval("States.MathRandom(1, 1000000, 7)", json!({}));
        assert!(seeded.is_ok());
        assert_eq!(seeded, eval("States.MathRandom(1, 1000000, 7)", json!({})));
        // Non-integers are rounded, as AWS documents.
        assert_eq!(eval("States.MathRandom(0.6, 1.6)", json!({})), Ok(json!(1)));
        fails("States.MathRandom(5, 5)", json!({}), "less than the end");
        fails("States.MathRandom('a', 5)", json!({}), "must be a number");
    }

    #[test]
    fn string_split_and_uuid() {
        assert_eq!(
            eval(
                "States.StringSplit($.inputString, $.splitter)",
                json!({"inputString": "1,2,3,4,5", "splitter": ","})
            ),
            Ok(json!(["1", "2", "3", "4", "5"]))
        );
        assert_eq!(
            eval(
                "States.StringSplit('This.is+a,test=string', '.+,=')",
                json!({})
            ),
            Ok(json!(["This", "is", "a", "test", "string"]))
        );
        assert_eq!(
            eval("States.StringSplit('a,,b,', ',')", json!({})),
            Ok(json!(["a", "b"]))
        );
        fails("States.StringSplit(1, ',')", json!({}), "must be a string");
        let a = eval("States.UUID()", json!({})).unwrap();
        let b = eval("States.UUID()", json!({})).unwrap();
        assert_ne!(a, b);
        let text = a.as_str().unwrap();
        assert_eq!(
            uuid::Uuid::parse_str(text).map(|u| u.get_version_num()),
            Ok(4)
        );
    }

    #[test]
    fn the_guides_nine_deep_arn_example() {
        let input = json!({"ImageRecipe": {"Arn": "arn:aws:imagebuilder:us-east-1:123456789012:image-recipe/my-recipe/1.0.2"}});
        let expr = "States.Format('{}.{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 0), States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 1))";
        // The guide prints this call with three placeholders but only two values; the spec
        // requires equal counts, so that exact text is an error, and the two-placeholder form
        // yields the first two version components of "1.0.2".
        let err = eval(expr, input.clone()).unwrap_err();
        assert!(err.cause.contains("3 placeholder(s)"), "{}", err.cause);
        let fixed = expr.replacen("'{}.{}.{}'", "'{}.{}'", 1);
        assert_eq!(eval(&fixed, input), Ok(json!("1.0")));
    }

    #[test]
    fn whitespace_between_tokens_is_allowed() {
        assert_eq!(
            eval("  States.Format ( 'a{}b' ,  $.x )  ", json!({"x": 1})),
            Ok(json!("a1b"))
        );
        assert_eq!(
            eval("States.Array( States.MathAdd( 1 , 2 ) )", json!({})),
            Ok(json!([3]))
        );
    }

    #[test]
    fn path_arguments_keep_their_shape() {
        let input = json!({"xs": [{"v": 1}, {"v": 2}], "s": "a"});
        assert_eq!(
            eval("States.ArrayLength($.xs[*].v)", input.clone()),
            Ok(json!(2))
        );
        assert_eq!(
            eval("States.Array($.xs[0].v, $.xs.length())", input.clone()),
            Ok(json!([1, 2]))
        );
        let err = eval("States.Format('{}', $.missing)", input).unwrap_err();
        assert_eq!(err.error, names::INTRINSIC_FAILURE);
        assert!(
            err.cause.contains("'$.missing'") && err.cause.contains("States.Format"),
            "{}",
            err.cause
        );
    }

    #[test]
    fn parse_errors_are_intrinsic_failures() {
        fails("States.Nope()", json!({}), "unknown intrinsic function");
        fails(
            "States.Format('x'",
            json!({}),
            "Invalid intrinsic function call",
        );
    }

    proptest! {
        #[test]
        fn evaluate_never_panics(
            expr in "States\\.[A-Za-z]{0,14}\\([ -~]{0,40}\\)?",
            junk in "\\PC{0,40}",
            n in any::<i64>(),
            m in any::<i64>(),
        ) {
            let input = json!({"a": [1, 2, 3], "s": "x,y", "n": n, "m": m, "o": {"k": 1}});
            let _ = evaluate(&expr, &input, &json!({}));
            let _ = evaluate(&junk, &input, &json!({}));
            for f in ["ArrayRange($.n, $.m, $.n)", "ArrayRange($.m, $.n, 1)", "MathAdd($.n, $.m)",
                      "MathRandom($.n, $.m, $.n)", "ArrayPartition($.a, $.n)", "ArrayGetItem($.a, $.m)",
                      "Format($.s, $.n)", "Hash($.o, $.s)", "JsonMerge($.o, $.o, false)"] {
                let _ = evaluate(&format!("States.{f}"), &input, &json!({}));
            }
        }
    }
}
