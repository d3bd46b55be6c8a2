//! The IAM permission contract: every Lambda's role in `infra/template.yaml` grants exactly the
//! IAM actions its code can call — nothing missing (an AccessDenied on AWS, like launch's
//! SendTaskSuccess once was), nothing unused.
//!
//! What a function's code can call is its crate's `PORT_CALLS` (its decision tests run on ports
//! that refuse any other call); what each call needs is declared next to the adapter that makes
//! it (`sluice_aws::permissions`). The template is read for both compute backends, resolving
//! `!If [UseBatch, ...]` either way. Resources and conditions are not compared here (the
//! template's comments and `infra/scripts/check_template.py` cover those): actions only.

use serde_yaml::Value;
use sluice_aws::permissions::{Backend, required};
use sluice_core::ports::PortCall;
use std::collections::{BTreeMap, BTreeSet};

/// Logical id of each function in the template, and its crate's port calls.
const FUNCTIONS: &[(&str, &[PortCall])] = &[
    ("IngestFunction", sluice_fn_ingest::PORT_CALLS),
    ("PlanFunction", sluice_fn_plan::PORT_CALLS),
    ("ScaleFunction", sluice_fn_scale::PORT_CALLS),
    ("LaunchFunction", sluice_fn_launch::PORT_CALLS),
    ("TaskEventsFunction", sluice_fn_task_events::PORT_CALLS),
    ("AggregateFunction", sluice_fn_aggregate::PORT_CALLS),
    ("FinishFunction", sluice_fn_finish::PORT_CALLS),
    (
        "ExecutionEventsFunction",
        sluice_fn_execution_events::PORT_CALLS,
    ),
];

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/template.yaml");
    let text = std::fs::read_to_string(path).expect("infra/template.yaml");
    serde_yaml::from_str(&text).expect("the template is YAML")
}

/// `value` with every `!If [Condition, a, b]` resolved (`conditions` says which are true) and
/// `!Ref AWS::NoValue` dropped from lists and maps.
fn resolve(value: &Value, conditions: &BTreeMap<&str, bool>) -> Option<Value> {
    match value {
        Value::Tagged(t) if t.tag == "!If" => {
            let args = t.value.as_sequence().expect("!If takes a list");
            let name = args[0].as_str().expect("!If names a condition");
            let holds = *conditions
                .get(name)
                .unwrap_or_else(|| panic!("condition {name} is not modelled by this test"));
            resolve(&args[if holds { 1 } else { 2 }], conditions)
        }
        Value::Tagged(t) if t.tag == "!Ref" && t.value.as_str() == Some("AWS::NoValue") => None,
        Value::Sequence(items) => Some(Value::Sequence(
            items
                .iter()
                .filter_map(|v| resolve(v, conditions))
                .collect(),
        )),
        Value::Mapping(m) => Some(Value::Mapping(
            m.iter()
                .filter_map(|(k, v)| resolve(v, conditions).map(|v| (k.clone(), v)))
                .collect(),
        )),
        other => Some(other.clone()),
    }
}

/// The actions the function's inline policies allow (SAM adds AWSLambdaBasicExecutionRole and,
/// with tracing, X-Ray; those are not the code's calls).
fn granted(function: &Value, backend: Backend) -> BTreeSet<String> {
    let conditions = BTreeMap::from([("UseBatch", backend == Backend::Batch)]);
    let policies = function["Properties"]["Policies"].clone();
    let policies = resolve(&policies, &conditions).unwrap_or(Value::Null);
    let mut actions = BTreeSet::new();
    for policy in policies.as_sequence().into_iter().flatten() {
        assert!(
            policy.is_mapping() && policy.get("Statement").is_some(),
            "only inline policy documents are modelled: {policy:?}"
        );
        for statement in policy["Statement"].as_sequence().into_iter().flatten() {
            assert_eq!(statement["Effect"].as_str(), Some("Allow"), "{statement:?}");
            match &statement["Action"] {
                Value::String(a) => {
                    actions.insert(a.clone());
                }
                Value::Sequence(list) => {
                    actions.extend(list.iter().filter_map(|a| a.as_str().map(str::to_owned)));
                }
                other => panic!("statement without actions: {other:?}"),
            }
        }
    }
    actions
}

#[test]
fn every_function_role_grants_exactly_what_its_code_calls() {
    let template = template();
    let resources = template["Resources"]
        .as_mapping()
        .expect("Resources is a map");
    let in_template: BTreeSet<String> = resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(k, _)| k.as_str().unwrap_or_default().to_owned())
        .collect();
    let modelled: BTreeSet<String> = FUNCTIONS.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(
        in_template, modelled,
        "every function of the template is checked"
    );

    let mut problems = Vec::new();
    for backend in [Backend::Ecs, Backend::Batch] {
        for (logical_id, calls) in FUNCTIONS {
            let want: BTreeSet<String> = required(calls, backend)
                .into_iter()
                .map(str::to_owned)
                .collect();
            let have = granted(&template["Resources"][*logical_id], backend);
            let missing: Vec<_> = want.difference(&have).collect();
            let unused: Vec<_> = have.difference(&want).collect();
            if !missing.is_empty() || !unused.is_empty() {
                problems.push(format!(
                    "{logical_id} ({backend:?}): missing {missing:?}, granted but never called {unused:?}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The check itself can fail: a role without one of its actions, or with one too many, is
/// reported.
#[test]
fn a_missing_or_an_extra_action_is_reported() {
    let template = template();
    let launch = &template["Resources"]["LaunchFunction"];
    let have = granted(launch, Backend::Ecs);
    let want: BTreeSet<String> = required(sluice_fn_launch::PORT_CALLS, Backend::Ecs)
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert!(
        want.contains("states:SendTaskSuccess"),
        "launch reports a finished task straight back"
    );
    let mut without = have.clone();
    without.remove("states:SendTaskSuccess");
    assert_ne!(without, want);
    let mut extra = have.clone();
    extra.insert("autoscaling:DescribeAutoScalingGroups".into());
    assert_ne!(extra, want);
    // And the Batch branch of a statement is read as such.
    let batch = granted(launch, Backend::Batch);
    assert!(batch.contains("batch:SubmitJob") && !batch.contains("ecs:RunTask"));
}
