//! Pipeline configuration (`pipeline.toml`): an ordered list of stages, each one task or a
//! fan-out of tasks running the user's own command (or a built-in step such as the group/sum
//! aggregate), with the job's input schema, parameters, parallelism, retries, schedules and
//! notifications. One file per pipeline; the same file drives the local runtime and AWS (where
//! it is stored in the data bucket under `pipelines/<name>.toml`).
//!
//! Loading is parse → normalise → check: [`PipelineConfig::from_toml`] reads the TOML (unknown
//! keys are errors), turns the one-stage form of earlier versions (`[task]`, `[aggregate]`,
//! `[plot]`) into stages, and runs every check that needs nothing but the file ([`check`]):
//! placeholders against columns, params and built-ins, stage references, schedule expressions.
//! Every problem is reported at once, each naming its key. Checks that need a file system
//! (commands and schedule inputs relative to the file) live with the local runtime.

pub mod check;
pub mod template;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use check::Problem;

/// A parse or consistency error in a pipeline file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PipelineError {
    /// Not TOML, or a key of the wrong type or unknown (the message has line and column).
    #[error("{source_name}: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    /// Valid TOML that does not describe a pipeline that can run; one entry per problem.
    #[error("{}", render_problems(source_name, problems))]
    Invalid {
        source_name: String,
        problems: Vec<Problem>,
    },
}

fn render_problems(source_name: &str, problems: &[Problem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| format!("{source_name}: {p}"))
        .collect();
    lines.join("\n")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where relative command paths and schedule inputs resolve, and where local task
    /// processes run. Set by sluice to the pipeline file's directory when it loads the file;
    /// ignored on ECS/Batch, where the image decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// Schema of the job's input CSV, for stages that fan out over its rows.
    #[serde(default)]
    pub input: InputSchema,
    /// Constants available to every command template, e.g. frames per task.
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<ScaleSpec>,
    #[serde(default)]
    pub parallelism: Parallelism,
    #[serde(default)]
    pub retry: RetryPolicy,
    /// The stages, run in order.
    #[serde(default, rename = "stage", skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<Schedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifySpec>,
    /// The one-stage form of earlier versions: one task per input row. Normalised into a
    /// stage named `tasks` at load; never set on a loaded config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskSpec>,
    /// One-stage form: the aggregate after the tasks, normalised into a stage `aggregate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<AggregateSpec>,
    /// One-stage form: the plot of the aggregate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plot: Option<PlotSpec>,
}

/// Type of a CSV column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    String,
    Integer,
    Float,
    Boolean,
}

/// What to do with a row that does not fit the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BadRows {
    /// The job fails before any task runs, with every bad row reported (up to a limit).
    #[default]
    Fail,
    /// Bad rows are left out and written, with the reason, to the stage's `rejects.csv`; the
    /// job goes on with the good ones.
    Skip,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSchema {
    /// Columns every row must have, with their types. Other columns are passed as strings
    /// but cannot be used as placeholders (declare them, as `string` if need be).
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnType>,
    /// Column that names each task; by default tasks are named `t-00000`, `t-00001`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Refuse inputs with more rows than this (a typo in a generator should not launch a
    /// million containers).
    #[serde(default = "default_max_tasks")]
    pub max_tasks: u32,
    #[serde(default)]
    pub bad_rows: BadRows,
}

fn default_max_tasks() -> u32 {
    100_000
}

impl Default for InputSchema {
    fn default() -> Self {
        Self {
            columns: BTreeMap::new(),
            task_id: None,
            max_tasks: default_max_tasks(),
            bad_rows: BadRows::Fail,
        }
    }
}

/// What a task leaves behind at `{output}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Writes {
    /// One file; a task that exits 0 without writing it has failed (`Sluice.ResultMissing`).
    #[default]
    File,
    /// A directory of files (possibly none).
    Dir,
    /// Nothing: the task works by side effect (a database update, a message).
    Nothing,
}

