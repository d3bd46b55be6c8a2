//! `sluice invoke FUNCTION --event FILE`: one handler on one event against the local runtime,
//! like `sam local invoke`. Prints the handler's result, or its error, as JSON.

use anyhow::Context;
use clap::Args;
use sluice_local::{LocalRuntime, RuntimeOptions};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct InvokeArgs {
    /// ingest, plan, scale, launch, task-events, aggregate or finish.
    pub function: String,
    /// The event (or payload) JSON file; `-` for stdin.
    #[arg(long)]
    pub event: PathBuf,
    #[arg(long, default_value = ".sluice")]
    pub workdir: PathBuf,
}

pub async fn run(args: InvokeArgs) -> anyhow::Result<u8> {
    let text = if args.event.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the event from stdin")?
    } else {
        std::fs::read_to_string(&args.event)
            .with_context(|| format!("reading event {}", args.event.display()))?
    };
    let payload: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not JSON", args.event.display()))?;
    let runtime = LocalRuntime::open(RuntimeOptions::new(&args.workdir))?;
    match runtime.invoke(&args.function, payload).await {
        Ok(result) => {
            println!("{}", serde_json::to_string_pretty(&result)?);
            Ok(0)
        }
        Err(e) => {
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"errorType": e.name.as_str(), "errorMessage": e.cause})
                )?
            );
            Ok(1)
        }
    }
}
