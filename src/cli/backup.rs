//! `companin backup DIR` and `companin restore DIR`: the embedded deployment's state — the
//! SQLite database, the vectors, the uploads and the widget signing keys — copied while the
//! server runs, and put back into a data dir.
//!
//! The database is copied first, with `VACUUM INTO` (one transaction: a consistent
//! snapshot), then the vectors and the uploads: every source the snapshot holds as indexed
//! has its chunks and file in the copy (they are written before the source is marked). In
//! each LanceDB table the version manifests are copied before the data files, so every
//! version the copy names has its files (data files are never rewritten in place); the copy
//! is read back, and taken again if maintenance pruned a file meanwhile. A source deleted
//! between the two steps comes back without its chunks (delete it again).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::Utc;
use sea_orm::ConnectionTrait;
use serde::{Deserialize, Serialize};

use crate::{config::Settings, db, vector::VectorStore};

/// The manifest a backup directory holds.
const MANIFEST: &str = "backup.json";
/// The database's file in a backup.
const DATABASE: &str = "companin.db";
/// The vectors' directory in a backup.
const VECTORS: &str = "lancedb";
/// The uploads' directory in a backup.
const UPLOADS: &str = "uploads";
/// The widget signing keys' file, in the data dir and in a backup.
const KEYS: &str = "jwt-keys.json";
/// The format of [`Manifest`].
const FORMAT: u32 = 1;

/// What a backup holds.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    created_at: chrono::DateTime<Utc>,
    companin_version: String,
    /// The latest migration the database had.
    migration: Option<String>,
    vectors: bool,
    uploads: bool,
    signing_keys: bool,
}

/// Copies the embedded stores of `settings` into `dir` (new or empty).
pub async fn backup(settings: &Settings, dir: &Path) -> anyhow::Result<()> {
    let database = sqlite_file(settings)?;
    if !database.exists() {
        bail!("no database at {}: nothing to back up", database.display());
    }
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} is not empty: back up into a new directory",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;

    let connection = db::connect(settings).await?;
    let migration = db::migration_status(&connection)
        .await?
        .into_iter()
        .filter(|(_, applied)| *applied)
        .map(|(name, _)| name)
        .next_back();
    let copy = dir.join(DATABASE);
    let target = copy.to_str().context("the backup path is not UTF-8")?;
    connection
        .execute_unprepared(&format!("VACUUM INTO '{}'", target.replace('\'', "''")))
        .await
        .context("copying the database (VACUUM INTO)")?;
    connection.close().await.ok();
    println!(
        "database: {} ({})",
        copy.display(),
        size(std::fs::metadata(&copy).map_or(0, |m| m.len()))
    );

    let vectors = match local_dir(&settings.lancedb_uri()) {
        Some(source) if source.exists() => {
            let (files, sources) = copy_vectors(settings, &source, &dir.join(VECTORS)).await?;
            println!("vectors: {files} files, chunks of {sources} sources");
            true
        }
        Some(_) => false,
        None => {
            eprintln!(
                "note: the vectors live in {}: back that store up with its own tools",
                settings.lancedb_uri()
            );
            false
        }
    };
    let uploads = match local_dir(&settings.blob_location()) {
        Some(source) if source.exists() => {
            let files = copy_tree(&source, &dir.join(UPLOADS), &[])?;
            println!("uploads: {files} files");
            true
        }
        Some(_) => false,
        None => {
            eprintln!(
                "note: the uploads live in {}: back that store up with its own tools",
                settings.blob_location()
            );
            false
        }
    };
    let keys = settings.data_dir.join(KEYS);
    let signing_keys = keys.exists();
    if signing_keys {
        std::fs::copy(&keys, dir.join(KEYS)).context("copying the signing keys")?;
        println!("signing keys: {KEYS}");
    }
    let manifest = Manifest {
        format: FORMAT,
        created_at: Utc::now(),
        companin_version: env!("CARGO_PKG_VERSION").to_owned(),
        migration,
        vectors,
        uploads,
        signing_keys,
    };
    std::fs::write(dir.join(MANIFEST), serde_json::to_vec_pretty(&manifest)?)?;
    println!("backup: {}", dir.display());
    Ok(())
}

/// Copies the vector store at `from` to `to` and reads every chunk of the copy back; a copy
/// that misses a file (maintenance pruned a version while it was copied) is taken again.
/// Returns the files copied and the sources the copy holds chunks of.
async fn copy_vectors(settings: &Settings, from: &Path, to: &Path) -> anyhow::Result<(u64, usize)> {
    let mut last = None;
    for _ in 0..3 {
        if to.exists() {
            std::fs::remove_dir_all(to)?;
        }
        let files = copy_tree(from, to, &["_versions"])?;
        let copy = to.to_str().context("the backup path is not UTF-8")?;
        let read = async {
            let store = VectorStore::open(copy, settings.vectors.vector_index_threshold).await?;
            store.indexed_sources().await
        };
        match read.await {
            Ok(sources) => return Ok((files, sources.len())),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| anyhow::anyhow!("no copy was taken"))
        .context("the copied vectors do not read back"))
}

