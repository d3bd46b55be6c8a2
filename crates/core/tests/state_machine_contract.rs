//! The contract between the handlers' typed errors and the state machine: every `Sluice.*` name
//! a Retry or Catch of `statemachines/*.asl.json` matches is an [`ErrorName`] (a typo there
//! would silently never match), and the fan-out's RunTask retries exactly the names
//! [`ErrorName::is_retried`] says it does.

use serde_json::Value;
use sluice_core::ErrorName;
use std::collections::BTreeSet;

fn machines() -> Vec<(String, Value)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../statemachines");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("statemachines/") {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".asl.json") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((
                path.display().to_string(),
                serde_json::from_str(&text).unwrap(),
            ));
        }
    }
    assert!(!out.is_empty(), "no state machines found in {dir}");
    out
}

/// Every (state name, "Retry"|"Catch", error name) in the definition, nested ones included.
fn error_matches(states: &Value, out: &mut Vec<(String, &'static str, String)>) {
    let Some(states) = states.as_object() else {
        return;
    };
    for (name, state) in states {
        for field in ["Retry", "Catch"] {
            for rule in state[field].as_array().into_iter().flatten() {
                for e in rule["ErrorEquals"].as_array().into_iter().flatten() {
                    out.push((name.clone(), field, e.as_str().unwrap().to_string()));
                }
            }
        }
        if let Some(inner) = state.get("ItemProcessor").or(state.get("Iterator")) {
            error_matches(&inner["States"], out);
        }
        for branch in state["Branches"].as_array().into_iter().flatten() {
            error_matches(&branch["States"], out);
        }
    }
}

#[test]
fn every_sluice_error_in_the_state_machines_is_an_error_name() {
    for (file, machine) in machines() {
        let mut found = Vec::new();
        error_matches(&machine["States"], &mut found);
        assert!(!found.is_empty(), "{file}: no Retry/Catch found");
        for (state, field, name) in &found {
            if name.starts_with("Sluice.") {
                assert!(
                    ErrorName::parse(name).is_some(),
                    "{file}: {state}.{field} matches '{name}', which no handler raises"
                );
            }
        }
    }
}

#[test]
fn run_task_retries_exactly_the_retried_error_names() {
    let (file, machine) = machines()
        .into_iter()
        .find(|(f, _)| f.ends_with("pipeline.asl.json"))
        .expect("pipeline.asl.json");
    let mut found = Vec::new();
    error_matches(&machine["States"], &mut found);
    let retried: BTreeSet<&str> = found
        .iter()
        .filter(|(state, field, name)| {
            state == "RunTask" && *field == "Retry" && name.starts_with("Sluice.")
        })
        .map(|(_, _, name)| name.as_str())
        .collect();
    let want: BTreeSet<&str> = ErrorName::ALL
        .into_iter()
        .filter(|e| e.is_retried())
        .map(ErrorName::as_str)
        .collect();
    assert_eq!(retried, want, "{file}: RunTask's Retry");
    // Every step's Catch ends somewhere: nothing a handler raises escapes the machine.
    assert!(
        found
            .iter()
            .any(|(s, f, n)| s == "RunTask" && *f == "Catch" && n == "States.ALL"),
        "{file}: RunTask must catch every error into TaskLost"
    );
}
