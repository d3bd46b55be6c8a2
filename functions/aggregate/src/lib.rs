//! Aggregate: the built-in aggregate stage, run by the state machine's Aggregate state.
//!
//! Reads the JSON result of every task of the stage it aggregates (`aggregate.from`, by default
//! the stage before; results are stored under the task id, so a retried task overwrote its own
//! result and is counted once), folds them as the pipeline says, and writes `results.csv` and,
//! when the stage has a plot, `results.png` to the stage's `output/`. The stage before was
//! closed by the plan step's close-stage, so every task here succeeded.

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sluice_core::aggregate::{Aggregate, TaskResult, aggregate};
use sluice_core::error::StepError;
use sluice_core::model::ObjectRef;
use sluice_core::pipeline::{AggregateSpec, PlotSpec, StageKind};
use sluice_core::ports::PortCall;
use sluice_core::ports::layout;
use sluice_core::stage::{belongs_to, item_of, output_location, require_stage_at};
use sluice_core::{JobId, Services, TaskState};

/// Every port call this handler's code can make (see [`PortCall`]): the IAM permission
/// contract test derives the function's role from this list, and the decision tests refuse
/// any other call.
pub const PORT_CALLS: &[PortCall] = &[
    PortCall::ObjectGet,
    PortCall::ObjectPut,
    PortCall::PipelineGet,
    PortCall::JobRead,
];

/// Task results read at once (S3 GETs in flight on AWS).
pub const RESULT_READS: usize = 32;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregateInput {
    pub job_id: JobId,
    /// The aggregate stage's position in the pipeline.
    pub stage: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregateOutput {
    pub tasks: u32,
    pub groups: u32,
    pub results: Vec<ObjectRef>,
}

pub async fn handle(
    services: &Services,
    input: AggregateInput,
) -> Result<AggregateOutput, StepError> {
    let job = services.job(&input.job_id).await?;
    let pipeline = services.job_pipeline(&job).await?;
    let stage = require_stage_at(&pipeline, input.stage)?;
    let StageKind::Aggregate(spec) = stage.kind() else {
        return Err(StepError::invalid_input(format!(
            "stage '{}' is not an aggregate stage",
            stage.name
        )));
    };
    let (from_index, from) = match &spec.from {
        Some(name) => pipeline.stage(name),
        None => input.stage.checked_sub(1).map(|i| (i, &pipeline.stages[i])),
    }
    .ok_or_else(|| {
        StepError::invalid_input(format!("stage '{}' has no stage to aggregate", stage.name))
    })?;
    let data = &services.buckets.data;
    let mut located = Vec::new();
    for task in services.jobs.list_tasks(&job.id).await? {
        if task.state != TaskState::Succeeded || !belongs_to(&pipeline, &task, from_index) {
            continue;
        }
        let location = task
            .result
            .clone()
            .or_else(|| {
                output_location(data, &job.id, from, item_of(&task)).map(|l| l.object().clone())
            })
            .ok_or_else(|| {
                StepError::invalid_input(format!("stage '{}' writes no results", from.name))
            })?;
        located.push((task, location));
    }
    // Read RESULT_READS at a time, kept in task order: one after the other, 10,000 S3 GETs
    // would take minutes of the Lambda's fifteen.
    let results: Vec<TaskResult> = futures::stream::iter(located)
        .map(|(task, location)| async move {
            let bytes = services.objects.get(&location).await?;
            let result = serde_json::from_slice(&bytes).map_err(|e| {
                StepError::invalid_input(format!(
                    "task {}: result {location} is not JSON: {e}",
                    task.id
                ))
            })?;
            Ok::<_, StepError>(TaskResult {
                task: task.id,
                params: task.params,
                result,
            })
        })
        .buffered(RESULT_READS)
        .try_collect()
        .await?;

    let table = aggregate(spec, &results)
        .map_err(|e| StepError::invalid_input(format!("stage '{}': {e}", stage.name)))?;
    let dir = layout::stage_output(&job.id, &stage.name);
    let csv_ref = ObjectRef::new(data, format!("{dir}{}", layout::RESULTS_CSV));
    services
        .objects
        .put(&csv_ref, table.to_csv().into_bytes(), "text/csv")
        .await?;
    let mut written = vec![csv_ref];
    if let Some(plot) = &stage.plot
        && let Some(png) = render_plot(plot, spec, &table)?
    {
        let png_ref = ObjectRef::new(data, format!("{dir}{}", layout::RESULTS_PNG));
        services.objects.put(&png_ref, png, "image/png").await?;
        written.push(png_ref);
    }
    tracing::info!(job = %job.id, stage = %stage.name, tasks = results.len(), "aggregated");
    Ok(AggregateOutput {
        tasks: results.len() as u32,
        groups: table.rows.len() as u32,
        results: written,
    })
}

/// The PNG of the aggregated ratio with its confidence intervals, and the reference column
/// (e.g. the theory the tasks computed) as a line, when the stage asks for a plot.
fn render_plot(
    plot: &PlotSpec,
    spec: &AggregateSpec,
    table: &Aggregate,
) -> Result<Option<Vec<u8>>, StepError> {
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
    let reference = plot.reference.as_ref().and_then(|name| {
        let column = table.carry_fields.iter().position(|c| c == name)?;
        Some(
            table
                .rows
                .iter()
                .filter_map(|row| Some((row.group.as_f64()?, row.carried.get(column)?.as_f64()?)))
                .collect::<Vec<_>>(),
        )
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
        theory: reference,
        theory_label: plot
            .reference_label
            .clone()
            .or_else(|| plot.reference.clone())
            .unwrap_or_default(),
        ..sluice_plot::CurvePlot::default()
    };
    let dir = tempfile::tempdir().map_err(StepError::internal)?;
    let path = dir.path().join(layout::RESULTS_PNG);
    sluice_plot::render_curve_png(&path, &curve)
        .map_err(|e| StepError::internal(format!("plot: {e}")))?;
    std::fs::read(&path).map(Some).map_err(StepError::internal)
}
