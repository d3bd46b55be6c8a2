//! `sluice serve --watch DIR`: the event-driven pipeline on one machine.
//!
//! Every CSV that appears in DIR becomes an S3 "Object Created" event for the ingest handler
//! (the relative path is the object key, so `DIR/ber/today.csv` is key `ber/today.csv`; a CSV
//! at the top of DIR goes to the only `--pipeline` given). Schedules in the pipeline files fire
//! like EventBridge Scheduler, with the same "Scheduled Run" event the AWS schedule sends. Files
//! are copied, never moved or deleted: the input is kept whatever happens to the job.
//!
//! Restart-safe: a file already ingested (same path, same content) is never ingested again, by
//! this serve or a later one; a changed file is a new upload. On start, serve continues every
//! job of its work directory that is RUNNING with no live process driving it (a serve or a
//! `sluice run` that was killed). Ctrl-C stops serve at once and leaves its running jobs for the
//! next serve to continue. One serve per work directory.
//!
//! `--ui ADDR` also serves the web console (sluice-console) from this process: its uploads are
//! written into the watched folder and ingested here like any dropped file, and the jobs it
//! starts or redrives are followed here like the others.

use crate::run::load_pipeline;
use anyhow::Context;
use chrono::Utc;
use clap::Args;
use sluice_core::schedule::Expression;
use sluice_core::{JobState, PipelineConfig};
use sluice_local::Driver;
use sluice_local::inbox::{Ingested, fire_schedule, ingest_file};
use sluice_local::{LocalRuntime, RuntimeOptions};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Directory to watch for CSV files.
    #[arg(long)]
    pub watch: PathBuf,
    /// Pipeline files to serve (repeatable).
    #[arg(long = "pipeline")]
    pub pipelines: Vec<PathBuf>,
    #[arg(long, default_value = ".sluice")]
    pub workdir: PathBuf,
    /// Process the CSVs present now, wait for their jobs, then exit (for scripts and tests).
    #[arg(long)]
    pub once: bool,
    #[arg(long)]
    pub max_parallel: Option<u32>,
    /// Seconds between scans of the watched directory.
    #[arg(long, default_value_t = 1.0)]
    pub poll: f64,
    /// Multiply each pipeline's scale parameter (e.g. 0.01 for a quick BER demo), as
    /// `sluice run --scale` does.
    #[arg(long)]
    pub scale: Option<f64>,
    /// Also serve the web console on this address (`--ui` alone: 127.0.0.1:8080; see
    /// docs/console.md). Any address but loopback requires the token printed at start.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = sluice_console::DEFAULT_ADDR)]
    pub ui: Option<SocketAddr>,
    #[command(flatten)]
    pub console: crate::ui::ConsoleArgs,
}

