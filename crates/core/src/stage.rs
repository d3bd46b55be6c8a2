//! Stages at run time: a stage's tasks, what each task reads and writes, and its command.
//!
//! The plan and stage steps use [`plan_stage`] to turn a stage of the pipeline into task
//! records (from the rows of the job's input or of an earlier stage's CSV, in rows or chunks).
//! The launch step uses [`render_command`] to fill a task's placeholders, asking the compute
//! adapter where each location is seen from inside the task; task-events and the aggregate use
//! [`output_location`] to find what a task wrote. Pure functions over the pipeline and the
//! records: the handlers do the I/O.
//!
//! Outputs live under `jobs/<job>/stages/<stage>/output/`:
//!
//! | stage | writes = "file" | writes = "dir" |
//! |---|---|---|
//! | one task | `output/<file>` | `output/` |
//! | fan-out | `output/<item><ext of file>` | `output/<item>/` |
//!
//! `{stages.NAME}` is the file of a one-task stage that writes a file, else the `output/`
//! directory; a merge step reads a fan-out's results as the files of one directory.

use crate::ids::{IdError, JobId, TaskId};
use crate::model::{Job, ObjectRef, Task, TaskState};
use crate::pipeline::check::{OUTPUT_PLACEHOLDER, STAGES_PREFIX};
use crate::pipeline::{PipelineConfig, StageKind, StageSpec, Writes, template};
use crate::plan::{PlanError, plan_rows, rejects_csv};
use crate::ports::{Location, Staged, layout};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Separates a stage's name from a fan-out task's own id (`analyse_c-00003`). Stage names
/// cannot contain it, so ids of different stages never collide.
pub const ITEM_SEPARATOR: char = '_';

/// The id of a task of `stage`: the stage's name for its one task, `<stage>_<item>` otherwise.
pub fn task_id(stage: &StageSpec, item: &str) -> Result<TaskId, IdError> {
    if stage.is_single() {
        TaskId::new(stage.name.clone())
    } else {
        TaskId::new(format!("{}{ITEM_SEPARATOR}{item}", stage.name))
    }
}

/// The stage a task belongs to, with its position. A task recorded without a stage (by a
/// version of sluice before stages) belongs to the pipeline's first stage that runs tasks.
pub fn stage_of<'a>(cfg: &'a PipelineConfig, task: &Task) -> Option<(usize, &'a StageSpec)> {
    stage_recorded_as(cfg, &task.stage)
}

/// The stage of the tasks that record `stage` as theirs ([`stage_of`] by the name alone, for
/// tasks counted rather than read, see [`crate::model::TaskTally`]).
pub fn stage_recorded_as<'a>(
    cfg: &'a PipelineConfig,
    stage: &str,
) -> Option<(usize, &'a StageSpec)> {
    if stage.is_empty() {
        cfg.stages.iter().enumerate().find(|(_, s)| s.runs_tasks())
    } else {
        cfg.stage(stage)
    }
}

/// [`stage_of`], or the error a step raises when the pipeline no longer has the task's stage
/// (the file was changed under a running job).
pub fn require_stage_of<'a>(
    cfg: &'a PipelineConfig,
    task: &Task,
) -> Result<&'a StageSpec, crate::error::StepError> {
    stage_of(cfg, task).map(|(_, s)| s).ok_or_else(|| {
        crate::error::StepError::invalid_input(format!(
            "task {} belongs to stage '{}', which pipeline '{}' does not have",
            task.id, task.stage, cfg.name
        ))
    })
}

/// The stage at `index`, or the error a step raises for a position the pipeline lacks.
pub fn require_stage_at(
    cfg: &PipelineConfig,
    index: usize,
) -> Result<&StageSpec, crate::error::StepError> {
    cfg.stages.get(index).ok_or_else(|| {
        crate::error::StepError::invalid_input(format!(
            "pipeline '{}' has no stage {index}",
            cfg.name
        ))
    })
}

/// Whether `task` belongs to the stage at `index`.
pub fn belongs_to(cfg: &PipelineConfig, task: &Task, index: usize) -> bool {
    stage_of(cfg, task).is_some_and(|(i, _)| i == index)
}

