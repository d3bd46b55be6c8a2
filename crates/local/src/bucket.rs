//! Directory buckets: an S3 bucket is a directory, a key is a relative path inside it.
//!
//! Keys are checked before they touch the file system — no absolute paths, no `.`/`..`
//! segments, no NUL or control characters — so a hostile key can never read or write outside
//! its bucket. Writes go to a temporary file that is renamed into place, so a reader sees the
//! old object or the new one, never half of one (the same guarantee S3 gives).

use async_trait::async_trait;
use sluice_core::StoreError;
use sluice_core::model::ObjectRef;
use sluice_core::ports::ObjectStore;
use std::path::{Path, PathBuf};

/// Buckets as directories under one root.
#[derive(Debug, Clone)]
pub struct DirObjectStore {
    root: PathBuf,
}

impl DirObjectStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file an object lives in, or an error for a key that could escape its bucket.
    pub fn path_of(&self, bucket: &str, key: &str) -> Result<PathBuf, StoreError> {
        let bad =
            |why: &str| StoreError::Backend(format!("invalid object s3://{bucket}/{key}: {why}"));
        if bucket.is_empty()
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
            || bucket.starts_with('.')
        {
            return Err(bad("bucket name"));
        }
        if key.is_empty() || key.len() > 1024 {
            return Err(bad("empty or longer than 1024 bytes"));
        }
        if key.starts_with('/') || key.chars().any(char::is_control) || key.contains('\\') {
            return Err(bad("absolute, backslash or control characters"));
        }
        if key
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return Err(bad("empty, '.' or '..' path segment"));
        }
        Ok(self.root.join(bucket).join(key))
    }

    /// Where `object` is on disk. A prefix (a key ending in '/': a directory output, or a
    /// stage's one file per task) is its directory.
    pub fn path_of_ref(&self, object: &ObjectRef) -> Result<PathBuf, StoreError> {
        let key = object.key.strip_suffix('/').unwrap_or(&object.key);
        self.path_of(&object.bucket, key)
    }

    pub fn get_sync(&self, bucket: &str, key: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.path_of(bucket, key)?;
        std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound(format!("s3://{bucket}/{key}")),
            _ => StoreError::Backend(format!("read {}: {e}", path.display())),
        })
    }

    pub fn put_sync(&self, bucket: &str, key: &str, body: &[u8]) -> Result<(), StoreError> {
        let path = self.path_of(bucket, key)?;
        let io = |e: std::io::Error| StoreError::Backend(format!("write {}: {e}", path.display()));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let tmp = path.with_file_name(format!(
            ".{}.{}.tmp",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("object"),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&tmp, body).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }

    /// Keys under `prefix`, sorted (like ListObjectsV2).
    pub fn list_sync(&self, bucket: &str, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let base = self.root.join(bucket);
        let mut out = Vec::new();
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::Backend(format!("list {}: {e}", dir.display()))),
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_dir() {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(&base) {
                    let key = rel.to_string_lossy().replace('\\', "/");
                    let hidden = key.split('/').any(|s| s.starts_with('.'));
                    if !hidden && key.starts_with(prefix) {
                        out.push((key, meta.len()));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

#[async_trait]
impl ObjectStore for DirObjectStore {
    async fn get(&self, object: &ObjectRef) -> Result<Vec<u8>, StoreError> {
        self.get_sync(&object.bucket, &object.key)
    }

    async fn put(
        &self,
        object: &ObjectRef,
        body: Vec<u8>,
        _content_type: &str,
    ) -> Result<(), StoreError> {
        self.put_sync(&object.bucket, &object.key, &body)
    }

    async fn exists(&self, object: &ObjectRef) -> Result<bool, StoreError> {
        Ok(self.path_of_ref(object)?.is_file())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirObjectStore::new(dir.path());
        let obj = ObjectRef::new("data", "jobs/j1/manifest.json");
        assert!(matches!(
            store.get(&obj).await,
            Err(StoreError::NotFound(_))
        ));
        store
            .put(&obj, b"[1]".to_vec(), "application/json")
            .await
            .unwrap();
        assert_eq!(store.get(&obj).await.unwrap(), b"[1]");
        assert!(store.exists(&obj).await.unwrap());
        assert_eq!(
            store.list_sync("data", "jobs/").unwrap(),
            vec![("jobs/j1/manifest.json".to_string(), 3)]
        );
    }

    #[test]
    fn hostile_keys_never_leave_the_bucket() {
        let store = DirObjectStore::new("/tmp/x");
        for key in [
            "../etc/passwd",
            "/etc/passwd",
            "a/../../b",
            "a//b",
            "a\u{0}b",
            "a\\..\\b",
            "",
        ] {
            assert!(store.path_of("data", key).is_err(), "{key:?} accepted");
        }
        assert!(store.path_of("../x", "a").is_err());
    }
}
