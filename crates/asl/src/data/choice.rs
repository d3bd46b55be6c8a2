//! Choice Rules of a `Choice` state: parsing the rule objects into a typed [`ChoiceRule`] and
//! evaluating them against the state input and context object with AWS's semantics.
//!
//! The rules that matter for matching AWS exactly:
//!
//! - a comparison whose variable (or operand) has the wrong type is simply false;
//! - a `Variable` (or `*Path` operand) that matches nothing is a `States.Runtime` error —
//!   except for `IsPresent`, which exists to ask exactly that;
//! - strings compare like Java's `String.compareTo` (UTF-16 code units);
//! - timestamps are RFC 3339 with an uppercase `T` and an uppercase `Z` (or a numeric offset)
//!   and compare as instants;
//! - `StringMatches` has one wildcard, `*`, and the escapes `\*` and `\\`.

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Number, Value};

use crate::StatesError;
use crate::data::path::{self, ParsedPath, PathError};

/// Deepest `And`/`Or`/`Not` nesting accepted; keeps recursion bounded on hostile input.
pub const MAX_RULE_DEPTH: usize = 64;

/// A parsed Choice Rule.
#[derive(Debug, Clone, PartialEq)]
pub enum ChoiceRule {
    /// Every rule matches (evaluated in order, stopping at the first false).
    And(Vec<ChoiceRule>),
    /// Any rule matches (evaluated in order, stopping at the first true).
    Or(Vec<ChoiceRule>),
    Not(Box<ChoiceRule>),
    Comparison(Comparison),
}

/// `Variable` + operator + operand.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// A Reference Path into the input (`$...`) or the context object (`$$...`).
    pub variable: String,
    pub operator: Operator,
    pub operand: Operand,
}

/// What a comparison compares the variable with.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A literal from the definition (already type-checked for the operator).
    Value(Value),
    /// The `*Path` form: a Reference Path whose value is read at evaluation time.
    Path(String),
}

/// The comparison operators (the `*Path` forms share their operator; see [`Operand::Path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    StringEquals,
    StringLessThan,
    StringGreaterThan,
    StringLessThanEquals,
    StringGreaterThanEquals,
    StringMatches,
    NumericEquals,
    NumericLessThan,
    NumericGreaterThan,
    NumericLessThanEquals,
    NumericGreaterThanEquals,
    BooleanEquals,
    TimestampEquals,
    TimestampLessThan,
    TimestampGreaterThan,
    TimestampLessThanEquals,
    TimestampGreaterThanEquals,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

/// The literal type an operator's operand must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Number,
    Boolean,
    Timestamp,
}

impl Operator {
    /// Every operator, for lookups.
    pub const ALL: [Operator; 23] = [
        Operator::StringEquals,
        Operator::StringLessThan,
        Operator::StringGreaterThan,
        Operator::StringLessThanEquals,
        Operator::StringGreaterThanEquals,
        Operator::StringMatches,
        Operator::NumericEquals,
        Operator::NumericLessThan,
        Operator::NumericGreaterThan,
        Operator::NumericLessThanEquals,
        Operator::NumericGreaterThanEquals,
        Operator::BooleanEquals,
        Operator::TimestampEquals,
        Operator::TimestampLessThan,
        Operator::TimestampGreaterThan,
        Operator::TimestampLessThanEquals,
        Operator::TimestampGreaterThanEquals,
        Operator::IsNull,
        Operator::IsPresent,
        Operator::IsNumeric,
        Operator::IsString,
        Operator::IsBoolean,
        Operator::IsTimestamp,
    ];

