//! Assistants with versioned configuration.

use std::collections::HashMap;

use entity::assistant_version;
use sea_orm::DatabaseConnection;

use crate::{
    auth::{Principal, Scope, Tenant},
    domain::{
        assistant::AssistantPatch,
        ids::{AssistantId, VersionId},
        pagination::{Page, PageRequest},
    },
    error::{AppError, AppResult},
    repo::{self, assistants::AssistantRow},
    services::webhooks::{self, Event},
    state::AppState,
};

/// Creates an assistant; its version 1 is live.
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    input: AssistantPatch,
    active: bool,
) -> AppResult<AssistantRow> {
    let tenant = principal.scope(Scope::Write)?;
    let config = input.into_new_config()?;
    let txn = crate::db::begin_write(db).await?;
    let row = repo::assistants::insert(&txn, &tenant, &config, active).await?;
    txn.commit().await?;
    Ok(row)
}

/// The assistant `id` with its live version.
pub async fn get(
    db: &DatabaseConnection,
    principal: &Principal,
    id: &AssistantId,
) -> AppResult<AssistantRow> {
    let tenant = principal.scope(Scope::Read)?;
    existing(db, &tenant, id).await
}

/// The assistant `id` of the handle's organization (not deleted) with its live version, or `NOT_FOUND`.
async fn existing(
    db: &DatabaseConnection,
    tenant: &Tenant,
    id: &AssistantId,
) -> AppResult<AssistantRow> {
    repo::assistants::find(db, tenant, id)
        .await?
        .ok_or(AppError::NotFound("assistant"))
}

/// A page of assistants.
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    page: &PageRequest,
) -> AppResult<Page<AssistantRow>> {
    let tenant = principal.scope(Scope::Read)?;
    Ok(repo::assistants::list(db, &tenant, page).await?)
}

/// A version with whether it is the live one.
#[derive(Debug, Clone)]
pub struct VersionRecord {
    /// The version.
    pub version: assistant_version::Model,
    /// Whether it is the assistant's live version.
    pub live: bool,
}

/// Writes a new immutable version: `base_version` (default: the latest) with `patch` applied,
/// promoted to live unless `promote` is false (a draft).
pub async fn update(
    state: &AppState,
    principal: &Principal,
    id: &AssistantId,
    patch: AssistantPatch,
    promote: bool,
    base_version: Option<i32>,
) -> AppResult<VersionRecord> {
    let tenant = principal.scope(Scope::Write)?;
    let db = &state.db;
    if patch.is_empty() && base_version.is_none() {
        return Err(AppError::bad_input(
            "input",
            "give at least one setting to change",
        ));
    }
    let txn = crate::db::begin_write(db).await?;
    let number = repo::assistants::reserve_next_version(&txn, &tenant, id)
        .await?
        .ok_or(AppError::NotFound("assistant"))?;
    let base_number = base_version.unwrap_or(number - 1);
    let base = repo::assistants::find_version(&txn, &tenant, id, base_number)
        .await?
        .ok_or_else(|| {
            AppError::bad_input(
                "base_version",
                format!("version {base_number} does not exist"),
            )
        })?;
    let config = patch.apply_to(repo::assistants::config_of(&base))?;
    let version = repo::assistants::insert_version(&txn, &tenant, id, number, &config).await?;
    let mut emitted = None;
    if promote {
        let previous = repo::assistants::find(&txn, &tenant, id)
            .await?
            .map(|(assistant, _)| assistant.live_version_id);
        repo::assistants::set_live(&txn, &tenant, id, &version.id).await?;
        let event = Event::version_promoted(id.as_str(), &version.id, number, previous.as_deref());
        emitted = webhooks::emit(&txn, state.outbox(), &tenant, event).await?;
    }
    txn.commit().await?;
    if emitted.is_some() {
        state.webhook_signal.notify();
    }
    Ok(VersionRecord {
        version,
        live: promote,
    })
}

/// A page of each assistant's versions, oldest first, in one read (read scope).
pub async fn versions_of_many(
    db: &DatabaseConnection,
    principal: &Principal,
    assistant_ids: &[String],
    page: &PageRequest,
) -> AppResult<HashMap<String, Page<assistant_version::Model>>> {
    let tenant = principal.scope(Scope::Read)?;
    Ok(repo::assistants::versions_of_many(db, &tenant, assistant_ids, page).await?)
}

/// The versions of an assistant, oldest first.
pub async fn versions(
    db: &DatabaseConnection,
    principal: &Principal,
    id: &AssistantId,
    page: &PageRequest,
) -> AppResult<Page<VersionRecord>> {
    let tenant = principal.scope(Scope::Read)?;
    let (assistant, _) = get(db, principal, id).await?;
    let page = repo::assistants::versions(db, &tenant, id, page).await?;
    Ok(page.map(|version| VersionRecord {
        live: version.id == assistant.live_version_id,
        version,
    }))
}

/// Makes version `number` live: forwards, or back (rollback).
pub async fn promote(
    state: &AppState,
    principal: &Principal,
    id: &AssistantId,
    number: i32,
) -> AppResult<AssistantRow> {
    let tenant = principal.scope(Scope::Write)?;
    let db = &state.db;
    let (assistant, _) = existing(db, &tenant, id).await?;
    let version = repo::assistants::find_version(db, &tenant, id, number)
        .await?
        .ok_or(AppError::NotFound("assistant version"))?;
    if assistant.live_version_id != version.id {
        let txn = crate::db::begin_write(db).await?;
        repo::assistants::set_live(&txn, &tenant, id, &version.id).await?;
        let event = Event::version_promoted(
            id.as_str(),
            &version.id,
            number,
            Some(&assistant.live_version_id),
        );
        let emitted = webhooks::emit(&txn, state.outbox(), &tenant, event).await?;
        txn.commit().await?;
        if emitted.is_some() {
            state.webhook_signal.notify();
        }
    }
    existing(db, &tenant, id).await
}

/// Pauses (`false`) or resumes an assistant.
pub async fn set_active(
    db: &DatabaseConnection,
    principal: &Principal,
    id: &AssistantId,
    active: bool,
) -> AppResult<AssistantRow> {
    let tenant = principal.scope(Scope::Write)?;
    existing(db, &tenant, id).await?;
    repo::assistants::set_active(db, &tenant, id, active).await?;
    existing(db, &tenant, id).await
}

/// Deletes an assistant. History keeps its versions.
pub async fn delete(
    db: &DatabaseConnection,
    principal: &Principal,
    id: &AssistantId,
) -> AppResult<()> {
    let tenant = principal.scope(Scope::Write)?;
    if repo::assistants::soft_delete(db, &tenant, id).await? {
        Ok(())
    } else {
        Err(AppError::NotFound("assistant"))
    }
}

/// The version `id` (for `node(id:)`). Versions of a deleted assistant answer `NOT_FOUND`
/// like the assistant itself.
pub async fn version_by_id(
    db: &DatabaseConnection,
    principal: &Principal,
    id: &VersionId,
) -> AppResult<VersionRecord> {
    let tenant = principal.scope(Scope::Read)?;
    let version = repo::assistants::find_version_by_id(db, &tenant, id)
        .await?
        .ok_or(AppError::NotFound("assistant version"))?;
    let (assistant, _) = repo::assistants::find(
        db,
        &tenant,
        &AssistantId::from_db(version.assistant_id.clone()),
    )
    .await?
    .ok_or(AppError::NotFound("assistant version"))?;
    Ok(VersionRecord {
        live: version.id == assistant.live_version_id,
        version,
    })
}
