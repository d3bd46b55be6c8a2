//! `sluice ui` and `sluice serve --ui ADDR`: the web console (sluice-console) in this process.
//!
//! `sluice ui` serves the console over a work directory without watching a folder: for jobs
//! that ran with `sluice run`. It can show them, cancel them (whichever process runs them) and
//! redrive them; a redriven or started job then runs in this process, like `sluice redrive`
//! would run it, until it ends — stopping `sluice ui` leaves such a job RUNNING for
//! `sluice redrive`. Starting a job needs a pipeline: every pipeline registered in the work
//! directory (by an earlier `sluice run`) can be started, and `--pipeline FILE` registers one
//! (again); uploads are kept in `<workdir>/uploads/<pipeline>/`.

use crate::run::load_pipeline;
use anyhow::Context;
use clap::Args;
use sluice_console::{Console, ConsoleOptions, DEFAULT_UPLOAD_LIMIT, Started};
use sluice_core::JobId;
use sluice_local::{LocalRuntime, RuntimeOptions};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Options of the console, for `sluice ui` and `sluice serve --ui`.
#[derive(Args, Debug, Clone)]
pub struct ConsoleArgs {
    /// Largest CSV the console accepts, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_UPLOAD_LIMIT / (1024 * 1024))]
    pub upload_limit: usize,
}

#[derive(Args, Debug)]
pub struct UiArgs {
    #[arg(long, default_value = ".sluice")]
    pub workdir: PathBuf,
    /// Where to serve the console. Any address but loopback requires the token printed at
    /// start.
    #[arg(long, default_value = sluice_console::DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// Pipeline files to offer for new jobs (repeatable); pipelines an earlier `sluice run`
    /// registered in the work directory are offered too.
    #[arg(long = "pipeline")]
    pub pipelines: Vec<PathBuf>,
    /// Multiply the scale parameter of the `--pipeline` files (e.g. 0.01).
    #[arg(long)]
    pub scale: Option<f64>,
    /// Most task processes at once for jobs run here (default: number of CPUs).
    #[arg(long)]
    pub max_parallel: Option<u32>,
    #[command(flatten)]
    pub console: ConsoleArgs,
}

/// Binds the console, says where it is, and serves it until the process ends.
pub async fn start(console: Console, addr: SocketAddr, args: &ConsoleArgs) -> anyhow::Result<()> {
    let mut options = ConsoleOptions::new(addr);
    options.upload_limit = args
        .upload_limit
        .checked_mul(1024 * 1024)
        .context("--upload-limit is too large")?;
    let bound = console.bind(options).await?;
    eprintln!("console: {}", bound.url());
    if bound.token.is_some() {
        eprintln!(
            "console: bound to {} (not loopback): every request needs the token above (open that address once, or send Authorization: Bearer TOKEN)",
            bound.addr
        );
    }
    tokio::spawn(async move {
        if let Err(e) = bound.serve(std::future::pending()).await {
            eprintln!("error: the console stopped: {e}");
        }
    });
    Ok(())
}

pub async fn run(args: UiArgs) -> anyhow::Result<u8> {
    if !args.workdir.join("sluice.db").is_file() && args.pipelines.is_empty() {
        anyhow::bail!(
            "no job table at {} (pass the --workdir your jobs ran in, or --pipeline FILE to start jobs from the console)",
            args.workdir.join("sluice.db").display()
        );
    }
    let mut options = RuntimeOptions::new(&args.workdir);
    options.max_slots = args.max_parallel;
    let runtime = Arc::new(LocalRuntime::open(options)?);
    for path in &args.pipelines {
        let mut cfg = load_pipeline(path)?;
        if let Some(scale) = args.scale {
            cfg = cfg.scaled(scale).map_err(anyhow::Error::msg)?;
        }
        runtime.register_pipeline(&cfg)?;
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Started>();
    let console = Console::new(runtime.clone(), runtime.workdir.join("uploads")).on_started(tx);
    start(console, args.addr, &args.console).await?;
    eprintln!(
        "serving the jobs of {} (Ctrl-C to stop)",
        runtime.workdir.display()
    );
    // Follow the jobs the console starts or redrives here: report their end and let go of them.
    let mut running: HashSet<JobId> = HashSet::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            Some(s) = rx.recv() => {
                eprintln!("job {}: {} in the console", s.job, s.how);
                running.insert(s.job);
            }
            _ = tokio::signal::ctrl_c() => {
                let left: Vec<String> = running.iter().map(|j| j.to_string()).collect();
                if !left.is_empty() {
                    eprintln!(
                        "stopping; job(s) {} stay RUNNING: continue them with `sluice redrive JOB --workdir {}`",
                        left.join(", "),
                        args.workdir.display()
                    );
                }
                return Ok(0);
            }
        }
        let mut done = Vec::new();
        for id in &running {
            if let Ok(Some(job)) = runtime.services.jobs.get_job(id).await
                && let Some(arn) = job.execution_arn.clone()
                && runtime.settled(&arn).is_some()
            {
                let job = runtime.services.jobs.get_job(id).await?.unwrap_or(job);
                eprintln!(
                    "job {id}: {} {}",
                    job.state.as_str(),
                    job.reason.as_deref().unwrap_or("")
                );
                runtime.forget(&arn);
                done.push(id.clone());
            }
        }
        for id in done {
            running.remove(&id);
        }
    }
}
