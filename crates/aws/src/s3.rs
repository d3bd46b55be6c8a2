//! [`ObjectStore`] on Amazon S3: input CSVs, manifests, task results, aggregates and pipeline
//! configs all live in S3 on AWS.
//!
//! S3 PutObject is atomic (readers see the old or the new object), which is exactly what the
//! port promises, so no temporary-key dance is needed.

use crate::sdk_error;
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use sluice_core::StoreError;
use sluice_core::model::ObjectRef;
use sluice_core::ports::ObjectStore;

/// IAM actions of each call this adapter makes (the permission contract: see
/// [`crate::permissions`]). S3 answers a GetObject or HeadObject of a missing key with 404
/// only to a caller that may list the bucket (403 otherwise), and `get` and `exists` must tell
/// "missing" (a pipeline that does not exist, a job without its own pipeline copy, a task that
/// wrote nothing) from "forbidden": both need `s3:ListBucket`. HeadObject is `s3:GetObject`.
pub const GET_ACTIONS: &[&str] = &["s3:GetObject", "s3:ListBucket"];
pub const PUT_ACTIONS: &[&str] = &["s3:PutObject"];
pub const EXISTS_ACTIONS: &[&str] = &["s3:GetObject", "s3:ListBucket"];

/// S3-backed object store. Cheap to clone: the SDK client is reference-counted.
#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: Client,
}

impl S3ObjectStore {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn get(&self, object: &ObjectRef) -> Result<Vec<u8>, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .send()
            .await
            .map_err(|e| {
                // A missing bucket is as much "not found" to a reader as a missing key: both
                // mean the object the caller named does not exist.
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_key() || s.code() == Some("NoSuchBucket"))
                {
                    StoreError::NotFound(object.to_string())
                } else {
                    sdk_error("S3 GetObject", &object.to_string(), e)
                }
            })?;
        let body = out.body.collect().await.map_err(|e| {
            StoreError::Backend(format!("S3 GetObject {object}: reading body: {e}"))
        })?;
        Ok(body.into_bytes().to_vec())
    }

    async fn put(
        &self,
        object: &ObjectRef,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| sdk_error("S3 PutObject", &object.to_string(), e))?;
        Ok(())
    }

    async fn exists(&self, object: &ObjectRef) -> Result<bool, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            // HEAD responses have no body, so a missing key or bucket is only a bare 404.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(false),
            Err(e) => Err(sdk_error("S3 HeadObject", &object.to_string(), e)),
        }
    }
}
