//! The JSON API under `/api/`: what the pages poll and post, and what scripts can use
//! (docs/console.md has every route with examples).
//!
//! Ids from the path are parsed into [`JobId`] / [`TaskId`] before anything else happens, so a
//! hostile id (`..`, slashes, percent-encoded or not) is a 400 and never becomes a path.

use crate::error::ApiError;
use crate::trigger::{self, Overrides};
use crate::views::{self, DriverView, FileKind};
use crate::{App, StartedBy};
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_core::{JobId, JobState, TaskId, TaskState};
use sluice_local::inbox::{Ingested, fire_schedule, ingest_file};
use sluice_local::tasklog::AttemptLog;
use sluice_local::{Cancelled, RedriveError};
use std::sync::Arc;
use std::time::Duration;

type Shared = State<Arc<App>>;

/// The most log text returned at once (its end).
const LOG_TAIL: u64 = 1024 * 1024;
/// Rows of a CSV shown as a table.
const TABLE_ROWS: usize = 1000;
/// Room in a multipart body for the fields besides the file, and the part headers.
const MULTIPART_OVERHEAD: usize = 64 * 1024;
/// How long a cancel request waits for the job to stop before answering 202.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

pub(crate) fn routes(upload_limit: usize) -> Router<Arc<App>> {
    Router::new()
        .route("/api/session", get(session))
        .route("/api/pipelines", get(pipelines))
        .route(
            "/api/jobs",
            get(jobs)
                .post(create_job)
                // The multipart body may be the limit plus the other fields and part headers.
                .layer(DefaultBodyLimit::max(
                    upload_limit.saturating_add(MULTIPART_OVERHEAD),
                )),
        )
        .route("/api/jobs/{id}", get(job))
        .route("/api/jobs/{id}/tasks", get(tasks))
        .route("/api/jobs/{id}/history", get(history))
        .route("/api/jobs/{id}/notifications", get(notifications))
        .route("/api/jobs/{id}/results/{n}", get(result))
        .route("/api/jobs/{id}/rejects/{stage}", get(rejects))
        .route(
            "/api/jobs/{id}/tasks/{task}/attempts/{n}/log",
            get(attempt_log),
        )
        .route("/api/jobs/{id}/cancel", post(cancel))
        .route("/api/jobs/{id}/redrive", post(redrive))
}

pub(crate) fn job_id(raw: &str) -> Result<JobId, ApiError> {
    Ok(JobId::new(raw)?)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Session {
    csrf_token: String,
    upload_limit: usize,
    workdir: String,
}

/// The CSRF token for scripts (a page on another site cannot read it: no CORS).
async fn session(State(app): Shared) -> Json<Session> {
    Json(Session {
        csrf_token: app.csrf.clone(),
        upload_limit: app.upload_limit,
        workdir: app.reader.workdir().display().to_string(),
    })
}

async fn pipelines(State(app): Shared) -> Result<Json<Vec<trigger::PipelineView>>, ApiError> {
    Ok(Json(trigger::pipelines(&app.runtime).await?))
}

#[derive(Deserialize)]
struct JobsQuery {
    limit: Option<usize>,
}

async fn jobs(
    State(app): Shared,
    Query(q): Query<JobsQuery>,
) -> Result<Json<Vec<views::JobSummary>>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(app.reader.jobs(limit).await?))
}

async fn job(
    State(app): Shared,
    Path(id): Path<String>,
) -> Result<Json<views::JobDetail>, ApiError> {
    let id = job_id(&id)?;
    Ok(Json(app.reader.job_detail(&id).await?))
}

#[derive(Deserialize)]
struct TasksQuery {
    /// Only tasks in this state (`FAILED`, `RUNNING`, ...).
    state: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
}

async fn tasks(
    State(app): Shared,
    Path(id): Path<String>,
    Query(q): Query<TasksQuery>,
) -> Result<Json<views::TasksPage>, ApiError> {
    let id = job_id(&id)?;
    let state = match q.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(TaskState::parse(&s.to_ascii_uppercase()).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "unknown task state '{}': one of PENDING, RUNNING, RETRYING, SUCCEEDED, FAILED",
                s.chars().take(40).collect::<String>()
            ))
        })?),
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    Ok(Json(
        app.reader
            .tasks(&id, state, q.offset.unwrap_or(0), limit)
            .await?,
    ))
}

#[derive(Deserialize)]
struct HistoryQuery {
    limit: Option<usize>,
}

