//! Assistants and their immutable versions.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{assistant, assistant_version};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
    sea_query::{Expr, ExprTrait},
};

use super::{pages, windowed};
use crate::domain::access::Tenant;
use crate::domain::{
    assistant::AssistantConfig,
    handoff::HandoffRules,
    ids::{AssistantId, OrgId, VersionId},
    pagination::{Page, PageRequest},
    template::TaskTemplate,
};

/// An assistant with its live version.
pub type AssistantRow = (assistant::Model, assistant_version::Model);

/// Inserts an assistant whose version 1 (`config`) is live.
pub async fn insert(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    config: &AssistantConfig,
    active: bool,
) -> Result<AssistantRow, DbErr> {
    let org = tenant.org();
    let now = Utc::now();
    let id = AssistantId::generate();
    let version_id = VersionId::generate();
    let assistant = assistant::ActiveModel {
        id: Set(id.as_str().to_owned()),
        org_id: Set(org.as_str().to_owned()),
        live_version_id: Set(version_id.as_str().to_owned()),
        latest_version: Set(1),
        active: Set(active),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
    }
    .insert(db)
    .await?;
    let version = insert_version_row(db, org, &id, version_id, 1, config, now).await?;
    Ok((assistant, version))
}

/// The assistant `id` of the organization with its live version, unless deleted.
pub async fn find(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &AssistantId,
) -> Result<Option<AssistantRow>, DbErr> {
    let org = tenant.org();
    let row = assistant::Entity::find_by_id(id.as_str())
        .filter(assistant::Column::OrgId.eq(org.as_str()))
        .filter(assistant::Column::DeletedAt.is_null())
        .find_also_related(assistant_version::Entity)
        .one(db)
        .await?;
    Ok(row.and_then(|(a, v)| v.map(|v| (a, v))))
}

/// The organization's assistants (not deleted) whose live version is named `name`, oldest
/// first (at most `limit`).
pub async fn find_by_name(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    name: &str,
    limit: u64,
) -> Result<Vec<AssistantRow>, DbErr> {
    let rows = assistant::Entity::find()
        .filter(assistant::Column::OrgId.eq(tenant.org().as_str()))
        .filter(assistant::Column::DeletedAt.is_null())
        .find_also_related(assistant_version::Entity)
        .filter(assistant_version::Column::Name.eq(name))
        .order_by_asc(assistant::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(a, v)| v.map(|v| (a, v)))
        .collect())
}

/// A page of the organization's assistants (not deleted), by creation.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    page: &PageRequest,
) -> Result<Page<AssistantRow>, DbErr> {
    let org = tenant.org();
    let query = assistant::Entity::find()
        .filter(assistant::Column::OrgId.eq(org.as_str()))
        .filter(assistant::Column::DeletedAt.is_null())
        .find_also_related(assistant_version::Entity);
    let rows = windowed(query, assistant::Column::Id, page).all(db).await?;
    Ok(page.finish(
        rows.into_iter()
            .filter_map(|(a, v)| v.map(|v| (a, v)))
            .collect(),
    ))
}

/// A page of the versions of `assistant`, oldest first.
pub async fn versions(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    assistant: &AssistantId,
    page: &PageRequest,
) -> Result<Page<assistant_version::Model>, DbErr> {
    let org = tenant.org();
    let query = assistant_version::Entity::find()
        .filter(assistant_version::Column::OrgId.eq(org.as_str()))
        .filter(assistant_version::Column::AssistantId.eq(assistant.as_str()));
    let rows = windowed(query, assistant_version::Column::Id, page)
        .all(db)
        .await?;
    Ok(page.finish(rows))
}

/// A page of each assistant's versions, oldest first.
pub async fn versions_of_many(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    assistants: &[String],
    page: &PageRequest,
) -> Result<HashMap<String, Page<assistant_version::Model>>, DbErr> {
    let org = tenant.org();
    let query =
        assistant_version::Entity::find().filter(assistant_version::Column::OrgId.eq(org.as_str()));
    pages::per_parent(
        db,
        query,
        assistant_version::Column::AssistantId,
        assistant_version::Column::Id,
        assistants,
        page,
    )
    .await
}

/// Version `number` of `assistant`.
pub async fn find_version(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    assistant: &AssistantId,
    number: i32,
) -> Result<Option<assistant_version::Model>, DbErr> {
    let org = tenant.org();
    assistant_version::Entity::find()
        .filter(assistant_version::Column::OrgId.eq(org.as_str()))
        .filter(assistant_version::Column::AssistantId.eq(assistant.as_str()))
        .filter(assistant_version::Column::Version.eq(number))
        .one(db)
        .await
}

/// The version `id`, whatever its assistant (for `node(id:)`).
pub async fn find_version_by_id(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &VersionId,
) -> Result<Option<assistant_version::Model>, DbErr> {
    let org = tenant.org();
    assistant_version::Entity::find_by_id(id.as_str())
        .filter(assistant_version::Column::OrgId.eq(org.as_str()))
        .one(db)
        .await
}

