//! The intrinsic functions themselves: each takes its already-evaluated argument values and
//! returns the result or a cause for `States.IntrinsicFailure`.
//!
//! Argument checks follow the Amazon States Language specification's "Input validation" notes
//! and the Step Functions developer guide (integers where integers are required, non-zero
//! steps, the 1000-element ArrayRange limit, the 10,000-character Base64/Hash limits).

use std::collections::HashSet;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use md5::Md5;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::parser::Function;
use crate::data::path::compact;
use crate::data::type_name;

/// Largest array `States.ArrayRange` may build.
pub const MAX_RANGE_ITEMS: i128 = 1000;
/// Largest input of `States.Base64Encode`, `States.Base64Decode` and `States.Hash`, in characters.
pub const MAX_ENCODE_CHARS: usize = 10_000;

/// Where the `States.Format` template came from: a literal keeps its escapes so `\{}` is text,
/// a value from a path is taken as it is.
pub(crate) enum FormatTemplate<'a> {
    Raw(&'a str),
    Value,
}

/// Applies `f` to evaluated arguments (arity was checked by the parser).
pub(crate) fn apply(
    f: Function,
    args: &[Value],
    template: FormatTemplate<'_>,
) -> Result<Value, String> {
    let name = f.name();
    match f {
        Function::Format => format(args, template),
        Function::StringToJson => {
            let text = string_arg(name, args, 0)?;
            // AWS answers null for an empty or blank string rather than failing to parse it.
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_str(text)
                .map_err(|e| format!("{name}: the argument is not valid JSON text: {e}"))
        }
        Function::JsonToString => Ok(Value::String(compact(arg(name, args, 0)?))),
        Function::Array => Ok(Value::Array(args.to_vec())),
        Function::ArrayPartition => {
            let items = array_arg(name, args, 0)?;
            // As in MathAdd, AWS rounds a non-integer size rather than refusing it.
            let size = rounded_arg(name, args, 1)?;
            if size <= 0 {
                return Err(format!(
                    "{name}: the chunk size must be a positive integer, got {size}"
                ));
            }
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            Ok(Value::Array(
                items
                    .chunks(size)
                    .map(|c| Value::Array(c.to_vec()))
                    .collect(),
            ))
        }
        Function::ArrayContains => {
            let items = array_arg(name, args, 0)?;
            let needle = canonical(arg(name, args, 1)?);
            Ok(Value::Bool(items.iter().any(|v| canonical(v) == needle)))
        }
        Function::ArrayRange => array_range(args),
        Function::ArrayGetItem => {
            let items = array_arg(name, args, 0)?;
            let index = int_arg(name, args, 1)?;
            usize::try_from(index)
                .ok()
                .and_then(|i| items.get(i))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "{name}: index {index} is out of bounds for an array of length {}",
                        items.len()
                    )
                })
        }
        Function::ArrayLength => Ok(Value::from(array_arg(name, args, 0)?.len())),
        Function::ArrayUnique => {
            let items = array_arg(name, args, 0)?;
            let mut seen = HashSet::new();
            Ok(Value::Array(
                items
                    .iter()
                    .filter(|v| seen.insert(canonical(v)))
                    .cloned()
                    .collect(),
            ))
        }
        Function::Base64Encode => {
            let text = string_arg(name, args, 0)?;
            check_len(name, text)?;
            Ok(Value::String(
                base64::engine::general_purpose::STANDARD.encode(text),
            ))
        }
        Function::Base64Decode => {
            let text = string_arg(name, args, 0)?;
            check_len(name, text)?;
            // MIME decoders accept input with or without padding.
            let engine = GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                GeneralPurposeConfig::new()
                    .with_decode_padding_mode(DecodePaddingMode::Indifferent),
            );
            let bytes = engine
                .decode(text)
                .map_err(|e| format!("{name}: the argument is not valid Base64: {e}"))?;
            String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|_| format!("{name}: the decoded data is not valid UTF-8 text"))
        }
        Function::Hash => hash(args),
        Function::JsonMerge => {
            let left = object_arg(name, args, 0)?;
            let right = object_arg(name, args, 1)?;
            match arg(name, args, 2)? {
                Value::Bool(false) => {}
                Value::Bool(true) => {
                    return Err(format!(
                        "{name}: deep merging is not supported; the third argument must be false"
                    ));
                }
                other => {
                    return Err(format!(
                        "{name}: the third argument must be a boolean, got {}",
                        type_name(other)
                    ));
                }
            }
            let mut merged = left.clone();
            for (k, v) in right {
                merged.insert(k.clone(), v.clone());
            }
            Ok(Value::Object(merged))
        }
        Function::MathRandom => math_random(args),
        Function::MathAdd => {
            // AWS rounds non-integers to the nearest integer, the Java way (see `java_round`).
            let a = rounded_arg(name, args, 0)?;
            let b = rounded_arg(name, args, 1)?;
            a.checked_add(b)
                .map(Value::from)
                .ok_or_else(|| format!("{name}: {a} + {b} overflows a 64-bit integer"))
        }
        Function::StringSplit => {
            let text = string_arg(name, args, 0)?;
            let delimiters: Vec<char> = string_arg(name, args, 1)?.chars().collect();
            // Every character of the second argument is a delimiter; empty pieces are dropped
            // ("a,,b" with "," gives ["a", "b"]).
            Ok(Value::Array(
                text.split(|c| delimiters.contains(&c))
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_owned()))
                    .collect(),
            ))
        }
        Function::Uuid => Ok(Value::String(uuid::Uuid::new_v4().to_string())),
    }
}

