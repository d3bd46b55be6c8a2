//! `sluice status [JOB]`: jobs, and a job's tasks and attempts, from the job table.

use anyhow::Context;
use clap::Args;
use sluice_core::JobId;
use sluice_core::ports::JobStore;
use sluice_local::store::SqliteJobStore;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// A job id; without it, the most recent jobs.
    pub job: Option<String>,
    #[arg(long, default_value = ".sluice")]
    pub workdir: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// How many jobs to list.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n.saturating_sub(1)).collect::<String>() + "…"
    }
}

pub async fn run(args: StatusArgs) -> anyhow::Result<u8> {
    let db = args.workdir.join("sluice.db");
    if !db.is_file() {
        anyhow::bail!(
            "no job table at {} (run a job first, or pass --workdir)",
            db.display()
        );
    }
    let store = SqliteJobStore::open(&db)?;
    match args.job {
        None => {
            let jobs = store.list_jobs(args.limit).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&jobs)?);
                return Ok(0);
            }
            println!(
                "{:<24} {:<10} {:<10} {:>6}  {:<20} REASON",
                "JOB", "PIPELINE", "STATE", "TASKS", "CREATED"
            );
            for j in jobs {
                println!(
                    "{:<24} {:<10} {:<10} {:>6}  {:<20} {}",
                    j.id,
                    clip(&j.pipeline, 10),
                    j.state.as_str(),
                    j.task_count,
                    j.created_at.format("%Y-%m-%d %H:%M:%S"),
                    clip(j.reason.as_deref().unwrap_or(""), 80)
                );
            }
        }
        Some(id) => {
            let id = JobId::new(id)?;
            let job = store
                .get_job(&id)
                .await?
                .with_context(|| format!("no job '{id}'"))?;
            let tasks = store.list_tasks(&id).await?;
            if args.json {
                let mut attempts = Vec::new();
                for t in &tasks {
                    attempts.extend(store.list_attempts(&id, &t.id).await?);
                }
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"job": job, "tasks": tasks, "attempts": attempts})
                    )?
                );
                return Ok(0);
            }
            println!(
                "job        {}\npipeline   {}\nstate      {}\ninput      {}",
                job.id,
                job.pipeline,
                job.state.as_str(),
                job.input
            );
            if let Some(r) = &job.reason {
                println!("reason     {r}");
            }
            if job.redrive_count > 0 {
                println!("redrives   {}", job.redrive_count);
            }
            if !job.state.is_final() {
                match sluice_local::driver::live_driver(&args.workdir, job.id.as_str()) {
                    Some(pid) => println!("driven by  sluice process {pid}"),
                    None => println!(
                        "driven by  no live process: continue it with `sluice redrive {} --workdir {}`",
                        job.id,
                        args.workdir.display()
                    ),
                }
            }
            println!(
                "logs       {}",
                args.workdir.join("logs").join(job.id.as_str()).display()
            );
            if let Some(a) = &job.execution_arn {
                println!("execution  {a}");
            }
            for r in &job.results {
                println!("result     {r}");
            }
            // Stages in the order their tasks were planned, with what their tasks did.
            let mut stages: Vec<(&str, usize, usize)> = Vec::new();
            for t in &tasks {
                let name = if t.stage.is_empty() {
                    "tasks"
                } else {
                    t.stage.as_str()
                };
                let done = usize::from(t.state == sluice_core::TaskState::Succeeded);
                match stages.iter_mut().find(|(n, _, _)| *n == name) {
                    Some(s) => {
                        s.1 += 1;
                        s.2 += done;
                    }
                    None => stages.push((name, 1, done)),
                }
            }
            for (name, n, done) in &stages {
                println!("stage      {name}: {done} of {n} tasks succeeded");
            }
            let width = tasks
                .iter()
                .map(|t| t.id.as_str().len())
                .max()
                .unwrap_or(4)
                .max(4);
            println!(
                "\n{:<width$} {:<10} {:>8} {:>5}  LAST ERROR",
                "TASK", "STATE", "ATTEMPTS", "SPOT"
            );
            for t in &tasks {
                println!(
                    "{:<width$} {:<10} {:>8} {:>5}  {}",
                    t.id.as_str(),
                    t.state.as_str(),
                    t.attempts,
                    t.spot_interruptions,
                    clip(t.last_error.as_deref().unwrap_or(""), 90)
                );
            }
        }
    }
    Ok(0)
}