/// A task's id within its stage: the row id (`t-00003`), chunk id (`c-00001`), or the stage's
/// name for a one-task stage. What `{task_id}` renders to.
pub fn item_of(task: &Task) -> &str {
    task.id
        .as_str()
        .strip_prefix(task.stage.as_str())
        .and_then(|rest| rest.strip_prefix(ITEM_SEPARATOR))
        .unwrap_or(task.id.as_str())
}

fn extension(file: &str) -> &str {
    match file.rfind('.') {
        Some(dot) if dot > 0 => &file[dot..],
        _ => "",
    }
}

/// Where one task of `stage` writes; `None` when the stage writes nothing.
pub fn output_location(data: &str, job: &JobId, stage: &StageSpec, item: &str) -> Option<Location> {
    let base = layout::stage_output(job, &stage.name);
    let single = stage.is_single();
    Some(match stage.writes() {
        Writes::Nothing => return None,
        Writes::File if single => Location::File {
            object: ObjectRef::new(data, format!("{base}{}", stage.output_file())),
        },
        Writes::File => Location::File {
            object: ObjectRef::new(
                data,
                format!("{base}{item}{}", extension(stage.output_file())),
            ),
        },
        Writes::Dir if single => Location::Dir {
            prefix: ObjectRef::new(data, base),
        },
        Writes::Dir => Location::Dir {
            prefix: ObjectRef::new(data, format!("{base}{item}/")),
        },
    })
}

/// The stage whose output is the job's result: the last one that writes something (finish
/// reports its output; a file it writes is kept, not expired like other task outputs).
pub fn result_stage(cfg: &PipelineConfig) -> Option<&StageSpec> {
    cfg.stages
        .iter()
        .rev()
        .find(|s| s.writes() != Writes::Nothing)
}

/// What `{stages.NAME}` refers to; `None` when the stage writes nothing.
pub fn stage_output(data: &str, job: &JobId, stage: &StageSpec) -> Option<Location> {
    let base = layout::stage_output(job, &stage.name);
    match stage.writes() {
        Writes::Nothing => None,
        Writes::File if stage.is_single() => Some(Location::File {
            object: ObjectRef::new(data, format!("{base}{}", stage.output_file())),
        }),
        _ => Some(Location::Dir {
            prefix: ObjectRef::new(data, base),
        }),
    }
}

/// A stage turned into records and the objects its tasks need.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlannedStage {
    pub tasks: Vec<Task>,
    /// To write before any task runs: chunk files, and `rejects.csv` when rows were skipped.
    pub objects: Vec<(ObjectRef, Vec<u8>)>,
    pub rejects: usize,
}

/// The tasks of `stage`. `source` is the CSV a fan-out reads (its name for errors, and its
/// bytes): the job's input or an earlier stage's output file.
pub fn plan_stage(
    cfg: &PipelineConfig,
    stage: &StageSpec,
    job: &JobId,
    data: &str,
    source: Option<(&str, &[u8])>,
    now: DateTime<Utc>,
) -> Result<PlannedStage, PlanError> {
    let task = |id: TaskId, index: u32, params: BTreeMap<String, serde_json::Value>| {
        Task::pending(job.clone(), id, stage.name.as_str(), index, params, now)
    };
    let id_error = |e: IdError| PlanError::File {
        file: format!("stage {}", stage.name),
        message: e.to_string(),
    };
    let kind = stage.kind();
    let chunk_size = match kind {
        StageKind::Aggregate(_) => return Ok(PlannedStage::default()),
        StageKind::Single => {
            let id = task_id(stage, &stage.name).map_err(id_error)?;
            return Ok(PlannedStage {
                tasks: vec![task(id, 0, BTreeMap::new())],
                ..Default::default()
            });
        }
        StageKind::Rows(_) => None,
        StageKind::Chunks(_, size) => Some(size.max(1) as usize),
    };
    let (file, bytes) = source.ok_or_else(|| PlanError::File {
        file: format!("stage {}", stage.name),
        message: "no rows to fan out over".into(),
    })?;
    let schema = stage.row_schema(cfg).unwrap_or_default();
    let rows = plan_rows(file, bytes, &schema)?;
    let mut planned = PlannedStage {
        rejects: rows.rejects.len(),
        ..Default::default()
    };
    if !rows.rejects.is_empty() {
        planned.objects.push((
            ObjectRef::new(data, layout::rejects(job, &stage.name)),
            rejects_csv(&rows.rejects).into_bytes(),
        ));
    }
    match chunk_size {
        None => {
            for row in rows.tasks {
                let id = task_id(stage, row.id.as_str()).map_err(id_error)?;
                planned.tasks.push(task(id, row.index, row.params));
            }
        }
        Some(size) => {
            let header = csv_line(&rows.header);
            for (index, records) in rows.records.chunks(size).enumerate() {
                let item = format!("c-{index:05}");
                let id = task_id(stage, &item).map_err(id_error)?;
                let mut body = header.clone();
                for r in records {
                    body.push_str(r);
                    body.push('\n');
                }
                planned.objects.push((
                    ObjectRef::new(data, layout::chunk(job, &stage.name, &item)),
                    body.into_bytes(),
                ));
                planned.tasks.push(task(id, index as u32, BTreeMap::new()));
            }
        }
    }
    Ok(planned)
}