struct ScheduleState {
    pipeline: String,
    name: String,
    input: PathBuf,
    expression: Expression,
    next: chrono::DateTime<Utc>,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<u8> {
    std::fs::create_dir_all(&args.watch)
        .with_context(|| format!("creating {}", args.watch.display()))?;
    let mut options = RuntimeOptions::new(&args.workdir);
    options.max_slots = args.max_parallel;
    let runtime = Arc::new(LocalRuntime::open(options)?);
    // One serve per work directory: two would ingest every file twice.
    let _serving = match sluice_local::driver::claim(&args.workdir.join("locks"), "serve") {
        Ok(c) => c,
        Err(sluice_local::RedriveError::DrivenElsewhere { pid, .. }) => anyhow::bail!(
            "another `sluice serve` (pid {pid}) already serves {}",
            args.workdir.display()
        ),
        Err(e) => return Err(e.into()),
    };
    let mut pipelines: Vec<PipelineConfig> = Vec::new();
    let mut schedules = Vec::new();
    let now = Utc::now();
    for path in &args.pipelines {
        let mut cfg = load_pipeline(path)?;
        if let Some(scale) = args.scale {
            cfg = cfg.scaled(scale).map_err(anyhow::Error::msg)?;
        }
        runtime.register_pipeline(&cfg)?;
        for s in &cfg.schedule {
            let expression = Expression::parse(&s.expression)
                .map_err(|e| anyhow::anyhow!("{}: schedule '{}': {e}", path.display(), s.name))?;
            let next = expression.next_after(now).context("schedule never fires")?;
            let base = cfg.directory.as_deref().map(Path::new);
            let input = base
                .unwrap_or_else(|| path.parent().unwrap_or(Path::new(".")))
                .join(&s.input);
            eprintln!("schedule {}/{} next fires at {next}", cfg.name, s.name);
            schedules.push(ScheduleState {
                pipeline: cfg.name.clone(),
                name: s.name.clone(),
                input,
                expression,
                next,
            });
        }
        pipelines.push(cfg);
    }
    let default_pipeline = (pipelines.len() == 1).then(|| pipelines[0].name.clone());
    eprintln!(
        "watching {} (work directory {})",
        args.watch.display(),
        args.workdir.display()
    );

    // The console: jobs it starts or redrives come back here to be followed like the others.
    let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
    if let Some(addr) = args.ui {
        let console =
            sluice_console::Console::new(runtime.clone(), &args.watch).on_started(started_tx);
        crate::ui::start(console, addr, &args.console).await?;
    }

    let mut seen: HashMap<PathBuf, (u64, SystemTime)> = HashMap::new();
    let mut pending: HashMap<PathBuf, (u64, SystemTime)> = HashMap::new();
    let mut running: HashSet<String> = HashSet::new();
    // Jobs a previous serve (or a killed `sluice run`) left RUNNING: continue them.
    for job in runtime
        .store
        .jobs_in(&[JobState::Submitted, JobState::Running])?
    {
        if job.execution_arn.is_none() || runtime.driver_of(&job.id) != Driver::Nobody {
            continue;
        }
        match runtime.redrive(&job.id).await {
            Ok(r) => {
                eprintln!(
                    "job {}: resumed (redrive {} from {})",
                    job.id,
                    r.redrive_count,
                    r.from_state.as_deref().unwrap_or("the start")
                );
                running.insert(job.id.to_string());
            }
            Err(e) => eprintln!("job {}: not resumed: {e}", job.id),
        }
    }
    let poll = Duration::from_secs_f64(args.poll.max(0.05));
    loop {
        // Jobs the console started (its uploads are in the watched folder: seen now) or
        // redrove.
        while let Ok(started) = started_rx.try_recv() {
            if let sluice_console::StartedBy::Upload(file) = &started.how
                && let Ok(meta) = std::fs::metadata(file)
            {
                seen.insert(
                    file.clone(),
                    (
                        meta.len(),
                        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    ),
                );
            }
            eprintln!("job {}: {} in the console", started.job, started.how);
            running.insert(started.job.to_string());
        }
        // A file is ingested once its size and mtime held still for one poll (fully written).
        for (path, meta) in scan(&args.watch) {
            if seen.get(&path) == Some(&meta) {
                continue;
            }
            if pending.get(&path) == Some(&meta) || args.once {
                pending.remove(&path);
                seen.insert(path.clone(), meta);
                let rel = path
                    .strip_prefix(&args.watch)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                let key = match (&default_pipeline, rel.contains('/')) {
                    (Some(p), false) => format!("{p}/{rel}"),
                    _ => rel.clone(),
                };
                match ingest_file(&runtime, &path, &rel, &key).await {
                    Ok(Ingested::AlreadyIngested(job)) => eprintln!(
                        "{rel}: already ingested as job {job} (same content); not ingested again"
                    ),
                    Ok(Ingested::Delivered(result)) => {
                        eprintln!(
                            "{rel}: job {} {}{}",
                            result["jobId"].as_str().unwrap_or("?"),
                            result["status"].as_str().unwrap_or("?"),
                            result
                                .get("reason")
                                .and_then(|r| r.as_str())
                                .map(|r| format!(" ({r})"))
                                .unwrap_or_default()
                        );
                        if result["status"] == "started"
                            && let Some(id) = result["jobId"].as_str()
                        {
                            running.insert(id.to_string());
                        }
                    }
                    Err(e) => eprintln!("{rel}: {e:#}"),
                }
            } else {
                pending.insert(path, meta);
            }
        }
        let now = Utc::now();
        for s in schedules.iter_mut().filter(|s| s.next <= now) {
            let fired_at = s.next;
            s.next = s
                .expression
                .next_after(now)
                .unwrap_or(now + chrono::Duration::days(36500));
            match fire_schedule(&runtime, &s.pipeline, &s.name, &s.input, fired_at).await {
                Ok(result) => {
                    eprintln!(
                        "schedule {}/{}: job {} {}",
                        s.pipeline,
                        s.name,
                        result["jobId"].as_str().unwrap_or("?"),
                        result["status"].as_str().unwrap_or("?")
                    );
                    if let Some(id) = result["jobId"].as_str() {
                        running.insert(id.to_string());
                    }
                }
                Err(e) => eprintln!("schedule {}/{}: {e:#}", s.pipeline, s.name),
            }
        }
        // Report jobs as they finish.
        let mut finished = Vec::new();
        for id in &running {
            if let Ok(job_id) = sluice_core::JobId::new(id.clone())
                && let Ok(Some(job)) = runtime.services.jobs.get_job(&job_id).await
                && let Some(arn) = job.execution_arn.clone()
                && runtime.settled(&arn).is_some()
            {
                // Read again: it may have settled after the first read.
                let job = runtime.services.jobs.get_job(&job_id).await?.unwrap_or(job);
                eprintln!(
                    "job {id}: {} {}",
                    job.state.as_str(),
                    job.reason.as_deref().unwrap_or("")
                );
                runtime.forget(&arn);
                finished.push(id.clone());
            }
        }
        for id in finished {
            running.remove(&id);
        }
        if args.once && running.is_empty() {
            return Ok(0);
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = tokio::signal::ctrl_c() => {
                if !running.is_empty() {
                    eprintln!(
                        "stopping; {} running job(s) stay RUNNING: the next `sluice serve` on {} resumes them (or `sluice redrive JOB`)",
                        running.len(),
                        args.workdir.display()
                    );
                }
                return Ok(0);
            }
        }
    }
}

fn scan(dir: &Path) -> Vec<(PathBuf, (u64, SystemTime))> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if meta.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
            {
                out.push((
                    path,
                    (
                        meta.len(),
                        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    ),
                ));
            }
        }
    }
    out.sort();
    out
}