/// One stage: a command run once or once per row / chunk of rows, or a built-in step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// Letters, digits and '-'; unique in the pipeline; names the stage's tasks and outputs.
    pub name: String,
    /// argv of each task. Placeholders: see docs/pipeline.md.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Fan out: `"input"` for the job's input CSV, or the name of an earlier one-task stage
    /// whose output file is a CSV. Without it the stage is one task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<String>,
    /// Rows per task: each task gets a CSV of up to this many rows at `{rows}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<u32>,
    /// Schema of the CSV an earlier stage wrote (for `for_each = "<stage>"`); the job's input
    /// uses `[input]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, ColumnType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_rows: Option<BadRows>,
    #[serde(default)]
    pub writes: Writes,
    /// Name of the output file (`writes = "file"`); default `result.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Container image for ECS / Batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default = "default_cpu")]
    pub cpu: u32,
    #[serde(default = "default_memory")]
    pub memory_mib: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Most tasks of this stage at once; default `[parallelism] max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u32>,
    /// A built-in group/sum/ratio aggregate instead of a command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<AggregateSpec>,
    /// With `aggregate`: draw the ratio as `results.png`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plot: Option<PlotSpec>,
}

/// How long one attempt of a task may run when its stage sets no `timeout_seconds`: a day.
pub const DEFAULT_TASK_TIMEOUT_SECONDS: u64 = 86_400;

/// The file name a task writes when the stage names none.
pub const DEFAULT_OUTPUT_FILE: &str = "result.json";

/// Where a fan-out's rows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowSource<'a> {
    /// The job's input CSV.
    Input,
    /// The output file of an earlier one-task stage.
    Stage(&'a str),
}

/// The shape of a stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StageKind<'a> {
    /// One task.
    Single,
    /// One task per row of `source`.
    Rows(RowSource<'a>),
    /// One task per `size` rows of `source`.
    Chunks(RowSource<'a>, u32),
    /// The built-in aggregate (runs in the aggregate step, not on compute).
    Aggregate(&'a AggregateSpec),
}

impl StageSpec {
    pub fn kind(&self) -> StageKind<'_> {
        if let Some(spec) = &self.aggregate {
            return StageKind::Aggregate(spec);
        }
        let source = match self.for_each.as_deref() {
            None => return StageKind::Single,
            Some("input") => RowSource::Input,
            Some(stage) => RowSource::Stage(stage),
        };
        match self.chunk {
            Some(size) => StageKind::Chunks(source, size),
            None => StageKind::Rows(source),
        }
    }

    /// How long one attempt of the stage's tasks may run, from its start (not its launch):
    /// compute stops it after that (AWS Batch's `attemptDurationSeconds`, the local pool's run
    /// timeout), and the attempt has timed out.
    pub fn attempt_timeout_seconds(&self) -> u64 {
        self.timeout_seconds.unwrap_or(DEFAULT_TASK_TIMEOUT_SECONDS)
    }

    /// Whether the stage's tasks run on compute (every kind but the built-ins).
    pub fn runs_tasks(&self) -> bool {
        !matches!(self.kind(), StageKind::Aggregate(_))
    }

    /// Whether the stage has one task (its output is a file or directory, not one per task).
    pub fn is_single(&self) -> bool {
        matches!(self.kind(), StageKind::Single)
    }

    /// What the stage's tasks write; the aggregate writes a directory (results.csv, .png).
    pub fn writes(&self) -> Writes {
        match self.kind() {
            StageKind::Aggregate(_) => Writes::Dir,
            _ => self.writes,
        }
    }

    pub fn output_file(&self) -> &str {
        self.file.as_deref().unwrap_or(DEFAULT_OUTPUT_FILE)
    }

    /// The schema of the rows this stage fans out over, if it does.
    pub fn row_schema(&self, pipeline: &PipelineConfig) -> Option<InputSchema> {
        let source = match self.kind() {
            StageKind::Rows(s) | StageKind::Chunks(s, _) => s,
            _ => return None,
        };
        Some(match source {
            RowSource::Input => pipeline.input.clone(),
            RowSource::Stage(_) => InputSchema {
                columns: self.columns.clone(),
                task_id: self.task_id.clone(),
                max_tasks: pipeline.input.max_tasks,
                bad_rows: self.bad_rows.unwrap_or_default(),
            },
        })
    }
}

fn default_cpu() -> u32 {
    1024
}
fn default_memory() -> u32 {
    1024
}

/// `[task]` of the one-stage form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    pub command: Vec<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default = "default_cpu")]
    pub cpu: u32,
    #[serde(default = "default_memory")]
    pub memory_mib: u32,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleSpec {
    /// The integer parameter `sluice run --scale F` multiplies (rounded, at least 1).
    pub param: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parallelism {
    /// Most tasks running at once (the Map's MaxConcurrency, the capacity lease's slots).
    #[serde(default = "default_max_parallel")]
    pub max: u32,
}

fn default_max_parallel() -> u32 {
    24
}

impl Default for Parallelism {
    fn default() -> Self {
        Self {
            max: default_max_parallel(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Total attempts a task gets for application errors (non-zero exit). 1 = never retried.
    #[serde(default = "default_task_failed_attempts")]
    pub task_failed_attempts: u32,
    /// After this many Spot interruptions of one task, its next attempt goes to on-demand
    /// capacity, so a task cannot be starved by a busy Spot pool.
    #[serde(default = "default_on_demand_after")]
    pub on_demand_after_spot_interruptions: u32,
    /// Whether a task that exits 0 without writing its output file is retried (as an
    /// application error). Off by default: a step with side effects must not run again.
    #[serde(default)]
    pub retry_missing_output: bool,
}

fn default_task_failed_attempts() -> u32 {
    2
}
fn default_on_demand_after() -> u32 {
    2
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            task_failed_attempts: default_task_failed_attempts(),
            on_demand_after_spot_interruptions: default_on_demand_after(),
            retry_missing_output: false,
        }
    }
}

/// Group-and-sum aggregation of the JSON results of a fan-out stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateSpec {
    /// The fan-out stage whose results are aggregated; default: the stage before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Field (of the result, else of the task's row) whose value groups tasks.
    pub group_by: String,
    /// Numeric result fields summed per group.
    pub sum: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<RatioSpec>,
    /// Result fields that are the same for every task of a group (e.g. a closed-form value
    /// the task computed), copied into the table after the sums and ratio.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub carry: Vec<String>,
    /// Removed: the closed form is no longer built in (see the check's message).
    #[serde(default, skip_serializing)]
    pub theory: Option<toml::Value>,
}

/// A ratio of two sums with a binomial confidence interval (e.g. BER = errors / bits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatioSpec {
    pub name: String,
    pub numerator: String,
    pub denominator: String,
    #[serde(default = "default_confidence")]
    pub confidence: f64,
}

fn default_confidence() -> f64 {
    0.95
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlotSpec {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    #[serde(default)]
    pub log_y: bool,
    /// A carried column drawn as a line under the points (e.g. the theoretical curve).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_label: Option<String>,
}

/// A schedule on which the pipeline runs by itself, like an EventBridge Scheduler schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub name: String,
    /// `rate(N minutes|hours|days)` or `cron(min hour day-of-month month day-of-week year)`.
    pub expression: String,
    /// The CSV each run processes, relative to the pipeline file.
    pub input: String,
}

/// Job outcomes a notification can be sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyOn {
    Succeeded,
    Failed,
    Aborted,
}

impl NotifyOn {
    pub fn of(state: crate::model::JobState) -> Option<NotifyOn> {
        use crate::model::JobState;
        match state {
            JobState::Succeeded => Some(NotifyOn::Succeeded),
            JobState::Failed => Some(NotifyOn::Failed),
            JobState::Aborted => Some(NotifyOn::Aborted),
            JobState::Submitted | JobState::Running => None,
        }
    }
}

fn default_notify_on() -> Vec<NotifyOn> {
    vec![NotifyOn::Succeeded, NotifyOn::Failed, NotifyOn::Aborted]
}

/// Notifications a person receives when a job ends, besides SNS / notifications.jsonl.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySpec {
    /// An https (or http) URL that gets a Slack-compatible JSON POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// A command run with the job summary as JSON on stdin; placeholders `{job_id}`,
    /// `{pipeline}`, `{status}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Which outcomes notify; default all three.
    #[serde(default = "default_notify_on")]
    pub on: Vec<NotifyOn>,
}

