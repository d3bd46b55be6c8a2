//! Parser for intrinsic function calls (`States.Format('{}', $.a)`) into a typed AST.
//!
//! Grammar, as the Amazon States Language defines it:
//!
//! ```text
//! call   := "States." Name "(" [ arg { "," arg } ] ")"
//! arg    := 'string' | number | true | false | null | path | call
//! string := single-quoted; \' \{ \} \\ are the only escapes (any other backslash is an error)
//! path   := "$" ... or "$$" ... up to the next top-level "," or ")"
//! ```
//!
//! Everything that can be checked without data is checked here — the function name, arity,
//! literal syntax, path syntax and nesting depth — so the static validator and the executor
//! share one verdict.

use serde_json::Number;

use crate::data::path::validate_path;

/// How deeply calls may nest in one field (AWS documents "up to 10 intrinsic functions").
/// It also bounds the parser's and evaluator's recursion on hostile input.
pub const MAX_NESTING: usize = 10;

/// The intrinsic functions of the JSONPath query language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    Hash,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

impl Function {
    /// Every function, for lookups and exhaustive tests.
    pub const ALL: [Function; 18] = [
        Function::Format,
        Function::StringToJson,
        Function::JsonToString,
        Function::Array,
        Function::ArrayPartition,
        Function::ArrayContains,
        Function::ArrayRange,
        Function::ArrayGetItem,
        Function::ArrayLength,
        Function::ArrayUnique,
        Function::Base64Encode,
        Function::Base64Decode,
        Function::Hash,
        Function::JsonMerge,
        Function::MathRandom,
        Function::MathAdd,
        Function::StringSplit,
        Function::Uuid,
    ];

    /// The full name as written in a definition, e.g. `States.Format`.
    pub fn name(self) -> &'static str {
        match self {
            Function::Format => "States.Format",
            Function::StringToJson => "States.StringToJson",
            Function::JsonToString => "States.JsonToString",
            Function::Array => "States.Array",
            Function::ArrayPartition => "States.ArrayPartition",
            Function::ArrayContains => "States.ArrayContains",
            Function::ArrayRange => "States.ArrayRange",
            Function::ArrayGetItem => "States.ArrayGetItem",
            Function::ArrayLength => "States.ArrayLength",
            Function::ArrayUnique => "States.ArrayUnique",
            Function::Base64Encode => "States.Base64Encode",
            Function::Base64Decode => "States.Base64Decode",
            Function::Hash => "States.Hash",
            Function::JsonMerge => "States.JsonMerge",
            Function::MathRandom => "States.MathRandom",
            Function::MathAdd => "States.MathAdd",
            Function::StringSplit => "States.StringSplit",
            Function::Uuid => "States.UUID",
        }
    }

    /// Looks a function up by its full name (case-sensitive, as AWS is).
    pub fn from_name(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Smallest and largest number of arguments (`None`: unbounded).
    pub fn arity(self) -> (usize, Option<usize>) {
        match self {
            Function::Format => (1, None),
            Function::Array => (0, None),
            Function::Uuid => (0, Some(0)),
            Function::StringToJson
            | Function::JsonToString
            | Function::ArrayLength
            | Function::ArrayUnique
            | Function::Base64Encode
            | Function::Base64Decode => (1, Some(1)),
            Function::ArrayPartition
            | Function::ArrayContains
            | Function::ArrayGetItem
            | Function::Hash
            | Function::MathAdd
            | Function::StringSplit => (2, Some(2)),
            Function::ArrayRange | Function::JsonMerge => (3, Some(3)),
            Function::MathRandom => (2, Some(3)),
        }
    }
}

impl std::fmt::Display for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One intrinsic call: the function and its arguments in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: Function,
    pub args: Vec<Arg>,
}

/// An argument of an intrinsic call.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// A single-quoted literal. `value` has the escapes resolved; `raw` is the text between the
    /// quotes as written, which `States.Format` needs to tell `\{}` from a `{}` placeholder.
    String {
        value: String,
        raw: String,
    },
    Number(Number),
    Bool(bool),
    Null,
    /// A path into the input (`$...`) or the context object (`$$...`), already validated.
    Path(String),
    Call(Call),
}

