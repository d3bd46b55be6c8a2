//! `ber-sim`: runs one BER task (one Eb/N0 point, one seed) and writes its JSON
//! result. This is the container/process entry point the pipeline launches;
//! the simulation itself lives in the `ber_sim` library.
//!
//! Exit codes: 0 success, 1 runtime failure (e.g. cannot write the output),
//! 2 bad arguments (from clap), 143 terminated by SIGTERM (the pipeline's
//! Spot-interruption drill), 130 interrupted by SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use ber_sim::{Kernel, Params, TaskResult, output, sim};
use clap::Parser;

/// Monte Carlo bit error rate of BPSK over AWGN with hard decisions.
///
/// Simulates FRAMES × BITS_PER_FRAME bits at the given Eb/N0 and writes
/// {"ebn0_db", "seed", "bits", "errors", "ber", "elapsed_s", ...} as JSON.
/// The counts depend only on (ebn0-db, seed, frames, bits-per-frame): not on
/// threads, kernel or machine. Every flag can also be given by the environment
/// variable shown.
#[derive(Parser, Debug)]
#[command(name = "ber-sim", version)]
struct Cli {
    /// Eb/N0 in dB (finite, within [-30, 30]).
    #[arg(long, env = "SLUICE_EBN0_DB", allow_negative_numbers = true, value_parser = parse_ebn0_db)]
    ebn0_db: f64,

    /// Task seed; the pipeline passes the task index.
    #[arg(long, env = "SLUICE_SEED")]
    seed: u64,

    /// Number of frames (unit of seeding and of parallelism).
    #[arg(long, env = "SLUICE_FRAMES", default_value_t = 4096,
          value_parser = clap::value_parser!(u64).range(1..))]
    frames: u64,

    /// Bits per frame.
    #[arg(long, env = "SLUICE_BITS_PER_FRAME", default_value_t = 300_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    bits_per_frame: u64,

    /// Where to write the JSON result ("-" for stdout). Written atomically;
    /// missing parent directories are created.
    #[arg(long, env = "SLUICE_OUTPUT")]
    output: PathBuf,

    /// Pipeline task id, copied into the result.
    #[arg(long, env = "SLUICE_TASK_ID")]
    task_id: Option<String>,

    /// Worker threads [default: number of available CPUs].
    #[arg(long, env = "SLUICE_THREADS",
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: Option<u64>,

    /// SIMD kernel: auto, portable, avx2 or avx512 (for benchmarking; the
    /// result does not depend on it).
    #[arg(long, env = "SLUICE_KERNEL", default_value = "auto")]
    kernel: String,
}

fn parse_ebn0_db(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of dB"))?;
    if !v.is_finite() || !sim::EBN0_DB_RANGE.contains(&v) {
        return Err(format!(
            "{s} dB is outside [{}, {}]",
            sim::EBN0_DB_RANGE.start(),
            sim::EBN0_DB_RANGE.end()
        ));
    }
    Ok(v)
}

/// Which signal stopped us, if any.
struct Signals {
    term: Arc<AtomicBool>,
    int: Arc<AtomicBool>,
    /// Raised by either signal; this is what the workers poll.
    any: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        use signal_hook::flag;
        let s = Signals {
            term: Arc::new(AtomicBool::new(false)),
            int: Arc::new(AtomicBool::new(false)),
            any: Arc::new(AtomicBool::new(false)),
        };
        // A second signal while we are already stopping exits immediately
        // (registered first so it sees the flag as it was before this signal).
        flag::register_conditional_shutdown(SIGTERM, 143, Arc::clone(&s.any))
            .context("installing SIGTERM handler")?;
        flag::register_conditional_shutdown(SIGINT, 130, Arc::clone(&s.any))
            .context("installing SIGINT handler")?;
        for (sig, which) in [(SIGTERM, &s.term), (SIGINT, &s.int)] {
            flag::register(sig, Arc::clone(which)).context("installing signal handler")?;
            flag::register(sig, Arc::clone(&s.any)).context("installing signal handler")?;
        }
        Ok(s)
    }

    fn exit_code(&self) -> Option<u8> {
        if self.term.load(Ordering::SeqCst) {
            Some(143)
        } else if self.int.load(Ordering::SeqCst) {
            Some(130)
        } else {
            None
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ber-sim: error: {e:#}");
            return ExitCode::from(1);
        }
    };
    match run(cli, &signals) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(code) = signals.exit_code() {
                eprintln!("ber-sim: terminated by signal, no result written");
                return ExitCode::from(code);
            }
            eprintln!("ber-sim: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli, signals: &Signals) -> anyhow::Result<()> {
    let params = Params {
        ebn0_db: cli.ebn0_db,
        seed: cli.seed,
        frames: cli.frames,
        bits_per_frame: cli.bits_per_frame,
    };
    params.validate()?;
    let kernel = match cli.kernel.as_str() {
        "auto" => Kernel::best(),
        name => match Kernel::by_name(name) {
            Some(k) => k,
            None => bail!(
                "kernel `{name}` is unknown or not supported by this CPU (available: auto, {})",
                Kernel::available()
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    };
    let threads = match cli.threads {
        Some(t) => usize::try_from(t).unwrap_or(1),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let to_stdout = cli.output.as_os_str() == "-";
    if !to_stdout {
        // Fail before minutes of compute, not after.
        if let Some(dir) = cli.output.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating output directory {}", dir.display()))?;
        }
    }

    let start = Instant::now();
    let outcome = sim::simulate(&params, threads, kernel, &signals.any)?;
    let elapsed_s = start.elapsed().as_secs_f64();
    let threads_used = threads.clamp(1, usize::try_from(params.frames).unwrap_or(usize::MAX));
    let result = TaskResult {
        ebn0_db: params.ebn0_db,
        seed: params.seed,
        bits: outcome.bits,
        errors: outcome.errors,
        ber: outcome.errors as f64 / outcome.bits as f64,
        ber_theory: ber_sim::theory::bpsk_awgn_ber(params.ebn0_db),
        elapsed_s,
        task_id: cli.task_id,
        frames: params.frames,
        bits_per_frame: params.bits_per_frame,
        threads: threads_used,
        kernel: kernel.name().to_string(),
        bits_per_s: outcome.bits as f64 / elapsed_s.max(1e-9),
    };
    if signals.any.load(Ordering::SeqCst) {
        bail!("terminated");
    }
    let json = output::to_json(&result);
    if to_stdout {
        print!("{json}");
    } else {
        output::write_atomic(&cli.output, json.as_bytes())
            .with_context(|| format!("writing result to {}", cli.output.display()))?;
    }
    eprintln!(
        "ber-sim: {} dB seed {}: {} errors in {} bits (BER {:.4e}) in {:.3} s, {:.3e} bits/s, {} thread(s), {} kernel",
        result.ebn0_db,
        result.seed,
        result.errors,
        result.bits,
        result.ber,
        result.elapsed_s,
        result.bits_per_s,
        result.threads,
        result.kernel
    );
    Ok(())
}
