//! `sluice asl validate|run`: the embedded States Language engine from the command line.
//!
//! - `validate FILE...` checks definitions the way CreateStateMachine does and prints each
//!   problem as `FILE: /location: message` (exit 0 when all are valid, 1 otherwise).
//! - `run FILE` executes a definition on the embedded engine and prints ONE JSON object:
//!   `{"status", "output"?, "error"?, "cause"?, "history"?}`. The exit code is 0 whatever the
//!   execution status (a FAILED execution is a result, not a CLI error); 2 means the definition
//!   or the arguments are invalid. Task states are served by a Step Functions Local mock config
//!   (`--mock-config F --test-case NAME`); a Task with neither a mock nor a host resource fails
//!   the execution with a `States.Runtime` error naming the resource.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};
use sluice_asl::mock::MockConfig;
use sluice_asl::{
    Clock, Engine, EngineConfig, MockTestCaseMocks, RealClock, StateMachine, VirtualClock,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Subcommand)]
pub enum AslCommand {
    /// Validate definitions; print each problem with its location.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a definition on the embedded engine and print the outcome as JSON.
    Run(RunArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// The state machine definition (ASL JSON).
    pub file: PathBuf,
    /// Execution input as JSON text (default `{}`).
    #[arg(long, conflicts_with = "input_file")]
    pub input: Option<String>,
    /// Read the execution input from a file.
    #[arg(long)]
    pub input_file: Option<PathBuf>,
    /// Step Functions Local mock configuration (JSON).
    #[arg(long, requires = "test_case")]
    pub mock_config: Option<PathBuf>,
    /// The test case of the mock configuration to use.
    #[arg(long, requires = "mock_config")]
    pub test_case: Option<String>,
    /// State machine name (for ARNs and mock lookups); defaults to the file stem.
    #[arg(long)]
    pub state_machine_name: Option<String>,
    /// Include the execution history (GetExecutionHistory events) as `"history": [...]`.
    #[arg(long)]
    pub history: bool,
    /// Use a virtual clock: Wait states, retries and timeouts complete instantly.
    #[arg(long)]
    pub virtual_clock: bool,
    /// Serve S3 for a Distributed Map's ItemReader and ResultWriter from directory buckets:
    /// `s3://B/K` is the file `DIR/B/K` (the local runtime's layout).
    #[arg(long)]
    pub bucket_dir: Option<PathBuf>,
}

/// Runs a `sluice asl` command; returns the process exit code.
pub async fn run(cmd: AslCommand) -> anyhow::Result<u8> {
    match cmd {
        AslCommand::Validate { files } => Ok(validate(&files)),
        AslCommand::Run(args) => run_file(args).await,
    }
}

fn validate(files: &[PathBuf]) -> u8 {
    let mut ok = true;
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                println!("{}: /: cannot read the file: {e}", file.display());
                ok = false;
                continue;
            }
        };
        if let Err(problems) = sluice_asl::validate::validate_str(&text) {
            ok = false;
            for p in problems {
                println!("{}: {p}", file.display());
            }
        }
    }
    if ok { 0 } else { 1 }
}

/// `pipeline.asl.json` → `pipeline`.
fn machine_name(file: &Path) -> String {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("StateMachine");
    let stem = name
        .strip_suffix(".asl.json")
        .or_else(|| name.strip_suffix(".json"))
        .or_else(|| name.strip_suffix(".asl"))
        .unwrap_or(name);
    if stem.is_empty() {
        "StateMachine".into()
    } else {
        stem.to_string()
    }
}

/// Why `run` could not execute: the lines to print on stderr (exit code 2).
#[derive(Debug)]
struct Invalid(Vec<String>);

fn invalid(message: String) -> Invalid {
    Invalid(vec![format!("error: {message}")])
}

async fn run_file(args: RunArgs) -> anyhow::Result<u8> {
    match execute(&args).await? {
        Ok(result) => {
            println!("{result}");
            Ok(0)
        }
        Err(Invalid(lines)) => {
            for l in lines {
                eprintln!("{l}");
            }
            Ok(2)
        }
    }
}