/// Parses an intrinsic call. Surrounding whitespace is allowed; anything else after the
/// closing parenthesis is an error.
pub fn parse(expr: &str) -> Result<Call, String> {
    let mut p = Parser {
        chars: expr.chars().collect(),
        pos: 0,
        expr,
    };
    p.skip_ws();
    let call = p.call(1)?;
    p.skip_ws();
    if p.pos < p.chars.len() {
        return Err(p.error("unexpected text after the closing parenthesis"));
    }
    Ok(call)
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    expr: &'a str,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        format!(
            "Invalid intrinsic function call '{}': {what} (at position {})",
            self.expr, self.pos
        )
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn starts_with(&self, s: &str) -> bool {
        let mut rest = self.chars.get(self.pos..).unwrap_or_default().iter();
        s.chars().all(|c| rest.next() == Some(&c))
    }

    fn call(&mut self, depth: usize) -> Result<Call, String> {
        if depth > MAX_NESTING {
            return Err(self.error(&format!(
                "intrinsic functions can be nested at most {MAX_NESTING} deep"
            )));
        }
        if !self.starts_with("States.") {
            return Err(self.error("expected an intrinsic function name starting with 'States.'"));
        }
        let start = self.pos;
        self.pos += "States.".len();
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
            self.pos += 1;
        }
        let name: String = self
            .chars
            .get(start..self.pos)
            .unwrap_or_default()
            .iter()
            .collect();
        let function = Function::from_name(&name)
            .ok_or_else(|| self.error(&format!("unknown intrinsic function '{name}'")))?;
        self.skip_ws();
        if self.peek() != Some('(') {
            return Err(self.error(&format!("expected '(' after {name}")));
        }
        self.pos += 1;
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                args.push(self.arg(depth)?);
                self.skip_ws();
                match self.peek() {
                    Some(',') => self.pos += 1,
                    Some(')') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.error("expected ',' or ')' after an argument")),
                }
            }
        }
        let (min, max) = function.arity();
        let n = args.len();
        if n < min || max.is_some_and(|m| n > m) {
            let expected = match max {
                Some(m) if m == min => format!("{min}"),
                Some(m) => format!("{min} to {m}"),
                None => format!("at least {min}"),
            };
            return Err(format!(
                "Invalid intrinsic function call '{}': {name} takes {expected} argument(s) but {n} were given",
                self.expr
            ));
        }
        if function == Function::JsonToString
            && !matches!(args.first(), Some(Arg::Path(_) | Arg::Call(_)))
        {
            return Err(format!(
                "Invalid intrinsic function call '{}': the argument of {name} must be a path",
                self.expr
            ));
        }
        Ok(Call {
            name: function,
            args,
        })
    }

    fn arg(&mut self, depth: usize) -> Result<Arg, String> {
        match self.peek() {
            Some('\'') => self.string(),
            Some('$') => self.path(),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            Some('S') if self.starts_with("States.") => Ok(Arg::Call(self.call(depth + 1)?)),
            _ => {
                for (word, arg) in [
                    ("true", Arg::Bool(true)),
                    ("false", Arg::Bool(false)),
                    ("null", Arg::Null),
                ] {
                    if self.starts_with(word) {
                        let after = self.chars.get(self.pos + word.len());
                        if !after.is_some_and(|c| c.is_alphanumeric() || *c == '_') {
                            self.pos += word.len();
                            return Ok(arg);
                        }
                    }
                }
                Err(self.error(
                    "expected an argument: a 'string', a number, true, false, null, a path or an intrinsic function",
                ))
            }
        }
    }

    fn string(&mut self) -> Result<Arg, String> {
        self.pos += 1; // opening quote
        let start = self.pos;
        let mut value = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated string literal")),
                Some('\'') => break,
                Some('\\') => match self.chars.get(self.pos + 1) {
                    Some(&c @ ('\'' | '{' | '}' | '\\')) => {
                        value.push(c);
                        self.pos += 2;
                    }
                    _ => {
                        return Err(self.error(
                            "open escape: only \\' \\{ \\} and \\\\ may follow a backslash",
                        ));
                    }
                },
                Some(c) => {
                    value.push(c);
                    self.pos += 1;
                }
            }
        }
        let raw = self
            .chars
            .get(start..self.pos)
            .unwrap_or_default()
            .iter()
            .collect();
        self.pos += 1; // closing quote
        Ok(Arg::String { value, raw })
    }

    fn number(&mut self) -> Result<Arg, String> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
        {
            self.pos += 1;
        }
        let text: String = self
            .chars
            .get(start..self.pos)
            .unwrap_or_default()
            .iter()
            .collect();
        serde_json::from_str::<Number>(&text)
            .map(Arg::Number)
            .map_err(|_| self.error(&format!("'{text}' is not a valid number")))
    }

    /// A path runs to the next `,` or `)` that is not inside brackets, parentheses (filters)
    /// or quotes.
    fn path(&mut self) -> Result<Arg, String> {
        let start = self.pos;
        let mut brackets = 0usize;
        let mut parens = 0usize;
        let mut quote: Option<char> = None;
        while let Some(c) = self.peek() {
            if let Some(q) = quote {
                if c == '\\' {
                    self.pos += 1;
                } else if c == q {
                    quote = None;
                }
            } else {
                match c {
                    '\'' | '"' if brackets > 0 => quote = Some(c),
                    '[' => brackets += 1,
                    ']' => brackets = brackets.saturating_sub(1),
                    '(' => parens += 1,
                    ')' if parens > 0 => parens -= 1,
                    ',' | ')' if brackets == 0 && parens == 0 => break,
                    _ => {}
                }
            }
            self.pos += 1;
        }
        self.pos = self.pos.min(self.chars.len());
        let text: String = self
            .chars
            .get(start..self.pos)
            .unwrap_or_default()
            .iter()
            .collect();
        let path = text.trim_end().to_owned();
        validate_path(&path)
            .map_err(|e| format!("Invalid intrinsic function call '{}': {e}", self.expr))?;
        Ok(Arg::Path(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Arg {
        Arg::String {
            value: v.into(),
            raw: v.into(),
        }
    }

    #[test]
    fn parses_the_guides_examples() {
        assert_eq!(
            parse("States.Format('Hello, my name is {}.', $.name)"),
            Ok(Call {
                name: Function::Format,
                args: vec![s("Hello, my name is {}."), Arg::Path("$.name".into())]
            })
        );
        assert_eq!(
            parse("States.ArrayRange(1, 9, 2)").map(|c| c.args),
            Ok(vec![
                Arg::Number(1.into()),
                Arg::Number(9.into()),
                Arg::Number(2.into())
            ])
        );
        assert_eq!(
            parse("States.MathAdd($.value1, -1)").map(|c| c.args),
            Ok(vec![Arg::Path("$.value1".into()), Arg::Number((-1).into())])
        );
        assert_eq!(
            parse("States.UUID()"),
            Ok(Call {
                name: Function::Uuid,
                args: vec![]
            })
        );
        // The nine-deep example of the developer guide.
        let arn = "States.Format('{}.{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 0), States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 1))";
        assert_eq!(parse(arn).map(|c| c.args.len()), Ok(3));
    }

    #[test]
    fn string_escapes() {
        let call = parse(r"States.Format('it\'s \{\} \\ done')").unwrap();
        assert_eq!(
            call.args,
            vec![Arg::String {
                value: r"it's {} \ done".into(),
                raw: r"it\'s \{\} \\ done".into()
            }]
        );
        assert!(parse(r"States.Format('bad \n escape')").is_err());
        assert!(parse("States.Format('unterminated)").is_err());
    }

    #[test]
    fn literals_and_nested_calls() {
        let call =
            parse("States.Array('a', 1.5, true, false, null, States.Array(), $$.Execution.Id)")
                .unwrap();
        assert_eq!(
            call.args,
            vec![
                s("a"),
                Arg::Number(serde_json::Number::from_f64(1.5).unwrap()),
                Arg::Bool(true),
                Arg::Bool(false),
                Arg::Null,
                Arg::Call(Call {
                    name: Function::Array,
                    args: vec![]
                }),
                Arg::Path("$$.Execution.Id".into()),
            ]
        );
    }

    #[test]
    fn paths_with_commas_and_parentheses_inside_brackets() {
        let call = parse("States.Array($.a[0,1], $.b[?(@.c > 1)], $['x,y'])").unwrap();
        assert_eq!(
            call.args,
            vec![
                Arg::Path("$.a[0,1]".into()),
                Arg::Path("$.b[?(@.c > 1)]".into()),
                Arg::Path("$['x,y']".into()),
            ]
        );
    }

    #[test]
    fn rejects_bad_calls() {
        for bad in [
            "States.Nope(1)",
            "States.format('x')",
            "Format('x')",
            "States.Format",
            "States.Format('x'",
            "States.Format('x') trailing",
            "States.Format()",
            "States.UUID(1)",
            "States.ArrayRange(1, 2)",
            "States.MathRandom(1)",
            "States.MathRandom(1, 2, 3, 4)",
            "States.JsonToString('literal')",
            "States.Array($.a[)",
            "States.Array(1 2)",
            "States.Array(nope)",
            "States.Array(1.2.3)",
            "States.Array(,)",
        ] {
            assert!(parse(bad).is_err(), "{bad} should not parse");
        }
        let msg = parse("States.ArrayRange(1, 2)").unwrap_err();
        assert!(
            msg.contains("States.ArrayRange takes 3 argument(s) but 2 were given"),
            "{msg}"
        );
    }

    #[test]
    fn nesting_is_limited_to_ten() {
        let nest = |n: usize| format!("{}1{}", "States.Array(".repeat(n), ")".repeat(n));
        assert!(parse(&nest(10)).is_ok());
        assert!(parse(&nest(11)).unwrap_err().contains("nested at most 10"));
        // Deep hostile input must be rejected, not overflow the stack.
        assert!(parse(&nest(100_000)).is_err());
    }

    #[test]
    fn every_function_round_trips_its_name() {
        for f in Function::ALL {
            assert_eq!(Function::from_name(f.name()), Some(f));
        }
        assert_eq!(Function::from_name("States.Uuid"), None);
    }
}
