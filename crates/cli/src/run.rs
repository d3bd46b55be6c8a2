//! `sluice run INPUT.csv`: one job, start to finish, on this machine, with a progress bar.
//!
//! The CSV goes into the ingest bucket and its Object Created event to the ingest handler —
//! exactly the path an upload takes on AWS — and the command then follows the job in the job
//! table until its execution ends.

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sluice_core::{JobId, JobState, PipelineConfig, TaskState};
use sluice_local::{LocalRuntime, RuntimeOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The job's input CSV.
    pub input: PathBuf,
    /// Pipeline file; default: pipeline.toml beside the input.
    #[arg(long)]
    pub pipeline: Option<PathBuf>,
    /// Work directory (buckets, job table, logs).
    #[arg(long, default_value = ".sluice")]
    pub workdir: PathBuf,
    /// Multiply the pipeline's scale parameter (e.g. bits per task): 0.01 for a quick demo,
    /// 1 for the full size.
    #[arg(long)]
    pub scale: Option<f64>,
    /// Share of task attempts to interrupt like a Spot reclaim (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub spot_interruptions: f64,
    /// Seed deciding which attempts are interrupted.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Most task processes at once (default: number of CPUs).
    #[arg(long)]
    pub max_parallel: Option<u32>,
}

/// Load a pipeline file with errors naming it.
pub fn load_pipeline(path: &Path) -> anyhow::Result<PipelineConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading pipeline {}", path.display()))?;
    Ok(PipelineConfig::from_toml(
        &path.display().to_string(),
        &text,
    )?)
}

pub async fn run(args: RunArgs) -> anyhow::Result<u8> {
    if !(0.0..=1.0).contains(&args.spot_interruptions) {
        anyhow::bail!(
            "--spot-interruptions must be between 0 and 1, got {}",
            args.spot_interruptions
        );
    }
    let pipeline_path = match &args.pipeline {
        Some(p) => p.clone(),
        None => args
            .input
            .parent()
            .unwrap_or(Path::new("."))
            .join("pipeline.toml"),
    };
    let mut pipeline = load_pipeline(&pipeline_path)?;
    if let Some(scale) = args.scale {
        pipeline = pipeline.scaled(scale).map_err(anyhow::Error::msg)?;
    }
    if !args.input.is_file() {
        anyhow::bail!(
            "input {} does not exist or is not a file",
            args.input.display()
        );
    }
    let mut options = RuntimeOptions::new(&args.workdir);
    options.max_slots = args.max_parallel;
    if args.spot_interruptions > 0.0 {
        options.spot_interruptions = Some((args.spot_interruptions, args.seed));
    }
    let runtime = LocalRuntime::open(options)?;
    runtime.register_pipeline(&pipeline)?;

    let file_name = args
        .input
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "input.csv".into());
    let key = format!("{}/{file_name}", pipeline.name);
    let event = runtime.upload(&args.input, &key)?;
    let ingested = runtime
        .deliver(event)
        .await
        .map_err(|e| anyhow::anyhow!("ingest failed: {e}"))?;
    let job_id = ingested
        .get("jobId")
        .and_then(|v| v.as_str())
        .and_then(|s| JobId::new(s).ok())
        .context("ingest returned no job id")?;
    eprintln!(
        "job {job_id}: {} (pipeline {}, input {})",
        ingested["status"].as_str().unwrap_or("?"),
        pipeline.name,
        args.input.display()
    );

    let started = Instant::now();
    let outcome = follow(&runtime, &job_id).await?;
    summarize(&runtime, &job_id, started.elapsed(), outcome).await
}

/// Follow a job until its execution ends, drawing progress.
async fn follow(
    runtime: &LocalRuntime,
    job_id: &JobId,
) -> anyhow::Result<Option<sluice_asl::ExecutionOutcome>> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} tasks {msg} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut last_line = Instant::now();
    loop {
        let job = runtime
            .services
            .jobs
            .get_job(job_id)
            .await?
            .context("job disappeared")?;
        let tasks = runtime.services.jobs.list_tasks(job_id).await?;
        let count = |s: TaskState| tasks.iter().filter(|t| t.state == s).count();
        let (done, failed, running, retrying) = (
            count(TaskState::Succeeded),
            count(TaskState::Failed),
            count(TaskState::Running),
            count(TaskState::Retrying),
        );
        let retried: u32 = tasks.iter().map(|t| t.attempts.saturating_sub(1)).sum();
        bar.set_length(tasks.len() as u64);
        bar.set_position((done + failed) as u64);
        // Tasks launched but still waiting for a slot in the pool are "waiting for capacity",
        // as ECS tasks are while the cluster scales.
        let (processes, pool) = runtime.slots.snapshot();
        let waiting = (running + retrying).saturating_sub(processes as usize);
        let msg = format!(
            "| running {processes}/{pool} slots | waiting {waiting} | retried {retried} | failed {failed}"
        );
        bar.set_message(msg.clone());
        bar.tick();
        // Without a terminal the bar is hidden; print a line now and then instead.
        if bar.is_hidden() && last_line.elapsed() > Duration::from_secs(10) {
            eprintln!("{}/{} tasks {msg}", done + failed, tasks.len());
            last_line = Instant::now();
        }
        let execution = job
            .execution_arn
            .as_deref()
            .and_then(|arn| runtime.engine.execution(arn));
        match execution {
            Some(handle) => {
                if let Some(outcome) = handle.outcome() {
                    bar.finish_and_clear();
                    return Ok(Some(outcome));
                }
            }
            // Rejected at ingest: there is no execution to wait for.
            None if job.state.is_final() => {
                bar.finish_and_clear();
                return Ok(None);
            }
            None => {}
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn summarize(
    runtime: &LocalRuntime,
    job_id: &JobId,
    elapsed: Duration,
    outcome: Option<sluice_asl::ExecutionOutcome>,
) -> anyhow::Result<u8> {
    let job = runtime
        .services
        .jobs
        .get_job(job_id)
        .await?
        .context("job disappeared")?;
    let tasks = runtime.services.jobs.list_tasks(job_id).await?;
    let succeeded = tasks
        .iter()
        .filter(|t| t.state == TaskState::Succeeded)
        .count();
    let attempts: u32 = tasks.iter().map(|t| t.attempts).sum();
    let spot: u32 = tasks.iter().map(|t| t.spot_interruptions).sum();
    println!("job        {}", job.id);
    println!("state      {}", job.state.as_str());
    if let Some(reason) = &job.reason {
        println!("reason     {reason}");
    }
    if let Some(o) = &outcome {
        println!(
            "execution  {} ({})",
            job.execution_arn.as_deref().unwrap_or("-"),
            o.status.as_str()
        );
    }
    println!(
        "tasks      {succeeded}/{} succeeded, {} attempts, {spot} Spot interruptions",
        tasks.len(),
        attempts
    );
    println!("elapsed    {:.1}s", elapsed.as_secs_f64());
    for result in &job.results {
        println!("result     {}", runtime.path_of(result)?.display());
    }
    if let Some(csv) = job.results.iter().find(|r| r.key.ends_with(".csv")) {
        let text = std::fs::read_to_string(runtime.path_of(csv)?).unwrap_or_default();
        println!();
        print!("{text}");
    }
    Ok(if job.state == JobState::Succeeded {
        0
    } else {
        1
    })
}