fn format(args: &[Value], template: FormatTemplate<'_>) -> Result<Value, String> {
    let name = Function::Format.name();
    let values = args.get(1..).unwrap_or_default();
    // Written straight into the output, piece by piece: this runs once per item of a Map.
    let (placeholders, text) = match template {
        FormatTemplate::Raw(raw) => (raw_pieces(raw, |_| {}), raw),
        FormatTemplate::Value => {
            let t = string_arg(name, args, 0)?;
            (t.matches("{}").count(), t)
        }
    };
    if placeholders != values.len() {
        return Err(format!(
            "{name}: the template has {placeholders} placeholder(s) '{{}}' but {} argument(s) follow it",
            values.len()
        ));
    }
    let mut out = String::with_capacity(text.len() + 16 * values.len());
    let mut next = values.iter();
    let mut placeholder = |out: &mut String| {
        if let Some(v) = next.next() {
            java_text(v, out);
        }
    };
    match template {
        FormatTemplate::Raw(raw) => {
            raw_pieces(raw, |piece| match piece {
                Piece::Char(c) => out.push(c),
                Piece::Placeholder => placeholder(&mut out),
            });
        }
        FormatTemplate::Value => {
            for (i, piece) in text.split("{}").enumerate() {
                if i > 0 {
                    placeholder(&mut out);
                }
                out.push_str(piece);
            }
        }
    }
    Ok(Value::String(out))
}

/// One step of a literal `States.Format` template.
enum Piece {
    /// A character of text (escapes resolved).
    Char(char),
    /// An unescaped `{}`.
    Placeholder,
}

/// Walks a literal template (escapes still in place: `\{}` is text), handing each piece to
/// `each`; returns the number of placeholders.
fn raw_pieces(raw: &str, mut each: impl FnMut(Piece)) -> usize {
    let mut placeholders = 0;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    each(Piece::Char(next));
                }
            }
            '{' if chars.peek() == Some(&'}') => {
                chars.next();
                placeholders += 1;
                each(Piece::Placeholder);
            }
            _ => each(Piece::Char(c)),
        }
    }
    placeholders
}

