//! Starting jobs from files, the way `sluice serve` does: a CSV in the watched folder, or a
//! schedule's input when it fires. `sluice serve` and the web console (`sluice-console`) share
//! these functions, so a file uploaded in the browser takes exactly the path of a dropped one.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sluice_core::model::ObjectRef;
use std::path::Path;

use crate::LocalRuntime;
use crate::runtime::INGEST_BUCKET;

/// What ingesting a watched file did.
#[derive(Debug, Clone, PartialEq)]
pub enum Ingested {
    /// The ingest handler's result (`jobId`, `status`: started, duplicate or rejected, ...).
    Delivered(Value),
    /// This path with this content was ingested before, as this job: nothing new started.
    AlreadyIngested(String),
}

/// Ingests a watched file (`path`, at `rel` under the watched folder) as the object `key` of
/// the ingest bucket, unless this (path, content) was ingested before.
///
/// The upload's S3 sequencer is derived from the path and the content, so the object — and so
/// the job — is the same whenever the same file is delivered again, even if this process dies
/// between starting the job and recording the file: ingest then finds the job and starts
/// nothing new. A changed file is a new object, and a new job, as on S3.
pub async fn ingest_file(
    runtime: &LocalRuntime,
    path: &Path,
    rel: &str,
    key: &str,
) -> anyhow::Result<Ingested> {
    let body = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&body))
    };
    if let Some(job) = runtime.store.ingested_file(rel, &digest)? {
        return Ok(Ingested::AlreadyIngested(job));
    }
    let sequencer = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(rel.as_bytes());
        h.update([0]);
        h.update(digest.as_bytes());
        hex::encode_upper(&h.finalize()[..10])
    };
    let event = match runtime.upload_as(path, key, &sequencer) {
        Ok(e) => e,
        // A key the bucket refuses (control characters, '..') never reaches S3 either; say so.
        Err(e) => anyhow::bail!("not ingested: {e:#}"),
    };
    let result = runtime
        .deliver(event)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(job) = result["jobId"].as_str() {
        runtime.store.record_ingested_file(rel, &digest, job)?;
    }
    Ok(Ingested::Delivered(result))
}

/// Fires a pipeline's schedule now, as EventBridge Scheduler would at `at`: its input file is
/// put into the ingest bucket under `<pipeline>/schedules/<schedule>/` and a "Scheduled Run"
/// event goes to the ingest handler. Returns the handler's result.
pub async fn fire_schedule(
    runtime: &LocalRuntime,
    pipeline: &str,
    schedule: &str,
    input: &Path,
    at: DateTime<Utc>,
) -> anyhow::Result<Value> {
    let file = input
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "input.csv".into());
    let key = format!("{pipeline}/schedules/{schedule}/{file}");
    runtime.upload(input, &key)?;
    let run = sluice_fn_ingest::ScheduledRun {
        schedule: schedule.to_string(),
        input: ObjectRef::new(INGEST_BUCKET, key),
    };
    let event = sluice_fn_ingest::scheduled_run_event(&run, at);
    runtime
        .deliver(event)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}
