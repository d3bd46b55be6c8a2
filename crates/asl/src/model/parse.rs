//! JSON → typed model. Runs after validation, and reports (never panics on) anything the model
//! cannot represent, with the location of the offending field.

use super::*;
use crate::resource::TaskResource;
use serde_json::Value;

pub use crate::validate::Diagnostic;

pub(super) fn validate_text(text: &str) -> Result<Value, Vec<Diagnostic>> {
    crate::validate::validate_str(text)
}

pub(super) fn validate_value(value: &Value) -> Result<(), Vec<Diagnostic>> {
    let problems = crate::validate::validate_definition(value);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[derive(Default)]
pub(super) struct Parser {
    pub(super) diagnostics: Vec<Diagnostic>,
}

fn esc(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

impl Parser {
    pub(super) fn into_diagnostics(mut self) -> Vec<Diagnostic> {
        if self.diagnostics.is_empty() {
            self.err("/", "the definition could not be parsed");
        }
        self.diagnostics
    }

    fn err(&mut self, location: &str, message: impl Into<String>) {
        let location = if location.is_empty() { "/" } else { location };
        self.diagnostics.push(Diagnostic {
            location: location.to_string(),
            message: message.into(),
        });
    }

    fn opt_str(&mut self, v: &Value, loc: &str, key: &str) -> Option<String> {
        match v.get(key) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.err(&format!("{loc}/{key}"), format!("{key} must be a string"));
                None
            }
        }
    }

    pub(super) fn opt_u64(&mut self, v: &Value, loc: &str, key: &str) -> Option<u64> {
        match v.get(key) {
            None => None,
            Some(n) => match n.as_u64() {
                Some(n) => Some(n),
                None => {
                    self.err(
                        &format!("{loc}/{key}"),
                        format!("{key} must be a non-negative integer"),
                    );
                    None
                }
            },
        }
    }

    fn opt_f64(&mut self, v: &Value, loc: &str, key: &str) -> Option<f64> {
        match v.get(key) {
            None => None,
            Some(n) => match n.as_f64() {
                Some(n) => Some(n),
                None => {
                    self.err(&format!("{loc}/{key}"), format!("{key} must be a number"));
                    None
                }
            },
        }
    }

    /// A path field where `null` is meaningful: absent → `$`, null → None.
    fn nullable_path(&mut self, v: &Value, loc: &str, key: &str) -> Option<String> {
        match v.get(key) {
            None => Some("$".into()),
            Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.err(
                    &format!("{loc}/{key}"),
                    format!("{key} must be a string or null"),
                );
                Some("$".into())
            }
        }
    }

    fn seconds(&mut self, v: &Value, loc: &str, key: &str) -> Option<Seconds> {
        let path_key = format!("{key}Path");
        match (self.opt_u64(v, loc, key), self.opt_str(v, loc, &path_key)) {
            (Some(_), Some(_)) => {
                self.err(loc, format!("{key} and {path_key} are mutually exclusive"));
                None
            }
            (Some(n), None) => Some(Seconds::Fixed(n)),
            (None, Some(p)) => Some(Seconds::Path(p)),
            (None, None) => None,
        }
    }

    fn number_or_path(&mut self, v: &Value, loc: &str, key: &str) -> Option<NumberOrPath> {
        let path_key = format!("{key}Path");
        match (self.opt_f64(v, loc, key), self.opt_str(v, loc, &path_key)) {
            (Some(_), Some(_)) => {
                self.err(loc, format!("{key} and {path_key} are mutually exclusive"));
                None
            }
            (Some(n), None) => Some(NumberOrPath::Fixed(n)),
            (None, Some(p)) => Some(NumberOrPath::Path(p)),
            (None, None) => None,
        }
    }

    fn error_list(&mut self, v: &Value, loc: &str) -> Vec<String> {
        match v.get("ErrorEquals").and_then(Value::as_array) {
            Some(a) if !a.is_empty() => a
                .iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect(),
            _ => {
                self.err(
                    &format!("{loc}/ErrorEquals"),
                    "ErrorEquals must be a non-empty array of strings",
                );
                Vec::new()
            }
        }
    }

    pub(super) fn graph(&mut self, v: &Value, loc: &str) -> Option<Graph> {
        let start_at = self.opt_str(v, loc, "StartAt");
        let Some(states) = v.get("States").and_then(Value::as_object) else {
            self.err(&format!("{loc}/States"), "States must be a JSON object");
            return None;
        };
        let mut out = HashMap::new();
        for (name, sv) in states {
            let sloc = format!("{loc}/States/{}", esc(name));
            if let Some(s) = self.state(name, sv, &sloc) {
                out.insert(name.clone(), s);
            }
        }
        let Some(start_at) = start_at else {
            self.err(&format!("{loc}/StartAt"), "StartAt is required");
            return None;
        };
        if !out.contains_key(&start_at) && states.get(&start_at).is_none() {
            self.err(
                &format!("{loc}/StartAt"),
                format!("StartAt '{start_at}' is not a state in States"),
            );
        }
        Some(Graph {
            start_at,
            states: out,
        })
    }

    fn state(&mut self, name: &str, v: &Value, loc: &str) -> Option<State> {
        if !v.is_object() {
            self.err(loc, "a state must be a JSON object");
            return None;
        }
        let ty = self.opt_str(v, loc, "Type").unwrap_or_default();
        let terminal = matches!(ty.as_str(), "Choice" | "Succeed" | "Fail");
        let transition = if terminal {
            None
        } else {
            match (
                self.opt_str(v, loc, "Next"),
                v.get("End").and_then(Value::as_bool).unwrap_or(false),
            ) {
                (Some(n), false) => Some(Transition::Next(n)),
                (None, true) => Some(Transition::End),
                _ => {
                    self.err(loc, "a state must have exactly one of Next or End: true");
                    None
                }
            }
        };
        let io = Io {
            input_path: self.nullable_path(v, loc, "InputPath"),
            output_path: self.nullable_path(v, loc, "OutputPath"),
            result_path: self.nullable_path(v, loc, "ResultPath"),
            parameters: v.get("Parameters").cloned(),
            result_selector: v.get("ResultSelector").cloned(),
        };
        let retry = self.retriers(v, loc);
        let catch = self.catchers(v, loc);
        let kind = match ty.as_str() {
            "Pass" => StateKind::Pass {
                result: v.get("Result").cloned(),
            },
            "Task" => StateKind::Task(self.task(v, loc)?),
            "Choice" => StateKind::Choice(self.choice(v, loc)),
            "Wait" => StateKind::Wait(self.wait(v, loc)?),
            "Succeed" => StateKind::Succeed,
            "Fail" => StateKind::Fail(FailState {
                error: self.opt_str(v, loc, "Error"),
                error_path: self.opt_str(v, loc, "ErrorPath"),
                cause: self.opt_str(v, loc, "Cause"),
                cause_path: self.opt_str(v, loc, "CausePath"),
            }),
            "Parallel" => {
                let mut branches = Vec::new();
                match v.get("Branches").and_then(Value::as_array) {
                    Some(bs) => {
                        for (i, b) in bs.iter().enumerate() {
                            if let Some(g) = self.graph(b, &format!("{loc}/Branches/{i}")) {
                                branches.push(g);
                            }
                        }
                    }
                    None => self.err(
                        &format!("{loc}/Branches"),
                        "Branches must be an array of state machines",
                    ),
                }
                StateKind::Parallel(ParallelState { branches })
            }
            "Map" => StateKind::Map(Box::new(self.map(v, loc)?)),
            other => {
                self.err(
                    &format!("{loc}/Type"),
                    format!("'{other}' is not a valid state type"),
                );
                return None;
            }
        };
        if terminal && v.get("Next").is_some() {
            self.err(
                &format!("{loc}/Next"),
                format!("a {ty} state cannot have Next"),
            );
        }
        let raw = v.to_string();
        Some(State {
            name: name.to_string(),
            comment: v.get("Comment").and_then(Value::as_str).map(str::to_string),
            kind,
            transition,
            io,
            retry,
            catch,
            reads_execution_input: super::reads_execution_input(&raw),
            reads_context: raw.contains("$$"),
        })
    }

    fn retriers(&mut self, v: &Value, loc: &str) -> Vec<Retrier> {
        let Some(list) = v.get("Retry") else {
            return Vec::new();
        };
        let Some(list) = list.as_array() else {
            self.err(&format!("{loc}/Retry"), "Retry must be an array");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, r) in list.iter().enumerate() {
            let rl = format!("{loc}/Retry/{i}");
            let jitter = match self.opt_str(r, &rl, "JitterStrategy").as_deref() {
                None | Some("NONE") => Jitter::None,
                Some("FULL") => Jitter::Full,
                Some(other) => {
                    self.err(
                        &format!("{rl}/JitterStrategy"),
                        format!("JitterStrategy must be FULL or NONE, not '{other}'"),
                    );
                    Jitter::None
                }
            };
            out.push(Retrier {
                error_equals: self.error_list(r, &rl),
                interval_seconds: self.opt_f64(r, &rl, "IntervalSeconds").unwrap_or(1.0),
                max_attempts: self.opt_u64(r, &rl, "MaxAttempts").unwrap_or(3),
                backoff_rate: self.opt_f64(r, &rl, "BackoffRate").unwrap_or(2.0),
                max_delay_seconds: self.opt_f64(r, &rl, "MaxDelaySeconds"),
                jitter,
            });
        }
        out
    }

    fn catchers(&mut self, v: &Value, loc: &str) -> Vec<Catcher> {
        let Some(list) = v.get("Catch") else {
            return Vec::new();
        };
        let Some(list) = list.as_array() else {
            self.err(&format!("{loc}/Catch"), "Catch must be an array");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, c) in list.iter().enumerate() {
            let cl = format!("{loc}/Catch/{i}");
            let error_equals = self.error_list(c, &cl);
            let Some(next) = self.opt_str(c, &cl, "Next") else {
                self.err(&format!("{cl}/Next"), "a catcher needs Next");
                continue;
            };
            out.push(Catcher {
                error_equals,
                next,
                result_path: self.nullable_path(c, &cl, "ResultPath"),
            });
        }
        out
    }

    fn task(&mut self, v: &Value, loc: &str) -> Option<TaskState> {
        let Some(resource) = self.opt_str(v, loc, "Resource") else {
            self.err(&format!("{loc}/Resource"), "a Task state needs a Resource");
            return None;
        };
        let target = match TaskResource::parse(&resource) {
            Ok(t) => t,
            Err(m) => {
                self.err(&format!("{loc}/Resource"), m);
                return None;
            }
        };
        Some(TaskState {
            resource,
            target,
            timeout: self.seconds(v, loc, "TimeoutSeconds"),
            heartbeat: self.seconds(v, loc, "HeartbeatSeconds"),
        })
    }

    fn choice(&mut self, v: &Value, loc: &str) -> ChoiceState {
        let mut choices = Vec::new();
        match v.get("Choices").and_then(Value::as_array) {
            Some(list) => {
                for (i, c) in list.iter().enumerate() {
                    match crate::data::choice::parse_choice(c) {
                        Ok((rule, Some(next))) => choices.push(ChoiceBranch { rule, next }),
                        Ok((_, None)) => self.err(
                            &format!("{loc}/Choices/{i}/Next"),
                            "a top-level choice rule needs Next",
                        ),
                        Err(m) => self.err(&format!("{loc}/Choices/{i}"), m),
                    }
                }
            }
            None => self.err(&format!("{loc}/Choices"), "Choices must be an array"),
        }
        ChoiceState {
            choices,
            default: self.opt_str(v, loc, "Default"),
        }
    }

    fn wait(&mut self, v: &Value, loc: &str) -> Option<WaitState> {
        let fields = [
            v.get("Seconds").map(|s| s.as_u64().map(WaitState::Seconds)),
            v.get("Timestamp")
                .map(|s| s.as_str().map(|s| WaitState::Timestamp(s.into()))),
            v.get("SecondsPath")
                .map(|s| s.as_str().map(|s| WaitState::SecondsPath(s.into()))),
            v.get("TimestampPath")
                .map(|s| s.as_str().map(|s| WaitState::TimestampPath(s.into()))),
        ];
        let given: Vec<_> = fields.into_iter().flatten().collect();
        match given.as_slice() {
            [Some(w)] => Some(w.clone()),
            [None] => {
                self.err(loc, "the Wait field has the wrong type");
                None
            }
            _ => {
                self.err(
                    loc,
                    "a Wait state needs exactly one of Seconds, Timestamp, SecondsPath, TimestampPath",
                );
                None
            }
        }
    }

    fn map(&mut self, v: &Value, loc: &str) -> Option<MapState> {
        let (proc_key, proc_value) = match (v.get("ItemProcessor"), v.get("Iterator")) {
            (Some(p), _) => ("ItemProcessor", p),
            (None, Some(i)) => ("Iterator", i),
            (None, None) => {
                self.err(loc, "a Map state needs ItemProcessor (or Iterator)");
                return None;
            }
        };
        let ploc = format!("{loc}/{proc_key}");
        let processor = self.graph(proc_value, &ploc)?;
        let mode = match proc_value.get("ProcessorConfig") {
            Some(cfg) => match cfg.get("Mode").and_then(Value::as_str) {
                Some("DISTRIBUTED") => MapMode::Distributed {
                    execution_type: cfg
                        .get("ExecutionType")
                        .and_then(Value::as_str)
                        .unwrap_or("STANDARD")
                        .to_string(),
                },
                None | Some("INLINE") => MapMode::Inline,
                Some(other) => {
                    self.err(
                        &format!("{ploc}/ProcessorConfig/Mode"),
                        format!("Mode must be INLINE or DISTRIBUTED, not '{other}'"),
                    );
                    MapMode::Inline
                }
            },
            None => MapMode::Inline,
        };
        let item_reader = match v.get("ItemReader") {
            None => None,
            Some(r) => {
                let rloc = format!("{loc}/ItemReader");
                let Some(resource) = self.opt_str(r, &rloc, "Resource") else {
                    self.err(&format!("{rloc}/Resource"), "ItemReader needs a Resource");
                    return None;
                };
                Some(ItemReaderSpec {
                    resource,
                    parameters: r.get("Parameters").cloned(),
                    reader_config: r.get("ReaderConfig").cloned(),
                })
            }
        };
        let result_writer = v.get("ResultWriter").map(|w| ResultWriterSpec {
            resource: w
                .get("Resource")
                .and_then(Value::as_str)
                .map(str::to_string),
            parameters: w.get("Parameters").cloned(),
            writer_config: w.get("WriterConfig").cloned(),
        });
        let item_selector = v
            .get("ItemSelector")
            .or_else(|| v.get("Parameters"))
            .cloned();
        Some(MapState {
            items_path: self
                .opt_str(v, loc, "ItemsPath")
                .unwrap_or_else(|| "$".into()),
            item_selector,
            max_concurrency: self
                .number_or_path(v, loc, "MaxConcurrency")
                .unwrap_or(NumberOrPath::Fixed(0.0)),
            processor,
            mode,
            item_reader,
            item_batcher: v.get("ItemBatcher").cloned(),
            result_writer,
            tolerated_failure_percentage: self.number_or_path(v, loc, "ToleratedFailurePercentage"),
            tolerated_failure_count: self.number_or_path(v, loc, "ToleratedFailureCount"),
            label: self.opt_str(v, loc, "Label"),
        })
    }
}