async fn history(
    State(app): Shared,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<views::HistoryView>, ApiError> {
    let id = job_id(&id)?;
    let limit = q.limit.unwrap_or(500).clamp(1, 100_000);
    Ok(Json(app.reader.history(&id, limit).await?))
}

async fn notifications(
    State(app): Shared,
    Path(id): Path<String>,
) -> Result<Json<Vec<views::NotificationView>>, ApiError> {
    let id = job_id(&id)?;
    Ok(Json(app.reader.notifications(&id).await?))
}

#[derive(Deserialize)]
struct FileQuery {
    /// `table`: a CSV as `{header, rows, truncated}`.
    format: Option<String>,
}

/// A file as it is, or a CSV as a table.
async fn file_response(
    name: &str,
    path: std::path::PathBuf,
    format: Option<&str>,
) -> Result<Response, ApiError> {
    let kind = FileKind::of(name);
    match format {
        Some("table") if kind == FileKind::Csv => {
            let table = tokio::task::spawn_blocking(move || views::read_table(&path, TABLE_ROWS))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))??;
            Ok(Json(table).into_response())
        }
        Some("table") => Err(ApiError::BadRequest(format!(
            "{name} is not a CSV; format=table is for CSV files"
        ))),
        Some(other) => Err(ApiError::BadRequest(format!(
            "unknown format '{}' (the only format is 'table')",
            other.chars().take(40).collect::<String>()
        ))),
        None => {
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|e| ApiError::Internal(format!("{name}: {e}")))?;
            // The name comes from an object key: keep it to characters that cannot end the
            // quoted string or the header.
            let safe: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "._-".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let disposition = match kind {
                FileKind::Other => format!("attachment; filename=\"{safe}\""),
                _ => format!("inline; filename=\"{safe}\""),
            };
            Ok((
                [
                    (header::CONTENT_TYPE, kind.content_type().to_string()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                Body::from(bytes),
            )
                .into_response())
        }
    }
}

async fn result(
    State(app): Shared,
    Path((id, n)): Path<(String, String)>,
    Query(q): Query<FileQuery>,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let n: usize = n.parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "a result is named by its number (0, 1, ...), not '{}'",
            n.chars().take(40).collect::<String>()
        ))
    })?;
    let (name, path) = app.reader.result(&id, n).await?;
    file_response(&name, path, q.format.as_deref()).await
}

async fn rejects(
    State(app): Shared,
    Path((id, stage)): Path<(String, String)>,
    Query(q): Query<FileQuery>,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let path = app.reader.rejects(&id, &stage).await?;
    file_response("rejects.csv", path, q.format.as_deref()).await
}

async fn attempt_log(
    State(app): Shared,
    Path((id, task, n)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let task = TaskId::new(task)?;
    let n: u32 = n.parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "an attempt is named by its number (1, 2, ...), not '{}'",
            n.chars().take(40).collect::<String>()
        ))
    })?;
    let Some(log) = app.reader.attempt_log(&id, &task, n).await? else {
        // A known attempt that has written nothing: its log is empty.
        return Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            String::new(),
        )
            .into_response());
    };
    let (text, cut) = match log {
        AttemptLog::File(path) => tokio::task::spawn_blocking(move || views::tail(&path, LOG_TAIL))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| ApiError::Internal(format!("reading the log: {e}")))?,
        AttemptLog::Block(bytes) => views::tail_of(&bytes, LOG_TAIL),
    };
    let text = if cut {
        format!("[… the beginning of the log is cut; the last {LOG_TAIL} bytes follow]\n{text}")
    } else {
        text
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// The fields of `POST /api/jobs` (multipart/form-data).
#[derive(Default)]
struct TriggerForm {
    pipeline: Option<String>,
    file: Option<(Option<String>, Option<String>, Vec<u8>)>,
    schedule: Option<String>,
    overrides: Overrides,
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge("the upload is larger than this console accepts (--upload-limit)".into())
    } else {
        ApiError::BadRequest(format!("bad multipart/form-data body: {}", e.body_text()))
    }
}

async fn read_form(mut multipart: Multipart, limit: usize) -> Result<TriggerForm, ApiError> {
    let mut form = TriggerForm::default();
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            let file_name = field.file_name().map(str::to_string);
            let content_type = field.content_type().map(str::to_string);
            let bytes = field.bytes().await.map_err(multipart_error)?;
            if bytes.len() > limit {
                return Err(ApiError::TooLarge(format!(
                    "the file is {} bytes, larger than this console accepts ({limit} bytes; --upload-limit)",
                    bytes.len()
                )));
            }
            // A form submitted with no file chosen sends an empty, nameless part.
            if !(bytes.is_empty() && file_name.as_deref().is_none_or(str::is_empty)) {
                form.file = Some((file_name, content_type, bytes.to_vec()));
            }
            continue;
        }
        let text = field.text().await.map_err(multipart_error)?;
        if text.len() > 4096 {
            return Err(ApiError::BadRequest(format!(
                "field '{}' is too long",
                name.chars().take(40).collect::<String>()
            )));
        }
        let text = text.trim().to_string();
        match name.as_str() {
            "pipeline" => form.pipeline = Some(text),
            "schedule" if !text.is_empty() => form.schedule = Some(text),
            "scale" if !text.is_empty() => {
                let scale: f64 = text.parse().map_err(|_| {
                    ApiError::BadRequest(format!("scale: '{text}' is not a number"))
                })?;
                form.overrides.scale = Some(scale);
            }
            p if p.starts_with("param.") => {
                if !text.is_empty() {
                    form.overrides
                        .params
                        .insert(p["param.".len()..].to_string(), text);
                }
            }
            "schedule" | "scale" => {}
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown field '{}' (fields: pipeline, file, schedule, scale, param.NAME)",
                    other.chars().take(40).collect::<String>()
                )));
            }
        }
    }
    Ok(form)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TriggerResult {
    job_id: String,
    /// `started`, `duplicate` or `rejected`, as ingest said.
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    pipeline: String,
    /// Where the upload was written (inbox-relative), for an upload.
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    url: String,
}

