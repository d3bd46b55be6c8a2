//! Lambda entry point of the `ingest` step: turns an S3 "Object Created" event into a job record and a Step Functions execution named after the job.
//!
//! Wiring only: the handler is `sluice_fn_ingest::handle` (this crate's library, shared with the local
//! runtime); logging, the cold-start services and the `Sluice.*` error mapping are
//! `sluice_aws::lambda::run`. Built with `cargo lambda build --release --arm64 --features lambda`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_aws::lambda::run(|services, input| async move {
        sluice_fn_ingest::handle(&services, input).await
    })
    .await
}
