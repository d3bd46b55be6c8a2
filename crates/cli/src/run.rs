//! `sluice run INPUT.csv`: one job, start to finish, on this machine, with a progress bar.
//!
//! The CSV goes into the ingest bucket and its Object Created event to the ingest handler —
//! exactly the path an upload takes on AWS — and the command then follows the job in the job
//! table until its execution ends. Ctrl-C (or SIGTERM) cancels the job gracefully; a second
//! Ctrl-C exits at once and leaves the job for `sluice redrive` (see `follow`).

use anyhow::Context;
use clap::Args;
use sluice_core::{JobId, PipelineConfig};
use sluice_local::{LocalRuntime, RuntimeOptions};
use std::path::{Path, PathBuf};

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

/// Load a pipeline file with every check (sluice-core's and the file system's), errors naming
/// the file and the key; nothing is created when it fails.
pub fn load_pipeline(path: &Path) -> anyhow::Result<PipelineConfig> {
    let bin_dirs = RuntimeOptions::new(".").bin_dirs;
    Ok(sluice_local::pipelines::load(path, &bin_dirs)?)
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

    crate::follow::drive_to_end(&runtime, &job_id, &args.workdir).await
}
