//! sluice-aws: the AWS adapters behind sluice-core's ports, and the shared Lambda entry point.
//!
//! Handlers (`functions/*`) are written against [`sluice_core::ports`]; on AWS their ports are
//! the types here:
//!
//! | port            | adapter                                    | AWS APIs                                      |
//! |-----------------|--------------------------------------------|-----------------------------------------------|
//! | `ObjectStore`   | [`s3::S3ObjectStore`]                      | GetObject, PutObject, HeadObject              |
//! | `JobStore`      | [`dynamo::DynamoJobStore`]                 | PutItem/UpdateItem (conditional), GetItem, Query |
//! | `Compute`       | [`ecs::EcsCompute`] / [`batch::BatchCompute`] | RunTask / SubmitJob                        |
//! | `CapacityPool`  | [`capacity::AsgCapacity`]                  | DynamoDB leases + SetDesiredCapacity          |
//! | `Workflows`     | [`sfn::SfnWorkflows`]                      | StartExecution, SendTaskSuccess/Failure       |
//! | `Pipelines`     | `StoredPipelines<S3ObjectStore>`           | GetObject of `pipelines/<name>.toml`          |
//!
//! [`services_from_env`] builds all of them once per Lambda cold start from the `SLUICE_*`
//! variables ([`config`]). With the `lambda` feature, [`lambda::run`] is the whole `main` of a
//! handler binary. docs/aws.md has the table design, variables and what moto does not emulate.

pub mod batch;
pub mod capacity;
pub mod config;
pub mod dynamo;
pub mod ecs;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod permissions;
pub mod s3;
pub mod sfn;

pub use batch::BatchCompute;
pub use capacity::AsgCapacity;
pub use config::{AwsConfig, ComputeConfig, ConfigError};
pub use dynamo::DynamoJobStore;
pub use ecs::EcsCompute;
pub use s3::S3ObjectStore;
pub use sfn::SfnWorkflows;

use aws_config::SdkConfig;
use sluice_core::Services;
use sluice_core::StoreError;
use sluice_core::ports::{Buckets, Compute, StoredPipelines, layout};
use std::sync::Arc;

/// A failed SDK call as a storage error, keeping the service's error code and message (the
/// SDK's own `Display` says only "service error").
pub(crate) fn sdk_error<E>(operation: &str, what: &str, err: E) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StoreError::Backend(format!(
        "{operation} {what}: {}",
        aws_sdk_s3::error::DisplayErrorContext(&err)
    ))
}

/// True when the S3 client talks to a custom endpoint (moto, MinIO), which needs path-style
/// addressing: `http://127.0.0.1:5000/bucket/key`, not `http://bucket.127.0.0.1:5000/key`.
fn custom_s3_endpoint(sdk: &SdkConfig) -> bool {
    sdk.endpoint_url().is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|v| !v.is_empty())
}

/// An S3 client for `sdk`, path-style when the endpoint is overridden.
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(custom_s3_endpoint(sdk))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Build every port from an SDK configuration and a deployment configuration.
pub fn services(sdk: &SdkConfig, config: &AwsConfig) -> Services {
    let objects = S3ObjectStore::new(s3_client(sdk));
    let store = DynamoJobStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.table);
    let compute: Arc<dyn Compute> = match &config.compute {
        ComputeConfig::Ecs(ecs) => {
            Arc::new(EcsCompute::new(aws_sdk_ecs::Client::new(sdk), ecs.clone()))
        }
        ComputeConfig::Batch(batch) => Arc::new(BatchCompute::new(
            aws_sdk_batch::Client::new(sdk),
            batch.clone(),
        )),
    };
    let capacity = AsgCapacity::new(
        aws_sdk_autoscaling::Client::new(sdk),
        store.clone(),
        config.capacity.clone(),
    );
    Services {
        pipelines: Arc::new(StoredPipelines {
            store: objects.clone(),
            bucket: config.data_bucket.clone(),
            prefix: layout::PIPELINES_PREFIX.to_owned(),
        }),
        objects: Arc::new(objects),
        jobs: Arc::new(store),
        compute,
        capacity: Arc::new(capacity),
        workflows: Arc::new(SfnWorkflows::new(
            aws_sdk_sfn::Client::new(sdk),
            &config.state_machine_arn,
        )),
        notifier: Arc::new(sluice_notify::HttpAndCommandNotifier::default()),
        buckets: Buckets {
            ingest: config.ingest_bucket.clone(),
            data: config.data_bucket.clone(),
        },
        job_pipelines: Default::default(),
    }
}

/// Read [`AwsConfig`] and the standard AWS configuration (credentials, region, and
/// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` overrides) from the environment and build
/// every port. Called once per cold start: the clients share one connection pool each.
pub async fn services_from_env() -> anyhow::Result<Services> {
    let config = AwsConfig::from_env()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    Ok(services(&sdk, &config))
}
