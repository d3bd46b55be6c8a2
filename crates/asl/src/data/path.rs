//! Paths and Reference Paths, as the Amazon States Language (JSONPath query language) uses them.
//!
//! The query engine is `serde_json_path` (RFC 9535). On top of it this module applies the rules
//! Step Functions adds:
//!
//! - a path starts with `$` (the state input) or `$$` (the context object);
//! - AWS's JSONPath dialect (Jayway) accepts a few spellings RFC 9535 does not — `$.a.['b c']`
//!   and dot-names with punctuation such as `$.my-field` — so those are rewritten into the
//!   equivalent bracket notation before the RFC parser sees them;
//! - a *definite* path (only names and indices) yields a single value and fails when nothing
//!   matches, while an *indefinite* path (wildcard, filter, slice, union, recursive descent)
//!   yields a JSON array of every match, possibly empty;
//! - a *Reference Path* must be definite (ResultPath, Choice `Variable`, `*Path` operands,
//!   ItemsPath ...), and ResultPath writes the result at that location.

use serde_json::{Map, Value};
use serde_json_path::JsonPath;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::StatesError;
use crate::data::cache;
use crate::error::names;

/// Why a path could not be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PathError {
    /// The path is not valid syntax; the message names the path and what is wrong with it.
    #[error("{0}")]
    Invalid(String),
    /// A definite path matched nothing; holds the path.
    #[error("The path '{0}' could not be found")]
    NotFound(String),
}

/// Which document a path is evaluated against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// `$`: the state's (effective) input.
    Input,
    /// `$$`: the context object (`$$.Execution.Id`, `$$.Map.Item.Value`, ...).
    Context,
}

/// One step of a definite path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// An object member, `.name` or `['name']`.
    Field(String),
    /// An array element, `[3]` (negative counts from the end, as RFC 9535 says).
    Index(i64),
}

/// A path parsed once: the RFC 9535 query to run and, when the path is definite, its steps.
#[derive(Debug, Clone)]
pub struct ParsedPath {
    original: String,
    root: Root,
    query: JsonPath,
    /// `Some` exactly when the path is a Reference Path (names and indices only).
    segments: Option<Vec<Segment>>,
    /// Whether the query (without any `.length()`) is definite: one value, or NotFound.
    definite_query: bool,
    /// The path ends in Jayway's `.length()`, which AWS accepts in (non-reference) Paths.
    length: bool,
}

