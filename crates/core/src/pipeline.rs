//! Pipeline configuration (`pipeline.toml`): what a task runs, how the input CSV maps to task
//! parameters, how far to fan out, how to retry, how to aggregate and plot, and when to run on
//! a schedule. One file per pipeline; the same file drives the local runtime and AWS (where it
//! is stored in the data bucket under `pipelines/<name>.toml`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A parse or consistency error in a pipeline file.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{source_name}: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: {message}")]
    Invalid {
        source_name: String,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub input: InputSchema,
    pub task: TaskSpec,
    /// Constants available to the command template, e.g. frames per task.
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub scale: Option<ScaleSpec>,
    #[serde(default)]
    pub parallelism: Parallelism,
    #[serde(default)]
    pub retry: RetryPolicy,
    #[serde(default)]
    pub aggregate: Option<AggregateSpec>,
    #[serde(default)]
    pub plot: Option<PlotSpec>,
    #[serde(default)]
    pub schedule: Vec<Schedule>,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSchema {
    /// Columns every row must have, with their types. Other columns are passed as strings.
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnType>,
    /// Column that names each task; by default tasks are named `t-00000`, `t-00001`, ...
    #[serde(default)]
    pub task_id: Option<String>,
    /// Refuse inputs with more rows than this (a typo in a generator should not launch a
    /// million containers).
    #[serde(default = "default_max_tasks")]
    pub max_tasks: u32,
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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// argv of the task. Placeholders: `{column}` (from the row), `{param}` (from [params]),
    /// `{job_id}`, `{task_id}`, `{task_index}`, `{attempt}` and `{output}` (where the task must
    /// write its result file).
    pub command: Vec<String>,
    /// Container image for ECS / Batch.
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

fn default_cpu() -> u32 {
    1024
}
fn default_memory() -> u32 {
    1024
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
        }
    }
}

/// Group-and-sum aggregation of per-task JSON results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateSpec {
    /// Field (of the result, else of the task's row) whose value groups tasks.
    pub group_by: String,
    /// Numeric result fields summed per group.
    pub sum: Vec<String>,
    #[serde(default)]
    pub ratio: Option<RatioSpec>,
    /// A closed form to compare against, evaluated at the group value.
    #[serde(default)]
    pub theory: Option<Theory>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Theory {
    /// Bit error rate of BPSK over AWGN, 0.5·erfc(√(Eb/N0)), with the group value in dB.
    BpskAwgn,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlotSpec {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    #[serde(default)]
    pub log_y: bool,
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

impl PipelineConfig {
    /// Parse and check a pipeline file. `source_name` names the file in errors.
    pub fn from_toml(source_name: &str, text: &str) -> Result<Self, PipelineError> {
        let cfg: PipelineConfig = toml::from_str(text).map_err(|e| PipelineError::Parse {
            source_name: source_name.to_string(),
            message: e.to_string(),
        })?;
        cfg.check(source_name)?;
        Ok(cfg)
    }

    fn check(&self, source_name: &str) -> Result<(), PipelineError> {
        let invalid = |message: String| PipelineError::Invalid {
            source_name: source_name.to_string(),
            message,
        };
        crate::ids::PipelineName::new(self.name.clone()).map_err(|e| invalid(e.to_string()))?;
        if self.task.command.is_empty() {
            return Err(invalid("task.command must not be empty".into()));
        }
        if self.parallelism.max == 0 {
            return Err(invalid("parallelism.max must be at least 1".into()));
        }
        if self.retry.task_failed_attempts == 0 {
            return Err(invalid(
                "retry.task_failed_attempts must be at least 1".into(),
            ));
        }
        if let Some(scale) = &self.scale {
            match self.params.get(&scale.param) {
                Some(toml::Value::Integer(_)) => {}
                _ => {
                    return Err(invalid(format!(
                        "scale.param '{}' must name an integer in [params]",
                        scale.param
                    )));
                }
            }
        }
        if let Some(ratio) = self.aggregate.as_ref().and_then(|a| a.ratio.as_ref())
            && !(ratio.confidence > 0.0 && ratio.confidence < 1.0)
        {
            return Err(invalid(format!(
                "aggregate.ratio.confidence must be in (0, 1), got {}",
                ratio.confidence
            )));
        }
        Ok(())
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

    /// The task's argv with every placeholder but `{output}` filled in; `{output}` is filled by
    /// the compute adapter, which alone knows where the task can write.
    pub fn render_command(&self, vars: &BTreeMap<String, String>) -> Result<Vec<String>, String> {
        self.task
            .command
            .iter()
            .map(|arg| render_template(arg, vars))
            .collect()
    }

    /// Variables for the command template of one task.
    pub fn command_vars(
        &self,
        task: &crate::model::Task,
        attempt: u32,
    ) -> BTreeMap<String, String> {
        let mut vars = BTreeMap::new();
        for (k, v) in &self.params {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            vars.insert(k.clone(), text);
        }
        for (k, v) in &task.params {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            vars.insert(k.clone(), text);
        }
        vars.insert("job_id".into(), task.job_id.to_string());
        vars.insert("task_id".into(), task.id.to_string());
        vars.insert("task_index".into(), task.index.to_string());
        vars.insert("attempt".into(), attempt.to_string());
        vars
    }
}

/// Replace `{name}` with `vars[name]`; `{output}` is left as is; `{{` and `}}` are literal braces.
pub fn render_template(arg: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(pos) = rest.find(['{', '}']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err(format!("unmatched '}}' in '{arg}'"));
        }
        let end = tail
            .find('}')
            .ok_or_else(|| format!("unclosed '{{' in '{arg}'"))?;
        let name = &tail[1..end];
        if name == "output" {
            out.push_str("{output}");
        } else {
            let value = vars
                .get(name)
                .ok_or_else(|| format!("unknown placeholder '{{{name}}}' in '{arg}'"))?;
            out.push_str(value);
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BER: &str = include_str!("../../../examples/ber/pipeline.toml");

    #[test]
    fn example_pipeline_parses() {
        let cfg = PipelineConfig::from_toml("pipeline.toml", BER).unwrap();
        assert_eq!(cfg.name, "ber");
        assert_eq!(cfg.parallelism.max, 24);
        let scaled = cfg.scaled(0.01).unwrap();
        assert_eq!(scaled.params["frames"], toml::Value::Integer(41));
        assert_eq!(cfg.params["frames"], toml::Value::Integer(4096));
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
    fn templates() {
        let vars: BTreeMap<String, String> = [("seed".to_string(), "7".to_string())]
            .into_iter()
            .collect();
        assert_eq!(render_template("--seed={seed}", &vars).unwrap(), "--seed=7");
        assert_eq!(render_template("{output}", &vars).unwrap(), "{output}");
        assert_eq!(render_template("{{x}}", &vars).unwrap(), "{x}");
        assert!(
            render_template("{nope}", &vars)
                .unwrap_err()
                .contains("nope")
        );
        assert!(render_template("{seed", &vars).is_err());
    }
}
