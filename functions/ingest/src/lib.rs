//! Ingest: the first step of every job.
//!
//! An object created in the ingest bucket (an EventBridge "Object Created" event) or a schedule
//! firing becomes exactly one job record and one state machine execution named after the job.
//! The job id comes from the object's identity, so a redelivered event finds its job and starts
//! nothing new. Input that cannot be a job (a key outside `<pipeline>/<file>.csv`, a hostile
//! key, an unknown pipeline) is recorded as a FAILED job with the reason; the object is left
//! where it is.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sluice_core::error::StepError;
use sluice_core::events::{EventEnvelope, S3_OBJECT_CREATED, S3ObjectCreated};
use sluice_core::ingest::{UploadedObject, job_id, route};
use sluice_core::model::{JobUpdate, ObjectRef};
use sluice_core::ports::PortCall;
use sluice_core::ports::{Transition, WorkflowError};
use sluice_core::{Job, JobState, Services};

/// Every port call this handler's code can make (see [`PortCall`]): the IAM permission
/// contract test derives the function's role from this list, and the decision tests refuse
/// any other call.
pub const PORT_CALLS: &[PortCall] = &[
    PortCall::PipelineGet,
    PortCall::JobRead,
    PortCall::JobCreate,
    PortCall::JobUpdate,
    PortCall::WorkflowStart,
];

/// Detail of a schedule firing (EventBridge Scheduler target input, or `sluice serve`). The
/// input is an object in the ingest bucket under `<pipeline>/`, routed like an upload.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ScheduledRun {
    pub schedule: String,
    pub input: ObjectRef,
}

pub const SCHEDULE_SOURCE: &str = "sluice.scheduler";
pub const SCHEDULE_DETAIL_TYPE: &str = "Scheduled Run";

/// What ingest did with an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestResult {
    pub job_id: String,
    /// `started`, `duplicate` (the job existed; nothing new) or `rejected` (recorded FAILED).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A classic S3 event notification (`{"Records": [...]}`), for buckets that notify Lambda
/// directly instead of through EventBridge.
#[derive(Debug, Deserialize)]
struct S3Notification {
    #[serde(rename = "Records")]
    records: Vec<S3NotificationRecord>,
}

#[derive(Debug, Deserialize)]
struct S3NotificationRecord {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: S3NotificationEntity,
}

#[derive(Debug, Deserialize)]
struct S3NotificationEntity {
    bucket: sluice_core::events::S3Bucket,
    object: S3NotificationObject,
}

#[derive(Debug, Deserialize)]
struct S3NotificationObject {
    key: String,
    #[serde(rename = "eTag", default)]
    etag: Option<String>,
    #[serde(rename = "versionId", default)]
    version_id: Option<String>,
    #[serde(default)]
    sequencer: Option<String>,
}

