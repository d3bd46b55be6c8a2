//! `services_from_env` against moto, configured only through the environment the way a Lambda
//! is: `SLUICE_*` plus the standard `AWS_ENDPOINT_URL`, region and credentials variables.
//!
//! Its own test binary with a single test, because it sets process environment variables.

mod common;

use sluice_core::model::ObjectRef;

#[tokio::test]
async fn services_from_env_reach_moto_through_aws_endpoint_url() {
    let moto = moto_or_skip!();
    let vars = [
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_REGION", common::REGION),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("SLUICE_TABLE", "sluice"),
        ("SLUICE_INGEST_BUCKET", "ingest"),
        ("SLUICE_DATA_BUCKET", "data"),
        (
            "SLUICE_STATE_MACHINE_ARN",
            "arn:aws:states:us-east-1:123456789012:stateMachine:sluice",
        ),
        ("SLUICE_COMPUTE", "ecs"),
        ("SLUICE_CLUSTER", "sluice"),
        ("SLUICE_TASK_DEFINITION", "ber-sim"),
        ("SLUICE_CONTAINER_NAME", "worker"),
        ("SLUICE_SPOT_CAPACITY_PROVIDER", "spot"),
        ("SLUICE_ON_DEMAND_CAPACITY_PROVIDER", "on-demand"),
        ("SLUICE_SPOT_ASG", "sluice-spot"),
        ("SLUICE_SLOTS_PER_INSTANCE", "4"),
        ("SLUICE_MAX_INSTANCES", "8"),
    ];
    for (k, v) in vars {
        // SAFETY: this binary's only test sets the variables before any other thread of the
        // test reads the environment.
        unsafe { std::env::set_var(k, v) };
    }
    for k in [
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_DYNAMODB",
    ] {
        // SAFETY: as above.
        unsafe { std::env::remove_var(k) };
    }

    let services = sluice_aws::services_from_env().await.unwrap();
    assert_eq!(services.buckets.ingest, "ingest");
    assert_eq!(services.buckets.data, "data");

    // The S3 client must be path-style to reach moto on 127.0.0.1.
    let sdk = moto.sdk().await;
    sluice_aws::s3_client(&sdk)
        .create_bucket()
        .bucket("data")
        .send()
        .await
        .unwrap();
    let obj = ObjectRef::new("data", "pipelines/ber.toml");
    services
        .objects
        .put(&obj, b"x = 1".to_vec(), "application/toml")
        .await
        .unwrap();
    assert_eq!(services.objects.get(&obj).await.unwrap(), b"x = 1");

    // The DynamoDB client reaches the same endpoint.
    sluice_aws::dynamo::create_table(&aws_sdk_dynamodb::Client::new(&sdk), "sluice")
        .await
        .unwrap();
    let job = sluice_core::Job::new(
        sluice_core::JobId::new("env-job").unwrap(),
        "ber",
        ObjectRef::new("ingest", "ber/a.csv"),
        chrono::Utc::now(),
    );
    assert!(services.jobs.create_job(&job).await.unwrap());
    assert_eq!(services.jobs.list_jobs(5).await.unwrap(), vec![job]);
}
