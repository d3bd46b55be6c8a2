//! Data processing: everything an execution does to JSON between states — reference paths and
//! JSONPath queries, payload templates (`.$` keys, `$$` context), intrinsic functions and Choice
//! rules. Pure functions over `serde_json::Value`; no I/O, no clock.
//!
//! - [`path`]: Paths and Reference Paths (`$`, `$$`), `select`, `is_present`, ResultPath.
//! - [`template`]: payload templates (`Parameters`, `ItemSelector`, `ResultSelector`).
//! - [`intrinsics`]: `States.*` intrinsic functions — parser and evaluator.
//! - [`choice`]: Choice Rules — typed parse and evaluation.
//! - `cache`: the per-thread memo that parses each path and intrinsic call once.
//!
//! Known differences from AWS (whose JSONPath is Jayway's, not RFC 9535):
//!
//! - Filters follow RFC 9535: Jayway-only operators (`=~`, `in`, `nin`, `subsetof`, `size`,
//!   `empty`) and Jayway functions other than a trailing `.length()` are invalid paths, while
//!   RFC functions inside filters (`match()`, `search()`, `count()`, ...) are accepted.
//! - Dot-names with punctuation (`$.my-field`) are accepted as Jayway does, although the AWS
//!   guide asks for bracket notation there.
//! - `States.MathRandom` draws from `start <= n < end` with Rust's seeded generator, so a given
//!   seed is repeatable here but does not reproduce AWS's number.
//! - `States.MathAdd` rounds non-integers the Java way (as AWS does) and adds 64-bit integers;
//!   a path argument of an intrinsic that matches nothing is `States.IntrinsicFailure`.

pub(crate) mod cache;
pub mod choice;
pub mod intrinsics;
pub mod path;
pub mod template;

use serde_json::Value;

/// The JSON type of a value, with its article, for messages: `"an array"`, `"null"`, ...
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