impl ParsedPath {
    /// Parses `path` as AWS does at creation time.
    pub fn parse(path: &str) -> Result<Self, PathError> {
        let (root, rest) = if let Some(rest) = path.strip_prefix("$$") {
            (Root::Context, rest)
        } else if let Some(rest) = path.strip_prefix('$') {
            (Root::Input, rest)
        } else {
            return Err(PathError::Invalid(format!(
                "The path '{path}' is invalid: a path must start with '$' or '$$'"
            )));
        };
        // `$.items.length()` is common in AWS definitions; RFC 9535 has no such function, so
        // the suffix is applied to the result of the rest of the path.
        let (rest, length) = match rest.strip_suffix(".length()") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        let normalized = format!("${}", normalize(rest));
        let query = JsonPath::parse(&normalized).map_err(|e| {
            PathError::Invalid(format!(
                "The path '{path}' is not a valid JSONPath: {} (at position {})",
                e.message(),
                e.position()
            ))
        })?;
        let segments = definite_segments(&normalized);
        Ok(Self {
            original: path.to_owned(),
            root,
            query,
            definite_query: segments.is_some(),
            segments: if length { None } else { segments },
            length,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// `$` or `$$`.
    pub fn root(&self) -> Root {
        self.root
    }

    /// The steps of a definite path; `None` for an indefinite one.
    pub fn segments(&self) -> Option<&[Segment]> {
        self.segments.as_deref()
    }

    /// The path as Jayway (AWS's JSONPath) prints it in "No results for path" messages:
    /// `$['a']['b'][0]` for `$.a.b[0]`. Paths that are not Reference Paths print as written.
    pub fn jayway_form(&self) -> String {
        let Some(segments) = &self.segments else {
            return self.original.clone();
        };
        let mut out = String::from("$");
        for segment in segments {
            match segment {
                Segment::Field(name) => {
                    out.push_str("['");
                    out.push_str(name);
                    out.push_str("']");
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    /// True when the path is a Reference Path: it can only ever identify one node.
    pub fn is_definite(&self) -> bool {
        self.segments.is_some()
    }

    /// Runs the path against `input` or `ctx` (chosen by the root) with AWS's result shape.
    pub fn select(&self, input: &Value, ctx: &Value) -> Result<Value, PathError> {
        let doc = self.document(input, ctx);
        if let Some(segments) = &self.segments {
            // A Reference Path names one node: walk to it instead of running the query
            // (same result, a fraction of the work; this is every `$.field` of a template).
            return walk(doc, segments)
                .cloned()
                .ok_or_else(|| PathError::NotFound(self.original.clone()));
        }
        let nodes = self.query.query(doc);
        let value = if self.definite_query {
            nodes
                .first()
                .cloned()
                .ok_or_else(|| PathError::NotFound(self.original.clone()))?
        } else {
            Value::Array(nodes.all().into_iter().cloned().collect())
        };
        if !self.length {
            return Ok(value);
        }
        match value {
            Value::Array(items) => Ok(Value::from(items.len())),
            Value::Object(fields) => Ok(Value::from(fields.len())),
            Value::String(s) => Ok(Value::from(s.chars().count())),
            other => Err(PathError::Invalid(format!(
                "The path '{}' applies length() to {}, which has no length",
                self.original,
                compact(&other)
            ))),
        }
    }

    /// Whether the path identifies at least one node.
    pub fn is_present(&self, input: &Value, ctx: &Value) -> bool {
        let doc = self.document(input, ctx);
        match &self.segments {
            Some(segments) => walk(doc, segments).is_some(),
            None => !self.query.query(doc).is_empty(),
        }
    }

    fn document<'a>(&self, input: &'a Value, ctx: &'a Value) -> &'a Value {
        match self.root {
            Root::Input => input,
            Root::Context => ctx,
        }
    }
}

/// The node a Reference Path's steps lead to, as RFC 9535 name and index selectors find it (a
/// negative index counts from the end).
fn walk<'a>(mut node: &'a Value, segments: &[Segment]) -> Option<&'a Value> {
    for segment in segments {
        node = match (segment, node) {
            (Segment::Field(name), Value::Object(fields)) => fields.get(name)?,
            (Segment::Index(i), Value::Array(items)) => {
                let index = if *i < 0 {
                    i.checked_add(i64::try_from(items.len()).ok()?)?
                } else {
                    *i
                };
                items.get(usize::try_from(index).ok()?)?
            }
            _ => return None,
        };
    }
    Some(node)
}

thread_local! {
    static PARSED: cache::Cache<ParsedPath> = RefCell::new(HashMap::new());
}

/// [`ParsedPath::parse`], memoised per thread (see [`cache`]).
pub(crate) fn parse_cached(path: &str) -> Result<Rc<ParsedPath>, PathError> {
    cache::cached(&PARSED, path, ParsedPath::parse)
}

/// Validates a Path (any JSONPath, may start with "$" or "$$") as AWS does at creation time.
pub fn validate_path(path: &str) -> Result<(), String> {
    ParsedPath::parse(path)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Validates a Reference Path (single node only: no filters/wildcards/slices/unions) — used by
/// ResultPath, and by Choice Variable, *Path comparisons, ItemsPath...
pub fn validate_reference_path(path: &str) -> Result<(), String> {
    parse_reference_path(path)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Validates a ResultPath value: a Reference Path into the state input (the context object is
/// read-only, so `$$` is rejected).
pub fn validate_result_path(path: &str) -> Result<(), String> {
    let parsed = parse_reference_path(path).map_err(|e| e.to_string())?;
    if parsed.root() == Root::Context {
        return Err(format!(
            "The ResultPath '{path}' is invalid: it cannot refer to the context object ('$$')"
        ));
    }
    Ok(())
}

/// Parses a path that must be a Reference Path.
pub fn parse_reference_path(path: &str) -> Result<ParsedPath, PathError> {
    let parsed = ParsedPath::parse(path)?;
    if !parsed.is_definite() {
        return Err(PathError::Invalid(format!(
            "The path '{path}' is not a valid Reference Path: it must identify a single node \
             (no wildcards, filters, slices, unions or recursive descent)"
        )));
    }
    Ok(parsed)
}

/// Select `path` against `input` (or against `ctx`, the context object, when the path starts with "$$").
/// AWS semantics: "$" is the whole input; a definite path returns the single value; an indefinite path (wildcard, filter, slice, union, recursive descent) returns a JSON array of matches; a definite path that matches nothing is NotFound.
pub fn select(path: &str, input: &Value, ctx: &Value) -> Result<Value, PathError> {
    parse_cached(path)?.select(input, ctx)
}

/// Does the (reference) path exist? For Choice IsPresent.
pub fn is_present(path: &str, input: &Value, ctx: &Value) -> Result<bool, PathError> {
    Ok(parse_cached(path)?.is_present(input, ctx))
}

/// ResultPath: None means `"ResultPath": null` (discard result, keep input). "$" replaces. Otherwise set the result at the reference path inside a copy of input, creating intermediate objects; fails with States.ResultPathMatchFailure (a StatesError) when the path cannot be applied (e.g. input is not an object where a field must be set, or an array index).
pub fn apply_result_path(
    input: Value,
    result: Value,
    result_path: Option<&str>,
) -> Result<Value, StatesError> {
    apply_result_path_cow(Cow::Owned(input), result, result_path)
}

/// [`apply_result_path`] on a borrowed or owned input: a borrowed input is copied only when
/// the output really contains it (`null`, or a path below `$`), never for `"ResultPath": "$"`.
pub fn apply_result_path_cow(
    input: Cow<'_, Value>,
    result: Value,
    result_path: Option<&str>,
) -> Result<Value, StatesError> {
    let Some(path) = result_path else {
        return Ok(input.into_owned());
    };
    let failure = |input: &Value, why: &str| {
        StatesError::new(
            names::RESULT_PATH_MATCH_FAILURE,
            format!(
                "Unable to apply ResultPath '{path}' to input '{}': {why}",
                compact(input)
            ),
        )
    };
    let parsed = match parse_cached(path).and_then(|p| {
        if p.is_definite() {
            Ok(p)
        } else {
            parse_reference_path(path).map(Rc::new)
        }
    }) {
        Ok(p) => p,
        Err(e) => return Err(failure(&input, &e.to_string())),
    };
    if parsed.root() == Root::Context {
        return Err(failure(&input, "the context object cannot be written"));
    }
    let segments = parsed.segments().unwrap_or_default();
    if segments.is_empty() {
        return Ok(result);
    }
    let mut output = input.into_owned();
    match set_at(&mut output, segments, result) {
        Ok(()) => Ok(output),
        Err(why) => Err(failure(&output, why)),
    }
}

/// Writes `value` at `segments` below `target`, creating missing objects on the way. On error
/// `target` is left untouched so the failure message can show the original input.
fn set_at(target: &mut Value, segments: &[Segment], value: Value) -> Result<(), &'static str> {
    // Check the whole walk first so a failure leaves the input unchanged.
    let mut probe: Option<&Value> = Some(target);
    for seg in segments {
        match seg {
            Segment::Index(_) => {
                return Err("a ResultPath cannot set an array element");
            }
            Segment::Field(name) => match probe {
                None => {}
                Some(Value::Object(map)) => probe = map.get(name),
                Some(_) => return Err("a field can only be set inside a JSON object"),
            },
        }
    }
    let mut current = target;
    let Some((last, parents)) = segments.split_last() else {
        *current = value;
        return Ok(());
    };
    for seg in parents {
        let Segment::Field(name) = seg else {
            return Err("a ResultPath cannot set an array element");
        };
        let Value::Object(map) = current else {
            return Err("a field can only be set inside a JSON object");
        };
        current = map
            .entry(name.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    match (last, current) {
        (Segment::Field(name), Value::Object(map)) => {
            map.insert(name.clone(), value);
            Ok(())
        }
        (Segment::Field(_), _) => Err("a field can only be set inside a JSON object"),
        (Segment::Index(_), _) => Err("a ResultPath cannot set an array element"),
    }
}

/// Compact JSON text of a value, for error causes.
pub(crate) fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// True when `name` fits RFC 9535 `member-name-shorthand` (so `.name` may stay as written).
fn is_shorthand(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let name_first = |c: char| c.is_ascii_alphabetic() || c == '_' || !c.is_ascii();
    name_first(first) && chars.all(|c| name_first(c) || c.is_ascii_digit())
}

/// Rewrites AWS/Jayway spellings into RFC 9535 (`rest` is the path after its `$`/`$$` root):
/// `.[` becomes `[`, and a dot-name with characters outside `member-name-shorthand` (such as
/// `-`) becomes a quoted bracket name. Everything inside brackets is copied as written.
fn normalize(rest: &str) -> String {
    let chars: Vec<char> = rest.chars().collect();
    let mut out = String::with_capacity(rest.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '[' => {
                let end = bracket_end(&chars, i);
                requote(&chars[i..end], &mut out);
                i = end;
            }
            '.' => {
                let descendant = chars.get(i + 1) == Some(&'.');
                let start = if descendant { i + 2 } else { i + 1 };
                match chars.get(start) {
                    Some('[') => {
                        // `$.a.['b']` (Jayway) is `$.a['b']`; `..[` stays a descendant segment.
                        out.push_str(if descendant { ".." } else { "" });
                        i = start;
                    }
                    Some('*') | None => {
                        out.extend(&chars[i..start]);
                        i = start;
                    }
                    Some(_) => {
                        let mut end = start;
                        while end < chars.len()
                            && !matches!(
                                chars[end],
                                '.' | '[' | ']' | '(' | ')' | '\'' | '"' | '*' | ',' | '?'
                            )
                            && !chars[end].is_whitespace()
                        {
                            end += 1;
                        }
                        let name: String = chars[start..end].iter().collect();
                        out.push_str(if descendant { ".." } else { "." });
                        if is_shorthand(&name) || name.is_empty() {
                            out.push_str(&name);
                        } else {
                            // `..['x']` is a descendant segment, `.['x']` is not RFC: drop the dot.
                            if !descendant {
                                out.pop();
                            }
                            out.push_str("['");
                            for ch in name.chars() {
                                if ch == '\'' || ch == '\\' {
                                    out.push('\\');
                                }
                                out.push(ch);
                            }
                            out.push_str("']");
                        }
                        i = end;
                    }
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Copies a bracket segment, re-spelling its quoted strings the RFC 9535 way. Jayway (AWS)
/// accepts any escaped character in a quoted name, e.g. `$['say \\"hi\\"']` with an escaped
/// double quote inside single quotes, which RFC 9535 rejects; the name is decoded here and
/// written back single-quoted with only `'`, `\\` and control characters escaped.
fn requote(segment: &[char], out: &mut String) {
    let mut i = 0;
    while i < segment.len() {
        let c = segment[i];
        if c != '\'' && c != '"' {
            out.push(c);
            i += 1;
            continue;
        }
        let mut text = String::new();
        let mut j = i + 1;
        let mut closed = false;
        while j < segment.len() {
            match segment[j] {
                '\\' => {
                    let Some(&esc) = segment.get(j + 1) else {
                        break;
                    };
                    match esc {
                        'b' => text.push('\u{8}'),
                        'f' => text.push('\u{c}'),
                        'n' => text.push('\n'),
                        'r' => text.push('\r'),
                        't' => text.push('\t'),
                        'u' => match unicode_escape(segment, j + 2) {
                            Some((ch, next)) => {
                                text.push(ch);
                                j = next;
                                continue;
                            }
                            None => {
                                // Not a valid escape: leave it for the RFC parser to report.
                                out.extend(&segment[i..]);
                                return;
                            }
                        },
                        other => text.push(other),
                    }
                    j += 2;
                }
                q if q == c => {
                    closed = true;
                    j += 1;
                    break;
                }
                other => {
                    text.push(other);
                    j += 1;
                }
            }
        }
        if !closed {
            // Unterminated: copy as written so the RFC parser reports it.
            out.extend(&segment[i..]);
            return;
        }
        out.push('\'');
        for ch in text.chars() {
            match ch {
                '\'' | '\\' => {
                    out.push('\\');
                    out.push(ch);
                }
                ch if (ch as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", ch as u32)),
                ch => out.push(ch),
            }
        }
        out.push('\'');
        i = j;
    }
}

/// Index just past the `]` matching the `[` at `open`, skipping quoted strings and nested
/// brackets (filters); the end of input when unbalanced (the RFC parser then reports it).
fn bracket_end(chars: &[char], open: usize) -> usize {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut i = open;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            if c == '\\' {
                i += 1;
            } else if c == q {
                quote = None;
            }
        } else {
            match c {
                '\'' | '"' => quote = Some(c),
                '[' => depth += 1,
                ']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    chars.len()
}

/// The steps of `query` (a normalized RFC 9535 query that already parsed) when it only uses
/// name and index selectors, one per segment; `None` otherwise (the path is indefinite).
fn definite_segments(query: &str) -> Option<Vec<Segment>> {
    let chars: Vec<char> = query.chars().collect();
    let mut i = 1; // past '$'
    let mut segments = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && matches!(chars[*i], ' ' | '\t' | '\n' | '\r') {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        let Some(&c) = chars.get(i) else {
            return Some(segments);
        };
        match c {
            '.' => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len()
                    && (chars[end].is_alphanumeric() || chars[end] == '_' || !chars[end].is_ascii())
                {
                    end += 1;
                }
                let name: String = chars[start..end].iter().collect();
                if !is_shorthand(&name) {
                    return None; // `..` or `.*`
                }
                segments.push(Segment::Field(name));
                i = end;
            }
            '[' => {
                i += 1;
                skip_ws(&mut i);
                match chars.get(i) {
                    Some(&q @ ('\'' | '"')) => {
                        let (name, next) = parse_quoted(&chars, i + 1, q)?;
                        segments.push(Segment::Field(name));
                        i = next;
                    }
                    Some(d) if *d == '-' || d.is_ascii_digit() => {
                        let start = i;
                        i += 1;
                        while i < chars.len() && chars[i].is_ascii_digit() {
                            i += 1;
                        }
                        let text: String = chars[start..i].iter().collect();
                        segments.push(Segment::Index(text.parse().ok()?));
                    }
                    _ => return None,
                }
                skip_ws(&mut i);
                if chars.get(i) != Some(&']') {
                    return None; // a union, slice or filter
                }
                i += 1;
            }
            _ => return None,
        }
    }
}

/// Decodes an RFC 9535 string literal starting just after its opening quote `q`; returns the
/// text and the index past the closing quote.
fn parse_quoted(chars: &[char], mut i: usize, q: char) -> Option<(String, usize)> {
    let mut out = String::new();
    while let Some(&c) = chars.get(i) {
        if c == q {
            return Some((out, i + 1));
        }
        if c != '\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let esc = *chars.get(i + 1)?;
        i += 2;
        match esc {
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            '/' | '\\' | '\'' | '"' => out.push(esc),
            'u' => {
                let hi = hex4(chars, i)?;
                i += 4;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    if chars.get(i) != Some(&'\\') || chars.get(i + 1) != Some(&'u') {
                        return None;
                    }
                    let lo = hex4(chars, i + 2)?;
                    i += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo.checked_sub(0xDC00)?)
                } else {
                    hi
                };
                out.push(char::from_u32(code)?);
            }
            _ => return None,
        }
    }
    None
}

/// The character of the `\\uXXXX` escape whose hex digits start at `i` (a surrogate pair
/// takes a second escape), and the index past it.
fn unicode_escape(chars: &[char], i: usize) -> Option<(char, usize)> {
    let hi = hex4(chars, i)?;
    if !(0xD800..0xDC00).contains(&hi) {
        return Some((char::from_u32(hi)?, i + 4));
    }
    if chars.get(i + 4) != Some(&'\\') || chars.get(i + 5) != Some(&'u') {
        return None;
    }
    let lo = hex4(chars, i + 6)?;
    let code = 0x10000 + ((hi - 0xD800) << 10) + lo.checked_sub(0xDC00)?;
    Some((char::from_u32(code)?, i + 10))
}

fn hex4(chars: &[char], i: usize) -> Option<u32> {
    let text: String = chars.get(i..i + 4)?.iter().collect();
    u32::from_str_radix(&text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn doc() -> Value {
        // The example input of the Step Functions "Reference Paths" section, plus extras.
        json!({
            "foo": 123,
            "bar": ["a", "b", "c"],
            "car": {"cdr": true},
            "jar": [{"a": 1}, {"a": 5}, {"a": 2}, {"a": 7}, {"a": 3}],
            "my-field": "dash",
            "def ghi": 9,
            "n": null
        })
    }

    fn ctx() -> Value {
        json!({"Execution": {"Id": "arn:exec:1", "Input": {"k": 1}}, "Map": {"Item": {"Index": 2}}})
    }

    #[test]
    fn aws_reference_path_examples() {
        let d = doc();
        assert_eq!(select("$.foo", &d, &ctx()), Ok(json!(123)));
        assert_eq!(select("$.bar", &d, &ctx()), Ok(json!(["a", "b", "c"])));
        assert_eq!(select("$.car.cdr", &d, &ctx()), Ok(json!(true)));
    }

    #[test]
    fn dollar_is_whole_input_and_double_dollar_is_context() {
        let d = doc();
        assert_eq!(select("$", &d, &ctx()), Ok(d.clone()));
        assert_eq!(select("$$", &d, &ctx()), Ok(ctx()));
        assert_eq!(
            select("$$.Execution.Id", &d, &ctx()),
            Ok(json!("arn:exec:1"))
        );
        assert_eq!(select("$$.Map.Item.Index", &d, &ctx()), Ok(json!(2)));
    }

    #[test]
    fn filter_returns_array_of_matches() {
        // The AWS developer guide example: $.jar[?(@.a >= 5)] => [{"a": 5}, {"a": 7}]
        assert_eq!(
            select("$.jar[?(@.a >= 5)]", &doc(), &ctx()),
            Ok(json!([{"a": 5}, {"a": 7}]))
        );
        assert_eq!(select("$.jar[?(@.a > 100)]", &doc(), &ctx()), Ok(json!([])));
    }

    #[test]
    fn indefinite_paths_always_return_arrays() {
        let d = doc();
        assert_eq!(select("$.bar[*]", &d, &ctx()), Ok(json!(["a", "b", "c"])));
        assert_eq!(select("$.bar[0:2]", &d, &ctx()), Ok(json!(["a", "b"])));
        assert_eq!(select("$.bar[0,2]", &d, &ctx()), Ok(json!(["a", "c"])));
        assert_eq!(select("$..cdr", &d, &ctx()), Ok(json!([true])));
        assert_eq!(select("$.jar[*].a", &d, &ctx()), Ok(json!([1, 5, 2, 7, 3])));
        // Flattening an array of arrays, the ResultSelector example of the guide.
        let nested = json!([[1, 2], [3], [4, 5]]);
        assert_eq!(
            select("$[*][*]", &nested, &ctx()),
            Ok(json!([1, 2, 3, 4, 5]))
        );
    }

    #[test]
    fn definite_paths_return_single_values() {
        let d = doc();
        assert_eq!(select("$.bar[1]", &d, &ctx()), Ok(json!("b")));
        assert_eq!(select("$.bar[-1]", &d, &ctx()), Ok(json!("c")));
        assert_eq!(select("$['car']['cdr']", &d, &ctx()), Ok(json!(true)));
        assert_eq!(select("$[\"foo\"]", &d, &ctx()), Ok(json!(123)));
        assert_eq!(select("$.n", &d, &ctx()), Ok(Value::Null));
        assert_eq!(select("$.jar[1].a", &d, &ctx()), Ok(json!(5)));
    }

    #[test]
    fn aws_bracket_and_punctuation_spellings() {
        let d = doc();
        // The developer guide's own example of bracket notation: `$.abc.['def ghi']`.
        assert_eq!(select("$.['def ghi']", &d, &ctx()), Ok(json!(9)));
        assert_eq!(select("$['def ghi']", &d, &ctx()), Ok(json!(9)));
        assert_eq!(select("$.my-field", &d, &ctx()), Ok(json!("dash")));
        assert_eq!(select("$['my-field']", &d, &ctx()), Ok(json!("dash")));
        assert!(ParsedPath::parse("$.my-field").map(|p| p.is_definite()) == Ok(true));
    }

    #[test]
    fn escaped_quotes_in_bracket_names_as_jayway_accepts_them() {
        let d = json!({"say \"hi\"": 1, "it's": 2, "a\\b": 3, "tab\tx": 4});
        // An escaped double quote inside single quotes: invalid RFC 9535, valid for AWS.
        assert_eq!(select(r#"$['say \"hi\"']"#, &d, &ctx()), Ok(json!(1)));
        assert_eq!(select(r#"$["say \"hi\""]"#, &d, &ctx()), Ok(json!(1)));
        assert_eq!(select(r"$['it\'s']", &d, &ctx()), Ok(json!(2)));
        assert_eq!(select(r#"$["it's"]"#, &d, &ctx()), Ok(json!(2)));
        assert_eq!(select(r"$['a\\b']", &d, &ctx()), Ok(json!(3)));
        assert_eq!(select(r"$['tab\u0009x']", &d, &ctx()), Ok(json!(4)));
        assert_eq!(validate_reference_path(r#"$.x['say \"hi\"']"#), Ok(()));
        assert_eq!(validate_result_path(r#"$['say \"hi\"']"#), Ok(()));
        // Still rejected: an unterminated name and a bad unicode escape.
        assert!(validate_path(r"$['open").is_err());
        assert!(validate_path(r"$['\uZZZZ']").is_err());
    }

    #[test]
    fn jayway_form_of_reference_paths() {
        let form = |p: &str| ParsedPath::parse(p).map(|p| p.jayway_form());
        assert_eq!(form("$.missing"), Ok("$['missing']".into()));
        assert_eq!(form("$.a.b[0]"), Ok("$['a']['b'][0]".into()));
        assert_eq!(form("$['x y'].z"), Ok("$['x y']['z']".into()));
        assert_eq!(form("$.a[*]"), Ok("$.a[*]".into()));
    }

    #[test]
    fn length_function_as_aws_accepts_it() {
        let d = doc();
        assert_eq!(select("$.bar.length()", &d, &ctx()), Ok(json!(3)));
        assert_eq!(
            select("$.jar[?(@.a > 2)].length()", &d, &ctx()),
            Ok(json!(3))
        );
        assert_eq!(select("$.car.length()", &d, &ctx()), Ok(json!(1)));
        assert_eq!(select("$.length()", &json!([1, 2]), &ctx()), Ok(json!(2)));
        assert_eq!(
            select("$.nope.length()", &d, &ctx()),
            Err(PathError::NotFound("$.nope.length()".into()))
        );
        assert!(matches!(
            select("$.foo.length()", &d, &ctx()),
            Err(PathError::Invalid(_))
        ));
        // Functions are not allowed in Reference Paths.
        assert!(validate_reference_path("$.bar.length()").is_err());
        assert_eq!(validate_path("$.bar.length()"), Ok(()));
    }

    #[test]
    fn descendant_and_wildcard_spellings() {
        let d = json!({"a-b": 1, "x": {"a-b": 2, "y": [3]}});
        assert_eq!(select("$..['a-b']", &d, &ctx()), Ok(json!([1, 2])));
        assert_eq!(select("$..a-b", &d, &ctx()), Ok(json!([1, 2])));
        assert_eq!(select("$.x.*", &d, &ctx()), Ok(json!([2, [3]])));
        assert_eq!(select("$.x.y.*", &d, &ctx()), Ok(json!([3])));
        assert_eq!(select("$.*", &json!({}), &ctx()), Ok(json!([])));
    }

    #[test]
    fn common_jayway_filter_styles() {
        let d = json!({"items": [
            {"id": 1, "status": "done", "tags": ["a"]},
            {"id": 2, "status": "open"},
            {"id": 3, "status": "done", "price": 5}
        ]});
        assert_eq!(
            select("$.items[?(@.status == 'done')].id", &d, &ctx()),
            Ok(json!([1, 3]))
        );
        assert_eq!(select("$.items[?(@.tags)].id", &d, &ctx()), Ok(json!([1])));
        assert_eq!(
            select("$.items[?(@.price < 10)].id", &d, &ctx()),
            Ok(json!([3]))
        );
        assert_eq!(
            select("$.items[?(@.status == 'done' && @.id > 1)].id", &d, &ctx()),
            Ok(json!([3]))
        );
        assert_eq!(select("$.items[-2:].id", &d, &ctx()), Ok(json!([2, 3])));
    }

    #[test]
    fn missing_definite_path_is_not_found() {
        let d = doc();
        assert_eq!(
            select("$.nope", &d, &ctx()),
            Err(PathError::NotFound("$.nope".into()))
        );
        assert_eq!(
            select("$.bar[9]", &d, &ctx()),
            Err(PathError::NotFound("$.bar[9]".into()))
        );
        assert_eq!(
            select("$.foo.x", &d, &ctx()),
            Err(PathError::NotFound("$.foo.x".into()))
        );
        assert_eq!(
            select("$$.Execution.Nope", &d, &ctx()),
            Err(PathError::NotFound("$$.Execution.Nope".into()))
        );
    }

    #[test]
    fn invalid_paths_are_rejected() {
        for bad in [
            "",
            "foo",
            "$.",
            "$[",
            "$.a[",
            "$.a]",
            "$.a'",
            "$.a,b",
            "$..",
            "$.a b",
            "$.a.sum()",
            "$['a",
        ] {
            assert!(validate_path(bad).is_err(), "{bad:?} should be invalid");
            assert!(
                matches!(select(bad, &doc(), &ctx()), Err(PathError::Invalid(_))),
                "{bad:?}"
            );
        }
        let msg = validate_path("$.a[").unwrap_err();
        assert!(msg.contains("'$.a['"), "{msg}");
        for good in [
            "$",
            "$$",
            "$.a",
            "$.a.b[0]",
            "$..a",
            "$.a[*]",
            "$.a[?(@.b > 1)]",
            "$.a[1:]",
            "$$.Map.Item.Value",
        ] {
            assert_eq!(validate_path(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn reference_paths_must_be_single_node() {
        for ok in [
            "$",
            "$$",
            "$.a",
            "$.a.b",
            "$.a[0]",
            "$['a b'].c",
            "$$.Execution.Input",
            "$.a-b",
        ] {
            assert_eq!(validate_reference_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "$.a[*]",
            "$..a",
            "$.a[?(@.b)]",
            "$.a[0:1]",
            "$.a[0,1]",
            "$.*",
            "a",
            "$.a[",
        ] {
            assert!(
                validate_reference_path(bad).is_err(),
                "{bad} should be rejected"
            );
        }
        assert!(validate_result_path("$$.Execution").is_err());
        assert_eq!(validate_result_path("$.out"), Ok(()));
    }

    #[test]
    fn quoted_names_decode_escapes() {
        let d = json!({"a'b": 1, "c\"d": 2, "é": 3, "tab\t": 4});
        assert_eq!(select(r"$['a\'b']", &d, &ctx()), Ok(json!(1)));
        assert_eq!(select(r#"$["c\"d"]"#, &d, &ctx()), Ok(json!(2)));
        assert_eq!(select(r"$['\u00e9']", &d, &ctx()), Ok(json!(3)));
        assert_eq!(select("$.é", &d, &ctx()), Ok(json!(3)));
        assert_eq!(select(r"$['tab\t']", &d, &ctx()), Ok(json!(4)));
    }

    #[test]
    fn is_present_reports_existence() {
        let d = doc();
        assert_eq!(is_present("$.foo", &d, &ctx()), Ok(true));
        assert_eq!(is_present("$.n", &d, &ctx()), Ok(true));
        assert_eq!(is_present("$.nope", &d, &ctx()), Ok(false));
        assert_eq!(is_present("$.bar[3]", &d, &ctx()), Ok(false));
        assert_eq!(is_present("$$.Execution.Id", &d, &ctx()), Ok(true));
        assert!(is_present("$.[", &d, &ctx()).is_err());
    }

    #[test]
    fn result_path_examples_from_the_developer_guide() {
        let input = json!({"comment": "This is a test", "details": "Default example", "who": "Step Functions"});
        let result = json!("Hello, Step Functions!");
        // Default / "$": the result replaces the input.
        assert_eq!(
            apply_result_path(input.clone(), result.clone(), Some("$")),
            Ok(result.clone())
        );
        // null: the input passes through.
        assert_eq!(
            apply_result_path(input.clone(), result.clone(), None),
            Ok(input.clone())
        );
        // "$.taskresult": the result is added to the input.
        let mut expected = input.clone();
        expected["taskresult"] = result.clone();
        assert_eq!(
            apply_result_path(input.clone(), result.clone(), Some("$.taskresult")),
            Ok(expected)
        );
        // Overwriting an existing field, and creating intermediate objects.
        assert_eq!(
            apply_result_path(json!({"a": 1}), json!(2), Some("$.a")),
            Ok(json!({"a": 2}))
        );
        assert_eq!(
            apply_result_path(json!({"a": {"x": 1}}), json!(2), Some("$.a.b.c")),
            Ok(json!({"a": {"x": 1, "b": {"c": 2}}}))
        );
        assert_eq!(
            apply_result_path(json!({}), json!(1), Some("$['with space']")),
            Ok(json!({"with space": 1}))
        );
    }

    #[test]
    fn result_path_failures_are_result_path_match_failure() {
        let cases = [
            (json!("hello"), "$.x"),
            (json!({"a": 5}), "$.a.b"),
            (json!({"a": [1]}), "$.a[0]"),
            (json!({}), "$.a[*]"),
            (json!({}), "$$.Execution"),
            (json!({}), "nope"),
        ];
        for (input, path) in cases {
            let err = apply_result_path(input.clone(), json!(1), Some(path)).unwrap_err();
            assert_eq!(err.error, names::RESULT_PATH_MATCH_FAILURE, "{path}");
            assert!(err.cause.contains(path), "{}", err.cause);
            assert!(err.cause.contains(&compact(&input)), "{}", err.cause);
        }
    }

    proptest! {
        #[test]
        fn select_never_panics(path in "\\PC{0,24}", tail in "[$.\\[\\]'\"*?@:,()0-9a-z -]{0,24}") {
            let d = doc();
            let _ = select(&path, &d, &ctx());
            let p = format!("${tail}");
            let _ = select(&p, &d, &ctx());
            let _ = is_present(&p, &d, &ctx());
            let _ = apply_result_path(d.clone(), json!(1), Some(&p));
            let _ = validate_reference_path(&p);
        }
    }
}

#[cfg(test)]
mod walk_tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// The query's answer for a definite path, the way `select` answered before the walk.
    fn by_query(p: &ParsedPath, doc: &Value) -> Option<Value> {
        p.query.query(doc).first().cloned()
    }

    fn doc() -> Value {
        json!({
            "a": {"b": [10, {"c": "x"}, [1, 2]], "n": null},
            "list": [0, 1, 2, 3],
            "with space": {"k": true},
            "s": "text"
        })
    }

    #[test]
    fn walk_agrees_with_the_query_on_reference_paths() {
        let d = doc();
        for path in [
            "$",
            "$.a",
            "$.a.b",
            "$.a.b[0]",
            "$.a.b[1].c",
            "$.a.b[2][1]",
            "$.a.b[-1]",
            "$.a.b[-3]",
            "$.a.b[-4]",
            "$.a.b[3]",
            "$.a.n",
            "$.a.missing",
            "$.list[0].x",
            "$.s.length",
            "$.s[0]",
            "$['with space'].k",
            "$.a['b'][1]['c']",
            "$.list[-1]",
        ] {
            let p = ParsedPath::parse(path).unwrap();
            assert!(p.is_definite(), "{path}");
            assert_eq!(
                walk(&d, p.segments().unwrap()).cloned(),
                by_query(&p, &d),
                "{path}"
            );
        }
    }

    proptest! {
        #[test]
        fn walk_agrees_with_the_query_on_generated_paths(
            steps in proptest::collection::vec(
                prop_oneof![
                    prop::sample::select(vec!["a", "b", "c", "list", "n", "s", "zz"])
                        .prop_map(|n| format!(".{n}")),
                    (-6i64..6).prop_map(|i| format!("[{i}]")),
                ],
                0..5,
            )
        ) {
            let path = format!("${}", steps.concat());
            let p = ParsedPath::parse(&path).unwrap();
            let d = doc();
            prop_assert_eq!(walk(&d, p.segments().unwrap()).cloned(), by_query(&p, &d));
        }
    }
}