    /// The field name in a definition (without a `Path` suffix).
    pub fn name(self) -> &'static str {
        match self {
            Operator::StringEquals => "StringEquals",
            Operator::StringLessThan => "StringLessThan",
            Operator::StringGreaterThan => "StringGreaterThan",
            Operator::StringLessThanEquals => "StringLessThanEquals",
            Operator::StringGreaterThanEquals => "StringGreaterThanEquals",
            Operator::StringMatches => "StringMatches",
            Operator::NumericEquals => "NumericEquals",
            Operator::NumericLessThan => "NumericLessThan",
            Operator::NumericGreaterThan => "NumericGreaterThan",
            Operator::NumericLessThanEquals => "NumericLessThanEquals",
            Operator::NumericGreaterThanEquals => "NumericGreaterThanEquals",
            Operator::BooleanEquals => "BooleanEquals",
            Operator::TimestampEquals => "TimestampEquals",
            Operator::TimestampLessThan => "TimestampLessThan",
            Operator::TimestampGreaterThan => "TimestampGreaterThan",
            Operator::TimestampLessThanEquals => "TimestampLessThanEquals",
            Operator::TimestampGreaterThanEquals => "TimestampGreaterThanEquals",
            Operator::IsNull => "IsNull",
            Operator::IsPresent => "IsPresent",
            Operator::IsNumeric => "IsNumeric",
            Operator::IsString => "IsString",
            Operator::IsBoolean => "IsBoolean",
            Operator::IsTimestamp => "IsTimestamp",
        }
    }

    /// Whether a `<name>Path` form exists (AWS has none for `StringMatches` and the `Is*` tests).
    pub fn has_path_form(self) -> bool {
        !matches!(
            self,
            Operator::StringMatches
                | Operator::IsNull
                | Operator::IsPresent
                | Operator::IsNumeric
                | Operator::IsString
                | Operator::IsBoolean
                | Operator::IsTimestamp
        )
    }

    /// Resolves a definition field name: the operator and whether it is the `*Path` form.
    pub fn from_field(field: &str) -> Option<(Operator, bool)> {
        if let Some(op) = Operator::ALL.into_iter().find(|op| op.name() == field) {
            return Some((op, false));
        }
        let base = field.strip_suffix("Path")?;
        Operator::ALL
            .into_iter()
            .find(|op| op.name() == base && op.has_path_form())
            .map(|op| (op, true))
    }

    fn kind(self) -> Kind {
        use Operator::*;
        match self {
            StringEquals
            | StringLessThan
            | StringGreaterThan
            | StringLessThanEquals
            | StringGreaterThanEquals
            | StringMatches => Kind::String,
            NumericEquals
            | NumericLessThan
            | NumericGreaterThan
            | NumericLessThanEquals
            | NumericGreaterThanEquals => Kind::Number,
            TimestampEquals
            | TimestampLessThan
            | TimestampGreaterThan
            | TimestampLessThanEquals
            | TimestampGreaterThanEquals => Kind::Timestamp,
            BooleanEquals | IsNull | IsPresent | IsNumeric | IsString | IsBoolean | IsTimestamp => {
                Kind::Boolean
            }
        }
    }

    /// Whether an ordering between variable and operand satisfies this operator.
    fn accepts(self, ord: Ordering) -> bool {
        use Operator::*;
        match self {
            StringEquals | NumericEquals | TimestampEquals | BooleanEquals => ord.is_eq(),
            StringLessThan | NumericLessThan | TimestampLessThan => ord.is_lt(),
            StringGreaterThan | NumericGreaterThan | TimestampGreaterThan => ord.is_gt(),
            StringLessThanEquals | NumericLessThanEquals | TimestampLessThanEquals => ord.is_le(),
            StringGreaterThanEquals | NumericGreaterThanEquals | TimestampGreaterThanEquals => {
                ord.is_ge()
            }
            StringMatches | IsNull | IsPresent | IsNumeric | IsString | IsBoolean | IsTimestamp => {
                false
            }
        }
    }
}

/// Parse one rule object. Returns the rule and its "Next" when present (top-level rules have Next; nested rules inside And/Or/Not must not).
pub fn parse_choice(rule: &Value) -> Result<(ChoiceRule, Option<String>), String> {
    let fields = object(rule, "Choice rule")?;
    let next = match fields.get("Next") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(format!(
                "Choice rule: the field 'Next' must be a string, got {}",
                path::compact(other)
            ));
        }
    };
    let rule = parse_rule(fields, "Choice rule", 0, true)?;
    Ok((rule, next))
}

fn object<'a>(value: &'a Value, at: &str) -> Result<&'a Map<String, Value>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("{at}: a Choice Rule must be a JSON object"))
}

