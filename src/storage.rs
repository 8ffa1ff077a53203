//! Uploaded files, kept under `<org>/<source>` in the blob store until their source is
//! deleted: a directory (`file:///path`, by default `<data_dir>/uploads`) or an object store
//! every replica reads (`s3://bucket/prefix`; `gs://` and `az://` in builds with those
//! features), through the `object_store` crate LanceDB uses too.

use std::{path::Path, sync::Arc};

use anyhow::Context;
use object_store::{
    ObjectStore, ObjectStoreExt, PutPayload, local::LocalFileSystem, path::Path as Key,
};

use crate::domain::ids::{OrgId, SourceId};

/// Where uploads live.
#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// Where, for messages (no credentials).
    location: String,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl BlobStore {
    /// The store at `uri`: `file:///absolute/path`, or an object-store URI whose credentials
    /// and endpoint come from the usual environment (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL` for S3-compatible services).
    pub fn open(uri: &str) -> anyhow::Result<Self> {
        let url = url::Url::parse(uri)
            .with_context(|| format!("COMPANIN_BLOB_URI {uri:?} is not a URI"))?;
        if url.scheme() == "file" {
            let dir = url.to_file_path().map_err(|()| {
                anyhow::anyhow!("COMPANIN_BLOB_URI {uri:?} is not an absolute file path")
            })?;
            return Self::in_dir(&dir);
        }
        let store = remote(&url).with_context(|| format!("opening the blob store at {uri}"))?;
        Ok(Self {
            store,
            location: uri.to_owned(),
        })
    }

    /// A store in the directory `dir`, created if missing.
    pub fn in_dir(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let store = LocalFileSystem::new_with_prefix(dir)
            .with_context(|| format!("opening the blob store at {}", dir.display()))?;
        Ok(Self {
            store: Arc::new(store),
            location: dir.display().to_string(),
        })
    }

    /// The storage key of a source's file.
    pub fn key(org: &OrgId, source: &SourceId) -> String {
        format!("{org}/{source}")
    }

    fn path(key: &str) -> anyhow::Result<Key> {
        anyhow::ensure!(
            key.split('/').all(|part| !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')),
            "invalid storage key {key:?}"
        );
        Ok(Key::from(key))
    }

    /// Writes `bytes` under `key` (atomically: a reader sees all or nothing).
    pub async fn put(&self, key: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let path = Self::path(key)?;
        self.store
            .put(&path, PutPayload::from(bytes.to_vec()))
            .await
            .with_context(|| format!("writing {key} to the blob store at {}", self.location))?;
        Ok(())
    }

    /// The bytes under `key`.
    pub async fn get(&self, key: &str) -> anyhow::Result<Vec<u8>> {
        let path = Self::path(key)?;
        let read = async {
            let found = self.store.get(&path).await?;
            found.bytes().await
        };
        let bytes = read
            .await
            .with_context(|| format!("reading {key} from the blob store at {}", self.location))?;
        Ok(bytes.to_vec())
    }

    /// Removes `key`; a missing file is not an error.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        let path = Self::path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e).with_context(|| {
                format!("removing {key} from the blob store at {}", self.location)
            }),
        }
    }
}

/// An object store at `url`, configured from the environment, confined to the URL's path.
#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
fn remote(url: &url::Url) -> anyhow::Result<Arc<dyn ObjectStore>> {
    use object_store::prefix::PrefixStore;
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        #[cfg(feature = "s3")]
        "s3" | "s3a" => {
            let mut builder = object_store::aws::AmazonS3Builder::from_env().with_url(url.as_str());
            // An S3-compatible service on plain HTTP (a local MinIO or moto).
            let plain_http = std::env::var("AWS_ENDPOINT_URL")
                .or_else(|_| std::env::var("AWS_ENDPOINT"))
                .is_ok_and(|endpoint| endpoint.starts_with("http://"));
            if plain_http {
                builder = builder.with_allow_http(true);
            }
            Arc::new(builder.build()?)
        }
        #[cfg(feature = "gcs")]
        "gs" => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .build()?,
        ),
        #[cfg(feature = "azure")]
        "az" | "abfs" | "abfss" => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .build()?,
        ),
        other => anyhow::bail!(
            "unsupported blob store scheme {other:?}: use file://, s3://, gs:// or az://"
        ),
    };
    let prefix = url.path().trim_matches('/');
    Ok(if prefix.is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    })
}

/// Built without object-store backends.
#[cfg(not(any(feature = "s3", feature = "gcs", feature = "azure")))]
fn remote(url: &url::Url) -> anyhow::Result<Arc<dyn ObjectStore>> {
    anyhow::bail!(
        "this build has no object-store backends ({}://): rebuild with the s3, gcs or azure feature, or use file://",
        url.scheme()
    )
}
