//! Lambda entry point of the `aggregate` step: collects the task results of a job into the aggregated CSV and plot.
//!
//! Wiring only: the handler is `sluice_fn_aggregate::handle` (this crate's library, shared with the local
//! runtime); logging, the cold-start services and the `Sluice.*` error mapping are
//! `sluice_aws::lambda::run`. Built with `cargo lambda build --release --arm64 --features lambda`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_aws::lambda::run(|services, input| async move {
        sluice_fn_aggregate::handle(&services, input).await
    })
    .await
}
