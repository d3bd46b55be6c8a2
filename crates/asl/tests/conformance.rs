//! Conformance corpus runner.
//!
//! Every directory under `tests/conformance/` is one case, written from the States Language
//! spec and the Step Functions developer guide, and kept "pure ASL" (Pass/Choice/Wait/Map/
//! Parallel/Fail, or Tasks answered by a Step Functions Local mock config) so the same corpus
//! can be replayed on another executor for differential testing:
//!
//! - `definition.asl.json`: the state machine (its name is the directory name);
//! - `input.json`: the execution input;
//! - `mock-config.json` (optional): a Step Functions Local mock config; the test case is
//!   `expected.json`'s `testCase` (default `Default`);
//! - `expected.json`: `status`, and when present `output`, `error`, `cause`, `causeContains`,
//!   `events` (the history's event types in order).
//!
//! Cases run on a virtual clock. `SLUICE_BLESS=1` rewrites `expected.json` from the actual
//! result (review the diff before committing!).

use serde_json::{Map, Value, json};
use sluice_asl::mock::MockConfig;
use sluice_asl::{Engine, EngineConfig, MockTestCaseMocks, StateMachine, VirtualClock};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

async fn run_case(dir: &Path) -> Result<(), String> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("case")
        .to_string();
    let def =
        std::fs::read_to_string(dir.join("definition.asl.json")).map_err(|e| e.to_string())?;
    let machine = StateMachine::from_json(&def)
        .map_err(|d| format!("invalid definition: {d:?}"))?
        .named(name.clone());
    let input = read_json(&dir.join("input.json"));
    let expected_path = dir.join("expected.json");
    let expected = if expected_path.exists() {
        read_json(&expected_path)
    } else {
        json!({})
    };
    let mut config = EngineConfig {
        clock: Arc::new(VirtualClock::new()),
        ..EngineConfig::default()
    };
    let mock_path = dir.join("mock-config.json");
    if mock_path.exists() {
        let text = std::fs::read_to_string(&mock_path).map_err(|e| e.to_string())?;
        let cfg = MockConfig::from_json(&text).map_err(|e| e.to_string())?;
        let case = expected
            .get("testCase")
            .and_then(Value::as_str)
            .unwrap_or("Default");
        let mocks =
            MockTestCaseMocks::new(Arc::new(cfg), &name, case).map_err(|e| e.to_string())?;
        config.mocks = Some(Arc::new(mocks));
    }
    let engine = Engine::new(config);
    let handle = engine
        .start_execution(Arc::new(machine), Some("conformance".into()), input)
        .map_err(|e| e.to_string())?;
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(60), handle.wait())
        .await
        .map_err(|_| "the execution did not finish within 60 s".to_string())?;
    let events: Vec<Value> = handle
        .history()
        .iter()
        .map(|e| Value::String(e.event_type.clone()))
        .collect();
    let mut actual = Map::new();
    if let Some(tc) = expected.get("testCase") {
        actual.insert("testCase".into(), tc.clone());
    }
    actual.insert("status".into(), json!(outcome.status.as_str()));
    if let Some(o) = &outcome.output {
        actual.insert("output".into(), o.clone());
    }
    if let Some(e) = &outcome.error {
        actual.insert("error".into(), json!(e));
    }
    if let Some(c) = &outcome.cause {
        actual.insert("cause".into(), json!(c));
    }
    actual.insert("events".into(), Value::Array(events));
    if std::env::var_os("SLUICE_BLESS").is_some() {
        let mut blessed = actual.clone();
        if let Some(cc) = expected.get("causeContains") {
            blessed.remove("cause");
            blessed.insert("causeContains".into(), cc.clone());
        }
        let text = serde_json::to_string_pretty(&Value::Object(blessed)).unwrap_or_default();
        std::fs::write(&expected_path, text + "\n").map_err(|e| e.to_string())?;
        return Ok(());
    }
    let mut problems = Vec::new();
    for key in ["status", "output", "error", "cause", "events"] {
        let Some(want) = expected.get(key) else {
            continue;
        };
        let got = actual.get(key).cloned().unwrap_or(Value::Null);
        if *want != got {
            problems.push(format!("{key}: expected {want}, got {got}"));
        }
    }
    if expected.get("status").is_none() {
        problems.push("expected.json has no status".into());
    }
    if let Some(want) = expected.get("causeContains").and_then(Value::as_str) {
        let got = outcome.cause.clone().unwrap_or_default();
        if !got.contains(want) {
            problems.push(format!("cause {got:?} does not contain {want:?}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n    "))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_corpus() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("the conformance directory exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("definition.asl.json").exists())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 20, "the corpus has {} cases", dirs.len());
    let mut failures = Vec::new();
    for dir in &dirs {
        if let Err(e) = run_case(dir).await {
            failures.push(format!("{}:\n    {e}", dir.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} conformance cases failed:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}
