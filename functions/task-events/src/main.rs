//! Lambda entry point of the `task-events` step: classifies ECS/Batch state-change events and reports the attempt's end to its task token.
//!
//! Wiring only: the handler is `sluice_fn_task_events::handle` (this crate's library, shared with the local
//! runtime); logging, the cold-start services and the `Sluice.*` error mapping are
//! `sluice_aws::lambda::run`. Built with `cargo lambda build --release --arm64 --features lambda`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_aws::lambda::run(|services, input| async move {
        sluice_fn_task_events::handle(&services, input).await
    })
    .await
}