fn parse_rule(
    fields: &Map<String, Value>,
    at: &str,
    depth: usize,
    top: bool,
) -> Result<ChoiceRule, String> {
    if depth > MAX_RULE_DEPTH {
        return Err(format!(
            "{at}: Choice Rules may be nested at most {MAX_RULE_DEPTH} deep"
        ));
    }
    let mut rule: Option<ChoiceRule> = None;
    let mut operator: Option<(&str, Operator, Operand)> = None;
    let mut variable: Option<&Value> = None;
    for (field, value) in fields {
        match field.as_str() {
            "Next" if top => {}
            "Next" => {
                return Err(format!(
                    "{at}: the field 'Next' is only allowed in a top-level Choice Rule, not inside And, Or or Not"
                ));
            }
            // The States Language lets any object carry a human-readable comment.
            "Comment" => {
                if !value.is_string() {
                    return Err(format!("{at}: the field 'Comment' must be a string"));
                }
            }
            "Variable" => variable = Some(value),
            "And" | "Or" => {
                let Some(items) = value.as_array().filter(|a| !a.is_empty()) else {
                    return Err(format!(
                        "{at}: the field '{field}' must be a non-empty array of Choice Rules"
                    ));
                };
                let mut rules = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let inner_at = format!("{at} {field}[{i}]");
                    let inner = object(item, &inner_at)?;
                    rules.push(parse_rule(inner, &inner_at, depth + 1, false)?);
                }
                let combined = if field == "And" {
                    ChoiceRule::And(rules)
                } else {
                    ChoiceRule::Or(rules)
                };
                set_once(&mut rule, combined, field, at)?;
            }
            "Not" => {
                let inner_at = format!("{at} Not");
                let inner = value.as_object().ok_or_else(|| {
                    format!("{at}: the field 'Not' must be a single Choice Rule object")
                })?;
                let parsed = parse_rule(inner, &inner_at, depth + 1, false)?;
                set_once(&mut rule, ChoiceRule::Not(Box::new(parsed)), field, at)?;
            }
            other => {
                let Some((op, is_path)) = Operator::from_field(other) else {
                    return Err(format!("{at}: unknown field '{other}'"));
                };
                if let Some((previous, _, _)) = operator {
                    return Err(format!(
                        "{at}: a Choice Rule has exactly one comparison operator, found '{previous}' and '{other}'"
                    ));
                }
                let operand = parse_operand(op, is_path, other, value, at)?;
                operator = Some((other, op, operand));
            }
        }
    }
    match (rule, operator, variable) {
        (Some(_), Some((name, _, _)), _) => Err(format!(
            "{at}: the comparison operator '{name}' cannot be combined with And, Or or Not"
        )),
        (Some(_), None, Some(_)) => Err(format!(
            "{at}: the field 'Variable' cannot be combined with And, Or or Not"
        )),
        (Some(r), None, None) => Ok(r),
        (None, Some((_, op, operand)), Some(var)) => {
            let Value::String(var) = var else {
                return Err(format!("{at}: the field 'Variable' must be a string"));
            };
            path::validate_reference_path(var)
                .map_err(|e| format!("{at}: the field 'Variable' is invalid: {e}"))?;
            Ok(ChoiceRule::Comparison(Comparison {
                variable: var.clone(),
                operator: op,
                operand,
            }))
        }
        (None, Some((name, _, _)), None) => Err(format!(
            "{at}: the comparison operator '{name}' requires the field 'Variable'"
        )),
        (None, None, Some(_)) => Err(format!(
            "{at}: the field 'Variable' requires a comparison operator such as 'StringEquals'"
        )),
        (None, None, None) => Err(format!(
            "{at}: a Choice Rule needs a comparison (Variable and an operator), And, Or or Not"
        )),
    }
}

fn set_once(
    slot: &mut Option<ChoiceRule>,
    rule: ChoiceRule,
    field: &str,
    at: &str,
) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!(
            "{at}: only one of And, Or and Not may appear in a Choice Rule (found another besides '{field}')"
        ));
    }
    *slot = Some(rule);
    Ok(())
}

fn parse_operand(
    op: Operator,
    is_path: bool,
    field: &str,
    value: &Value,
    at: &str,
) -> Result<Operand, String> {
    if is_path {
        let Value::String(p) = value else {
            return Err(format!(
                "{at}: the field '{field}' must be a string containing a Reference Path"
            ));
        };
        path::validate_reference_path(p)
            .map_err(|e| format!("{at}: the field '{field}' is invalid: {e}"))?;
        return Ok(Operand::Path(p.clone()));
    }
    let ok = match op.kind() {
        Kind::String => value.is_string(),
        Kind::Number => value.is_number(),
        Kind::Boolean => value.is_boolean(),
        Kind::Timestamp => value.as_str().is_some_and(|s| parse_timestamp(s).is_some()),
    };
    if !ok {
        let expected = match op.kind() {
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Boolean => "a boolean",
            Kind::Timestamp => "an RFC 3339 timestamp string such as '2016-08-18T17:33:00Z'",
        };
        return Err(format!("{at}: the field '{field}' must be {expected}"));
    }
    Ok(Operand::Value(value.clone()))
}

