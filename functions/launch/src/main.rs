//! Lambda entry point of the `launch` step: records an attempt with its task token and starts its container (ECS RunTask or Batch SubmitJob).
//!
//! Wiring only: the handler is `sluice_fn_launch::handle` (this crate's library, shared with the local
//! runtime); logging, the cold-start services and the `Sluice.*` error mapping are
//! `sluice_aws::lambda::run`. Built with `cargo lambda build --release --arm64 --features lambda`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_aws::lambda::run(|services, input| async move {
        sluice_fn_launch::handle(&services, input).await
    })
    .await
}
