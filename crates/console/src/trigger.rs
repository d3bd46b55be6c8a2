//! Starting a job from the console: an uploaded CSV, or a schedule's input, for a pipeline of
//! the work directory, optionally with its params or scale overridden.
//!
//! An upload is written into the inbox — the folder `sluice serve --watch` watches, or
//! `<workdir>/uploads` for `sluice ui` — under `<pipeline>/`, and ingested from there by the
//! same function serve uses for a dropped file ([`sluice_local::inbox::ingest_file`]). It gets a
//! file name no other file there has, so every upload is a new job (as a new S3 PUT is).
//!
//! Overrides make a *variant* of the pipeline: a copy with the new params, registered under
//! `<pipeline>-<hash of the overrides>`. A job's pipeline is looked up by name when its
//! execution starts, so a variant changes only the jobs started with it, never the pipeline
//! other jobs and dropped files use.

use crate::error::ApiError;
use serde::Serialize;
use sha2::Digest;
use sluice_core::PipelineConfig;
use sluice_core::ids::PipelineName;
use sluice_core::ports::layout;
use sluice_local::LocalRuntime;
use sluice_local::runtime::DATA_BUCKET;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A variant's description starts so; variants are not offered as pipelines to start.
const VARIANT_MARK: &str = "variant of '";

/// What the trigger form offers for one pipeline.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineView {
    pub name: String,
    pub description: Option<String>,
    /// `[params]`, as TOML text.
    pub params: BTreeMap<String, String>,
    /// The param `scale` multiplies, if the pipeline has one.
    pub scale_param: Option<String>,
    /// The input columns the CSV must have.
    pub columns: Vec<String>,
    pub schedules: Vec<ScheduleView>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView {
    pub name: String,
    pub expression: String,
    pub input: String,
}

/// The pipelines registered in the work directory (`pipelines/*.toml` in its data bucket),
/// variants left out.
pub async fn pipelines(runtime: &LocalRuntime) -> Result<Vec<PipelineView>, ApiError> {
    let keys = runtime
        .buckets
        .list_sync(DATA_BUCKET, layout::PIPELINES_PREFIX)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut out = Vec::new();
    for (key, _) in keys {
        let Some(name) = key
            .strip_prefix(layout::PIPELINES_PREFIX)
            .and_then(|k| k.strip_suffix(".toml"))
            .filter(|n| !n.contains('/'))
        else {
            continue;
        };
        let Ok(Some(cfg)) = runtime.services.pipelines.get(name).await else {
            continue;
        };
        if cfg
            .description
            .as_deref()
            .is_some_and(|d| d.starts_with(VARIANT_MARK))
        {
            continue;
        }
        out.push(PipelineView {
            name: cfg.name.clone(),
            description: cfg.description.clone(),
            params: cfg
                .params
                .iter()
                .map(|(k, v)| (k.clone(), param_text(v)))
                .collect(),
            scale_param: cfg.scale.as_ref().map(|s| s.param.clone()),
            columns: cfg.input.columns.keys().cloned().collect(),
            schedules: cfg
                .schedule
                .iter()
                .map(|s| ScheduleView {
                    name: s.name.clone(),
                    expression: s.expression.clone(),
                    input: s.input.clone(),
                })
                .collect(),
        });
    }
    Ok(out)
}

fn param_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What to change in a pipeline for one job.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub scale: Option<f64>,
    /// Param name → new value as typed in the form (parsed as the param's current type).
    pub params: BTreeMap<String, String>,
}

impl Overrides {
    pub fn is_empty(&self) -> bool {
        self.scale.is_none() && self.params.is_empty()
    }
}

