//! The static checks of a pipeline: everything that can be known from the file alone, reported
//! all at once, each problem naming its key (`stage.analyse.command[2]`).
//!
//! Run at every load (`sluice run`, `sluice serve`, `sluice pipeline check`, the plan step on
//! AWS), so a typo in a placeholder is one error before the job starts, not N identical task
//! failures after it. What needs a file system (relative commands, schedule inputs) is checked
//! by the local runtime on top of this.

use super::template::{self, TemplateError};
use super::{PipelineConfig, RowSource, StageKind, StageSpec, Writes};
use crate::schedule::Expression;
use std::collections::{BTreeSet, HashSet};

/// One thing wrong with a pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key, as a path into the file: `parallelism.max`, `stage.merge.command[1]`.
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Placeholders every command can use, with what they are (for `sluice pipeline check` and
/// the docs).
pub const BUILTIN_PLACEHOLDERS: [(&str, &str); 7] = [
    ("input", "the job's input CSV"),
    ("job_id", "the job's id"),
    ("pipeline", "the pipeline's name"),
    ("stage", "the stage's name"),
    (
        "task_id",
        "the task's id within its stage (row id, chunk id or the stage name)",
    ),
    ("task_index", "the task's position in its stage, from 0"),
    ("attempt", "the attempt number, from 1"),
];

/// Placeholders of a stage that fans out in chunks.
pub const CHUNK_PLACEHOLDERS: [&str; 2] = ["rows", "chunk"];
/// The output placeholder, for stages that write something.
pub const OUTPUT_PLACEHOLDER: &str = "output";
/// Prefix of the placeholder naming an earlier stage's output: `{stages.clean}`.
pub const STAGES_PREFIX: &str = "stages.";
/// Placeholders of a notification command (besides `[params]`).
pub const NOTIFY_PLACEHOLDERS: [&str; 3] = ["job_id", "pipeline", "status"];

/// Letters, digits and '-', at most this long: stage names end up in task ids and keys.
pub const MAX_STAGE_NAME: usize = 32;

/// Every problem of a normalised config; empty when it can run.
pub fn check(cfg: &PipelineConfig) -> Vec<Problem> {
    let mut p = Vec::new();
    if let Err(e) = crate::ids::PipelineName::new(cfg.name.clone()) {
        p.push(Problem::new("name", e.to_string()));
    }
    if cfg.parallelism.max == 0 {
        p.push(Problem::new("parallelism.max", "must be at least 1"));
    }
    if cfg.retry.task_failed_attempts == 0 {
        p.push(Problem::new(
            "retry.task_failed_attempts",
            "must be at least 1",
        ));
    }
    if cfg.input.max_tasks == 0 {
        p.push(Problem::new("input.max_tasks", "must be at least 1"));
    }
    if let Some(col) = &cfg.input.task_id
        && col.trim().is_empty()
    {
        p.push(Problem::new("input.task_id", "must name a column"));
    }
    if let Some(scale) = &cfg.scale
        && !matches!(cfg.params.get(&scale.param), Some(toml::Value::Integer(_)))
    {
        p.push(Problem::new(
            "scale.param",
            format!("'{}' must name an integer in [params]", scale.param),
        ));
    }
    for name in cfg.params.keys() {
        if is_reserved(name) {
            p.push(Problem::new(
                format!("params.{name}"),
                format!("'{name}' is a built-in placeholder; choose another name"),
            ));
        }
    }
    if cfg.stages.is_empty() {
        p.push(Problem::new(
            "stage",
            "a pipeline needs at least one [[stage]] (or the one-stage [task])",
        ));
    }
    let mut seen = HashSet::new();
    for (i, stage) in cfg.stages.iter().enumerate() {
        let key = format!("stage[{i}].name");
        if let Err(message) = check_stage_name(&stage.name) {
            p.push(Problem::new(key, message));
        } else if !seen.insert(stage.name.as_str()) {
            p.push(Problem::new(
                key,
                format!("'{}' names two stages", stage.name),
            ));
        }
    }
    for (i, stage) in cfg.stages.iter().enumerate() {
        check_stage(cfg, i, stage, &mut p);
    }
    let mut schedules = HashSet::new();
    for (i, s) in cfg.schedule.iter().enumerate() {
        let key = format!("schedule[{i}]");
        if crate::ids::PipelineName::new(s.name.clone()).is_err() {
            p.push(Problem::new(
                format!("{key}.name"),
                format!("'{}': letters, digits, '-' and '_' only", s.name),
            ));
        } else if !schedules.insert(s.name.as_str()) {
            p.push(Problem::new(
                format!("{key}.name"),
                format!("'{}' names two schedules", s.name),
            ));
        }
        if let Err(e) = Expression::parse(&s.expression) {
            p.push(Problem::new(format!("{key}.expression"), e.to_string()));
        }
        if s.input.trim().is_empty() {
            p.push(Problem::new(format!("{key}.input"), "must name a CSV file"));
        }
    }
    if let Some(n) = &cfg.notify {
        if n.webhook.is_none() && n.command.is_empty() {
            p.push(Problem::new("notify", "needs a webhook or a command"));
        }
        if let Some(url) = &n.webhook {
            match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => {}
                Ok(u) => p.push(Problem::new(
                    "notify.webhook",
                    format!("'{url}': must be an http(s) URL, not {}", u.scheme()),
                )),
                Err(e) => p.push(Problem::new("notify.webhook", format!("'{url}': {e}"))),
            }
        }
        let known: BTreeSet<String> = NOTIFY_PLACEHOLDERS
            .iter()
            .map(|s| s.to_string())
            .chain(cfg.params.keys().cloned())
            .collect();
        for (j, arg) in n.command.iter().enumerate() {
            check_placeholders(&format!("notify.command[{j}]"), arg, &known, &mut p);
        }
        if n.on.is_empty() {
            p.push(Problem::new(
                "notify.on",
                "empty: list succeeded, failed and/or aborted",
            ));
        }
    }
    p
}

