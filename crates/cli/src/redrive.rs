//! `sluice redrive JOB` and `sluice cancel JOB`: continue a job that stopped, or stop one,
//! whichever process runs it — the local StopExecution and RedriveExecution.

use clap::Args;
use sluice_core::JobId;
use sluice_local::{Cancelled, LocalRuntime, RuntimeOptions};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RedriveArgs {
    /// The job to continue (see `sluice status`).
    pub job: String,
    #[arg(long, default_value = ".sluice")]
    pub workdir: PathBuf,
    /// Most task processes at once (default: number of CPUs).
    #[arg(long)]
    pub max_parallel: Option<u32>,
    /// The job runs on the deployed stack: RedriveExecution (needs SLUICE_TABLE and
    /// SLUICE_STATE_MACHINE_ARN; a build with the `aws` feature).
    #[arg(long)]
    pub aws: bool,
}

#[derive(Args, Debug)]
pub struct CancelArgs {
    /// The job to cancel (see `sluice status`).
    pub job: String,
    #[arg(long, default_value = ".sluice")]
    pub workdir: PathBuf,
    /// Why; recorded on the job and in the notification.
    #[arg(long, default_value = "cancelled with sluice cancel")]
    pub reason: String,
    /// The job runs on the deployed stack: StopExecution (needs SLUICE_TABLE and
    /// SLUICE_STATE_MACHINE_ARN; a build with the `aws` feature).
    #[arg(long)]
    pub aws: bool,
}

#[cfg(not(feature = "aws"))]
mod aws {
    const NO_AWS: &str = "this sluice was built without AWS support; build it with `cargo build --release -p sluice-cli --features aws`";
    pub async fn cancel(_: &sluice_core::JobId, _: &str) -> anyhow::Result<u8> {
        anyhow::bail!(NO_AWS)
    }
    pub async fn redrive(_: &sluice_core::JobId) -> anyhow::Result<u8> {
        anyhow::bail!(NO_AWS)
    }
}
#[cfg(feature = "aws")]
use crate::aws;

fn open(workdir: &std::path::Path, max_parallel: Option<u32>) -> anyhow::Result<LocalRuntime> {
    if !workdir.join("sluice.db").is_file() {
        anyhow::bail!(
            "no job table at {} (pass the --workdir the job ran in)",
            workdir.join("sluice.db").display()
        );
    }
    let mut options = RuntimeOptions::new(workdir);
    options.max_slots = max_parallel;
    LocalRuntime::open(options)
}

pub async fn redrive(args: RedriveArgs) -> anyhow::Result<u8> {
    let job_id = JobId::new(args.job.clone())?;
    if args.aws {
        return aws::redrive(&job_id).await;
    }
    let runtime = open(&args.workdir, args.max_parallel)?;
    let started = runtime.redrive(&job_id).await?;
    eprintln!(
        "job {job_id}: redrive {} from {}{}{}",
        started.redrive_count,
        started
            .from_state
            .as_deref()
            .map(|s| format!("state {s}"))
            .unwrap_or_else(|| "the start".into()),
        if started.kept_results > 0 {
            format!(" ({} finished tasks kept)", started.kept_results)
        } else {
            String::new()
        },
        if started.interrupted > 0 {
            format!(
                "; {} unfinished attempt(s) of the stopped run will be retried",
                started.interrupted
            )
        } else {
            String::new()
        },
    );
    crate::follow::drive_to_end(&runtime, &job_id, &args.workdir).await
}

pub async fn cancel(args: CancelArgs) -> anyhow::Result<u8> {
    let job_id = JobId::new(args.job.clone())?;
    if args.aws {
        return aws::cancel(&job_id, &args.reason).await;
    }
    let runtime = open(&args.workdir, None)?;
    let how = runtime.cancel(&job_id, &args.reason).await?;
    let job = runtime
        .services
        .jobs
        .get_job(&job_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("job {job_id} disappeared"))?;
    let by = match how {
        Cancelled::ByDriver(pid) => format!("by the process running it (pid {pid})"),
        Cancelled::Orphan => "(no process was running it)".into(),
        Cancelled::Here => String::new(),
    };
    println!(
        "job {job_id}: {} {by}: {}",
        job.state.as_str(),
        job.reason.as_deref().unwrap_or("")
    );
    println!(
        "continue it with `sluice redrive {job_id} --workdir {}`",
        args.workdir.display()
    );
    Ok(0)
}
