//! `sluice asl validate|run`: the embedded States Language engine from the command line.

use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum AslCommand {
    /// Validate definitions; print each problem with its location.
    Validate { files: Vec<PathBuf> },
}

pub async fn run(cmd: AslCommand) -> anyhow::Result<u8> {
    match cmd {
        AslCommand::Validate { files } => {
            anyhow::bail!("asl validate is not implemented yet ({} files)", files.len())
        }
    }
}
