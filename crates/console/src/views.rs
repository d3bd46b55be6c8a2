//! What the console shows, read from the job table and the work directory: the shapes of the
//! JSON API (and of the pages, which render the same values).
//!
//! Everything here only reads. Paths into the work directory are built from validated ids
//! ([`JobId`], [`TaskId`]) and objects the job record names, and every file is checked to
//! resolve inside the work directory before it is opened (see [`inside`]).

use crate::error::ApiError;
use crate::graph::{Graph, StateProgress, statuses};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sluice_core::model::{Attempt, AttemptState, Capacity, ObjectRef};
use sluice_core::pipeline::StageKind;
use sluice_core::ports::layout;
use sluice_core::{Job, JobId, JobState, TaskState};
use sluice_local::runtime::DATA_BUCKET;
use sluice_local::store::TaskCounts;
use sluice_local::tasklog::AttemptLog;
use sluice_local::{Driver, LocalRuntime};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// A job's tasks by state.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Tasks planned so far (a later stage's tasks are planned when it starts).
    pub total: u32,
    pub succeeded: u32,
    pub running: u32,
    pub retrying: u32,
    pub pending: u32,
    pub failed: u32,
    /// Attempts beyond each task's first, over all tasks.
    pub retries: u64,
}

/// Which process runs a job's execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DriverView {
    /// The process serving this console.
    ThisProcess,
    /// Another `sluice` process (`sluice run`, another serve).
    Process { pid: u32 },
    /// No live process: a RUNNING job in this state was left by a process that died.
    Nobody,
}

/// One row of the jobs page.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    pub id: JobId,
    pub pipeline: String,
    pub state: JobState,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// From creation to the last change for a final job, to now for one that runs.
    pub duration_seconds: f64,
    pub progress: Progress,
    pub redrive_count: u32,
    pub driver: Option<DriverView>,
    pub can_cancel: bool,
    pub can_redrive: bool,
    /// The job's page.
    pub url: String,
}

/// How a stage makes its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StageShape {
    Single,
    Rows,
    Chunks,
    Aggregate,
}

impl StageShape {
    pub fn as_str(self) -> &'static str {
        match self {
            StageShape::Single => "one task",
            StageShape::Rows => "a task per row",
            StageShape::Chunks => "a task per chunk",
            StageShape::Aggregate => "aggregate",
        }
    }
}

/// A stage of the job's pipeline with what its tasks did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageView {
    pub name: String,
    pub shape: StageShape,
    pub progress: Progress,
}

/// What kind of file a result is, for how the page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    Csv,
    Png,
    Other,
}

impl FileKind {
    pub fn of(name: &str) -> Self {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            FileKind::Csv
        } else if lower.ends_with(".png") {
            FileKind::Png
        } else {
            FileKind::Other
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            FileKind::Csv => "text/csv; charset=utf-8",
            FileKind::Png => "image/png",
            FileKind::Other => "application/octet-stream",
        }
    }
}

/// A result file or a stage's rejects, served by the API.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileView {
    pub name: String,
    pub kind: FileKind,
    pub bytes: u64,
    pub url: String,
    /// For rejects: the stage whose rows they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

/// One job in full (its tasks are separate: [`tasks`]).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDetail {
    #[serde(flatten)]
    pub summary: JobSummary,
    /// The description of the pipeline the job runs (for a variant: what it overrides).
    pub pipeline_description: Option<String>,
    pub input: String,
    pub execution_arn: Option<String>,
    pub stages: Vec<StageView>,
    /// Each state of the state machine: its status and how often it was entered.
    pub states: BTreeMap<String, StateProgress>,
    pub results: Vec<FileView>,
    pub rejects: Vec<FileView>,
    /// The directory of the job's task logs (for reading them outside the console).
    pub log_dir: String,
}

/// One attempt of a task.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    pub number: u32,
    pub state: AttemptState,
    pub capacity: Capacity,
    pub exit_code: Option<i32>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    pub started_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub duration_seconds: f64,
    /// The attempt's log, when its process wrote one.
    pub log_url: Option<String>,
}

/// One row of a job's tasks table.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    pub id: String,
    pub stage: String,
    pub index: u32,
    pub state: TaskState,
    pub attempts: u32,
    pub spot_interruptions: u32,
    pub last_error: Option<String>,
    /// Of the last attempt.
    pub capacity: Option<Capacity>,
    /// Of the last attempt.
    pub exit_code: Option<i32>,
    /// From the first attempt's start to the last one's end (or now).
    pub duration_seconds: Option<f64>,
    pub attempt_list: Vec<AttemptView>,
}

