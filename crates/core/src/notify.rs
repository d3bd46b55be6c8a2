//! Notifications a person receives when a job ends (`[notify]` in the pipeline): a
//! Slack-compatible webhook and/or a command, with the job's summary.
//!
//! Called by the step that records the job's final state (finish, execution-events) only when
//! its write moved the job there, so an outcome is announced once however often the step is
//! retried. The [`Notifier`] adapter retries a delivery a few times; one that still fails is
//! logged and reported: it never changes the job's outcome.

use crate::model::{Job, ObjectRef};
use crate::pipeline::{NotifyOn, PipelineConfig, template};
use crate::ports::Notifier;
use serde::Serialize;

/// What a notification says about a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobSummary {
    pub job_id: String,
    pub pipeline: String,
    pub status: String,
    pub reason: Option<String>,
    pub tasks: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub results: Vec<String>,
}

impl JobSummary {
    pub fn new(job: &Job, tasks: u32, succeeded: u32, results: &[ObjectRef]) -> Self {
        Self {
            job_id: job.id.to_string(),
            pipeline: job.pipeline.clone(),
            status: job.state.as_str().to_string(),
            reason: job.reason.clone(),
            tasks,
            succeeded,
            failed: tasks.saturating_sub(succeeded),
            results: results.iter().map(ToString::to_string).collect(),
        }
    }

    /// One line a person reads first.
    pub fn text(&self) -> String {
        let mut text = format!(
            "sluice job {} ({}) {}: {} of {} tasks succeeded",
            self.job_id, self.pipeline, self.status, self.succeeded, self.tasks
        );
        if let Some(reason) = &self.reason {
            text.push_str(&format!(". {reason}"));
        }
        if !self.results.is_empty() {
            text.push_str(&format!(". Results: {}", self.results.join(", ")));
        }
        text
    }
}

/// What was delivered and what failed, for the step's log and report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivered {
    pub sent: Vec<&'static str>,
    pub failed: Vec<String>,
}

/// Send the notifications `pipeline` asks for about `summary`'s outcome.
pub async fn notify(
    notifier: &dyn Notifier,
    pipeline: &PipelineConfig,
    on: NotifyOn,
    summary: &JobSummary,
) -> Delivered {
    let mut delivered = Delivered::default();
    let Some(spec) = &pipeline.notify else {
        return delivered;
    };
    if !spec.on.contains(&on) {
        return delivered;
    }
    let json = serde_json::to_value(summary).unwrap_or_default();
    if let Some(url) = &spec.webhook {
        let body = serde_json::json!({"text": summary.text(), "job": json});
        match notifier.post_webhook(url, &body).await {
            Ok(()) => delivered.sent.push("webhook"),
            Err(e) => delivered.failed.push(format!("webhook: {e}")),
        }
    }
    if !spec.command.is_empty() {
        let argv: Result<Vec<String>, _> = spec
            .command
            .iter()
            .map(|arg| {
                template::render(arg, |name| match name {
                    "job_id" => Some(summary.job_id.clone()),
                    "pipeline" => Some(summary.pipeline.clone()),
                    "status" => Some(summary.status.clone()),
                    other => pipeline.param_text(other),
                })
            })
            .collect();
        let stdin = serde_json::to_vec_pretty(&json).unwrap_or_default();
        match argv {
            Ok(argv) => {
                match notifier
                    .run_command(&argv, &stdin, pipeline.directory.as_deref())
                    .await
                {
                    Ok(()) => delivered.sent.push("command"),
                    Err(e) => delivered.failed.push(format!("command: {e}")),
                }
            }
            Err(e) => delivered.failed.push(format!("command: {e}")),
        }
    }
    delivered
}

/// The pipeline's `[notify]` for `job`, which has just reached its final state.
pub async fn announce(
    services: &crate::ports::Services,
    job: &Job,
    tasks: u32,
    succeeded: u32,
) -> Delivered {
    let Some(on) = NotifyOn::of(job.state) else {
        return Delivered::default();
    };
    let Ok(pipeline) = services.job_pipeline(job).await else {
        return Delivered::default();
    };
    let summary = JobSummary::new(job, tasks, succeeded, &job.results);
    notify(services.notifier.as_ref(), &pipeline, on, &summary).await
}