/// How AWS's executor (Java) prints a value substituted into `States.Format`: strings without
/// quotes, numbers as Java prints them, and — although the spec says a substituted value "MUST
/// NOT be a JSON array or object" — arrays and objects the way Java prints lists and maps:
/// `[a, 1]`, `{k=v, n=[]}`, with nested strings unquoted too.
fn java_text(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Number(n) if n.is_i64() || n.is_u64() => {
            // Integers print as they are, written without an intermediate string.
            let _ = write!(out, "{n}");
        }
        Value::Number(n) => out.push_str(&java_number(n)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                java_text(item, out);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            out.push('{');
            for (i, (k, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push('=');
                java_text(item, out);
            }
            out.push('}');
        }
        other => out.push_str(&compact(other)),
    }
}

/// A JSON number as AWS prints it: integers as they are; other numbers as Java's
/// `Double.toString` does — plain decimal with at least one fractional digit between 10^-3 and
/// 10^7 (`100.0`, `0.5`), otherwise `d.dddE±n` (`1.0E21`, `1.5E-7`) — except a negative zero,
/// which is `-0`.
pub(crate) fn java_number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let Some(f) = n.as_f64() else {
        return n.to_string();
    };
    if !f.is_finite() {
        return n.to_string();
    }
    if f == 0.0 {
        // A negative zero only comes from the JSON text `-0` (or `-0.0`), which serde_json
        // reads as a float; AWS prints it as `-0`.
        return if f.is_sign_negative() { "-0" } else { "0.0" }.into();
    }
    let magnitude = f.abs();
    if (1e-3..1e7).contains(&magnitude) {
        let text = format!("{f}");
        return if text.contains('.') {
            text
        } else {
            format!("{text}.0")
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. `1.5e-7` or `1e21`.
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exponent}")
}

fn array_range(args: &[Value]) -> Result<Value, String> {
    let name = Function::ArrayRange.name();
    // Non-integers are rounded the Java way, as AWS does.
    let first = i128::from(rounded_arg(name, args, 0)?);
    let last = i128::from(rounded_arg(name, args, 1)?);
    let step = i128::from(rounded_arg(name, args, 2)?);
    if step == 0 {
        return Err(format!(
            "{name}: the step (third argument) must not be zero"
        ));
    }
    let span = last - first;
    // A step pointing away from the last value yields no element past the first.
    let count = if span == 0 || (span > 0) == (step > 0) {
        span / step + 1
    } else {
        0
    };
    if count > MAX_RANGE_ITEMS {
        return Err(format!(
            "{name}: the range would have {count} elements; at most {MAX_RANGE_ITEMS} are allowed"
        ));
    }
    let items = (0..count)
        .map(|i| first + i * step)
        .filter_map(|v| i64::try_from(v).ok())
        .map(Value::from)
        .collect();
    Ok(Value::Array(items))
}

fn hash(args: &[Value]) -> Result<Value, String> {
    let name = Function::Hash.name();
    let data = match arg(name, args, 0)? {
        Value::String(s) => s.clone(),
        other => compact(other),
    };
    check_len(name, &data)?;
    let algorithm = string_arg(name, args, 1)?;
    let digest: Vec<u8> = match algorithm {
        "MD5" => Md5::digest(data.as_bytes()).to_vec(),
        "SHA-1" => Sha1::digest(data.as_bytes()).to_vec(),
        "SHA-256" => Sha256::digest(data.as_bytes()).to_vec(),
        "SHA-384" => Sha384::digest(data.as_bytes()).to_vec(),
        "SHA-512" => Sha512::digest(data.as_bytes()).to_vec(),
        other => {
            return Err(format!(
                "{name}: unsupported algorithm '{other}'; use one of MD5, SHA-1, SHA-256, SHA-384, SHA-512"
            ));
        }
    };
    Ok(Value::String(
        digest.iter().map(|b| format!("{b:02x}")).collect(),
    ))
}

