//! The `sluice` binary: a thin layer of argument parsing over the library crates.
//!
//! - `sluice run INPUT.csv`: one job on this machine, with progress.
//! - `sluice redrive JOB` / `sluice cancel JOB`: continue or stop a job.
//! - `sluice serve --watch DIR [--ui ADDR]`: CSVs dropped into DIR and schedules start jobs;
//!   with `--ui`, the web console too.
//! - `sluice ui`: the web console over a work directory (see docs/console.md).
//! - `sluice status [JOB]`: the job table.
//! - `sluice pipeline check FILE`: a pipeline file's problems, all at once.
//! - `sluice invoke FUNCTION --event FILE`: one handler on one event, like `sam local invoke`.
//! - `sluice asl ...`: the embedded States Language engine on its own (validate, run).

mod asl;
#[cfg(feature = "aws")]
mod aws;
mod follow;
mod invoke;
mod pipeline;
mod redrive;
mod run;
mod serve;
mod status;
mod ui;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Event-driven batch pipelines, on AWS or on one machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one job to completion on this machine.
    Run(run::RunArgs),
    /// Continue a job that failed, was cancelled, or whose process died.
    Redrive(redrive::RedriveArgs),
    /// Cancel a running job: stop its tasks, record it ABORTED, release its capacity.
    Cancel(redrive::CancelArgs),
    /// Watch a directory for CSVs and fire schedules, like the deployed pipeline.
    Serve(serve::ServeArgs),
    /// Serve the web console over a work directory (jobs run with `sluice run`).
    Ui(ui::UiArgs),
    /// Show jobs, or one job's tasks.
    Status(status::StatusArgs),
    /// Run one handler on one event file against the local runtime.
    Invoke(invoke::InvokeArgs),
    /// Pipeline files: check one before anything runs.
    #[command(subcommand)]
    Pipeline(pipeline::PipelineCommand),
    /// The embedded Amazon States Language engine.
    #[command(subcommand)]
    Asl(asl::AslCommand),
}

/// mimalloc instead of glibc's malloc: the runtime allocates and frees many small JSON values
/// and strings per task, and glibc's free lists (consolidation, trimming and the page faults
/// that follow) were a tenth of sluice's own time per task (docs/benchmarks/orchestration.md).
/// Built without its transparent-huge-page advice (`no_thp`): memory it freed and took back
/// came as fresh 2 MiB pages, each zeroed by the kernel, which cost 7% of sluice's time per
/// task; tasks keep the machine's huge-page settings (the alternative, `allow_thp=0`, turns
/// huge pages off for the process and so for every task it starts).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // `sluice status | head` closes the pipe early: end quietly like other Unix tools instead
    // of failing on the next write (Rust ignores SIGPIPE by default). A `sluice run` ended
    // this way leaves its job for `sluice redrive`, as any other kill does.
    // SAFETY: restoring the default disposition of one signal before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Redrive(args) => redrive::redrive(args).await,
            Command::Cancel(args) => redrive::cancel(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Ui(args) => ui::run(args).await,
            Command::Status(args) => status::run(args).await,
            Command::Invoke(args) => invoke::run(args).await,
            Command::Pipeline(cmd) => pipeline::run(cmd).await,
            Command::Asl(cmd) => asl::run(cmd).await,
        }
    });
    // The job table commits in short windows: what this process answered is committed before
    // it exits, so the next `sluice status` sees what this one printed.
    sluice_local::store::flush_all();
    sluice_local::compute::kill_running();
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