/// A page of a job's tasks.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TasksPage {
    /// How many tasks there are (in the state asked for).
    pub total: usize,
    pub offset: usize,
    pub tasks: Vec<TaskView>,
}

/// The tail of a job's execution history.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryView {
    pub total: usize,
    /// The last events, oldest first.
    pub events: Vec<Value>,
}

/// One notification (an SNS message, locally a line of `notifications.jsonl`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationView {
    pub time: Option<String>,
    pub subject: Option<String>,
    /// The message, as JSON when it is JSON.
    pub message: Value,
}

/// Reads jobs for the console.
pub struct Reader {
    pub(crate) runtime: std::sync::Arc<LocalRuntime>,
    pub(crate) graph: Graph,
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    ((to - from).num_milliseconds().max(0) as f64) / 1000.0
}

impl From<&TaskCounts> for Progress {
    fn from(c: &TaskCounts) -> Self {
        Progress {
            total: c.total(),
            succeeded: c.get(TaskState::Succeeded),
            running: c.get(TaskState::Running),
            retrying: c.get(TaskState::Retrying),
            pending: c.get(TaskState::Pending),
            failed: c.get(TaskState::Failed),
            retries: c.retries,
        }
    }
}

impl Reader {
    pub fn workdir(&self) -> &Path {
        &self.runtime.workdir
    }

