//! Lambda entry point of `execution-events`: "Step Functions Execution Status Change" events of
//! the pipeline state machine (EventBridge rule in infra/template.yaml).
//!
//! Wiring only: the handler is `sluice_fn_execution_events::handle` (this crate's library,
//! shared with the local runtime); logging, the cold-start services and the `Sluice.*` error
//! mapping are `sluice_aws::lambda::run`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_aws::lambda::run(|services, event: serde_json::Value| async move {
        sluice_fn_execution_events::handle(&services, event).await
    })
    .await
}
