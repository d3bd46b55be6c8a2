//! S3ObjectStore: put/get/exists and NotFound, path-style against moto.

use crate::common::Moto;
use crate::moto_or_skip;
use sluice_aws::S3ObjectStore;
use sluice_core::StoreError;
use sluice_core::model::ObjectRef;
use sluice_core::ports::ObjectStore;

#[tokio::test]
async fn s3_put_get_exists_and_not_found() {
    let moto: Moto = moto_or_skip!();
    let client = sluice_aws::s3_client(&moto.sdk().await);
    client.create_bucket().bucket("data").send().await.unwrap();
    let store = S3ObjectStore::new(client.clone());

    let obj = ObjectRef::new("data", "jobs/j-1/task_results/t-1.json");
    assert!(!store.exists(&obj).await.unwrap());
    assert!(matches!(
        store.get(&obj).await,
        Err(StoreError::NotFound(what)) if what == "s3://data/jobs/j-1/task_results/t-1.json"
    ));

    store
        .put(&obj, br#"{"ber":0.5}"#.to_vec(), "application/json")
        .await
        .unwrap();
    assert!(store.exists(&obj).await.unwrap());
    assert_eq!(store.get(&obj).await.unwrap(), br#"{"ber":0.5}"#.to_vec());

    let head = client
        .head_object()
        .bucket("data")
        .key(&obj.key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/json"));

    // Overwrite is whole-object.
    store.put(&obj, b"x".to_vec(), "text/plain").await.unwrap();
    assert_eq!(store.get(&obj).await.unwrap(), b"x".to_vec());

    // A missing bucket reads as a missing object, not a backend failure.
    let nowhere = ObjectRef::new("no-such-bucket", "k");
    assert!(matches!(
        store.get(&nowhere).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(!store.exists(&nowhere).await.unwrap());
}

#[tokio::test]
async fn stored_pipelines_read_toml_from_s3() {
    let moto: Moto = moto_or_skip!();
    let client = sluice_aws::s3_client(&moto.sdk().await);
    client.create_bucket().bucket("data").send().await.unwrap();
    let store = S3ObjectStore::new(client);
    let pipelines = sluice_core::ports::StoredPipelines {
        store: store.clone(),
        bucket: "data".to_owned(),
        prefix: "pipelines/".to_owned(),
    };
    use sluice_core::ports::Pipelines;
    assert!(pipelines.get("ber").await.unwrap().is_none());
    store
        .put(
            &ObjectRef::new("data", "pipelines/ber.toml"),
            b"this is = = not toml".to_vec(),
            "application/toml",
        )
        .await
        .unwrap();
    assert!(matches!(
        pipelines.get("ber").await,
        Err(StoreError::Corrupt { what, .. }) if what == "s3://data/pipelines/ber.toml"
    ));
}
