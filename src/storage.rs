//! Uploaded files, kept under `<data_dir>/uploads/<org>/<source>` until their source is
//! deleted.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::domain::ids::{OrgId, SourceId};

/// Where uploads live.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// A store under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            root: data_dir.join("uploads"),
        }
    }

    /// The storage key of a source's file.
    pub fn key(org: &OrgId, source: &SourceId) -> String {
        format!("{org}/{source}")
    }

    fn path(&self, key: &str) -> anyhow::Result<PathBuf> {
        anyhow::ensure!(
            key.split('/').all(|part| !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')),
            "invalid storage key {key:?}"
        );
        Ok(self.root.join(key))
    }

    /// Writes `bytes` under `key` (atomically: a reader sees all or nothing).
    pub async fn put(&self, key: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        let partial = path.with_extension("partial");
        tokio::fs::write(&partial, bytes)
            .await
            .with_context(|| format!("writing {}", partial.display()))?;
        tokio::fs::rename(&partial, &path)
            .await
            .with_context(|| format!("moving {} into place", path.display()))
    }

    /// The bytes under `key`.
    pub async fn get(&self, key: &str) -> anyhow::Result<Vec<u8>> {
        let path = self.path(key)?;
        tokio::fs::read(&path)
            .await
            .with_context(|| format!("reading {}", path.display()))
    }

    /// Removes `key`; a missing file is not an error.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        }
    }
}