    pub async fn job(&self, id: &JobId) -> Result<Job, ApiError> {
        self.runtime
            .services
            .jobs
            .get_job(id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no job '{id}' in this work directory")))
    }

    fn summary(&self, job: &Job, progress: Progress) -> JobSummary {
        let driver = (!job.state.is_final()).then(|| match self.runtime.driver_of(&job.id) {
            Driver::ThisProcess => DriverView::ThisProcess,
            Driver::Process(pid) => DriverView::Process { pid },
            Driver::Nobody => DriverView::Nobody,
        });
        let end = if job.state.is_final() {
            job.updated_at
        } else {
            Utc::now()
        };
        let orphan = job.state == JobState::Running && driver == Some(DriverView::Nobody);
        JobSummary {
            url: format!("/jobs/{}", job.id),
            id: job.id.clone(),
            pipeline: job.pipeline.clone(),
            state: job.state,
            reason: job.reason.clone(),
            created_at: job.created_at,
            updated_at: job.updated_at,
            duration_seconds: seconds(job.created_at, end),
            progress,
            redrive_count: job.redrive_count,
            driver,
            can_cancel: !job.state.is_final(),
            can_redrive: job.execution_arn.is_some() && (job.state.is_redrivable() || orphan),
        }
    }

    fn counts(&self, job: &JobId) -> Result<Progress, ApiError> {
        Ok(Progress::from(&self.runtime.store.task_counts(job)?))
    }

    /// The most recent jobs, newest first.
    pub async fn jobs(&self, limit: usize) -> Result<Vec<JobSummary>, ApiError> {
        let jobs = self.runtime.services.jobs.list_jobs(limit).await?;
        let mut out = Vec::with_capacity(jobs.len());
        for job in &jobs {
            let progress = self.counts(&job.id)?;
            out.push(self.summary(job, progress));
        }
        Ok(out)
    }

    pub async fn job_detail(&self, id: &JobId) -> Result<JobDetail, ApiError> {
        let job = self.job(id).await?;
        // Counted by the database, by stage: the page asks every second or two, and a job
        // may have a hundred thousand tasks.
        let by_stage = self.runtime.store.task_counts_by_stage(id)?;
        let mut all = TaskCounts::default();
        for c in by_stage.values() {
            for (state, n) in &c.by_state {
                *all.by_state.entry(*state).or_default() += n;
            }
            all.retries += c.retries;
        }
        let summary = self.summary(&job, Progress::from(&all));
        // The pipeline the job's execution runs (its copy), for its stages; a job rejected
        // before it started may have none.
        let pipeline = self.runtime.services.job_pipeline(&job).await.ok();
        let first_stage = pipeline
            .as_ref()
            .and_then(|p| p.stages.first())
            .map(|s| s.name.as_str())
            .unwrap_or_default();
        let mut stages = Vec::new();
        let mut rejects = Vec::new();
        for stage in pipeline.iter().flat_map(|p| &p.stages) {
            let shape = match stage.kind() {
                StageKind::Single => StageShape::Single,
                StageKind::Rows(_) => StageShape::Rows,
                StageKind::Chunks(..) => StageShape::Chunks,
                StageKind::Aggregate(_) => StageShape::Aggregate,
            };
            // Tasks recorded before stages existed belong to the first stage ('').
            let mut counts = by_stage.get(&stage.name).cloned().unwrap_or_default();
            if stage.name == first_stage
                && let Some(old) = by_stage.get("")
            {
                for (state, n) in &old.by_state {
                    *counts.by_state.entry(*state).or_default() += n;
                }
                counts.retries += old.retries;
            }
            let progress = Progress::from(&counts);
            stages.push(StageView {
                name: stage.name.clone(),
                shape,
                progress,
            });
            let object = ObjectRef::new(DATA_BUCKET, layout::rejects(id, &stage.name));
            // Shown once: a pipeline may make its rejects one of the job's results.
            if !job.results.contains(&object)
                && let Ok(path) = self.object_path(&object)
                && let Ok(meta) = std::fs::metadata(&path)
            {
                rejects.push(FileView {
                    name: format!("{}/rejects.csv", stage.name),
                    kind: FileKind::Csv,
                    bytes: meta.len(),
                    url: format!("/api/jobs/{id}/rejects/{}", stage.name),
                    stage: Some(stage.name.clone()),
                });
            }
        }
        let results = job
            .results
            .iter()
            .enumerate()
            .map(|(n, r)| {
                let name = r.key.rsplit('/').next().unwrap_or(&r.key).to_string();
                let bytes = self
                    .object_path(r)
                    .ok()
                    .and_then(|p| std::fs::metadata(p).ok())
                    .map(|m| m.len())
                    .unwrap_or(0);
                FileView {
                    kind: FileKind::of(&name),
                    name,
                    bytes,
                    url: format!("/api/jobs/{id}/results/{n}"),
                    stage: None,
                }
            })
            .collect();
        let history = match &job.execution_arn {
            Some(arn) => self.runtime.store.history(arn)?,
            None => Vec::new(),
        };
        Ok(JobDetail {
            summary,
            pipeline_description: pipeline.as_ref().and_then(|p| p.description.clone()),
            input: job.input.to_string(),
            execution_arn: job.execution_arn.clone(),
            stages,
            states: statuses(&self.graph, &history),
            results,
            rejects,
            log_dir: self
                .workdir()
                .join("logs")
                .join(id.as_str())
                .display()
                .to_string(),
        })
    }

    /// A page of the job's tasks in index order with their attempts; only those in `state`
    /// if given.
    pub async fn tasks(
        &self,
        id: &JobId,
        state: Option<TaskState>,
        offset: usize,
        limit: usize,
    ) -> Result<TasksPage, ApiError> {
        self.job(id).await?;
        let (tasks, total) = self.runtime.store.tasks_page(id, state, offset, limit)?;
        let names: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
        let mut attempts: HashMap<String, Vec<Attempt>> = HashMap::new();
        for a in self.runtime.store.attempts_of(id, &names)? {
            attempts
                .entry(a.key.task_id.as_str().to_string())
                .or_default()
                .push(a);
        }
        let now = Utc::now();
        let logs = self.workdir().join("logs").join(id.as_str());
        let log_name = |a: &Attempt| format!("{}-{}.log", a.key.task_id, a.key.number);
        let names: Vec<String> = attempts.values().flatten().map(log_name).collect();
        // The page's attempts kept as blocks of the job's succeeded.log (one read per page).
        let blocks = match self.succeeded_log_inside(&logs) {
            Ok(()) => sluice_local::tasklog::blocks_among(&logs, names.iter().map(String::as_str))
                .unwrap_or_default(),
            Err(_) => Default::default(),
        };
        let tasks = tasks
            .into_iter()
            .map(|t| {
                let list = attempts.remove(t.id.as_str()).unwrap_or_default();
                let last = list.last();
                let duration = list.first().map(|first| {
                    let end = match last.and_then(|l| l.stopped_at) {
                        Some(end) if last.is_some_and(|l| l.state.is_final()) => end,
                        _ => now,
                    };
                    seconds(first.started_at, end)
                });
                let attempt_list = list
                    .iter()
                    .map(|a| {
                        let name = log_name(a);
                        let logged = blocks.contains(name.as_str()) || logs.join(&name).is_file();
                        AttemptView {
                            number: a.key.number,
                            state: a.state,
                            capacity: a.capacity,
                            exit_code: a.exit_code,
                            stop_code: a.stop_code.clone(),
                            stopped_reason: a.stopped_reason.clone(),
                            started_at: a.started_at,
                            stopped_at: a.stopped_at,
                            duration_seconds: seconds(a.started_at, a.stopped_at.unwrap_or(now)),
                            log_url: logged.then(|| {
                                format!(
                                    "/api/jobs/{id}/tasks/{}/attempts/{}/log",
                                    t.id, a.key.number
                                )
                            }),
                        }
                    })
                    .collect();
                TaskView {
                    id: t.id.to_string(),
                    stage: t.stage.clone(),
                    index: t.index,
                    state: t.state,
                    attempts: t.attempts,
                    spot_interruptions: t.spot_interruptions,
                    last_error: t.last_error.clone(),
                    capacity: last.map(|a| a.capacity),
                    exit_code: last.and_then(|a| a.exit_code),
                    duration_seconds: duration,
                    attempt_list,
                }
            })
            .collect();
        Ok(TasksPage {
            total,
            offset,
            tasks,
        })
    }

    /// The last `limit` events of the job's execution history.
    pub async fn history(&self, id: &JobId, limit: usize) -> Result<HistoryView, ApiError> {
        let job = self.job(id).await?;
        let events = match &job.execution_arn {
            Some(arn) => self.runtime.store.history(arn)?,
            None => Vec::new(),
        };
        let total = events.len();
        let events = events
            .into_iter()
            .skip(total.saturating_sub(limit))
            .collect();
        Ok(HistoryView { total, events })
    }

    /// The notifications sent about the job (SNS messages whose subject or message names it).
    pub async fn notifications(&self, id: &JobId) -> Result<Vec<NotificationView>, ApiError> {
        self.job(id).await?;
        let path = inside(self.workdir(), &self.workdir().join("notifications.jsonl"))?;
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ApiError::Internal(format!("{}: {e}", path.display()))),
        };
        let subject = format!("sluice job {id}");
        let mut out = Vec::new();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let publish = &v["publish"];
            let raw = publish["Message"].as_str().unwrap_or_default();
            let message: Value =
                serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
            let about_job = publish["Subject"].as_str() == Some(subject.as_str())
                || message["jobId"].as_str() == Some(id.as_str());
            if about_job {
                out.push(NotificationView {
                    time: v["time"].as_str().map(str::to_string),
                    subject: publish["Subject"].as_str().map(str::to_string),
                    message,
                });
            }
        }
        Ok(out)
    }

    /// The file behind an object of a directory bucket, checked to be in the work directory.
    pub fn object_path(&self, object: &ObjectRef) -> Result<PathBuf, ApiError> {
        let path = self
            .runtime
            .path_of(object)
            .map_err(|e| ApiError::BadRequest(format!("{e:#}")))?;
        inside(self.workdir(), &path)
    }

    /// The job's `n`th result file.
    pub async fn result(&self, id: &JobId, n: usize) -> Result<(String, PathBuf), ApiError> {
        let job = self.job(id).await?;
        let object = job
            .results
            .get(n)
            .ok_or_else(|| ApiError::NotFound(format!("job {id} has no result {n}")))?;
        let name = object
            .key
            .rsplit('/')
            .next()
            .unwrap_or(&object.key)
            .to_string();
        Ok((name, self.object_path(object)?))
    }

    /// The rows a stage of the job skipped (`rejects.csv`), for a stage of its pipeline.
    pub async fn rejects(&self, id: &JobId, stage: &str) -> Result<PathBuf, ApiError> {
        let job = self.job(id).await?;
        let pipeline = self.runtime.services.job_pipeline(&job).await.ok();
        if !pipeline
            .iter()
            .flat_map(|p| &p.stages)
            .any(|s| s.name == stage)
        {
            return Err(ApiError::NotFound(format!(
                "job {id}'s pipeline has no stage '{}'",
                stage.chars().take(64).collect::<String>()
            )));
        }
        self.object_path(&ObjectRef::new(DATA_BUCKET, layout::rejects(id, stage)))
    }

    /// Refuses a job's `succeeded.log` that is a link out of the work directory, as every
    /// file the console serves is checked ([`inside`]).
    fn succeeded_log_inside(&self, job_logs: &Path) -> Result<(), ApiError> {
        let together = job_logs.join(sluice_local::tasklog::SUCCEEDED_LOG);
        if std::fs::symlink_metadata(&together).is_ok() {
            inside(self.workdir(), &together)?;
        }
        Ok(())
    }

    /// The log of an attempt that the job table knows: its own file
    /// (`logs/<job>/<task>-<n>.log`) or its block of the job's `succeeded.log`
    /// ([`sluice_local::tasklog`]); `None` when it has written nothing.
    pub async fn attempt_log(
        &self,
        id: &JobId,
        task: &sluice_core::TaskId,
        number: u32,
    ) -> Result<Option<AttemptLog>, ApiError> {
        self.job(id).await?;
        let key = sluice_core::model::AttemptKey {
            job_id: id.clone(),
            task_id: task.clone(),
            number,
        };
        if self
            .runtime
            .services
            .jobs
            .get_attempt(&key)
            .await?
            .is_none()
        {
            return Err(ApiError::NotFound(format!("no attempt {key}")));
        }
        let dir = self.workdir().join("logs").join(id.as_str());
        self.succeeded_log_inside(&dir)?;
        // A file (or even a dangling link) in the attempt's name, else its block.
        match sluice_local::tasklog::find(&dir, &format!("{task}-{number}.log")) {
            Ok(Some(AttemptLog::File(path))) => {
                inside(self.workdir(), &path).map(|p| Some(AttemptLog::File(p)))
            }
            Ok(found) => Ok(found),
            Err(e) => Err(ApiError::Internal(format!("reading the job's logs: {e}"))),
        }
    }
}