impl PipelineConfig {
    /// Parse, normalise and check a pipeline file. `source_name` names the file in errors.
    pub fn from_toml(source_name: &str, text: &str) -> Result<Self, PipelineError> {
        let mut cfg: PipelineConfig = toml::from_str(text).map_err(|e| PipelineError::Parse {
            source_name: source_name.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let mut problems = cfg.normalise();
        if problems.is_empty() {
            problems = check::check(&cfg);
        }
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(PipelineError::Invalid {
                source_name: source_name.to_string(),
                problems,
            })
        }
    }

    /// Turn the one-stage form (`[task]`, `[aggregate]`, `[plot]`) into stages.
    fn normalise(&mut self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let legacy = self.task.is_some() || self.aggregate.is_some() || self.plot.is_some();
        if legacy && !self.stages.is_empty() {
            problems.push(Problem::new(
                "task",
                "use either [[stage]] or the one-stage [task]/[aggregate]/[plot], not both",
            ));
            return problems;
        }
        if !legacy {
            return problems;
        }
        let Some(task) = self.task.take() else {
            problems.push(Problem::new(
                "task",
                "missing: [aggregate] and [plot] need the [task] whose results they use",
            ));
            return problems;
        };
        self.stages.push(StageSpec {
            name: "tasks".into(),
            command: task.command,
            for_each: Some("input".into()),
            image: task.image,
            cpu: task.cpu,
            memory_mib: task.memory_mib,
            timeout_seconds: task.timeout_seconds,
            env: task.env,
            ..StageSpec::empty("tasks")
        });
        match (self.aggregate.take(), self.plot.take()) {
            (Some(aggregate), plot) => self.stages.push(StageSpec {
                aggregate: Some(aggregate),
                plot,
                ..StageSpec::empty("aggregate")
            }),
            (None, Some(_)) => problems.push(Problem::new(
                "plot",
                "a plot draws the [aggregate]; add one or remove [plot]",
            )),
            (None, None) => {}
        }
        problems
    }

    /// The stage named `name`, with its position.
    pub fn stage(&self, name: &str) -> Option<(usize, &StageSpec)> {
        self.stages.iter().enumerate().find(|(_, s)| s.name == name)
    }

    /// Most tasks at once over all stages: what the job's capacity lease asks for.
    pub fn max_parallel(&self) -> u32 {
        self.stages
            .iter()
            .filter(|s| s.runs_tasks())
            .map(|s| self.stage_parallelism(s))
            .max()
            .unwrap_or(1)
    }

    pub fn stage_parallelism(&self, stage: &StageSpec) -> u32 {
        stage.max_parallel.unwrap_or(self.parallelism.max)
    }

    /// A copy with the scale parameter multiplied by `factor` (rounded, at least 1).
    pub fn scaled(&self, factor: f64) -> Result<Self, String> {
        if !(factor.is_finite() && factor > 0.0) {
            return Err(format!("scale must be a positive number, got {factor}"));
        }
        let mut cfg = self.clone();
        if let Some(scale) = &self.scale
            && let Some(toml::Value::Integer(v)) = cfg.params.get_mut(&scale.param)
        {
            *v = ((*v as f64) * factor).round().max(1.0) as i64;
        }
        Ok(cfg)
    }

    /// `[params]` as command text (strings without quotes).
    pub fn param_text(&self, name: &str) -> Option<String> {
        self.params.get(name).map(|v| match v {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// The file as sluice stores it: normalised (stages only) and re-checkable.
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|e| e.to_string())
    }
}

impl StageSpec {
    /// A stage with a name and every other key at its default.
    pub fn empty(name: &str) -> Self {
        Self {
            name: name.into(),
            command: Vec::new(),
            for_each: None,
            chunk: None,
            columns: BTreeMap::new(),
            task_id: None,
            bad_rows: None,
            writes: Writes::File,
            file: None,
            image: None,
            cpu: default_cpu(),
            memory_mib: default_memory(),
            timeout_seconds: None,
            env: BTreeMap::new(),
            max_parallel: None,
            aggregate: None,
            plot: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BER: &str = include_str!("../../../../examples/ber/pipeline.toml");

    #[test]
    fn example_pipeline_parses_into_stages() {
        let cfg = PipelineConfig::from_toml("pipeline.toml", BER).unwrap();
        assert_eq!(cfg.name, "ber");
        assert_eq!(cfg.parallelism.max, 24);
        let names: Vec<&str> = cfg.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["tasks", "aggregate"]);
        assert_eq!(cfg.stages[0].kind(), StageKind::Rows(RowSource::Input));
        assert!(matches!(cfg.stages[1].kind(), StageKind::Aggregate(_)));
        let scaled = cfg.scaled(0.01).unwrap();
        assert_eq!(scaled.params["frames"], toml::Value::Integer(41));
        assert_eq!(cfg.params["frames"], toml::Value::Integer(4096));
    }

    #[test]
    fn the_stored_form_loads_back_the_same() {
        let cfg = PipelineConfig::from_toml("pipeline.toml", BER).unwrap();
        let stored = cfg.to_toml().unwrap();
        assert!(stored.contains("[[stage]]"), "{stored}");
        let back = PipelineConfig::from_toml("stored.toml", &stored).unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn unknown_fields_are_rejected_with_location() {
        let err = PipelineConfig::from_toml(
            "p.toml",
            "name = \"x\"\n[task]\ncommand = [\"a\"]\ncpus = 3\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("p.toml") && err.contains("cpus"), "{err}");
    }

    #[test]
    fn one_stage_and_stage_forms_do_not_mix() {
        let err = PipelineConfig::from_toml(
            "p.toml",
            "name = \"x\"\n[task]\ncommand = [\"a\"]\n[[stage]]\nname = \"s\"\ncommand = [\"b\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("p.toml: task: use either"), "{err}");
    }
}