fn math_random(args: &[Value]) -> Result<Value, String> {
    let name = Function::MathRandom.name();
    // AWS rounds a non-integer start or end to the nearest integer.
    let start = rounded_arg(name, args, 0)?;
    let end = rounded_arg(name, args, 1)?;
    if start >= end {
        return Err(format!(
            "{name}: the start ({start}) must be less than the end ({end})"
        ));
    }
    let value = match args.get(2) {
        Some(_) => {
            let seed = rounded_arg(name, args, 2)?;
            // The same seed gives the same number, as AWS documents.
            rand::rngs::StdRng::seed_from_u64(seed as u64).random_range(start..end)
        }
        None => rand::rng().random_range(start..end),
    };
    Ok(Value::from(value))
}

fn arg<'a>(name: &str, args: &'a [Value], i: usize) -> Result<&'a Value, String> {
    args.get(i)
        .ok_or_else(|| format!("{name}: missing argument {}", i + 1))
}

fn string_arg<'a>(name: &str, args: &'a [Value], i: usize) -> Result<&'a str, String> {
    match arg(name, args, i)? {
        Value::String(s) => Ok(s),
        other => Err(wrong_type(name, i, "a string", other)),
    }
}

fn array_arg<'a>(name: &str, args: &'a [Value], i: usize) -> Result<&'a Vec<Value>, String> {
    match arg(name, args, i)? {
        Value::Array(a) => Ok(a),
        other => Err(wrong_type(name, i, "an array", other)),
    }
}

fn object_arg<'a>(
    name: &str,
    args: &'a [Value],
    i: usize,
) -> Result<&'a Map<String, Value>, String> {
    match arg(name, args, i)? {
        Value::Object(o) => Ok(o),
        other => Err(wrong_type(name, i, "a JSON object", other)),
    }
}

/// Java's `Math.round`: the nearest integer, halves rounded up (towards positive infinity), so
/// `2.5` is `3` and `-2.5` is `-2` (Rust's `round` gives `-3`).
fn java_round(f: f64) -> f64 {
    (f + 0.5).floor()
}

/// An integer argument: a JSON number without fraction or exponent that fits in 64 bits.
fn int_arg(name: &str, args: &[Value], i: usize) -> Result<i64, String> {
    let v = arg(name, args, i)?;
    v.as_i64()
        .ok_or_else(|| wrong_type(name, i, "an integer", v))
}

/// A number argument rounded to the nearest integer (saturating at the 64-bit limits).
fn rounded_arg(name: &str, args: &[Value], i: usize) -> Result<i64, String> {
    let v = arg(name, args, i)?;
    if let Some(n) = v.as_i64() {
        return Ok(n);
    }
    match v.as_f64() {
        // `as` saturates, which is the best a 64-bit range can do for huge numbers.
        Some(f) if f.is_finite() => Ok(java_round(f) as i64),
        _ => Err(wrong_type(name, i, "a number", v)),
    }
}

fn check_len(name: &str, text: &str) -> Result<(), String> {
    let n = text.chars().count();
    if n > MAX_ENCODE_CHARS {
        return Err(format!(
            "{name}: the input has {n} characters; at most {MAX_ENCODE_CHARS} are allowed"
        ));
    }
    Ok(())
}

fn wrong_type(name: &str, i: usize, expected: &str, got: &Value) -> String {
    format!(
        "{name}: argument {} must be {expected}, got {} {}",
        i + 1,
        type_name(got),
        compact(got)
    )
}

/// A text form in which equal JSON values are equal strings: object members sorted by key, so
/// `{"a":1,"b":2}` and `{"b":2,"a":1}` are duplicates of each other.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let body: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", compact(&Value::String(k.clone())), canonical(v)))
                .collect();
            format!("{{{}}}", body.join(","))
        }
        Value::Array(items) => {
            let body: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", body.join(","))
        }
        other => compact(other),
    }
}