/// The pipeline a trigger runs: `base` itself, or its variant with `overrides` (registered).
pub async fn pipeline_for(
    runtime: &LocalRuntime,
    base: &str,
    overrides: &Overrides,
) -> Result<PipelineConfig, ApiError> {
    PipelineName::new(base)?;
    let cfg = runtime
        .services
        .pipelines
        .get(base)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "unknown pipeline '{base}': no pipelines/{base}.toml in this work directory (start serve or ui with --pipeline FILE)"
            ))
        })?;
    if overrides.is_empty() {
        return Ok(cfg);
    }
    let mut variant = cfg.clone();
    let mut said = Vec::new();
    for (name, text) in &overrides.params {
        let Some(current) = variant.params.get(name) else {
            return Err(ApiError::BadRequest(format!(
                "pipeline '{base}' has no param '{}'",
                name.chars().take(64).collect::<String>()
            )));
        };
        let value = parse_like(current, text.trim()).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "param '{name}': '{}' is not a {}",
                text.chars().take(64).collect::<String>(),
                current.type_str()
            ))
        })?;
        said.push(format!("{name} = {}", param_text(&value)));
        variant.params.insert(name.clone(), value);
    }
    if let Some(scale) = overrides.scale {
        variant = variant.scaled(scale).map_err(ApiError::BadRequest)?;
        said.push(format!("scale {scale}"));
    }
    // The same overrides make the same variant: its name is a hash of what it changes.
    let digest = sha2::Sha256::digest(said.join("\n").as_bytes());
    let prefix: String = base.chars().take(31).collect();
    variant.name = format!("{prefix}-{}", hex::encode(&digest[..4]));
    variant.description = Some(format!("{VARIANT_MARK}{base}': {}", said.join(", ")));
    // A variant runs when asked; schedules stay with the pipeline they belong to.
    variant.schedule.clear();
    runtime
        .register_pipeline(&variant)
        .map_err(|e| ApiError::Internal(format!("{e:#}")))?;
    Ok(variant)
}

fn parse_like(current: &toml::Value, text: &str) -> Option<toml::Value> {
    Some(match current {
        toml::Value::Integer(_) => toml::Value::Integer(text.parse().ok()?),
        toml::Value::Float(_) => {
            toml::Value::Float(text.parse().ok().filter(|f: &f64| f.is_finite())?)
        }
        toml::Value::Boolean(_) => toml::Value::Boolean(text.parse().ok()?),
        toml::Value::String(_) => toml::Value::String(text.to_string()),
        _ => return None,
    })
}

/// The name an upload is stored under: its own file name, reduced to safe characters; it
/// must end in `.csv`.
pub fn upload_name(given: Option<&str>) -> Result<String, ApiError> {
    let given = given.unwrap_or_default();
    // Browsers send the bare name; other clients may send a path: keep its last part only.
    let base = given.rsplit(['/', '\\']).next().unwrap_or_default();
    if !base.to_ascii_lowercase().ends_with(".csv") {
        return Err(ApiError::UnsupportedMediaType(format!(
            "only .csv files can start a job (got '{}')",
            base.chars().take(100).collect::<String>()
        )));
    }
    let stem = &base[..base.len() - 4];
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    let clean = clean.trim_start_matches('_');
    Ok(format!(
        "{}.csv",
        if clean.is_empty() { "upload" } else { clean }
    ))
}

/// Content types a browser or curl may send for a CSV file.
pub fn acceptable_content_type(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return true;
    };
    let essence = ct.split(';').next().unwrap_or_default().trim();
    [
        "text/csv",
        "application/csv",
        "text/plain",
        "text/x-csv",
        "application/vnd.ms-excel", // what Windows browsers send for .csv
        "application/octet-stream",
    ]
    .iter()
    .any(|ok| essence.eq_ignore_ascii_case(ok))
}