/// `POST /api/jobs`: start a job from an uploaded CSV or a schedule's input.
async fn create_job(
    State(app): Shared,
    headers: axum::http::HeaderMap,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    // Refuse a body announced too large before reading any of it (a client that sent
    // `Expect: 100-continue` then never sends it).
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > app.upload_limit.saturating_add(MULTIPART_OVERHEAD)) {
        return Err(ApiError::TooLarge(format!(
            "the upload is larger than this console accepts ({} bytes; --upload-limit)",
            app.upload_limit
        )));
    }
    let form = read_form(multipart, app.upload_limit).await?;
    let base = form
        .pipeline
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::BadRequest("field 'pipeline' is required".into()))?;
    // Check the upload before anything is registered or written.
    let upload = match (&form.file, &form.schedule) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "give either a file or a schedule, not both".into(),
            ));
        }
        (None, None) => {
            return Err(ApiError::BadRequest(
                "give a CSV file (field 'file') or a schedule of the pipeline (field 'schedule')"
                    .into(),
            ));
        }
        (Some((name, content_type, body)), None) => {
            let name = trigger::upload_name(name.as_deref())?;
            if !trigger::acceptable_content_type(content_type.as_deref()) {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "only CSV files can start a job (the file was sent as {})",
                    content_type.as_deref().unwrap_or("?")
                )));
            }
            trigger::check_csv(body)?;
            Some((name, body))
        }
        (None, Some(_)) => None,
    };
    let pipeline = trigger::pipeline_for(&app.runtime, &base, &form.overrides).await?;
    let (result, file) = match upload {
        Some((name, body)) => {
            let (path, rel) = trigger::write_upload(&app.inbox, &pipeline.name, &name, body)?;
            let outcome = ingest_file(&app.runtime, &path, &rel, &rel)
                .await
                .map_err(|e| ApiError::Internal(format!("{e:#}")))?;
            let result = match outcome {
                Ingested::Delivered(v) => v,
                // A fresh file name: this cannot have been ingested before.
                Ingested::AlreadyIngested(job) => json!({"jobId": job, "status": "duplicate"}),
            };
            (result, Some((path, rel)))
        }
        None => {
            let schedule = form.schedule.unwrap_or_default();
            let s = pipeline
                .schedule
                .iter()
                .chain(
                    // A variant drops the schedules; they are the base pipeline's.
                    app.runtime
                        .services
                        .pipelines
                        .get(&base)
                        .await
                        .ok()
                        .flatten()
                        .map(|b| b.schedule)
                        .unwrap_or_default()
                        .iter(),
                )
                .find(|s| s.name == schedule)
                .cloned()
                .ok_or_else(|| {
                    ApiError::NotFound(format!(
                        "pipeline '{base}' has no schedule '{}'",
                        schedule.chars().take(64).collect::<String>()
                    ))
                })?;
            let dir = pipeline.directory.clone().unwrap_or_else(|| ".".into());
            let input = std::path::Path::new(&dir).join(&s.input);
            let result = fire_schedule(
                &app.runtime,
                &pipeline.name,
                &s.name,
                &input,
                chrono::Utc::now(),
            )
            .await
            .map_err(|e| ApiError::Internal(format!("{e:#}")))?;
            (result, None)
        }
    };
    let job = result["jobId"]
        .as_str()
        .and_then(|j| JobId::new(j).ok())
        .ok_or_else(|| ApiError::Internal(format!("ingest returned no job id: {result}")))?;
    let status = result["status"].as_str().unwrap_or("?").to_string();
    if status == "started" {
        let how = match &file {
            Some((path, _)) => StartedBy::Upload(path.clone()),
            None => StartedBy::Schedule,
        };
        app.started(&job, how);
    }
    let body = TriggerResult {
        url: format!("/jobs/{job}"),
        job_id: job.to_string(),
        status,
        reason: result["reason"].as_str().map(str::to_string),
        pipeline: pipeline.name,
        file: file.map(|(_, rel)| rel),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize, Default)]
