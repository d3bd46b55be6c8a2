//! `sluice pipeline check FILE [--input CSV]`: every check `sluice run` makes before it creates
//! a job, for someone editing a pipeline file; with `--input`, the CSV's rows too.

use clap::{Args, Subcommand};
use sluice_core::pipeline::{RowSource, StageKind, Writes};
use sluice_core::plan::plan_rows;
use sluice_local::RuntimeOptions;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum PipelineCommand {
    /// Check a pipeline file (and optionally an input CSV) without running anything.
    Check(CheckArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    /// The pipeline file.
    pub file: PathBuf,
    /// A CSV to check against the pipeline's [input] schema.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Only the checks that hold on AWS too: skip looking for programs on this machine.
    #[arg(long)]
    pub aws: bool,
}

pub async fn run(cmd: PipelineCommand) -> anyhow::Result<u8> {
    let PipelineCommand::Check(args) = cmd;
    let loaded = if args.aws {
        let text = std::fs::read_to_string(&args.file)
            .map_err(|e| anyhow::anyhow!("{}: cannot read the file: {e}", args.file.display()))?;
        sluice_core::PipelineConfig::from_toml(&args.file.display().to_string(), &text)
    } else {
        let bin_dirs = RuntimeOptions::new(".").bin_dirs;
        sluice_local::pipelines::load(&args.file, &bin_dirs)
    };
    let cfg = match loaded {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{e}");
            return Ok(1);
        }
    };
    println!("{}: pipeline '{}' is valid", args.file.display(), cfg.name);
    for (i, stage) in cfg.stages.iter().enumerate() {
        let shape = match stage.kind() {
            StageKind::Single => "one task".to_string(),
            StageKind::Rows(RowSource::Input) => "one task per row of the input".into(),
            StageKind::Rows(RowSource::Stage(s)) => format!("one task per row of {s}'s output"),
            StageKind::Chunks(RowSource::Input, n) => format!("one task per {n} rows of the input"),
            StageKind::Chunks(RowSource::Stage(s), n) => {
                format!("one task per {n} rows of {s}'s output")
            }
            StageKind::Aggregate(_) => "built-in aggregate".into(),
        };
        let writes = match stage.writes() {
            Writes::File => format!("writes {}", stage.output_file()),
            Writes::Dir => "writes a directory".into(),
            Writes::Nothing => "writes nothing".into(),
        };
        println!("  stage {i} {}: {shape}; {writes}", stage.name);
    }
    for s in &cfg.schedule {
        println!("  schedule {}: {} on {}", s.name, s.expression, s.input);
    }
    if let Some(input) = &args.input {
        let bytes = std::fs::read(input)
            .map_err(|e| anyhow::anyhow!("{}: cannot read the file: {e}", input.display()))?;
        match plan_rows(&input.display().to_string(), &bytes, &cfg.input) {
            Ok(rows) => {
                println!(
                    "{}: {} rows, {} rejected",
                    input.display(),
                    rows.tasks.len(),
                    rows.rejects.len()
                );
                for r in rows.rejects.iter().take(20) {
                    println!("  rejected line {}: {}", r.line, r.reason);
                }
            }
            Err(e) => {
                eprintln!("{e}");
                return Ok(1);
            }
        }
    }
    Ok(0)
}