/// Keys in S3 notifications are URL-encoded with `+` for spaces.
fn decode_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() && key.is_char_boundary(i + 3) => {
                match u8::from_str_radix(&key[i + 1..i + 3], 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Handle one event. EventBridge events (S3 Object Created, Scheduled Run) give one result; a
/// classic S3 notification gives `{"jobs": [...]}`, one per record.
pub async fn handle(services: &Services, event: Value) -> Result<Value, StepError> {
    if event.get("Records").is_some() {
        let n: S3Notification = serde_json::from_value(event).map_err(|e| {
            StepError::invalid_input(format!("ingest: truncated S3 notification: {e}"))
        })?;
        let mut jobs = Vec::new();
        for r in n
            .records
            .into_iter()
            .filter(|r| r.event_name.starts_with("ObjectCreated"))
        {
            let key = decode_key(&r.s3.object.key);
            let routed = route(&key)
                .map(|p| p.to_string())
                .map_err(|e| e.to_string());
            let object = UploadedObject {
                bucket: r.s3.bucket.name,
                key,
                version_id: r.s3.object.version_id,
                etag: r.s3.object.etag,
                sequencer: r.s3.object.sequencer,
            };
            jobs.push(start_job(services, object, routed).await?);
        }
        return Ok(json!({ "jobs": jobs }));
    }
    handle_eventbridge(services, event)
        .await
        .and_then(|r| serde_json::to_value(r).map_err(StepError::internal))
}

/// Handle an EventBridge event: S3 Object Created or a scheduled run.
pub async fn handle_eventbridge(
    services: &Services,
    event: Value,
) -> Result<IngestResult, StepError> {
    let envelope: EventEnvelope<Value> = serde_json::from_value(event)
        .map_err(|e| StepError::invalid_input(format!("ingest: not an EventBridge event: {e}")))?;
    let (object, routed) = match (envelope.detail_type.as_str(), envelope.source.as_str()) {
        (S3_OBJECT_CREATED, "aws.s3") => {
            let detail: S3ObjectCreated = serde_json::from_value(envelope.detail).map_err(|e| {
                StepError::invalid_input(format!("ingest: truncated Object Created event: {e}"))
            })?;
            let routed = route(&detail.object.key)
                .map(|p| p.to_string())
                .map_err(|e| e.to_string());
            let object = UploadedObject {
                bucket: detail.bucket.name,
                key: detail.object.key,
                version_id: detail.object.version_id,
                etag: detail.object.etag,
                sequencer: detail.object.sequencer,
            };
            (object, routed)
        }
        (SCHEDULE_DETAIL_TYPE, SCHEDULE_SOURCE) => {
            let run: ScheduledRun = serde_json::from_value(envelope.detail).map_err(|e| {
                StepError::invalid_input(format!("ingest: truncated Scheduled Run event: {e}"))
            })?;
            let routed = route(&run.input.key)
                .map(|p| p.to_string())
                .map_err(|e| e.to_string());
            // The firing time makes each run its own job; a redelivered firing is the same job.
            let object = UploadedObject {
                bucket: run.input.bucket,
                key: run.input.key,
                version_id: None,
                etag: Some(format!("schedule:{}", run.schedule)),
                sequencer: envelope.time.clone(),
            };
            (object, routed)
        }
        (other_type, other_source) => {
            return Err(StepError::invalid_input(format!(
                "ingest: unsupported event '{other_type}' from '{other_source}'"
            )));
        }
    };
    start_job(services, object, routed).await
}

async fn start_job(
    services: &Services,
    object: UploadedObject,
    routed: Result<String, String>,
) -> Result<IngestResult, StepError> {
    let id = job_id(&object);
    let input = ObjectRef::new(&object.bucket, &object.key);
    let now = Utc::now();

    // Decide the pipeline; anything wrong is recorded on the job, not thrown away.
    let pipeline = match routed {
        Ok(name) => match services.pipeline(&name).await {
            Ok(_) => Ok(name),
            Err(e) if e.name == sluice_core::ErrorName::InvalidInput => Err((name, e.cause)),
            Err(e) => return Err(e),
        },
        Err(reason) => Err(("unknown".to_string(), reason)),
    };
    let (pipeline_name, rejection) = match pipeline {
        Ok(name) => (name, None),
        Err((name, reason)) => (name, Some(reason)),
    };

    let job = Job::new(id.clone(), pipeline_name.clone(), input.clone(), now);
    let created = services.jobs.create_job(&job).await?;
    if let Some(reason) = rejection {
        if created {
            services
                .jobs
                .transition_job(
                    &id,
                    JobState::Failed,
                    JobUpdate {
                        reason: Some(reason.clone()),
                        ..Default::default()
                    },
                )
                .await?;
        }
        tracing::warn!(job = %id, %reason, "input rejected");
        return Ok(IngestResult {
            job_id: id.to_string(),
            status: "rejected",
            execution_arn: None,
            reason: Some(reason),
        });
    }
    if !created {
        let existing = services.job(&id).await?;
        // A job still SUBMITTED was recorded but its execution may never have started (the
        // previous delivery died in between): starting again is idempotent, so do it.
        if existing.state != JobState::Submitted {
            return Ok(IngestResult {
                job_id: id.to_string(),
                status: "duplicate",
                execution_arn: existing.execution_arn,
                reason: None,
            });
        }
    }
    let execution_input = sluice_core::ingest::execution_input(&job);
    let arn = match services
        .workflows
        .start_execution(id.as_str(), &execution_input)
        .await
    {
        Ok(arn) => arn,
        Err(WorkflowError::AlreadyExists(msg)) => {
            return Err(StepError::internal(format!(
                "execution {id} exists with another input: {msg}"
            )));
        }
        Err(e) => return Err(StepError::internal(e)),
    };
    match services
        .jobs
        // Record the execution while the job is still SUBMITTED. If the plan step already moved
        // it on (it records the execution itself), this is rejected and changes nothing.
        .transition_job(
            &id,
            JobState::Submitted,
            JobUpdate {
                execution_arn: Some(arn.clone()),
                ..Default::default()
            },
        )
        .await?
    {
        Transition::Applied(_) | Transition::Rejected(_) => {}
        Transition::Missing => return Err(StepError::internal(format!("job {id} vanished"))),
    }
    tracing::info!(job = %id, execution = %arn, "job started");
    Ok(IngestResult {
        job_id: id.to_string(),
        status: if created { "started" } else { "duplicate" },
        execution_arn: Some(arn),
        reason: None,
    })
}

/// The EventBridge "Object Created" event S3 sends for a new object (the local runtime emits
/// it for files dropped into a watched directory).
pub fn object_created_event(
    bucket: &str,
    key: &str,
    size: u64,
    etag: &str,
    sequencer: &str,
) -> Value {
    json!({
        "version": "0",
        "id": uuid_like(bucket, key, sequencer),
        "detail-type": S3_OBJECT_CREATED,
        "source": "aws.s3",
        "account": "000000000000",
        "time": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "local",
        "resources": [format!("arn:aws:s3:::{bucket}")],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "etag": etag, "sequencer": sequencer},
            "request-id": sequencer,
            "requester": "000000000000",
            "reason": "PutObject"
        }
    })
}

/// A scheduled run as an EventBridge-shaped event.
pub fn scheduled_run_event(run: &ScheduledRun, time: chrono::DateTime<Utc>) -> Value {
    json!({
        "version": "0",
        "id": uuid_like(&run.schedule, &run.input.key, &time.to_rfc3339()),
        "detail-type": SCHEDULE_DETAIL_TYPE,
        "source": SCHEDULE_SOURCE,
        "time": time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "resources": [],
        "detail": run,
    })
}

fn uuid_like(a: &str, b: &str, c: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (a, b, c).hash(&mut h);
    let x = h.finish();
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        x >> 32,
        (x >> 16) & 0xffff,
        x & 0xffff,
        (x >> 48) & 0xffff,
        x & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::decode_key;

    #[test]
    fn notification_keys_are_url_decoded() {
        assert_eq!(decode_key("ber/my+job%2C2026.csv"), "ber/my job,2026.csv");
        assert_eq!(decode_key("a%zz%"), "a%zz%");
        assert_eq!(decode_key("caf%C3%A9.csv"), "café.csv");
    }
}