impl ChoiceRule {
    /// Evaluates the rule. Type mismatches are `false`; a missing variable or operand path is
    /// a `States.Runtime` error (except for `IsPresent`).
    pub fn evaluate(&self, input: &Value, ctx: &Value) -> Result<bool, StatesError> {
        match self {
            ChoiceRule::And(rules) => {
                for r in rules {
                    if !r.evaluate(input, ctx)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            ChoiceRule::Or(rules) => {
                for r in rules {
                    if r.evaluate(input, ctx)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            ChoiceRule::Not(rule) => Ok(!rule.evaluate(input, ctx)?),
            ChoiceRule::Comparison(c) => c.evaluate(input, ctx),
        }
    }
}

impl Comparison {
    /// Evaluates this comparison.
    pub fn evaluate(&self, input: &Value, ctx: &Value) -> Result<bool, StatesError> {
        if self.operator == Operator::IsPresent {
            let present = ParsedPath::parse(&self.variable)
                .map_err(|e| invalid_path(&self.variable, &e))?
                .is_present(input, ctx);
            return Ok(Some(&Value::Bool(present)) == self.literal());
        }
        let var = lookup(&self.variable, input, ctx)?;
        let operand = match &self.operand {
            Operand::Value(v) => v.clone(),
            Operand::Path(p) => lookup(p, input, ctx)?,
        };
        // The `Is*` tests compare a type test with their boolean operand.
        let type_test = |holds: bool| operand.as_bool() == Some(holds);
        Ok(match self.operator {
            Operator::IsNull => type_test(var.is_null()),
            Operator::IsNumeric => type_test(var.is_number()),
            Operator::IsString => type_test(var.is_string()),
            Operator::IsBoolean => type_test(var.is_boolean()),
            Operator::IsTimestamp => {
                type_test(var.as_str().is_some_and(|s| parse_timestamp(s).is_some()))
            }
            Operator::IsPresent => false, // answered above, before the variable is read
            Operator::StringMatches => match (var.as_str(), operand.as_str()) {
                (Some(s), Some(pattern)) => string_matches(s, pattern),
                _ => false,
            },
            op => compare(op.kind(), &var, &operand).is_some_and(|ord| op.accepts(ord)),
        })
    }

    fn literal(&self) -> Option<&Value> {
        match &self.operand {
            Operand::Value(v) => Some(v),
            Operand::Path(_) => None,
        }
    }
}

/// Reads a Choice path; a path that matches nothing is AWS's `States.Runtime` error.
fn lookup(p: &str, input: &Value, ctx: &Value) -> Result<Value, StatesError> {
    path::select(p, input, ctx).map_err(|e| invalid_path(p, &e))
}

fn invalid_path(p: &str, e: &PathError) -> StatesError {
    match e {
        PathError::NotFound(_) => StatesError::runtime(format!(
            "Invalid path '{p}': The choice state's condition path references an invalid value."
        )),
        PathError::Invalid(msg) => StatesError::runtime(format!("Invalid path '{p}': {msg}")),
    }
}

/// Orders two values of the operator's kind; `None` when either has another type.
fn compare(kind: Kind, a: &Value, b: &Value) -> Option<Ordering> {
    match kind {
        Kind::String => {
            let (a, b) = (a.as_str()?, b.as_str()?);
            // Java's String.compareTo compares UTF-16 code units.
            Some(a.encode_utf16().cmp(b.encode_utf16()))
        }
        Kind::Number => match (a, b) {
            (Value::Number(a), Value::Number(b)) => compare_numbers(a, b),
            _ => None,
        },
        Kind::Boolean => match (a, b) {
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            _ => None,
        },
        Kind::Timestamp => {
            let a = parse_timestamp(a.as_str()?)?;
            let b = parse_timestamp(b.as_str()?)?;
            Some(a.cmp(&b))
        }
    }
}

/// Exact for integers, IEEE 754 doubles otherwise (as the developer guide advises).
fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// Parses an AWS timestamp: RFC 3339 with an uppercase `T` between date and time and an
/// uppercase `Z` (or a numeric offset) — chrono alone would also accept `t`, `z` and a space.
pub fn parse_timestamp(s: &str) -> Option<DateTime<FixedOffset>> {
    if s.as_bytes().get(10) != Some(&b'T') || s.contains(['t', 'z', ' ']) {
        return None;
    }
    DateTime::parse_from_rfc3339(s).ok()
}

/// `StringMatches`: `*` matches any run of characters; `\*` is a literal star and `\\` a
/// literal backslash.
pub fn string_matches(s: &str, pattern: &str) -> bool {
    #[derive(PartialEq)]
    enum Tok {
        Lit(char),
        Star,
    }
    let mut toks = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => toks.push(Tok::Lit(chars.next().unwrap_or('\\'))),
            '*' => toks.push(Tok::Star),
            c => toks.push(Tok::Lit(c)),
        }
    }
    let text: Vec<char> = s.chars().collect();
    // Greedy match with backtracking to the last star: O(len(text) * len(pattern)) at worst.
    let (mut t, mut p) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match toks.get(p) {
            Some(Tok::Star) => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(Tok::Lit(c)) if text.get(t) == Some(c) => {
                t += 1;
                p += 1;
            }
            _ => match backtrack {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    backtrack = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    toks.get(p..)
        .unwrap_or_default()
        .iter()
        .all(|tok| *tok == Tok::Star)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::names;
    use proptest::prelude::*;
    use serde_json::json;

    fn rule(v: Value) -> ChoiceRule {
        parse_choice(&v).unwrap().0
    }

    fn eval(r: Value, input: Value) -> Result<bool, StatesError> {
        rule(r).evaluate(&input, &json!({"Execution": {"Name": "x"}}))
    }

    #[test]
    fn the_developer_guide_choice_example() {
        // {"type": "Private", "value": 22} goes to ValueInTwenties.
        let input = json!({"type": "Private", "value": 22});
        let choices = [
            json!({"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"}),
            json!({"Variable": "$.value", "NumericEquals": 0, "Next": "ValueIsZero"}),
            json!({"And": [
                {"Variable": "$.value", "NumericGreaterThanEquals": 20},
                {"Variable": "$.value", "NumericLessThan": 30}
            ], "Next": "ValueInTwenties"}),
        ];
        let mut chosen = None;
        for c in &choices {
            let (r, next) = parse_choice(c).unwrap();
            if r.evaluate(&input, &json!({})).unwrap() {
                chosen = next;
                break;
            }
        }
        assert_eq!(chosen.as_deref(), Some("ValueInTwenties"));
    }

    #[test]
    fn parse_builds_typed_rules() {
        let (r, next) = parse_choice(
            &json!({"Variable": "$.foo", "NumericEquals": 1, "Next": "FirstMatchState"}),
        )
        .unwrap();
        assert_eq!(next.as_deref(), Some("FirstMatchState"));
        assert_eq!(
            r,
            ChoiceRule::Comparison(Comparison {
                variable: "$.foo".into(),
                operator: Operator::NumericEquals,
                operand: Operand::Value(json!(1)),
            })
        );
        let (r, next) =
            parse_choice(&json!({"Variable": "$.a", "StringEqualsPath": "$$.Execution.Name"}))
                .unwrap();
        assert_eq!(next, None);
        assert_eq!(
            r,
            ChoiceRule::Comparison(Comparison {
                variable: "$.a".into(),
                operator: Operator::StringEquals,
                operand: Operand::Path("$$.Execution.Name".into()),
            })
        );
    }

    #[test]
    fn parse_rejects_malformed_rules() {
        let cases = [
            (
                json!({"Variable": "$.a", "StringEquals": "x", "Foo": 1}),
                "unknown field 'Foo'",
            ),
            (
                json!({"Variable": "$.a", "StringMatchesPath": "$.b"}),
                "unknown field 'StringMatchesPath'",
            ),
            (
                json!({"Variable": "$.a", "IsNullPath": "$.b"}),
                "unknown field 'IsNullPath'",
            ),
            (
                json!({"Variable": "$.a", "NumericEquals": "1"}),
                "'NumericEquals' must be a number",
            ),
            (
                json!({"Variable": "$.a", "StringEquals": 1}),
                "'StringEquals' must be a string",
            ),
            (
                json!({"Variable": "$.a", "BooleanEquals": "true"}),
                "'BooleanEquals' must be a boolean",
            ),
            (
                json!({"Variable": "$.a", "IsPresent": 1}),
                "'IsPresent' must be a boolean",
            ),
            (
                json!({"Variable": "$.a", "TimestampEquals": "2016-08-18t17:33:00Z"}),
                "'TimestampEquals' must be an RFC 3339",
            ),
            (
                json!({"Variable": "$.a", "NumericEqualsPath": "$.b[*]"}),
                "'NumericEqualsPath' is invalid",
            ),
            (
                json!({"Variable": "$.a[*]", "NumericEquals": 1}),
                "'Variable' is invalid",
            ),
            (
                json!({"Variable": 5, "NumericEquals": 1}),
                "'Variable' must be a string",
            ),
            (
                json!({"Variable": "$.a", "NumericEquals": 1, "NumericLessThan": 2}),
                "exactly one comparison operator",
            ),
            (json!({"Variable": "$.a"}), "requires a comparison operator"),
            (json!({"NumericEquals": 1}), "requires the field 'Variable'"),
            (json!({}), "needs a comparison"),
            (json!({"And": []}), "'And' must be a non-empty array"),
            (json!({"Or": {}}), "'Or' must be a non-empty array"),
            (json!({"Not": []}), "'Not' must be a single Choice Rule"),
            (
                json!({"And": [{"Variable": "$.a", "IsNull": true, "Next": "X"}]}),
                "'Next' is only allowed in a top-level",
            ),
            (
                json!({"Not": {"Variable": "$.a", "IsNull": true, "Next": "X"}}),
                "'Next' is only allowed in a top-level",
            ),
            (
                json!({"And": [{"Variable": "$.a", "Bogus": true}]}),
                "And[0]: unknown field 'Bogus'",
            ),
            (
                json!({"Not": {"Variable": "$.a", "IsNull": true}, "Variable": "$.b"}),
                "'Variable' cannot be combined",
            ),
            (
                json!({"Not": {"Variable": "$.a", "IsNull": true}, "Or": [{"Variable": "$.a", "IsNull": true}]}),
                "only one of And, Or and Not",
            ),
            (
                json!({"Variable": "$.a", "IsNull": true, "Next": 3}),
                "'Next' must be a string",
            ),
            (json!("rule"), "must be a JSON object"),
        ];
        for (r, part) in cases {
            let err = parse_choice(&r).expect_err(&r.to_string());
            assert!(err.contains(part), "{r}: {err}");
        }
    }

    #[test]
    fn comments_and_combinators_parse() {
        let (r, next) = parse_choice(&json!({
            "Comment": "adults only",
            "And": [
                {"Variable": "$.age", "NumericGreaterThanEquals": 18, "Comment": "inner"},
                {"Or": [
                    {"Variable": "$.country", "StringEquals": "NZ"},
                    {"Not": {"Variable": "$.banned", "BooleanEquals": true}}
                ]}
            ],
            "Next": "Adult"
        }))
        .unwrap();
        assert_eq!(next.as_deref(), Some("Adult"));
        assert!(matches!(&r, ChoiceRule::And(rules) if rules.len() == 2));
        let ctx = json!({});
        assert_eq!(
            r.evaluate(&json!({"age": 20, "country": "DE", "banned": false}), &ctx),
            Ok(true)
        );
        assert_eq!(
            r.evaluate(&json!({"age": 20, "country": "DE", "banned": true}), &ctx),
            Ok(false)
        );
        assert_eq!(
            r.evaluate(&json!({"age": 20, "country": "NZ", "banned": true}), &ctx),
            Ok(true)
        );
        assert_eq!(
            r.evaluate(&json!({"age": 17, "country": "NZ"}), &ctx),
            Ok(false)
        );
        assert!(parse_choice(&json!({"Variable": "$.a", "IsNull": true, "Comment": 1})).is_err());
    }

    #[test]
    fn every_operator_resolves_from_its_field_name() {
        for op in Operator::ALL {
            assert_eq!(Operator::from_field(op.name()), Some((op, false)));
            let path_field = format!("{}Path", op.name());
            let expected = op.has_path_form().then_some((op, true));
            assert_eq!(Operator::from_field(&path_field), expected, "{path_field}");
        }
        assert_eq!(
            Operator::ALL.iter().filter(|o| o.has_path_form()).count(),
            16
        );
    }

    #[test]
    fn deep_nesting_is_rejected_not_overflowed() {
        let mut r = json!({"Variable": "$.a", "IsNull": true});
        for _ in 0..(MAX_RULE_DEPTH + 2) {
            r = json!({"Not": r});
        }
        assert!(parse_choice(&r).unwrap_err().contains("nested at most"));
    }

    #[test]
    fn string_operators() {
        let input = json!({"foo": "MyStringABD", "e": "é", "emoji": "😀", "pua": "\u{FF5E}"});
        assert_eq!(
            eval(
                json!({"Variable": "$.foo", "StringEquals": "MyStringABD"}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.foo", "StringGreaterThan": "MyStringABC"}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.foo", "StringLessThan": "MyStringABC"}),
                input.clone()
            ),
            Ok(false)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.foo", "StringLessThanEquals": "MyStringABD"}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.foo", "StringGreaterThanEquals": "N"}),
                input.clone()
            ),
            Ok(false)
        );
        // UTF-16 order (Java): a surrogate pair (0xD83D...) sorts before U+FF5E, unlike code points.
        assert_eq!(
            eval(
                json!({"Variable": "$.emoji", "StringLessThan": "\u{FF5E}"}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.pua", "StringGreaterThanPath": "$.emoji"}),
                input.clone()
            ),
            Ok(true)
        );
        // A number is never equal to a string.
        assert_eq!(
            eval(
                json!({"Variable": "$.n", "StringEquals": "1"}),
                json!({"n": 1})
            ),
            Ok(false)
        );
    }

    #[test]
    fn numeric_operators_and_type_mismatch() {
        let input = json!({"value": 22, "f": 1.5, "big": 9007199254740993u64, "s": "22"});
        assert_eq!(
            eval(
                json!({"Variable": "$.value", "NumericEquals": 22}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.value", "NumericEquals": 22.0}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.f", "NumericGreaterThan": 1}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.f", "NumericLessThanEquals": 1.5}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.big", "NumericGreaterThan": 9007199254740992u64}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.s", "NumericEquals": 22}),
                input.clone()
            ),
            Ok(false)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.value", "NumericLessThanPath": "$.big"}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.value", "NumericEqualsPath": "$.s"}),
                input
            ),
            Ok(false)
        );
    }

    #[test]
    fn boolean_and_type_tests() {
        let input = json!({"t": true, "n": null, "x": 1, "s": "a", "ts": "2016-08-18T17:33:00Z"});
        assert_eq!(
            eval(
                json!({"Variable": "$.t", "BooleanEquals": true}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.x", "BooleanEquals": true}),
                input.clone()
            ),
            Ok(false)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.t", "BooleanEqualsPath": "$.t"}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(json!({"Variable": "$.n", "IsNull": true}), input.clone()),
            Ok(true)
        );
        assert_eq!(
            eval(json!({"Variable": "$.x", "IsNull": false}), input.clone()),
            Ok(true)
        );
        assert_eq!(
            eval(json!({"Variable": "$.x", "IsNumeric": true}), input.clone()),
            Ok(true)
        );
        assert_eq!(
            eval(json!({"Variable": "$.s", "IsNumeric": true}), input.clone()),
            Ok(false)
        );
        assert_eq!(
            eval(json!({"Variable": "$.s", "IsString": true}), input.clone()),
            Ok(true)
        );
        assert_eq!(
            eval(json!({"Variable": "$.t", "IsBoolean": true}), input.clone()),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.ts", "IsTimestamp": true}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.s", "IsTimestamp": false}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(json!({"Variable": "$.ts", "IsString": true}), input),
            Ok(true)
        );
    }

    #[test]
    fn is_present_never_errors_but_other_tests_do() {
        let input = json!({"a": 1});
        assert_eq!(
            eval(json!({"Variable": "$.a", "IsPresent": true}), input.clone()),
            Ok(true)
        );
        assert_eq!(
            eval(json!({"Variable": "$.b", "IsPresent": true}), input.clone()),
            Ok(false)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.b", "IsPresent": false}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$$.Execution.Name", "IsPresent": true}),
                input.clone()
            ),
            Ok(true)
        );
        let err = eval(json!({"Variable": "$.b", "IsNull": true}), input.clone()).unwrap_err();
        assert_eq!(err.error, names::RUNTIME);
        assert_eq!(
            err.cause,
            "Invalid path '$.b': The choice state's condition path references an invalid value."
        );
        let err = eval(
            json!({"Variable": "$.a", "NumericEqualsPath": "$.missing"}),
            input.clone(),
        )
        .unwrap_err();
        assert_eq!(err.error, names::RUNTIME);
        assert!(err.cause.contains("'$.missing'"));
        // An error inside And propagates; short-circuiting skips later rules.
        let and = json!({"And": [{"Variable": "$.a", "NumericEquals": 2}, {"Variable": "$.zzz", "IsNull": true}]});
        assert_eq!(eval(and, input.clone()), Ok(false));
        let or = json!({"Or": [{"Variable": "$.a", "NumericEquals": 2}, {"Variable": "$.zzz", "IsNull": true}]});
        assert_eq!(
            eval(or, input).map_err(|e| e.error),
            Err(names::RUNTIME.to_owned())
        );
    }

    #[test]
    fn timestamps() {
        let input = json!({"t": "2001-01-01T12:00:00Z", "off": "2001-01-01T14:00:00+02:00", "frac": "2001-01-01T12:00:00.500Z", "lower": "2001-01-01t12:00:00z"});
        assert_eq!(
            eval(
                json!({"Variable": "$.t", "TimestampEquals": "2001-01-01T12:00:00Z"}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.off", "TimestampEqualsPath": "$.t"}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.frac", "TimestampGreaterThan": "2001-01-01T12:00:00Z"}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.t", "TimestampLessThan": "2001-01-01T12:00:00.001Z"}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.t", "TimestampLessThanEquals": "2001-01-01T12:00:00Z"}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.t", "TimestampGreaterThanEquals": "2002-01-01T00:00:00Z"}),
                input.clone()
            ),
            Ok(false)
        );
        // Lowercase t/z is not an AWS timestamp: comparisons are false, IsTimestamp is false.
        assert_eq!(
            eval(
                json!({"Variable": "$.lower", "TimestampEquals": "2001-01-01T12:00:00Z"}),
                input.clone()
            ),
            Ok(false)
        );
        assert_eq!(
            eval(json!({"Variable": "$.lower", "IsTimestamp": true}), input),
            Ok(false)
        );
        assert!(parse_timestamp("2001-01-01 12:00:00Z").is_none());
        assert!(parse_timestamp("2001-01-01T12:00:00").is_none());
        assert!(parse_timestamp("2001-01-01T12:00:00-05:00").is_some());
    }

    #[test]
    fn string_matches_wildcards_and_escapes() {
        // The Choice docs' example: "log-*.txt".
        assert!(string_matches("log-2024.txt", "log-*.txt"));
        assert!(!string_matches("log-2024.csv", "log-*.txt"));
        assert!(string_matches("anything", "*"));
        assert!(string_matches("", "*"));
        assert!(string_matches("abc", "a*b*c"));
        assert!(string_matches("aXbYbZc", "a*b*c"));
        assert!(!string_matches("abcd", "a*c"));
        assert!(string_matches("a*b", r"a\*b"));
        assert!(!string_matches("aXb", r"a\*b"));
        assert!(string_matches(r"a\b", r"a\\b"));
        assert!(string_matches(r"a\xyz", r"a\\*"));
        assert!(!string_matches("ab", "abc"));
        assert_eq!(
            eval(
                json!({"Variable": "$.f", "StringMatches": "log-*.txt"}),
                json!({"f": "log-1.txt"})
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.f", "StringMatches": "*"}),
                json!({"f": 1})
            ),
            Ok(false)
        );
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[$.a-z*\\\\ ]{0,8}".prop_map(Value::String),
            Just(json!("2016-08-18T17:33:00Z")),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            let key = prop::sample::select(vec![
                "Variable",
                "And",
                "Or",
                "Not",
                "Next",
                "StringEquals",
                "StringMatches",
                "NumericLessThanPath",
                "TimestampEquals",
                "IsPresent",
                "IsNull",
                "BooleanEquals",
                "x",
            ]);
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec((key, inner), 0..4).prop_map(|kv| {
                    Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn parse_and_evaluate_never_panic(r in arb_json(), input in arb_json(), s in "\\PC{0,12}", p in "[a*\\\\]{0,12}") {
            if let Ok((rule, _)) = parse_choice(&r) {
                let _ = rule.evaluate(&input, &json!({}));
            }
            // Every operator, with whatever operand and input, on a variable that exists.
            for op in Operator::ALL {
                let candidate = json!({"Variable": "$.v", op.name(): r.clone()});
                if let Ok((rule, _)) = parse_choice(&candidate) {
                    let _ = rule.evaluate(&json!({"v": input.clone()}), &json!({}));
                }
            }
            let _ = string_matches(&s, &p);
            let _ = parse_timestamp(&s);
        }
    }
}
