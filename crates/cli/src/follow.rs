//! Following a job this process drives, for `sluice run` and `sluice redrive`: the progress bar
//! while it runs, Ctrl-C handling, and the summary when it ends.
//!
//! The first Ctrl-C (or SIGTERM) cancels the job like `sluice cancel`: its task processes are
//! stopped, it is recorded ABORTED and its capacity released, and the command says how to
//! continue it. A second Ctrl-C exits at once; the tasks die with the process and the job stays
//! RUNNING in the job table, for `sluice redrive` to continue.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use sluice_asl::ExecutionOutcome;
use sluice_core::{JobId, JobState, TaskState};
use sluice_local::LocalRuntime;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::signal::unix::{SignalKind, signal};

/// The exit status of a command interrupted by SIGINT, as shells report it.
const INTERRUPTED: u8 = 130;
/// How often the progress line is redrawn.
const TICK: Duration = Duration::from_millis(200);

/// Follows the job until its execution has ended and settled, then prints the summary.
/// Returns the exit status: 0 when the job SUCCEEDED.
pub async fn drive_to_end(
    runtime: &LocalRuntime,
    job_id: &JobId,
    workdir: &Path,
) -> anyhow::Result<u8> {
    let started = Instant::now();
    let mut sigint = signal(SignalKind::interrupt()).context("installing the Ctrl-C handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let cancel = async {
        let which = tokio::select! {
            _ = sigint.recv() => "Ctrl-C",
            _ = sigterm.recv() => "SIGTERM",
        };
        which
    };
    let outcome = tokio::select! {
        o = follow(runtime, job_id) => o?,
        which = cancel => {
            eprintln!(
                "\n{which}: cancelling job {job_id} (stopping its tasks); press Ctrl-C again to exit at once"
            );
            let reason = format!("cancelled by {which} of sluice");
            let stop = async {
                let _ = runtime.cancel(job_id, &reason).await;
                let job = runtime.services.jobs.get_job(job_id).await?;
                if let Some(arn) = job.and_then(|j| j.execution_arn) {
                    runtime.wait_settled(&arn).await;
                }
                anyhow::Ok(())
            };
            tokio::select! {
                r = stop => r?,
                _ = sigint.recv() => {
                    eprintln!(
                        "exiting now; job {job_id} is left RUNNING: continue it with `sluice redrive {job_id} --workdir {}`",
                        workdir.display()
                    );
                    sluice_local::store::flush_all();
                    sluice_local::compute::kill_running();
                    std::process::exit(i32::from(INTERRUPTED));
                }
            }
            summarize(runtime, job_id, started.elapsed(), None).await?;
            eprintln!(
                "job {job_id} was cancelled; continue it with `sluice redrive {job_id} --workdir {}`",
                workdir.display()
            );
            return Ok(INTERRUPTED);
        }
    };
    summarize(runtime, job_id, started.elapsed(), outcome).await
}

/// Follows a job until its execution has settled, drawing progress.
async fn follow(
    runtime: &LocalRuntime,
    job_id: &JobId,
) -> anyhow::Result<Option<ExecutionOutcome>> {
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
        // Counted by the database, not by reading every task: this runs five times a second.
        let counts = runtime.store.task_counts(job_id)?;
        let count = |s: TaskState| counts.get(s) as usize;
        let (done, failed, running, retrying) = (
            count(TaskState::Succeeded),
            count(TaskState::Failed),
            count(TaskState::Running),
            count(TaskState::Retrying),
        );
        let retried = counts.retries;
        let total = counts.total() as usize;
        bar.set_length(total as u64);
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
            eprintln!("{}/{total} tasks {msg}", done + failed);
            last_line = Instant::now();
        }
        match job.execution_arn.as_deref() {
            Some(arn) => {
                if let Some(outcome) = runtime.settled(arn) {
                    bar.finish_and_clear();
                    return Ok(Some(outcome));
                }
                // The next tick, or the end as soon as it comes: polled only, the end was
                // seen up to a tick late (a two-task job took 0.20 s instead of 0.01 s).
                let ended = async {
                    if runtime.wait_settled(arn).await.is_none() {
                        // Not driven by this process: only the ticks can tell.
                        std::future::pending::<()>().await;
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(TICK) => {}
                    _ = ended => {}
                }
                continue;
            }
            // Rejected at ingest: there is no execution to wait for.
            None if job.state.is_final() => {
                bar.finish_and_clear();
                return Ok(None);
            }
            None => {}
        }
        tokio::time::sleep(TICK).await;
    }
}

pub async fn summarize(
    runtime: &LocalRuntime,
    job_id: &JobId,
    elapsed: Duration,
    outcome: Option<ExecutionOutcome>,
) -> anyhow::Result<u8> {
    let job = runtime
        .services
        .jobs
        .get_job(job_id)
        .await?
        .context("job disappeared")?;
    let tally = runtime.services.jobs.tally_tasks(job_id).await?;
    let succeeded = tally.in_state(TaskState::Succeeded);
    let total = tally.total();
    let (attempts, spot) = (total.attempts, total.spot_interruptions);
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
    if job.redrive_count > 0 {
        println!("redrives   {}", job.redrive_count);
    }
    println!(
        "tasks      {succeeded}/{} succeeded, {attempts} attempts, {spot} Spot interruptions",
        total.tasks
    );
    println!("elapsed    {:.1}s", elapsed.as_secs_f64());
    println!(
        "logs       {}",
        runtime.workdir.join("logs").join(job.id.as_str()).display()
    );
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