fn csv_line(fields: &[String]) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let _ = w.write_record(fields);
    String::from_utf8_lossy(&w.into_inner().unwrap_or_default()).into_owned()
}

/// A task's command with every placeholder filled, and the locations it reads and writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub command: Vec<String>,
    pub inputs: Vec<Staged>,
    pub output: Option<Staged>,
}

/// Fill the placeholders of `task`'s command. `path_for` says where a location is seen from
/// inside the task (the compute adapter's [`crate::ports::Compute::path_for`]).
pub fn render_command(
    cfg: &PipelineConfig,
    stage: &StageSpec,
    job: &Job,
    task: &Task,
    attempt: u32,
    data: &str,
    path_for: &dyn Fn(&Location) -> Result<String, String>,
) -> Result<Rendered, String> {
    let item = item_of(task);
    let output = match output_location(data, &job.id, stage, item) {
        Some(location) => Some(Staged {
            path: path_for(&location)?,
            location,
        }),
        None => None,
    };
    let mut inputs: Vec<Staged> = Vec::new();
    let mut failure = None;
    let mut stage_input = |location: Location| -> Option<String> {
        if let Some(s) = inputs.iter().find(|s| s.location == location) {
            return Some(s.path.clone());
        }
        match path_for(&location) {
            Ok(path) => {
                inputs.push(Staged {
                    location,
                    path: path.clone(),
                });
                Some(path)
            }
            Err(e) => {
                failure = Some(e);
                None
            }
        }
    };
    // Only declared columns are placeholders (the check at load knows no others), so an
    // undeclared column of the CSV can never shadow a parameter.
    let columns: std::collections::BTreeSet<String> = match stage.kind() {
        StageKind::Rows(_) => stage
            .row_schema(cfg)
            .map(|s| s.columns.into_keys().chain(s.task_id).collect())
            .unwrap_or_default(),
        _ => Default::default(),
    };
    let mut command = Vec::with_capacity(stage.command.len());
    for arg in &stage.command {
        let rendered = template::render(arg, |name| {
            Some(match name {
                "input" => stage_input(Location::File {
                    object: job.input.clone(),
                })?,
                "job_id" => job.id.to_string(),
                "pipeline" => cfg.name.clone(),
                "stage" => stage.name.clone(),
                "task_id" => item.to_string(),
                "task_index" => task.index.to_string(),
                "attempt" => attempt.to_string(),
                OUTPUT_PLACEHOLDER => output.as_ref()?.path.clone(),
                "rows" => stage_input(Location::File {
                    object: ObjectRef::new(data, layout::chunk(&job.id, &stage.name, item)),
                })?,
                "chunk" => task.index.to_string(),
                _ => {
                    if let Some(other) = name.strip_prefix(STAGES_PREFIX) {
                        let (_, earlier) = cfg.stage(other)?;
                        stage_input(stage_output(data, &job.id, earlier)?)?
                    } else if let Some(v) = task.params.get(name).filter(|_| columns.contains(name))
                    {
                        match v {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        }
                    } else {
                        cfg.param_text(name)?
                    }
                }
            })
        });
        match rendered {
            Ok(text) => command.push(text),
            Err(e) => {
                return Err(match failure.take() {
                    Some(path_error) => path_error,
                    None => format!("stage.{}.command: {e}", stage.name),
                });
            }
        }
    }
    Ok(Rendered {
        command,
        inputs,
        output,
    })
}

