//! Aggregate: every succeeded task's result folded into the job's results.
//!
//! Reads one result object per succeeded task (stored under the task id, so a retried task
//! overwrote its own result and is counted once), aggregates them as the pipeline says, and
//! writes `results.csv` and, when the pipeline has a plot, `results.png` to the job's
//! `aggregate_results/`. Tasks the state machine gave up on are marked FAILED here, with the
//! reason, and left out of the sums.

use serde::{Deserialize, Serialize};
use sluice_core::aggregate::{Aggregate, TaskResult, aggregate};
use sluice_core::error::StepError;
use sluice_core::model::{JobUpdate, ObjectRef};
use sluice_core::pipeline::{PipelineConfig, Theory};
use sluice_core::ports::{TaskUpdate, layout};
use sluice_core::{JobId, JobState, Services, TaskState, stats};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregateInput {
    pub job_id: JobId,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregateOutput {
    pub succeeded: u32,
    pub failed: u32,
    pub results: Vec<ObjectRef>,
}

pub async fn handle(
    services: &Services,
    input: AggregateInput,
) -> Result<AggregateOutput, StepError> {
    let job = services.job(&input.job_id).await?;
    let pipeline = services.pipeline(&job.pipeline).await?;
    let tasks = services.jobs.list_tasks(&job.id).await?;

    let mut results = Vec::new();
    let mut failed = 0u32;
    for task in &tasks {
        if task.state != TaskState::Succeeded {
            failed += 1;
            let reason = task
                .last_error
                .clone()
                .unwrap_or_else(|| format!("task ended {} without a result", task.state.as_str()));
            services
                .jobs
                .transition_task(
                    &job.id,
                    &task.id,
                    TaskState::Failed,
                    TaskUpdate {
                        last_error: Some(Some(reason)),
                        ..Default::default()
                    },
                )
                .await?;
            continue;
        }
        let location = task.result.clone().unwrap_or_else(|| {
            ObjectRef::new(
                &services.buckets.data,
                layout::task_result(&job.id, &task.id),
            )
        });
        let bytes = services.objects.get(&location).await?;
        let result = serde_json::from_slice(&bytes).map_err(|e| {
            StepError::invalid_input(format!(
                "task {}: result {location} is not JSON: {e}",
                task.id
            ))
        })?;
        results.push(TaskResult {
            task: task.id.clone(),
            params: task.params.clone(),
            result,
        });
    }

    let mut written = Vec::new();
    let csv_ref = ObjectRef::new(&services.buckets.data, layout::aggregate_csv(&job.id));
    match &pipeline.aggregate {
        Some(spec) => {
            let table = aggregate(spec, &results)
                .map_err(|e| StepError::invalid_input(format!("aggregate: {e}")))?;
            services
                .objects
                .put(&csv_ref, table.to_csv().into_bytes(), "text/csv")
                .await?;
            written.push(csv_ref);
            if let Some(png) = render_plot(&pipeline, &table)? {
                let png_ref =
                    ObjectRef::new(&services.buckets.data, layout::aggregate_png(&job.id));
                services.objects.put(&png_ref, png, "image/png").await?;
                written.push(png_ref);
            }
        }
        None => {
            // No aggregation configured: list where each task's result is.
            let mut csv = String::from("task_id,result\n");
            for task in tasks.iter().filter(|t| t.state == TaskState::Succeeded) {
                if let Some(r) = &task.result {
                    csv.push_str(&format!("{},{r}\n", task.id));
                }
            }
            services
                .objects
                .put(&csv_ref, csv.into_bytes(), "text/csv")
                .await?;
            written.push(csv_ref);
        }
    }
    services
        .jobs
        .transition_job(
            &job.id,
            JobState::Running,
            JobUpdate {
                results: Some(written.clone()),
                ..Default::default()
            },
        )
        .await?;
    Ok(AggregateOutput {
        succeeded: results.len() as u32,
        failed,
        results: written,
    })
}

/// The PNG of the aggregated curve, when the pipeline asks for a plot and has a ratio to draw.
fn render_plot(pipeline: &PipelineConfig, table: &Aggregate) -> Result<Option<Vec<u8>>, StepError> {
    let (Some(plot), Some(spec)) = (&pipeline.plot, &pipeline.aggregate) else {
        return Ok(None);
    };
    let Some(ratio) = &spec.ratio else {
        return Ok(None);
    };
    let points: Vec<sluice_plot::CurvePoint> = table
        .rows
        .iter()
        .filter_map(|row| {
            let x = row.group.as_f64()?;
            let (y, lo, hi) = row.ratio?;
            Some(sluice_plot::CurvePoint {
                x,
                y,
                y_low: lo,
                y_high: hi,
            })
        })
        .collect();
    let theory = spec.theory.map(|t| {
        let (lo, hi) = points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                (lo.min(p.x), hi.max(p.x))
            });
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        (0..=200)
            .map(|i| {
                let x = lo + (hi - lo) * f64::from(i) / 200.0;
                let y = match t {
                    Theory::BpskAwgn => stats::bpsk_awgn_ber(x),
                };
                (x, y)
            })
            .collect::<Vec<_>>()
    });
    let curve = sluice_plot::CurvePlot {
        title: plot.title.clone(),
        x_label: plot.x_label.clone(),
        y_label: plot.y_label.clone(),
        log_y: plot.log_y,
        points,
        points_label: format!(
            "simulated {} ({:.0}% CI)",
            ratio.name,
            ratio.confidence * 100.0
        ),
        theory,
        theory_label: "theory".into(),
        ..sluice_plot::CurvePlot::default()
    };
    let dir = tempfile::tempdir().map_err(StepError::internal)?;
    let path = dir.path().join("results.png");
    sluice_plot::render_curve_png(&path, &curve)
        .map_err(|e| StepError::internal(format!("plot: {e}")))?;
    std::fs::read(&path).map(Some).map_err(StepError::internal)
}
