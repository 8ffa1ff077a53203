//! Which sources an assistant may or must not use.

use std::collections::HashMap;

use chrono::Utc;
use entity::assistant_knowledge;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set, sea_query::OnConflict,
};

use crate::domain::access::Tenant;
use crate::domain::ids::{AssistantId, SourceId};

/// How an assistant treats a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Only linked sources are used, when any is linked.
    Linked,
    /// Never used.
    Excluded,
}

impl Rule {
    fn as_str(self) -> &'static str {
        match self {
            Rule::Linked => "LINKED",
            Rule::Excluded => "EXCLUDED",
        }
    }
}

/// Sets the rule for (`assistant`, `source`), replacing any earlier one.
pub async fn set(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    assistant: &AssistantId,
    source: &SourceId,
    rule: Rule,
) -> Result<(), DbErr> {
    let org = tenant.org();
    let row = assistant_knowledge::ActiveModel {
        assistant_id: Set(assistant.as_str().to_owned()),
        source_id: Set(source.as_str().to_owned()),
        org_id: Set(org.as_str().to_owned()),
        mode: Set(rule.as_str().to_owned()),
        created_at: Set(Utc::now()),
    };
    assistant_knowledge::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                assistant_knowledge::Column::AssistantId,
                assistant_knowledge::Column::SourceId,
            ])
            .update_columns([
                assistant_knowledge::Column::Mode,
                assistant_knowledge::Column::CreatedAt,
            ])
            .to_owned(),
        )
        .exec(db)
        .await?;
    Ok(())
}

/// Removes the rule for (`assistant`, `source`).
pub async fn remove(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    assistant: &AssistantId,
    source: &SourceId,
) -> Result<(), DbErr> {
    let org = tenant.org();
    assistant_knowledge::Entity::delete_many()
        .filter(assistant_knowledge::Column::OrgId.eq(org.as_str()))
        .filter(assistant_knowledge::Column::AssistantId.eq(assistant.as_str()))
        .filter(assistant_knowledge::Column::SourceId.eq(source.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

/// The linked and the excluded source ids of `assistant`.
pub async fn rules(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    assistant: &AssistantId,
) -> Result<(Vec<String>, Vec<String>), DbErr> {
    let org = tenant.org();
    let rows = assistant_knowledge::Entity::find()
        .filter(assistant_knowledge::Column::OrgId.eq(org.as_str()))
        .filter(assistant_knowledge::Column::AssistantId.eq(assistant.as_str()))
        .all(db)
        .await?;
    let (linked, excluded): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .partition(|r| r.mode == Rule::Linked.as_str());
    Ok((
        linked.into_iter().map(|r| r.source_id).collect(),
        excluded.into_iter().map(|r| r.source_id).collect(),
    ))
}

/// The linked and excluded source ids of each assistant, in one query.
pub async fn rules_of_many(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    assistants: &[String],
) -> Result<HashMap<String, (Vec<String>, Vec<String>)>, DbErr> {
    let org = tenant.org();
    let mut rules: HashMap<String, (Vec<String>, Vec<String>)> = assistants
        .iter()
        .map(|a| (a.clone(), (Vec::new(), Vec::new())))
        .collect();
    let rows = assistant_knowledge::Entity::find()
        .filter(assistant_knowledge::Column::OrgId.eq(org.as_str()))
        .filter(
            assistant_knowledge::Column::AssistantId.is_in(assistants.iter().map(String::as_str)),
        )
        .all(db)
        .await?;
    for row in rows {
        let (linked, excluded) = rules.entry(row.assistant_id).or_default();
        if row.mode == Rule::Linked.as_str() {
            linked.push(row.source_id);
        } else {
            excluded.push(row.source_id);
        }
    }
    Ok(rules)
}
