//! The task's JSON result and how it is written: atomically (temporary file in
//! the destination directory + rename), so a reader or a retry never sees a
//! half-written file even if the task is killed mid-write.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Contents of the result file. The first seven fields are the contract with the
/// pipeline's aggregator; the rest describe the run for humans and benchmarks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskResult {
    /// Eb/N0 in dB.
    pub ebn0_db: f64,
    /// Seed the task was run with.
    pub seed: u64,
    /// Simulated bits.
    pub bits: u64,
    /// Bit errors.
    pub errors: u64,
    /// `errors / bits`.
    pub ber: f64,
    /// The closed-form BER at this Eb/N0 ([`crate::theory::bpsk_awgn_ber`]), for the
    /// aggregate to carry beside the simulated one.
    pub ber_theory: f64,
    /// Wall-clock seconds spent simulating.
    pub elapsed_s: f64,
    /// Pipeline task id, if one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Frames simulated.
    pub frames: u64,
    /// Bits per frame.
    pub bits_per_frame: u64,
    /// Worker threads used.
    pub threads: usize,
    /// SIMD kernel used (does not affect the counts).
    pub kernel: String,
    /// Throughput, `bits / elapsed_s`.
    pub bits_per_s: f64,
}

/// Serialises `result` as pretty JSON followed by a newline.
pub fn to_json(result: &TaskResult) -> String {
    // Serialising a struct of plain numbers and strings cannot fail; a NaN or
    // infinity would become `null`, which serde_json handles without error.
    let mut s =
        serde_json::to_string_pretty(result).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

/// Writes `contents` to `path` atomically, creating missing parent directories.
///
/// The data goes to a uniquely named temporary file next to `path`, is flushed
/// to disk, then renamed over `path` (atomic on POSIX file systems). On error
/// the temporary file is removed.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("output path {} has no file name", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TaskResult {
        TaskResult {
            ebn0_db: 4.0,
            seed: 17,
            bits: 1000,
            errors: 12,
            ber: 0.012,
            ber_theory: 0.0125,
            elapsed_s: 0.5,
            task_id: None,
            frames: 10,
            bits_per_frame: 100,
            threads: 2,
            kernel: "avx2".into(),
            bits_per_s: 2000.0,
        }
    }

    #[test]
    fn json_has_contract_fields_first() {
        let json = to_json(&sample());
        let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        let keys: Vec<_> = v.as_object().expect("object").keys().cloned().collect();
        assert_eq!(
            &keys[..7],
            [
                "ebn0_db",
                "seed",
                "bits",
                "errors",
                "ber",
                "ber_theory",
                "elapsed_s"
            ]
        );
        assert_eq!(v["ebn0_db"], 4.0);
        assert_eq!(v["errors"], 12);
        assert!(v.get("task_id").is_none());
        let mut with_id = sample();
        with_id.task_id = Some("job-1/task-17".into());
        assert!(to_json(&with_id).contains("\"task_id\": \"job-1/task-17\""));
    }

    #[test]
    fn atomic_write_creates_dirs_and_replaces() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/result.json");
        write_atomic(&path, b"one").expect("first write");
        write_atomic(&path, b"two").expect("second write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "two");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
            .expect("list")
            .collect();
        assert_eq!(leftovers.len(), 1, "temporary file left behind");
    }

    #[test]
    fn atomic_write_rejects_path_without_file_name() {
        assert!(write_atomic(Path::new("/"), b"x").is_err());
    }
}