/// Reserves the next version number of a live assistant: the first write of an update
/// transaction, so concurrent updates queue here instead of colliding.
pub async fn reserve_next_version(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &AssistantId,
) -> Result<Option<i32>, DbErr> {
    let org = tenant.org();
    let result = assistant::Entity::update_many()
        .col_expr(
            assistant::Column::LatestVersion,
            Expr::col(assistant::Column::LatestVersion).add(1),
        )
        .col_expr(assistant::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(assistant::Column::Id.eq(id.as_str()))
        .filter(assistant::Column::OrgId.eq(org.as_str()))
        .filter(assistant::Column::DeletedAt.is_null())
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Ok(None);
    }
    let row = assistant::Entity::find_by_id(id.as_str())
        .filter(assistant::Column::OrgId.eq(org.as_str()))
        .one(db)
        .await?;
    Ok(row.map(|a| a.latest_version))
}

/// Writes version `number` of `assistant`.
pub async fn insert_version(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    assistant: &AssistantId,
    number: i32,
    config: &AssistantConfig,
) -> Result<assistant_version::Model, DbErr> {
    let org = tenant.org();
    insert_version_row(
        db,
        org,
        assistant,
        VersionId::generate(),
        number,
        config,
        Utc::now(),
    )
    .await
}

async fn insert_version_row(
    db: &impl ConnectionTrait,
    org: &OrgId,
    assistant: &AssistantId,
    id: VersionId,
    number: i32,
    config: &AssistantConfig,
    now: DateTime<Utc>,
) -> Result<assistant_version::Model, DbErr> {
    let templates = serde_json::to_value(&config.task_templates)
        .map_err(|e| DbErr::Custom(format!("encoding task templates: {e}")))?;
    let handoff = if config.handoff.is_off() {
        None
    } else {
        Some(
            serde_json::to_value(&config.handoff)
                .map_err(|e| DbErr::Custom(format!("encoding handoff rules: {e}")))?,
        )
    };
    assistant_version::ActiveModel {
        id: Set(id.into_string()),
        org_id: Set(org.as_str().to_owned()),
        assistant_id: Set(assistant.as_str().to_owned()),
        version: Set(number),
        name: Set(config.name.clone()),
        description: Set(config.description.clone()),
        tone: Set(config.tone.clone()),
        language: Set(config.language.clone()),
        instructions: Set(config.instructions.clone()),
        task_templates: Set(templates),
        temperature: Set(config.temperature),
        max_tokens: Set(config.max_tokens),
        top_k: Set(config.top_k),
        min_score: Set(config.min_score),
        handoff: Set(handoff),
        created_at: Set(now),
    }
    .insert(db)
    .await
}

/// Points the assistant's live version at `version_id`.
pub async fn set_live(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &AssistantId,
    version_id: &str,
) -> Result<(), DbErr> {
    let org = tenant.org();
    update(
        db,
        org,
        id,
        assistant::Column::LiveVersionId,
        Expr::value(version_id),
    )
    .await
}

/// Pauses or resumes the assistant.
pub async fn set_active(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &AssistantId,
    active: bool,
) -> Result<(), DbErr> {
    let org = tenant.org();
    update(db, org, id, assistant::Column::Active, Expr::value(active)).await
}

/// Soft-deletes the assistant; returns whether it existed.
pub async fn soft_delete(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &AssistantId,
) -> Result<bool, DbErr> {
    let org = tenant.org();
    let result = assistant::Entity::update_many()
        .col_expr(assistant::Column::DeletedAt, Expr::value(Utc::now()))
        .filter(assistant::Column::Id.eq(id.as_str()))
        .filter(assistant::Column::OrgId.eq(org.as_str()))
        .filter(assistant::Column::DeletedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

async fn update(
    db: &impl ConnectionTrait,
    org: &OrgId,
    id: &AssistantId,
    column: assistant::Column,
    value: Expr,
) -> Result<(), DbErr> {
    assistant::Entity::update_many()
        .col_expr(column, value)
        .col_expr(assistant::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(assistant::Column::Id.eq(id.as_str()))
        .filter(assistant::Column::OrgId.eq(org.as_str()))
        .filter(assistant::Column::DeletedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// The configuration a version row holds.
pub fn config_of(version: &assistant_version::Model) -> AssistantConfig {
    AssistantConfig {
        name: version.name.clone(),
        description: version.description.clone(),
        tone: version.tone.clone(),
        language: version.language.clone(),
        instructions: version.instructions.clone(),
        task_templates: templates_of(version),
        temperature: version.temperature,
        max_tokens: version.max_tokens,
        top_k: version.top_k,
        min_score: version.min_score,
        handoff: handoff_of(version),
    }
}

/// The handoff rules a version row holds (written by this module, so well-formed; none
/// when null).
pub fn handoff_of(version: &assistant_version::Model) -> HandoffRules {
    version
        .handoff
        .clone()
        .and_then(|rules| serde_json::from_value(rules).ok())
        .unwrap_or_default()
}

/// The task templates a version row holds (written by this module, so well-formed).
pub fn templates_of(version: &assistant_version::Model) -> Vec<TaskTemplate> {
    serde_json::from_value(version.task_templates.clone()).unwrap_or_default()
}