/// Runs the definition; the outer error is an engine failure, the inner one bad input.
async fn execute(args: &RunArgs) -> anyhow::Result<Result<Value, Invalid>> {
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => {
            return Ok(Err(invalid(format!(
                "cannot read {}: {e}",
                args.file.display()
            ))));
        }
    };
    let name = args
        .state_machine_name
        .clone()
        .unwrap_or_else(|| machine_name(&args.file));
    let machine = match StateMachine::from_json(&text) {
        Ok(m) => m.named(name.clone()),
        Err(problems) => {
            let file = args.file.display();
            return Ok(Err(Invalid(
                problems.iter().map(|p| format!("{file}: {p}")).collect(),
            )));
        }
    };
    let input_text = match (&args.input, &args.input_file) {
        (Some(t), _) => t.clone(),
        (None, Some(f)) => match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => return Ok(Err(invalid(format!("cannot read {}: {e}", f.display())))),
        },
        (None, None) => "{}".into(),
    };
    let input: Value = match serde_json::from_str(&input_text) {
        Ok(v) => v,
        Err(e) => return Ok(Err(invalid(format!("the input is not valid JSON: {e}")))),
    };
    let clock: Arc<dyn Clock> = if args.virtual_clock {
        Arc::new(VirtualClock::new())
    } else {
        Arc::new(RealClock)
    };
    let mut config = EngineConfig {
        clock,
        // Only `--history` reads the events: without it none are kept or even built.
        keep_history: args.history,
        ..EngineConfig::default()
    };
    if let Some(dir) = &args.bucket_dir {
        config.resources = std::mem::take(&mut config.resources)
            .with_object_store(Arc::new(sluice_local::bucket::DirObjectStore::new(dir)));
    }
    if let (Some(path), Some(case)) = (&args.mock_config, &args.test_case) {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return Ok(Err(invalid(format!("cannot read {}: {e}", path.display())))),
        };
        let mock = match MockConfig::from_json(&text) {
            Ok(m) => m,
            Err(e) => return Ok(Err(invalid(format!("{}: {e}", path.display())))),
        };
        match MockTestCaseMocks::new(Arc::new(mock), &name, case) {
            Ok(m) => config.mocks = Some(Arc::new(m)),
            Err(e) => return Ok(Err(invalid(format!("{}: {e}", path.display())))),
        }
    }
    let engine = Engine::new(config);
    let handle = engine
        .start_execution(Arc::new(machine), None, input)
        .context("cannot start the execution")?;
    let outcome = handle.wait().await;
    let mut out = Map::new();
    out.insert("status".into(), json!(outcome.status.as_str()));
    if let Some(o) = outcome.output {
        out.insert("output".into(), o);
    }
    if let Some(e) = outcome.error {
        out.insert("error".into(), json!(e));
    }
    if let Some(c) = outcome.cause {
        out.insert("cause".into(), json!(c));
    }
    if args.history {
        let events: Vec<Value> = handle.history().iter().map(|e| e.to_json()).collect();
        out.insert("history".into(), Value::Array(events));
    }
    Ok(Ok(Value::Object(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dir: &Path, def: &str) -> RunArgs {
        let file = dir.join("flow.asl.json");
        std::fs::write(&file, def).expect("write definition");
        RunArgs {
            file,
            input: None,
            input_file: None,
            mock_config: None,
            test_case: None,
            state_machine_name: None,
            history: false,
            virtual_clock: true,
            bucket_dir: None,
        }
    }

    #[tokio::test]
    async fn bucket_dir_serves_a_distributed_map_item_reader() {
        let dir = tempfile::tempdir().expect("tempdir");
        let items = dir.path().join("buckets/in/items.csv");
        std::fs::create_dir_all(items.parent().expect("parent")).expect("mkdir");
        std::fs::write(&items, "n\n1\n2\n3\n").expect("write items");
        let mut a = args(
            dir.path(),
            r#"{"StartAt":"M","States":{"M":{"Type":"Map","End":true,
              "ItemReader":{"Resource":"arn:aws:states:::s3:getObject",
                "ReaderConfig":{"InputType":"CSV","CSVHeaderLocation":"FIRST_ROW"},
                "Parameters":{"Bucket":"in","Key":"items.csv"}},
              "ItemProcessor":{"ProcessorConfig":{"Mode":"DISTRIBUTED","ExecutionType":"EXPRESS"},
                "StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}}}}"#,
        );
        a.bucket_dir = Some(dir.path().join("buckets"));
        let out = execute(&a).await.expect("run").expect("valid");
        assert_eq!(out["status"], "SUCCEEDED", "{out}");
        assert_eq!(out["output"], json!([{"n": "1"}, {"n": "2"}, {"n": "3"}]));
    }

    #[tokio::test]
    async fn run_prints_status_output_and_history() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut a = args(
            dir.path(),
            r#"{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":600,"Next":"P"},
               "P":{"Type":"Pass","Parameters":{"n.$":"$$.StateMachine.Name","x.$":"$.x"},"End":true}}}"#,
        );
        a.input = Some(r#"{"x": 7}"#.into());
        a.history = true;
        let out = execute(&a).await.expect("runs").expect("valid");
        assert_eq!(out["status"], "SUCCEEDED");
        assert_eq!(out["output"], json!({"n": "flow", "x": 7}));
        assert!(out.get("error").is_none());
        let types: Vec<&str> = out["history"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["type"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(
            types,
            [
                "ExecutionStarted",
                "WaitStateEntered",
                "WaitStateExited",
                "PassStateEntered",
                "PassStateExited",
                "ExecutionSucceeded"
            ]
        );
    }

    #[tokio::test]
    async fn run_with_mocks_and_unmocked_tasks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let def = r#"{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke",
            "Parameters":{"FunctionName":"f"},"OutputPath":"$.Payload","End":true}}}"#;
        let mock = dir.path().join("mock.json");
        std::fs::write(
            &mock,
            r#"{"StateMachines":{"flow":{"TestCases":{"Happy":{"T":"R"}}}},
                "MockedResponses":{"R":{"0":{"Return":{"StatusCode":200,"Payload":{"ok":1}}}}}}"#,
        )
        .expect("write mock");
        let mut a = args(dir.path(), def);
        a.mock_config = Some(mock.clone());
        a.test_case = Some("Happy".into());
        let out = execute(&a).await.expect("runs").expect("valid");
        assert_eq!(out, json!({"status": "SUCCEEDED", "output": {"ok": 1}}));
        // Without the mock the task has no resource: a clear failure naming it.
        let plain = args(dir.path(), def);
        let out = execute(&plain).await.expect("runs").expect("valid");
        assert_eq!(out["status"], "FAILED");
        assert_eq!(out["error"], "States.Runtime");
        assert!(
            out["cause"]
                .as_str()
                .unwrap_or("")
                .contains("arn:aws:states:::lambda:invoke")
        );
        // An unknown test case is an argument error.
        a.test_case = Some("Nope".into());
        assert!(execute(&a).await.expect("runs").is_err());
    }

    #[tokio::test]
    async fn run_rejects_invalid_definitions_and_input() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = args(
            dir.path(),
            r#"{"StartAt":"Missing","States":{"X":{"Type":"Succeed"}}}"#,
        );
        let Err(Invalid(lines)) = execute(&a).await.expect("runs") else {
            panic!("an invalid definition must be rejected");
        };
        assert!(
            lines.iter().all(|l| l.contains("flow.asl.json: /")),
            "{lines:?}"
        );
        let mut b = args(
            dir.path(),
            r#"{"StartAt":"X","States":{"X":{"Type":"Succeed"}}}"#,
        );
        b.input = Some("{nope".into());
        assert!(execute(&b).await.expect("runs").is_err());
    }

    #[test]
    fn validate_exit_codes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("good.asl.json");
        let bad = dir.path().join("bad.asl.json");
        std::fs::write(
            &good,
            r#"{"StartAt":"X","States":{"X":{"Type":"Succeed"}}}"#,
        )
        .expect("write");
        std::fs::write(&bad, r#"{"StartAt":"X","States":{"X":{"Type":"Pass"}}}"#).expect("write");
        assert_eq!(validate(std::slice::from_ref(&good)), 0);
        assert_eq!(validate(&[good, bad]), 1);
    }

    #[test]
    fn machine_name_from_file_stem() {
        assert_eq!(machine_name(Path::new("x/pipeline.asl.json")), "pipeline");
        assert_eq!(machine_name(Path::new("flow.json")), "flow");
        assert_eq!(machine_name(Path::new("plain")), "plain");
    }
}