/// `path` if it resolves (symbolic links followed) inside `root`: a file the console serves
/// can never be outside the work directory, whatever links there are in it.
pub fn inside(root: &Path, path: &Path) -> Result<PathBuf, ApiError> {
    let root = root
        .canonicalize()
        .map_err(|e| ApiError::Internal(format!("{}: {e}", root.display())))?;
    let resolved = match path.canonicalize() {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::NotFound(format!(
                "{} does not exist (yet)",
                path.strip_prefix(&root).unwrap_or(path).display()
            )));
        }
        Err(e) => return Err(ApiError::Internal(format!("{}: {e}", path.display()))),
    };
    if !resolved.starts_with(&root) || !resolved.is_file() {
        return Err(ApiError::Forbidden(
            "that file is not a file in the work directory".into(),
        ));
    }
    Ok(resolved)
}

/// The end of a text file: at most `max` bytes, cut at a line start, and whether it was cut.
pub fn tail(path: &Path, max: u64) -> std::io::Result<(String, bool)> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let cut = len > max;
    if cut {
        f.seek(SeekFrom::Start(len - max))?;
    }
    let mut bytes = Vec::with_capacity(len.min(max) as usize);
    f.take(max).read_to_end(&mut bytes)?;
    Ok((text_of_tail(&bytes, cut), cut))
}

