//! Command templates: the `{name}` placeholders in a stage's argv.
//!
//! A template is parsed once into literal text and placeholder names, so the same parse serves
//! the static check at load (every name must be known, see [`super::check`]) and the rendering
//! at launch. `{{` and `}}` are literal braces. Rendering never re-reads its output: a value
//! that itself contains `{output}` (a CSV cell, a parameter) stays literal text.

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment<'a> {
    Text(std::borrow::Cow<'a, str>),
    Placeholder(&'a str),
}

/// A malformed template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed '{{' in '{0}' (write '{{{{' for a literal brace)")]
    Unclosed(String),
    #[error("unmatched '}}' in '{0}' (write '}}}}' for a literal brace)")]
    Unmatched(String),
    #[error("empty placeholder '{{}}' in '{0}'")]
    Empty(String),
    #[error("unknown placeholder '{{{name}}}' in '{arg}'")]
    Unknown { name: String, arg: String },
}

/// Split `arg` into text and placeholders.
pub fn parse(arg: &str) -> Result<Vec<Segment<'_>>, TemplateError> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = arg;
    while let Some(pos) = rest.find(['{', '}']) {
        text.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            text.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err(TemplateError::Unmatched(arg.to_string()));
        }
        let end = tail
            .find('}')
            .ok_or_else(|| TemplateError::Unclosed(arg.to_string()))?;
        let name = tail[1..end].trim();
        if name.is_empty() {
            return Err(TemplateError::Empty(arg.to_string()));
        }
        if !text.is_empty() {
            out.push(Segment::Text(std::mem::take(&mut text).into()));
        }
        out.push(Segment::Placeholder(name));
        rest = &tail[end + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Segment::Text(text.into()));
    }
    Ok(out)
}

/// The placeholder names `arg` uses, in order.
pub fn placeholders(arg: &str) -> Result<Vec<&str>, TemplateError> {
    Ok(parse(arg)?
        .into_iter()
        .filter_map(|s| match s {
            Segment::Placeholder(name) => Some(name),
            Segment::Text(_) => None,
        })
        .collect())
}

/// Fill every placeholder of `arg` with `value(name)`; `None` is an unknown placeholder.
pub fn render(
    arg: &str,
    mut value: impl FnMut(&str) -> Option<String>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(arg.len());
    for segment in parse(arg)? {
        match segment {
            Segment::Text(t) => out.push_str(&t),
            Segment::Placeholder(name) => {
                out.push_str(&value(name).ok_or_else(|| TemplateError::Unknown {
                    name: name.to_string(),
                    arg: arg.to_string(),
                })?)
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "seed" => Some("7".into()),
            "cell" => Some("{output}".into()),
            _ => None,
        }
    }

    #[test]
    fn renders_and_escapes() {
        assert_eq!(render("--seed={seed}", vars).unwrap(), "--seed=7");
        assert_eq!(render("{{x}}", vars).unwrap(), "{x}");
        assert_eq!(render("a}}b{{", vars).unwrap(), "a}b{");
        // A value is never itself expanded.
        assert_eq!(render("{cell}", vars).unwrap(), "{output}");
    }

    #[test]
    fn malformed_templates_are_named() {
        assert_eq!(
            render("{nope}", vars).unwrap_err(),
            TemplateError::Unknown {
                name: "nope".into(),
                arg: "{nope}".into()
            }
        );
        assert!(matches!(parse("{seed"), Err(TemplateError::Unclosed(_))));
        assert!(matches!(parse("seed}"), Err(TemplateError::Unmatched(_))));
        assert!(matches!(parse("{}"), Err(TemplateError::Empty(_))));
    }

    #[test]
    fn lists_placeholders() {
        assert_eq!(
            placeholders("{a}-{ b }{{c}}").unwrap(),
            vec!["a", "b"],
            "names are trimmed, escaped braces are text"
        );
    }
}