struct CancelBody {
    reason: Option<String>,
}

/// `POST /api/jobs/{id}/cancel`: what `sluice cancel` does.
async fn cancel(
    State(app): Shared,
    Path(id): Path<String>,
    body: Option<Json<CancelBody>>,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let reason = body
        .and_then(|Json(b)| b.reason)
        .filter(|r| !r.trim().is_empty())
        .map(|r| r.chars().take(500).collect::<String>())
        .unwrap_or_else(|| "cancelled in the sluice console".into());
    // Fails fast for a job that cannot be cancelled.
    let job = app.reader.job(&id).await?;
    if job.state.is_final() {
        return Err(ApiError::Conflict(format!(
            "job {id} is already {}: there is nothing to cancel",
            job.state.as_str()
        )));
    }
    // Cancelling a job another process drives waits for that process; the request answers
    // within CANCEL_WAIT either way and the cancel goes on.
    let runtime = app.runtime.clone();
    let job_id = id.clone();
    let arn = job.execution_arn.clone();
    let running = tokio::spawn(async move {
        let how = runtime.cancel(&job_id, &reason).await?;
        // Stopped here: answer once its end is handled (tasks stopped, job recorded), as a
        // cancel another process takes is.
        if how == Cancelled::Here
            && let Some(arn) = arn
        {
            runtime.wait_settled(&arn).await;
        }
        Ok(how)
    });
    match tokio::time::timeout(CANCEL_WAIT, running).await {
        Ok(Ok(Ok(how))) => {
            let job = app.reader.job(&id).await?;
            let stopped_by = match how {
                Cancelled::Here => DriverView::ThisProcess,
                Cancelled::ByDriver(pid) => DriverView::Process { pid },
                Cancelled::Orphan => DriverView::Nobody,
            };
            Ok(Json(CancelResult {
                job_id: id,
                state: CancelState::Job(job.state),
                reason: job.reason,
                stopped_by: Some(stopped_by),
                message: None,
            })
            .into_response())
        }
        Ok(Ok(Err(e))) => Err(control_error(e)),
        Ok(Err(e)) => Err(ApiError::Internal(format!("cancel crashed: {e}"))),
        Err(_) => Ok((
            StatusCode::ACCEPTED,
            Json(CancelResult {
                job_id: id,
                state: CancelState::Still(Stopping::Cancelling),
                reason: None,
                stopped_by: None,
                message: Some(
                    "asked the process running the job to cancel it; it is still stopping its tasks"
                        .into(),
                ),
            }),
        )
            .into_response()),
    }
}

/// What `POST /api/jobs/{id}/cancel` answers.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CancelResult {
    job_id: JobId,
    state: CancelState,
    reason: Option<String>,
    /// Which process stopped the job.
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped_by: Option<DriverView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// The job's state after a cancel, or `CANCELLING` while another process is stopping it.
#[derive(Serialize)]
#[serde(untagged)]
enum CancelState {
    Job(JobState),
    Still(Stopping),
}

#[derive(Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Stopping {
    Cancelling,
}

/// What `POST /api/jobs/{id}/redrive` answers.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RedriveResult {
    job_id: JobId,
    redrive_count: u32,
    /// The top-level state the execution continues from (none: from the start).
    from_state: Option<String>,
    /// Map iterations whose results were kept.
    kept_results: usize,
    /// Attempts a dead process left unfinished, now recorded INTERRUPTED.
    interrupted: usize,
    url: String,
}

/// `POST /api/jobs/{id}/redrive`: what `sluice redrive` does; the job then runs in the
/// process that serves the console.
async fn redrive(
    State(app): Shared,
    Path(id): Path<String>,
) -> Result<Json<RedriveResult>, ApiError> {
    let id = job_id(&id)?;
    let started = app.runtime.redrive(&id).await.map_err(control_error)?;
    app.started(&id, StartedBy::Redrive);
    Ok(Json(RedriveResult {
        url: format!("/jobs/{id}"),
        job_id: id,
        redrive_count: started.redrive_count,
        from_state: started.from_state,
        kept_results: started.kept_results,
        interrupted: started.interrupted,
    }))
}

fn control_error(e: RedriveError) -> ApiError {
    match e {
        RedriveError::UnknownJob(_) => ApiError::NotFound(e.to_string()),
        RedriveError::NoExecution(_)
        | RedriveError::Succeeded(_)
        | RedriveError::DrivenElsewhere { .. }
        | RedriveError::AlreadyFinal(..) => ApiError::Conflict(e.to_string()),
        RedriveError::Engine { .. } | RedriveError::Store(_) | RedriveError::Io(_) => {
            ApiError::Internal(e.to_string())
        }
    }
}