/// Puts the backup in `dir` into the data dir of `settings`; an existing database is
/// replaced only with `force` (stop the server first).
pub async fn restore(settings: &Settings, dir: &Path, force: bool) -> anyhow::Result<()> {
    let manifest: Manifest = std::fs::read(dir.join(MANIFEST))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .with_context(|| {
            format!(
                "{} is not a Companin backup (no readable {MANIFEST})",
                dir.display()
            )
        })?;
    if manifest.format != FORMAT {
        bail!(
            "the backup's format {} is not one this version reads ({FORMAT})",
            manifest.format
        );
    }
    if let Some(migration) = &manifest.migration
        && !db::knows_migration(migration)
    {
        bail!(
            "the backup was taken by Companin {} and holds migration {migration}, which this version does not know: restore it with that version or a later one",
            manifest.companin_version
        );
    }
    let database = sqlite_file(settings)?;
    if database.exists() && !force {
        bail!(
            "a database exists at {}: stop the server, then pass --force to replace it",
            database.display()
        );
    }
    if let Some(parent) = database.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // Copied beside it, then moved over: the database is never half-written. The one it
    // replaces is kept (`.db.before-restore`) until the restored one has migrated.
    let partial = database.with_extension("db.restoring");
    std::fs::copy(dir.join(DATABASE), &partial).context("copying the database")?;
    let kept = database.with_extension("db.before-restore");
    if database.exists() {
        checkpoint(settings).await?;
        std::fs::rename(&database, &kept).context("setting the current database aside")?;
    }
    for stale in ["-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{stale}", database.display()));
        if path.exists() {
            std::fs::remove_file(&path)?;
        }
    }
    std::fs::rename(&partial, &database).context("putting the database in place")?;
    println!("database: {}", database.display());

    if manifest.vectors {
        let target = local_dir(&settings.lancedb_uri())
            .context("the backup holds vectors, but COMPANIN_LANCEDB_URI is not a local path")?;
        if target.exists() {
            std::fs::remove_dir_all(&target)
                .with_context(|| format!("clearing {}", target.display()))?;
        }
        let files = copy_tree(&dir.join(VECTORS), &target, &[])?;
        println!("vectors: {files} files");
    }
    if manifest.uploads {
        let target = local_dir(&settings.blob_location())
            .context("the backup holds uploads, but COMPANIN_BLOB_URI is not a local path")?;
        let files = copy_tree(&dir.join(UPLOADS), &target, &[])?;
        println!("uploads: {files} files");
    }
    if manifest.signing_keys {
        std::fs::copy(dir.join(KEYS), settings.data_dir.join(KEYS))
            .context("copying the signing keys")?;
        println!("signing keys: {KEYS}");
    }
    // A backup of an older version is brought up to this one's schema.
    let connection = db::connect(settings).await?;
    db::migrate(&connection).await.with_context(|| {
        format!(
            "migrating the restored database (the one it replaced is kept as {})",
            kept.display()
        )
    })?;
    if kept.exists() {
        std::fs::remove_file(&kept)?;
    }
    let organizations = crate::repo::organizations::all(&connection).await?.len();
    println!(
        "restored the backup of {} ({organizations} organizations)",
        manifest.created_at.to_rfc3339()
    );
    Ok(())
}

/// Folds the write-ahead log of the database about to be replaced into its file, so the
/// copy set aside is whole.
async fn checkpoint(settings: &Settings) -> anyhow::Result<()> {
    let connection = db::connect(settings).await?;
    connection
        .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
        .await
        .context("checkpointing the current database")?;
    connection.close().await.ok();
    Ok(())
}

/// The SQLite file of `settings`; an error for another database.
pub(super) fn sqlite_file(settings: &Settings) -> anyhow::Result<PathBuf> {
    let url = settings.database_url();
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        bail!(
            "backup and restore cover the embedded SQLite database; for {}, use the database's own tools (pg_dump)",
            crate::config::redact_url(&url)
        );
    };
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        bail!("the database is in memory: there is nothing to back up");
    }
    Ok(PathBuf::from(path))
}

/// The directory a store URI names, when it is local (a path or `file://`).
fn local_dir(uri: &str) -> Option<PathBuf> {
    match uri.split_once("://") {
        None => Some(PathBuf::from(uri)),
        Some(("file", path)) => Some(PathBuf::from(path)),
        Some(_) => None,
    }
}

/// Copies the tree at `from` into `to`; in every directory, entries named in `first` go
/// before the rest. Files that vanish while copying (a pruned old version) are skipped.
/// Returns how many files were copied.
fn copy_tree(from: &Path, to: &Path, first: &[&str]) -> anyhow::Result<u64> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let mut entries: Vec<_> = std::fs::read_dir(from)
        .with_context(|| format!("listing {}", from.display()))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| {
        let name = e.file_name();
        (!first.iter().any(|f| name == **f), name)
    });
    let mut copied = 0;
    for entry in entries {
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            copied += copy_tree(&source, &target, first)?;
        } else if kind.is_file() {
            match std::fs::copy(&source, &target) {
                Ok(_) => copied += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("copying {}", source.display()));
                }
            }
        }
    }
    Ok(copied)
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / f64::from(1 << 10)),
        b => format!("{b} bytes"),
    }
}