/// Whether a stage has nothing left to do: it was planned (`planned` tasks) and every one of
/// its tasks succeeded. A redrive skips such a stage.
pub fn stage_done(tasks: &[&Task], planned: usize) -> bool {
    planned > 0 && tasks.len() == planned && tasks.iter().all(|t| t.state == TaskState::Succeeded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::JobId;

    const DAILY: &str = r#"
name = "daily"
[params]
threshold = 5
[[stage]]
name = "clean"
command = ["clean.py", "{input}", "{output}"]
file = "clean.csv"
[[stage]]
name = "analyse"
for_each = "clean"
chunk = 2
columns = { amount = "float" }
command = ["analyse.py", "--rows={rows}", "{chunk}", "{threshold}", "{output}"]
file = "part.json"
[[stage]]
name = "merge"
command = ["merge.py", "{stages.analyse}", "{stages.clean}", "{output}", "{task_id}"]
[[stage]]
name = "rows"
for_each = "input"
command = ["row.sh", "{task_id}", "{job_id}"]
writes = "nothing"
"#;

    fn cfg() -> PipelineConfig {
        PipelineConfig::from_toml("daily.toml", DAILY).unwrap()
    }

    fn job() -> Job {
        Job::new(
            JobId::new("daily-1").unwrap(),
            "daily",
            ObjectRef::new("ingest", "daily/in.csv"),
            Utc::now(),
        )
    }

    fn paths(l: &Location) -> Result<String, String> {
        Ok(format!("/w/{}/{}", l.object().bucket, l.object().key))
    }

    /// The job's result is the last stage that writes something, not the last stage.
    #[test]
    fn the_result_stage_is_the_last_that_writes() {
        assert_eq!(result_stage(&cfg()).map(|s| s.name.as_str()), Some("merge"));
        let nothing = PipelineConfig::from_toml(
            "n.toml",
            "name = \"n\"\n[[stage]]\nname = \"only\"\ncommand = [\"x\"]\nwrites = \"nothing\"\n",
        )
        .unwrap();
        assert!(result_stage(&nothing).is_none());
    }

    #[test]
    fn a_chunked_fan_out_writes_its_chunks_and_names_its_tasks() {
        let cfg = cfg();
        let job = job();
        let csv = b"amount\n1\n2\nx\n3\n";
        let mut stage = cfg.stages[1].clone();
        stage.bad_rows = Some(crate::pipeline::BadRows::Skip);
        let planned = plan_stage(
            &cfg,
            &stage,
            &job.id,
            "data",
            Some(("clean.csv", csv)),
            Utc::now(),
        )
        .unwrap();
        let ids: Vec<&str> = planned.tasks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["analyse_c-00000", "analyse_c-00001"]);
        assert_eq!(planned.rejects, 1);
        let keys: Vec<&str> = planned
            .objects
            .iter()
            .map(|(o, _)| o.key.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "jobs/daily-1/stages/analyse/rejects.csv",
                "jobs/daily-1/stages/analyse/chunks/c-00000.csv",
                "jobs/daily-1/stages/analyse/chunks/c-00001.csv"
            ]
        );
        assert_eq!(planned.objects[1].1, b"amount\n1\n2\n");
        assert_eq!(planned.objects[2].1, b"amount\n3\n");
        assert_eq!(item_of(&planned.tasks[1]), "c-00001");
    }

    #[test]
    fn commands_get_paths_for_every_location() {
        let cfg = cfg();
        let job = job();
        let chunk = plan_stage(
            &cfg,
            &cfg.stages[1],
            &job.id,
            "data",
            Some(("clean.csv", b"amount\n1\n2\n3\n")),
            Utc::now(),
        )
        .unwrap();
        let r = render_command(
            &cfg,
            &cfg.stages[1],
            &job,
            &chunk.tasks[1],
            2,
            "data",
            &paths,
        )
        .unwrap();
        assert_eq!(
            r.command,
            [
                "analyse.py",
                "--rows=/w/data/jobs/daily-1/stages/analyse/chunks/c-00001.csv",
                "1",
                "5",
                "/w/data/jobs/daily-1/stages/analyse/output/c-00001.json"
            ]
        );
        assert_eq!(r.inputs.len(), 1);

        let merge = plan_stage(&cfg, &cfg.stages[2], &job.id, "data", None, Utc::now()).unwrap();
        assert_eq!(merge.tasks[0].id.as_str(), "merge");
        let r = render_command(
            &cfg,
            &cfg.stages[2],
            &job,
            &merge.tasks[0],
            1,
            "data",
            &paths,
        )
        .unwrap();
        assert_eq!(
            r.command,
            [
                "merge.py",
                "/w/data/jobs/daily-1/stages/analyse/output/",
                "/w/data/jobs/daily-1/stages/clean/output/clean.csv",
                "/w/data/jobs/daily-1/stages/merge/output/result.json",
                "merge"
            ]
        );
        assert!(r.inputs[0].location.is_dir() && !r.inputs[1].location.is_dir());

        let rows = plan_stage(
            &cfg,
            &cfg.stages[3],
            &job.id,
            "data",
            Some(("in.csv", b"id\na\n")),
            Utc::now(),
        )
        .unwrap();
        let r = render_command(
            &cfg,
            &cfg.stages[3],
            &job,
            &rows.tasks[0],
            1,
            "data",
            &paths,
        )
        .unwrap();
        assert_eq!(r.command, ["row.sh", "t-00000", "daily-1"]);
        assert_eq!(r.output, None, "writes nothing");
    }

    #[test]
    fn a_value_that_looks_like_a_placeholder_stays_text() {
        let cfg = PipelineConfig::from_toml(
            "p.toml",
            "name = \"p\"\n[input]\ncolumns = { x = \"string\" }\n[[stage]]\nname = \"s\"\nfor_each = \"input\"\ncommand = [\"echo\", \"{x}\", \"{output}\"]\n",
        )
        .unwrap();
        let job = job();
        let planned = plan_stage(
            &cfg,
            &cfg.stages[0],
            &job.id,
            "data",
            Some(("in.csv", b"x\n{output}\n")),
            Utc::now(),
        )
        .unwrap();
        let r = render_command(
            &cfg,
            &cfg.stages[0],
            &job,
            &planned.tasks[0],
            1,
            "data",
            &paths,
        )
        .unwrap();
        assert_eq!(r.command[1], "{output}");
    }

    #[test]
    fn an_undeclared_column_never_shadows_a_parameter() {
        let cfg = PipelineConfig::from_toml(
            "p.toml",
            "name = \"p\"\n[params]\nthreshold = 5\n[input]\ncolumns = { x = \"string\" }\n[[stage]]\nname = \"s\"\nfor_each = \"input\"\ncommand = [\"echo\", \"{x}\", \"{threshold}\"]\nwrites = \"nothing\"\n",
        )
        .unwrap();
        let job = job();
        let planned = plan_stage(
            &cfg,
            &cfg.stages[0],
            &job.id,
            "data",
            Some(("in.csv", b"x,threshold\na,99\n")),
            Utc::now(),
        )
        .unwrap();
        let r = render_command(
            &cfg,
            &cfg.stages[0],
            &job,
            &planned.tasks[0],
            1,
            "data",
            &paths,
        )
        .unwrap();
        assert_eq!(r.command, ["echo", "a", "5"]);
    }

    #[test]
    fn a_stage_is_done_when_all_its_planned_tasks_succeeded() {
        let cfg = cfg();
        let job = job();
        let mut planned =
            plan_stage(&cfg, &cfg.stages[0], &job.id, "data", None, Utc::now()).unwrap();
        let refs: Vec<&Task> = planned.tasks.iter().collect();
        assert!(!stage_done(&refs, 1));
        planned.tasks[0].state = TaskState::Succeeded;
        let refs: Vec<&Task> = planned.tasks.iter().collect();
        assert!(stage_done(&refs, 1));
        assert!(
            !stage_done(&refs, 2),
            "a task of the stage was never recorded"
        );
        assert!(!stage_done(&[], 0));
    }
}