/// The upload is a CSV: UTF-8 text whose first line is a header of named columns.
/// (Whether its rows fit the pipeline is for ingest to say, as for a dropped file.)
pub fn check_csv(body: &[u8]) -> Result<(), ApiError> {
    let not_csv = |why: &str| ApiError::BadRequest(format!("not a CSV file: {why}"));
    let text = std::str::from_utf8(body).map_err(|_| not_csv("it is not UTF-8 text"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(not_csv("it is empty"));
    }
    if text.contains('\0') {
        return Err(not_csv("it contains NUL bytes (a binary file?)"));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut first = csv::StringRecord::new();
    match reader.read_record(&mut first) {
        Ok(true) => {}
        Ok(false) => return Err(not_csv("it has no header line")),
        Err(e) => return Err(not_csv(&format!("its header does not parse: {e}"))),
    }
    if first.iter().any(|c| c.trim().is_empty()) {
        return Err(not_csv("its header line has an empty column name"));
    }
    Ok(())
}

/// Writes `body` as a new file `<inbox>/<pipeline>/<name>` (or `<stem>-2.csv`, ... if taken),
/// whole: it is written under a hidden name first and renamed, so a watching serve never
/// reads half of it. Returns its path and its path relative to the inbox.
pub fn write_upload(
    inbox: &Path,
    pipeline: &str,
    name: &str,
    body: &[u8],
) -> Result<(PathBuf, String), ApiError> {
    let io = |e: std::io::Error| ApiError::Internal(format!("writing the upload: {e}"));
    let dir = inbox.join(pipeline);
    std::fs::create_dir_all(&dir).map_err(io)?;
    let stem = name.strip_suffix(".csv").unwrap_or(name);
    let tmp = dir.join(format!(".{}.upload", crate::security::random_token()));
    std::fs::write(&tmp, body).map_err(io)?;
    for n in 1..10_000u32 {
        let file = if n == 1 {
            name.to_string()
        } else {
            format!("{stem}-{n}.csv")
        };
        let path = dir.join(&file);
        // hard_link fails if the name exists: no upload ever replaces a file.
        match std::fs::hard_link(&tmp, &path) {
            Ok(()) => {
                let _ = std::fs::remove_file(&tmp);
                return Ok((path, format!("{pipeline}/{file}")));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(io(e));
            }
        }
    }
    let _ = std::fs::remove_file(&tmp);
    Err(ApiError::Conflict(format!(
        "too many uploads named {name} for {pipeline}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_names_are_reduced_to_safe_csv_names() {
        assert_eq!(upload_name(Some("ber-job.csv")).unwrap(), "ber-job.csv");
        assert_eq!(upload_name(Some("../../x y.CSV")).unwrap(), "x_y.csv");
        assert_eq!(upload_name(Some("C:\\a\\..csv")).unwrap(), "upload.csv");
        assert!(matches!(
            upload_name(Some("plot.png")),
            Err(ApiError::UnsupportedMediaType(_))
        ));
        assert!(upload_name(None).is_err());
    }

    #[test]
    fn only_text_with_a_header_is_a_csv() {
        assert!(check_csv(b"a,b\n1,2\n").is_ok());
        assert!(check_csv("\u{feff}a\n".as_bytes()).is_ok());
        for bad in [&b""[..], b"\n\n", b"\x89PNG\r\n\x1a\n\0\0", b"a,,b\n"] {
            assert!(check_csv(bad).is_err(), "{bad:?}");
        }
        assert!(acceptable_content_type(Some("text/csv; charset=utf-8")));
        assert!(!acceptable_content_type(Some("image/png")));
    }

    #[test]
    fn uploads_never_replace_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let (a, rel_a) = write_upload(dir.path(), "p", "in.csv", b"n\n1\n").unwrap();
        let (b, rel_b) = write_upload(dir.path(), "p", "in.csv", b"n\n2\n").unwrap();
        assert_eq!((rel_a.as_str(), rel_b.as_str()), ("p/in.csv", "p/in-2.csv"));
        assert_eq!(std::fs::read(a).unwrap(), b"n\n1\n");
        assert_eq!(std::fs::read(b).unwrap(), b"n\n2\n");
        // No hidden temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path().join("p")).unwrap().count(), 2);
    }
}
