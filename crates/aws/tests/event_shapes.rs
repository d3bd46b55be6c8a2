//! sluice-core types its events itself (`EventEnvelope<T>` and the ECS/Batch/S3 detail
//! structs), so that the core and the local runtime need no Lambda crate. This test holds
//! that choice to its promise: every AWS-shaped sample event in `tests/events/` decodes the
//! same through `aws_lambda_events::eventbridge::EventBridgeEvent<T>`, the type the Lambda
//! runtime ecosystem uses, as through sluice-core's envelope.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::de::DeserializeOwned;
use sluice_core::events::{
    BatchJobStateChange, EcsTaskStateChange, EventEnvelope, S3ObjectCreated,
};
use std::fmt::Debug;
use std::path::PathBuf;

fn sample(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/events")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn same_shape<T: DeserializeOwned + serde::Serialize + PartialEq + Debug>(
    name: &str,
    detail_type: &str,
) {
    let event = sample(name);
    let official: EventBridgeEvent<T> =
        serde_json::from_value(event.clone()).unwrap_or_else(|e| panic!("{name} (official): {e}"));
    let ours: EventEnvelope<T> =
        serde_json::from_value(event).unwrap_or_else(|e| panic!("{name} (sluice-core): {e}"));
    assert_eq!(official.detail_type, detail_type, "{name}");
    assert_eq!(ours.detail_type, official.detail_type, "{name}");
    assert_eq!(ours.source, official.source, "{name}");
    assert_eq!(ours.id, official.id, "{name}");
    assert_eq!(
        Some(ours.resources.clone()),
        official.resources.clone(),
        "{name}"
    );
    assert_eq!(
        ours.detail, official.detail,
        "{name}: the detail decodes differently"
    );
}

#[test]
fn ecs_task_state_change_sample_has_the_official_envelope() {
    same_shape::<EcsTaskStateChange>("ecs-task-stopped-spot.json", "ECS Task State Change");
}

#[test]
fn batch_job_state_change_sample_has_the_official_envelope() {
    same_shape::<BatchJobStateChange>(
        "batch-job-failed-host-terminated.json",
        "Batch Job State Change",
    );
}

#[test]
fn s3_object_created_sample_has_the_official_envelope() {
    same_shape::<S3ObjectCreated>("s3-object-created.json", "Object Created");
}
