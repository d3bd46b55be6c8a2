//! Ingest: which pipeline an uploaded object belongs to, and which job it is.
//!
//! Objects land in the ingest bucket as `<pipeline>/<anything>.csv`. The job id is derived
//! from the object's identity (bucket, key and version/ETag/sequencer), never from the clock,
//! so the same upload delivered twice is the same job, and re-uploading new content under the
//! same key is a new job.

use crate::ids::{JobId, PipelineName};
use sha2::{Digest, Sha256};

/// The identity of an uploaded object, as an Object Created event gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedObject {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub etag: Option<String>,
    pub sequencer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("object key '{key}' is not of the form <pipeline>/<file>.csv")]
    Layout { key: String },
    #[error("object key '{key}': {reason}")]
    Hostile { key: String, reason: &'static str },
    #[error("object key '{key}': {reason}")]
    BadPipeline { key: String, reason: String },
}

/// The pipeline an ingest key belongs to.
pub fn route(key: &str) -> Result<PipelineName, RouteError> {
    let shown: String = key
        .chars()
        .take(200)
        .collect::<String>()
        .escape_debug()
        .to_string();
    let hostile = |reason| RouteError::Hostile {
        key: shown.clone(),
        reason,
    };
    if key.len() > 1024 {
        return Err(hostile("longer than 1024 bytes"));
    }
    if key.chars().any(char::is_control) {
        return Err(hostile("contains control characters"));
    }
    if key.starts_with('/') || key.split('/').any(|seg| seg == ".." || seg == ".") {
        return Err(hostile("contains '.', '..' or a leading '/' segment"));
    }
    let (pipeline, rest) = key
        .split_once('/')
        .ok_or_else(|| RouteError::Layout { key: shown.clone() })?;
    if rest.is_empty() || rest.ends_with('/') || !rest.to_ascii_lowercase().ends_with(".csv") {
        return Err(RouteError::Layout { key: shown.clone() });
    }
    PipelineName::new(pipeline).map_err(|e| RouteError::BadPipeline {
        key: shown,
        reason: e.to_string(),
    })
}

/// The input of a job's pipeline execution, as ingest starts it and a re-run starts it again.
pub fn execution_input(job: &crate::model::Job) -> serde_json::Value {
    serde_json::json!({
        "jobId": job.id,
        "pipeline": job.pipeline,
        "input": {"bucket": job.input.bucket, "key": job.input.key},
    })
}

/// The name of the `n`-th re-run of a job's execution: the job id (cut to fit Step Functions'
/// 80 characters) and `-rerun-<n>`. Names are unique per state machine for 90 days; a re-run
/// carries the job in its input (`jobId`), which is how its events find the job.
pub fn rerun_name(job: &JobId, n: u32) -> String {
    let suffix = format!("-rerun-{n}");
    let keep = 80usize.saturating_sub(suffix.len());
    let id: String = job.as_str().chars().take(keep).collect();
    format!("{id}{suffix}")
}

/// Which re-run of `job` the execution `execution_arn` is (`None`: the job's first execution,
/// named after the job, or not one of its re-runs).
pub fn rerun_number(job: &JobId, execution_arn: &str) -> Option<u32> {
    let name = execution_arn.rsplit(':').next()?;
    let (_, n) = name.rsplit_once("-rerun-")?;
    let n: u32 = n.parse().ok()?;
    (rerun_name(job, n) == name).then_some(n)
}

/// The job an upload is. Readable (`<pipeline>-<16 hex>`) and a valid execution name.
pub fn job_id(object: &UploadedObject) -> JobId {
    let mut hash = Sha256::new();
    for part in [
        object.bucket.as_str(),
        object.key.as_str(),
        object.version_id.as_deref().unwrap_or(""),
        object.etag.as_deref().unwrap_or(""),
        object.sequencer.as_deref().unwrap_or(""),
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hex::encode(&hash.finalize()[..8]);
    // The prefix is the pipeline name when the key has a sane one, for humans; the hash alone
    // identifies the job.
    let prefix: String = object
        .key
        .split('/')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(40)
        .collect();
    let prefix = if prefix.is_empty() {
        "job".to_string()
    } else {
        prefix
    };
    JobId::new(format!("{prefix}-{digest}")).unwrap_or_else(|_| {
        // Unreachable by construction (filtered charset, bounded length), but never panic.
        JobId::new(format!("job-{digest}")).expect("hex digest is a valid id")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(key: &str, etag: &str) -> UploadedObject {
        UploadedObject {
            bucket: "ingest".into(),
            key: key.into(),
            version_id: None,
            etag: Some(etag.into()),
            sequencer: Some("0055AED6DCD90281E5".into()),
        }
    }

    #[test]
    fn routes_by_first_segment() {
        assert_eq!(route("ber/2026/11/job.csv").unwrap().as_str(), "ber");
        assert!(matches!(route("job.csv"), Err(RouteError::Layout { .. })));
        assert!(matches!(
            route("ber/notes.txt"),
            Err(RouteError::Layout { .. })
        ));
        assert!(matches!(
            route("ber/../../etc/passwd.csv"),
            Err(RouteError::Hostile { .. })
        ));
        assert!(matches!(
            route("ber/a\u{0}.csv"),
            Err(RouteError::Hostile { .. })
        ));
        assert!(matches!(
            route("b r/x.csv"),
            Err(RouteError::BadPipeline { .. })
        ));
    }

    #[test]
    fn same_upload_same_job_new_content_new_job() {
        let a = job_id(&obj("ber/job.csv", "e1"));
        assert_eq!(a, job_id(&obj("ber/job.csv", "e1")));
        assert_ne!(a, job_id(&obj("ber/job.csv", "e2")));
        assert!(a.as_str().starts_with("ber-") && a.as_str().len() == 20);
        assert!(job_id(&obj("../x.csv", "e")).as_str().starts_with("job-"));
    }
}