fn is_reserved(name: &str) -> bool {
    BUILTIN_PLACEHOLDERS.iter().any(|(b, _)| *b == name)
        || NOTIFY_PLACEHOLDERS.contains(&name)
        || CHUNK_PLACEHOLDERS.contains(&name)
        || name == OUTPUT_PLACEHOLDER
        || name.starts_with(STAGES_PREFIX)
}

fn check_stage_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_STAGE_NAME {
        return Err(format!("'{name}': 1 to {MAX_STAGE_NAME} characters"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!("'{name}': letters, digits and '-' only"));
    }
    if name == "input" {
        return Err("'input' is reserved for the job's input (for_each = \"input\")".into());
    }
    Ok(())
}

fn check_stage(cfg: &PipelineConfig, i: usize, stage: &StageSpec, p: &mut Vec<Problem>) {
    let key = |k: &str| format!("stage.{}.{k}", stage.name);
    let earlier = &cfg.stages[..i];
    let earlier_named = |name: &str| earlier.iter().find(|s| s.name == name);

    if let Some(agg) = &stage.aggregate {
        if !stage.command.is_empty() {
            p.push(Problem::new(
                key("command"),
                "a stage runs a command or the built-in aggregate, not both",
            ));
        }
        for (k, set) in [
            ("for_each", stage.for_each.is_some()),
            ("chunk", stage.chunk.is_some()),
            ("file", stage.file.is_some()),
            ("image", stage.image.is_some()),
            ("columns", !stage.columns.is_empty()),
        ] {
            if set {
                p.push(Problem::new(key(k), "not used by an aggregate stage"));
            }
        }
        let from = match &agg.from {
            Some(f) => earlier_named(f).map(|s| (f.as_str(), s)).ok_or_else(|| {
                Problem::new(
                    key("aggregate.from"),
                    format!(
                        "'{f}' is not an earlier stage{}",
                        suggest(f, earlier.iter().map(|s| s.name.as_str()))
                    ),
                )
            }),
            None => earlier.last().map(|s| (s.name.as_str(), s)).ok_or_else(|| {
                Problem::new(
                    key("aggregate"),
                    "aggregates the results of the stage before it; it cannot be first",
                )
            }),
        };
        match from {
            Err(problem) => p.push(problem),
            Ok((name, source)) => {
                if !source.runs_tasks() || source.is_single() || source.writes() != Writes::File {
                    p.push(Problem::new(
                        key("aggregate.from"),
                        format!(
                            "stage '{name}' must fan out (for_each) and write a JSON file per task"
                        ),
                    ));
                }
            }
        }
        if agg.theory.is_some() {
            p.push(Problem::new(
                key("aggregate.theory"),
                "removed: sluice has no built-in formulas any more; have the task write the \
                 value into its result and list it in aggregate.carry (see examples/ber)",
            ));
        }
        if agg.group_by.trim().is_empty() {
            p.push(Problem::new(key("aggregate.group_by"), "must name a field"));
        }
        if agg.sum.is_empty() {
            p.push(Problem::new(
                key("aggregate.sum"),
                "list at least one numeric field",
            ));
        }
        let mut columns = BTreeSet::new();
        for field in agg.sum.iter().chain(&agg.carry) {
            if !columns.insert(field.as_str()) {
                p.push(Problem::new(
                    key("aggregate"),
                    format!("'{field}' is listed twice in sum/carry"),
                ));
            }
        }
        if let Some(r) = &agg.ratio {
            for (k, field) in [("numerator", &r.numerator), ("denominator", &r.denominator)] {
                if !agg.sum.contains(field) {
                    p.push(Problem::new(
                        key(&format!("aggregate.ratio.{k}")),
                        format!("'{field}' is not one of the summed fields {:?}", agg.sum),
                    ));
                }
            }
            if !(r.confidence > 0.0 && r.confidence < 1.0) {
                p.push(Problem::new(
                    key("aggregate.ratio.confidence"),
                    format!("must be in (0, 1), got {}", r.confidence),
                ));
            }
        }
        if let Some(plot) = &stage.plot {
            if agg.ratio.is_none() {
                p.push(Problem::new(
                    key("plot"),
                    "the plot draws the aggregate's ratio; add aggregate.ratio",
                ));
            }
            if let Some(r) = &plot.reference
                && !agg.carry.contains(r)
            {
                p.push(Problem::new(
                    key("plot.reference"),
                    format!("'{r}' must be one of aggregate.carry {:?}", agg.carry),
                ));
            }
        }
        return;
    }

    if stage.plot.is_some() {
        p.push(Problem::new(
            key("plot"),
            "only an aggregate stage draws a plot",
        ));
    }
    if stage.command.is_empty() {
        p.push(Problem::new(
            key("command"),
            "missing: a stage runs a command (argv list) or has [stage.aggregate]",
        ));
    }
    if stage.cpu == 0 {
        p.push(Problem::new(
            key("cpu"),
            "must be at least 1 (1024 = one vCPU)",
        ));
    }
    if stage.memory_mib == 0 {
        p.push(Problem::new(key("memory_mib"), "must be at least 1"));
    }
    if stage.timeout_seconds == Some(0) {
        p.push(Problem::new(key("timeout_seconds"), "must be at least 1"));
    }
    if stage.max_parallel == Some(0) {
        p.push(Problem::new(key("max_parallel"), "must be at least 1"));
    }
    for name in stage.env.keys() {
        let valid = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            p.push(Problem::new(
                key(&format!("env.{name}")),
                "not a valid environment variable name",
            ));
        } else if name.starts_with("SLUICE_") {
            p.push(Problem::new(
                key(&format!("env.{name}")),
                "SLUICE_* variables are set by sluice",
            ));
        }
    }
    match (stage.writes, &stage.file) {
        (Writes::File, Some(f)) => {
            let ok = !f.is_empty()
                && f.len() <= 100
                && !f.starts_with('.')
                && f.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !ok {
                p.push(Problem::new(
                    key("file"),
                    format!("'{f}': a file name of letters, digits, '-', '_' and '.', not starting with '.'"),
                ));
            }
        }
        (_, Some(_)) => p.push(Problem::new(key("file"), "only with writes = \"file\"")),
        _ => {}
    }

    // Where the rows come from, and which columns a row task can use.
    let mut columns: Option<BTreeSet<String>> = None;
    match stage.kind() {
        StageKind::Single => {
            for (k, set) in [
                ("chunk", stage.chunk.is_some()),
                ("columns", !stage.columns.is_empty()),
                ("task_id", stage.task_id.is_some()),
                ("bad_rows", stage.bad_rows.is_some()),
            ] {
                if set {
                    p.push(Problem::new(key(k), "only for a stage with for_each"));
                }
            }
        }
        StageKind::Rows(source) | StageKind::Chunks(source, _) => {
            if stage.chunk == Some(0) {
                p.push(Problem::new(key("chunk"), "must be at least 1"));
            }
            match source {
                RowSource::Input => {
                    for (k, set) in [
                        ("columns", !stage.columns.is_empty()),
                        ("task_id", stage.task_id.is_some()),
                        ("bad_rows", stage.bad_rows.is_some()),
                    ] {
                        if set {
                            p.push(Problem::new(
                                key(k),
                                "the job's input is described in [input]; set it there",
                            ));
                        }
                    }
                }
                RowSource::Stage(name) => match earlier_named(name) {
                    None => p.push(Problem::new(
                        key("for_each"),
                        format!(
                            "'{name}' is neither \"input\" nor an earlier stage{}",
                            suggest(
                                name,
                                std::iter::once("input")
                                    .chain(earlier.iter().map(|s| s.name.as_str()))
                            )
                        ),
                    )),
                    Some(src) if !(src.is_single() && src.writes() == Writes::File) => {
                        p.push(Problem::new(
                            key("for_each"),
                            format!(
                                "stage '{name}' must be one task that writes a CSV file \
                                 (no for_each, writes = \"file\")"
                            ),
                        ))
                    }
                    Some(_) => {}
                },
            }
            if let (StageKind::Rows(_), Some(schema)) = (stage.kind(), stage.row_schema(cfg)) {
                columns = Some(
                    schema
                        .columns
                        .keys()
                        .cloned()
                        .chain(schema.task_id.clone())
                        .collect(),
                );
            }
        }
        StageKind::Aggregate(_) => unreachable!("handled above"),
    }

    // Every placeholder must be known now, not discovered by N failing tasks.
    let mut known: BTreeSet<String> = BUILTIN_PLACEHOLDERS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    known.extend(cfg.params.keys().cloned());
    if stage.writes != Writes::Nothing {
        known.insert(OUTPUT_PLACEHOLDER.into());
    }
    if matches!(stage.kind(), StageKind::Chunks(..)) {
        known.extend(CHUNK_PLACEHOLDERS.iter().map(|s| s.to_string()));
    }
    if let Some(cols) = &columns {
        // A column must not hide a built-in or a parameter of the same name.
        for col in cols {
            if is_reserved(col) {
                p.push(Problem::new(
                    key("for_each"),
                    format!("column '{col}' has the name of a built-in placeholder, so {{{col}}} could not mean the column; rename it (in the CSV and the schema)"),
                ));
            } else if cfg.params.contains_key(col) {
                p.push(Problem::new(
                    key("for_each"),
                    format!("'{col}' is both a column and a [params] key; rename one"),
                ));
            }
        }
        known.extend(cols.iter().cloned());
    }
    for s in earlier.iter().filter(|s| s.writes() != Writes::Nothing) {
        known.insert(format!("{STAGES_PREFIX}{}", s.name));
    }
    for (j, arg) in stage.command.iter().enumerate() {
        check_placeholders(&key(&format!("command[{j}]")), arg, &known, p);
    }
    // Hints that explain a rejected name better than a list of candidates.
    for (j, arg) in stage.command.iter().enumerate() {
        let Ok(names) = template::placeholders(arg) else {
            continue;
        };
        for name in names {
            if known.contains(name) {
                continue;
            }
            let k = key(&format!("command[{j}]"));
            if let Some(other) = name.strip_prefix(STAGES_PREFIX) {
                if other == stage.name || cfg.stages[i..].iter().any(|s| s.name == other) {
                    explain(
                        p,
                        &k,
                        "a stage can only read the outputs of stages before it",
                    );
                } else if earlier.iter().any(|s| s.name == other) {
                    explain(p, &k, "that stage writes nothing (writes = \"nothing\")");
                }
            } else if name == OUTPUT_PLACEHOLDER {
                explain(p, &k, "the stage has writes = \"nothing\"");
            } else if CHUNK_PLACEHOLDERS.contains(&name) {
                explain(
                    p,
                    &k,
                    "{rows} and {chunk} exist only in a stage with chunk = N",
                );
            } else if matches!(stage.kind(), StageKind::Chunks(..))
                && stage
                    .row_schema(cfg)
                    .is_some_and(|s| s.columns.contains_key(name))
            {
                explain(
                    p,
                    &k,
                    "a chunk task has many rows: read them from the CSV at {rows}",
                );
            } else if let Some(schema) = stage.row_schema(cfg)
                && !schema.columns.contains_key(name)
                && matches!(stage.kind(), StageKind::Rows(_))
            {
                let table = match stage.kind() {
                    StageKind::Rows(RowSource::Input) => "[input] columns",
                    _ => "the stage's columns",
                };
                explain(
                    p,
                    &k,
                    &format!(
                        "a column used in a command must be declared in {table}, as \"string\" if need be"
                    ),
                );
            }
        }
    }
}

