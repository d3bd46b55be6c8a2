//! The HTML pages: the jobs page and a job's page, rendered on the server from askama templates
//! (`templates/`), with the assets (`assets/`, compiled into the binary). The pages are whole
//! on first load; `console.js` then polls the JSON API and updates them in place.

use crate::App;
use crate::api::job_id;
use crate::error::ApiError;
use crate::graph;
use crate::trigger::{self, PipelineView};
use crate::views::{self, FileKind, JobDetail, JobSummary, NotificationView, Table};
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");
/// Tasks a job's page lists (the API pages through the rest).
const TASK_ROWS: usize = 1000;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(jobs_page))
        .route("/jobs/{id}", get(job_page))
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
        .fallback(not_found)
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        JS,
    )
        .into_response()
}

/// An error as a page (or as JSON under `/api/`).
pub(crate) struct PageError(ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let message = self.0.to_string();
        match (ErrorPage {
            status: status.as_u16(),
            message: &message,
        })
        .render()
        {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => self.0.into_response(),
        }
    }
}

async fn not_found(uri: Uri) -> Response {
    let e = ApiError::NotFound(format!(
        "no such page: {}",
        uri.path().chars().take(200).collect::<String>()
    ));
    if uri.path().starts_with("/api/") {
        e.into_response()
    } else {
        PageError(e).into_response()
    }
}

fn render(t: impl Template) -> Result<Html<String>, PageError> {
    t.render()
        .map(Html)
        .map_err(|e| PageError(ApiError::Internal(format!("rendering the page: {e}"))))
}

/// Seconds as `1h 02m`, `3m 07s`, `4.2s`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m {:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{}h {:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    csrf: String,
    jobs: Vec<JobSummary>,
    pipelines: Vec<PipelineView>,
    pipelines_json: String,
    upload_limit_mib: String,
    workdir: String,
}

impl JobsPage {
    fn duration(&self, s: &f64) -> String {
        duration(*s)
    }
    fn time(&self, t: &chrono::DateTime<chrono::Utc>) -> String {
        time(t)
    }
}

async fn jobs_page(State(app): State<Arc<App>>) -> Result<Html<String>, PageError> {
    let jobs = app.reader.jobs(100).await?;
    let pipelines = trigger::pipelines(&app.runtime).await?;
    render(JobsPage {
        csrf: app.csrf.clone(),
        pipelines_json: serde_json::to_string(&pipelines)
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        pipelines,
        jobs,
        upload_limit_mib: format!("{:.0}", app.upload_limit as f64 / (1024.0 * 1024.0)),
        workdir: app.reader.workdir().display().to_string(),
    })
}

/// A CSV result or rejects file shown as a table.
struct ShownTable {
    file: views::FileView,
    table: Option<Table>,
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    csrf: String,
    job: JobDetail,
    tasks: views::TasksPage,
    graph_svg: String,
    results: Vec<ShownTable>,
    rejects: Vec<ShownTable>,
    history: views::HistoryView,
    history_rows: Vec<HistoryRow>,
    notifications: Vec<NotificationView>,
}

/// One history event as the page lists it.
struct HistoryRow {
    id: String,
    timestamp: String,
    kind: String,
    detail: String,
}

fn history_row(e: &serde_json::Value) -> HistoryRow {
    let detail = e
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.ends_with("EventDetails")))
        .map(|(_, v)| {
            let text = v.to_string();
            if text.chars().count() > 300 {
                text.chars().take(300).collect::<String>() + "…"
            } else {
                text
            }
        })
        .unwrap_or_default();
    HistoryRow {
        id: e["id"].to_string(),
        timestamp: e["timestamp"].as_str().unwrap_or_default().to_string(),
        kind: e["type"].as_str().unwrap_or_default().to_string(),
        detail,
    }
}

impl JobPage {
    fn duration(&self, s: &f64) -> String {
        duration(*s)
    }
    fn opt_duration(&self, s: &Option<f64>) -> String {
        s.map(duration).unwrap_or_default()
    }
    fn time(&self, t: &chrono::DateTime<chrono::Utc>) -> String {
        time(t)
    }
    fn pretty(&self, v: &serde_json::Value) -> String {
        serde_json::to_string_pretty(v).unwrap_or_default()
    }
}

async fn job_page(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let id = job_id(&id)?;
    let job = app.reader.job_detail(&id).await?;
    let tasks = app.reader.tasks(&id, None, 0, TASK_ROWS).await?;
    let history = app.reader.history(&id, 200).await?;
    let notifications = app.reader.notifications(&id).await?;
    // CSV results and rejects are shown as tables, read through the same checks as the API.
    let mut results = Vec::new();
    for (n, file) in job.results.iter().enumerate() {
        let table = match file.kind {
            FileKind::Csv => match app.reader.result(&id, n).await {
                Ok((_, path)) => views::read_table(&path, 200).ok(),
                Err(_) => None,
            },
            _ => None,
        };
        results.push(ShownTable {
            file: file.clone(),
            table,
        });
    }
    let mut rejects = Vec::new();
    for file in &job.rejects {
        let table = match &file.stage {
            Some(stage) => match app.reader.rejects(&id, stage).await {
                Ok(path) => views::read_table(&path, 200).ok(),
                Err(_) => None,
            },
            None => None,
        };
        rejects.push(ShownTable {
            file: file.clone(),
            table,
        });
    }
    render(JobPage {
        csrf: app.csrf.clone(),
        graph_svg: graph::svg(&app.reader.graph, &job.states),
        history_rows: history.events.iter().rev().map(history_row).collect(),
        job,
        tasks,
        results,
        rejects,
        history,
        notifications,
    })
}
