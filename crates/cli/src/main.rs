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

impl Command {
    /// How many tasks the command may run at once on this machine: `Some(--max-parallel)` for
    /// the commands that run tasks, `None` for those that do not.
    fn slots(&self) -> Option<Option<u32>> {
        match self {
            Command::Run(a) => Some(a.max_parallel),
            Command::Redrive(a) => Some(a.max_parallel),
            Command::Serve(a) => Some(a.max_parallel),
            Command::Ui(a) => Some(a.max_parallel),
            Command::Cancel(_)
            | Command::Status(_)
            | Command::Invoke(_)
            | Command::Pipeline(_)
            | Command::Asl(_) => None,
        }
    }
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
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    // TOKIO_WORKER_THREADS, when set, is tokio's to read.
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(orchestration_threads(cli.command.slots()));
    }
    let runtime = match builder.build() {
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

/// How many threads run sluice's own work (the engine, the handlers, the job table's keyed
/// requests; the process pool has a thread of its own): the cores the task slots leave free,
/// at least one. Where the tasks fill the cores, more threads only hand work to each other and
/// take cores from the tasks: on 2 cores with 2 slots, one thread instead of two ran 10,000
/// no-op tasks with 10-18% less of sluice's CPU and in about 10% less time
/// (docs/benchmarks/orchestration.md). `slots`:
/// how many tasks this command may run at once here, if it runs any (`--max-parallel`, else
/// one per core).
fn orchestration_threads(slots: Option<Option<u32>>) -> usize {
    threads_beside_tasks(
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        slots,
    )
}

fn threads_beside_tasks(cores: usize, slots: Option<Option<u32>>) -> usize {
    match slots {
        Some(slots) => {
            let slots = slots.map_or(cores, |s| s as usize);
            cores.saturating_sub(slots).max(1)
        }
        None => cores,
    }
}

#[cfg(test)]
mod tests {
    use super::threads_beside_tasks;

    #[test]
    fn sluice_takes_the_cores_the_task_slots_leave_and_at_least_one() {
        for (cores, slots, threads) in [
            (2, Some(Some(2)), 1),
            (2, Some(Some(8)), 1),
            (8, Some(Some(2)), 6),
            (8, Some(None), 1),
            (1, Some(None), 1),
            (4, None, 4),
        ] {
            assert_eq!(
                threads_beside_tasks(cores, slots),
                threads,
                "{cores} cores, slots {slots:?}"
            );
        }
    }
}