/// Append a hint to the last problem of `key`, unless it already suggests a name.
fn explain(p: &mut [Problem], key: &str, hint: &str) {
    if let Some(last) = p.iter_mut().rev().find(|x| x.key == key)
        && !last.message.contains(hint)
        && !last.message.contains("did you mean")
    {
        last.message.push_str(&format!(" ({hint})"));
    }
}

fn check_placeholders(key: &str, arg: &str, known: &BTreeSet<String>, p: &mut Vec<Problem>) {
    match template::placeholders(arg) {
        Err(e) => p.push(Problem::new(key, e.to_string())),
        Ok(names) => {
            for name in names {
                if !known.contains(name) {
                    let e = TemplateError::Unknown {
                        name: name.to_string(),
                        arg: arg.to_string(),
                    };
                    p.push(Problem::new(
                        key,
                        format!("{e}{}", suggest(name, known.iter().map(String::as_str))),
                    ));
                }
            }
        }
    }
}

/// "; did you mean 'x'?" for the closest candidate, if one is close.
pub fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    candidates
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| *d <= 2.max(name.len() / 4) && *d < c.len().max(name.len()))
        .min()
        .map(|(_, c)| format!("; did you mean '{c}'?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::PipelineConfig;

    fn problems(text: &str) -> Vec<String> {
        match PipelineConfig::from_toml("p.toml", text) {
            Ok(_) => Vec::new(),
            Err(e) => e.to_string().lines().map(str::to_string).collect(),
        }
    }

    const STAGES: &str = r#"
name = "daily"
[input]
columns = { region = "string", amount = "float" }
[params]
threshold = 5
[[stage]]
name = "clean"
command = ["clean.py", "{input}", "{output}"]
file = "clean.csv"
[[stage]]
name = "analyse"
for_each = "clean"
chunk = 100
command = ["analyse.py", "{rows}", "{chunk}", "{threshold}", "{output}"]
[[stage]]
name = "merge"
command = ["merge.py", "{stages.analyse}", "{output}"]
[[stage]]
name = "record"
command = ["record.sh", "{stages.merge}", "{job_id}"]
writes = "nothing"
"#;

    #[test]
    fn a_good_multi_stage_pipeline_has_no_problems() {
        assert_eq!(problems(STAGES), Vec::<String>::new());
    }

    #[test]
    fn a_placeholder_typo_is_one_error_at_load_with_a_suggestion() {
        let p = problems(&STAGES.replace("{chunk}", "{chunck}"));
        assert_eq!(
            p,
            [
                "p.toml: stage.analyse.command[2]: unknown placeholder '{chunck}' in '{chunck}'; did you mean 'chunk'?"
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = STAGES
            .replace("{stages.analyse}", "{stages.record}")
            .replace("for_each = \"clean\"", "for_each = \"cleen\"")
            .replace("{job_id}", "{output}");
        let p = problems(&text);
        assert_eq!(p.len(), 3, "{p:#?}");
        assert!(p[0].starts_with("p.toml: stage.analyse.for_each: 'cleen' is neither \"input\" nor an earlier stage; did you mean 'clean'?"), "{p:#?}");
        assert!(
            p[1].contains("stage.merge.command[1]")
                && p[1].contains("only read the outputs of stages before it"),
            "{p:#?}"
        );
        assert!(
            p[2].contains("stage.record.command[2]") && p[2].contains("writes = \"nothing\""),
            "{p:#?}"
        );
    }

    #[test]
    fn undeclared_columns_and_bad_schedules_are_named() {
        let text = r#"
name = "rows"
[input]
columns = { seed = "integer" }
[task]
command = ["sim", "{seed}", "{sede}", "{colour}", "{output}"]
[[schedule]]
name = "nightly"
expression = "cron(0 2 * * * *)"
input = "in.csv"
"#;
        let p = problems(text);
        assert_eq!(p.len(), 3, "{p:#?}");
        assert!(
            p[0].contains("stage.tasks.command[2]") && p[0].contains("did you mean 'seed'?"),
            "{p:#?}"
        );
        assert!(
            p[1].contains("'{colour}'") && p[1].contains("declared in [input] columns"),
            "{p:#?}"
        );
        assert!(
            !p[0].contains("declared"),
            "a suggestion is hint enough: {p:#?}"
        );
        assert!(
            p[2].starts_with("p.toml: schedule[0].expression: 'cron(0 2 * * * *)'"),
            "{p:#?}"
        );
    }

    #[test]
    fn aggregate_references_are_checked() {
        let text = r#"
name = "agg"
[task]
command = ["sim", "{output}"]
[aggregate]
group_by = "x"
sum = ["bits", "errors"]
ratio = { name = "ber", numerator = "errs", denominator = "bits" }
theory = "bpsk-awgn"
[plot]
title = "t"
x_label = "x"
y_label = "y"
reference = "ber_theory"
"#;
        let p = problems(text);
        assert_eq!(p.len(), 3, "{p:#?}");
        assert!(p[0].contains("aggregate.theory: removed"), "{p:#?}");
        assert!(p[1].contains("aggregate.ratio.numerator: 'errs'"), "{p:#?}");
        assert!(p[2].contains("plot.reference: 'ber_theory'"), "{p:#?}");
    }

    #[test]
    fn a_column_cannot_hide_a_built_in_or_a_parameter() {
        let text = r#"
name = "c"
[params]
limit = 3
[input]
columns = { input = "string", limit = "integer" }
[[stage]]
name = "s"
for_each = "input"
command = ["x", "{limit}"]
writes = "nothing"
"#;
        let p = problems(text).join("\n");
        assert!(
            p.contains("stage.s.for_each: column 'input' has the name of a built-in placeholder"),
            "{p}"
        );
        assert!(
            p.contains("'limit' is both a column and a [params] key"),
            "{p}"
        );
    }

    #[test]
    fn stage_names_params_and_notify_are_checked() {
        let text = r#"
name = "n"
[params]
output = "x"
[[stage]]
name = "a.b"
command = ["x"]
[[stage]]
name = "c"
command = ["y"]
[[stage]]
name = "c"
command = ["z"]
[notify]
webhook = "ftp://example.com/x"
command = ["notify.sh", "{status}", "{result}"]
"#;
        let p = problems(text);
        let joined = p.join("\n");
        for want in [
            "params.output: 'output' is a built-in placeholder",
            "stage[0].name: 'a.b': letters, digits and '-' only",
            "stage[2].name: 'c' names two stages",
            "notify.webhook: 'ftp://example.com/x': must be an http(s) URL",
            "notify.command[2]: unknown placeholder '{result}'",
        ] {
            assert!(joined.contains(want), "missing {want:?} in\n{joined}");
        }
    }
}