/// [`tail`] of a log held in memory (an attempt's block of the job's `succeeded.log`).
pub fn tail_of(bytes: &[u8], max: u64) -> (String, bool) {
    let cut = bytes.len() as u64 > max;
    let from = bytes.len() - (bytes.len() as u64).min(max) as usize;
    (text_of_tail(&bytes[from..], cut), cut)
}

/// The text of a log's last bytes; when they are `cut` from a longer log, from its first
/// whole line.
fn text_of_tail(bytes: &[u8], cut: bool) -> String {
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    if cut && let Some(nl) = text.find('\n') {
        text.drain(..=nl);
    }
    text
}

/// A CSV file as a table for the page: its header and up to `max_rows` rows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// More rows than shown.
    pub truncated: bool,
}

pub fn read_table(path: &Path, max_rows: usize) -> Result<Table, ApiError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| ApiError::Internal(format!("{}: {e}", path.display())))?;
    let header = reader
        .headers()
        .map_err(|e| ApiError::Internal(format!("{}: {e}", path.display())))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    let mut truncated = false;
    for record in reader.records() {
        if rows.len() == max_rows {
            truncated = true;
            break;
        }
        let record = record.map_err(|e| ApiError::Internal(format!("{}: {e}", path.display())))?;
        rows.push(record.iter().map(str::to_string).collect());
    }
    Ok(Table {
        header,
        rows,
        truncated,
    })
}
