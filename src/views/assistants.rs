//! Assistants and their versions.

use async_graphql::{ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use entity::assistant_version;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    domain::{
        assistant::AssistantPatch, handoff::HandoffRules as DomainHandoff,
        template::TaskTemplate as DomainTemplate,
    },
    repo::assistants::{AssistantRow, handoff_of, templates_of},
    services::assistants::VersionRecord,
};

/// A named prompt template with `{{placeholders}}`.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct TaskTemplate {
    /// Unique name within the assistant.
    pub name: String,
    /// The prompt text.
    pub template: String,
    /// The placeholder names the template uses, in order of appearance.
    pub placeholders: Vec<String>,
}

impl From<DomainTemplate> for TaskTemplate {
    fn from(t: DomainTemplate) -> Self {
        Self {
            placeholders: t.placeholders(),
            name: t.name,
            template: t.template,
        }
    }
}

/// When a version hands a conversation to a person by itself. Every rule is off until set.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct HandoffRules {
    /// A rating (of the conversation or one of its replies) at most this, 1–5.
    pub on_rating_at_most: Option<i32>,
    /// This many visitor turns in a row whose replies found no passage above the minimum
    /// score.
    pub after_unanswered_turns: Option<i32>,
    /// Words or phrases that hand off a visitor message holding one (whole words, case and
    /// accents aside): "human", "agent", "mens", "pessoa", "persona"…
    pub keywords: Vec<String>,
}

impl From<DomainHandoff> for HandoffRules {
    fn from(r: DomainHandoff) -> Self {
        Self {
            on_rating_at_most: r.on_rating_at_most,
            after_unanswered_turns: r.after_unanswered_turns,
            keywords: r.keywords,
        }
    }
}

/// Handoff rules to store; they replace the base version's. `{}` turns every rule off.
#[derive(Debug, Clone, Default, InputObject, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoffRulesInput {
    /// A rating at most this (1–5) hands the conversation to a person.
    pub on_rating_at_most: Option<i32>,
    /// This many unanswered visitor turns in a row (1–20) hand it to a person.
    pub after_unanswered_turns: Option<i32>,
    /// A visitor message holding one of these (at most 50, each ≤ 100 characters) hands it
    /// to a person.
    pub keywords: Option<Vec<String>>,
}

impl From<HandoffRulesInput> for DomainHandoff {
    fn from(i: HandoffRulesInput) -> Self {
        Self {
            on_rating_at_most: i.on_rating_at_most,
            after_unanswered_turns: i.after_unanswered_turns,
            keywords: i.keywords.unwrap_or_default(),
        }
    }
}

/// A task template to store.
#[derive(Debug, Clone, InputObject, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskTemplateInput {
    /// Unique name: letters, digits, `-` and `_`.
    pub name: String,
    /// The prompt text; placeholders are written `{{name}}`.
    pub template: String,
}

/// The settings one version holds (shown inline on `Assistant` and `AssistantVersion`).
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct AssistantSettings {
    /// Display name.
    pub name: String,
    /// What the assistant is for.
    pub description: String,
    /// How it sounds.
    pub tone: String,
    /// BCP 47 language tag.
    pub language: String,
    /// The system prompt.
    pub instructions: String,
    /// Named prompt templates.
    pub task_templates: Vec<TaskTemplate>,
    /// Sampling temperature (0–2).
    pub temperature: f64,
    /// Longest reply in tokens.
    pub max_tokens: i32,
    /// Knowledge chunks retrieved per message.
    pub top_k: i32,
    /// Lowest retrieval score used (0–1).
    pub min_score: f64,
    /// When a conversation goes to a person by itself.
    pub handoff: HandoffRules,
}

impl From<&assistant_version::Model> for AssistantSettings {
    fn from(v: &assistant_version::Model) -> Self {
        Self {
            name: v.name.clone(),
            description: v.description.clone(),
            tone: v.tone.clone(),
            language: v.language.clone(),
            instructions: v.instructions.clone(),
            task_templates: templates_of(v).into_iter().map(Into::into).collect(),
            temperature: v.temperature,
            max_tokens: v.max_tokens,
            top_k: v.top_k,
            min_score: v.min_score,
            handoff: handoff_of(v).into(),
        }
    }
}

/// An assistant: a persona answering an organization's visitors. Its settings are those of
/// its live version.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
#[graphql(complex)]
pub struct Assistant {
    /// `asst_…`
    #[schema(value_type = String)]
    pub id: ID,
    /// The live version's settings.
    #[graphql(flatten)]
    #[serde(flatten)]
    pub settings: AssistantSettings,
    /// `false` pauses the assistant: new conversations and messages are refused.
    pub active: bool,
    /// Number of the live version.
    pub version: i32,
    /// Number of the newest version (a draft when above `version`).
    pub latest_version: i32,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its live pointer, activity or versions last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<AssistantRow> for Assistant {
    fn from((a, v): AssistantRow) -> Self {
        Self {
            id: ID(a.id),
            settings: AssistantSettings::from(&v),
            active: a.active,
            version: v.version,
            latest_version: a.latest_version,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// One immutable configuration of an assistant.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct AssistantVersion {
    /// `ver_…`
    #[schema(value_type = String)]
    pub id: ID,
    /// The assistant it configures.
    #[schema(value_type = String)]
    pub assistant_id: ID,
    /// 1, 2, 3…
    pub version: i32,
    /// Whether this is the live version.
    pub is_live: bool,
    /// The settings this version holds.
    #[graphql(flatten)]
    #[serde(flatten)]
    pub settings: AssistantSettings,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

impl AssistantVersion {
    /// The view of `version`, which is live or not.
    pub fn new(version: assistant_version::Model, is_live: bool) -> Self {
        Self {
            settings: AssistantSettings::from(&version),
            id: ID(version.id),
            assistant_id: ID(version.assistant_id),
            version: version.version,
            is_live,
            created_at: version.created_at,
        }
    }
}

impl From<VersionRecord> for AssistantVersion {
    fn from(r: VersionRecord) -> Self {
        Self::new(r.version, r.live)
    }
}

/// A new assistant. Only `name` is required.
#[derive(Debug, Clone, InputObject, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAssistantInput {
    /// Display name, 1–100 characters.
    pub name: String,
    /// What the assistant is for (≤ 2,000 characters).
    pub description: Option<String>,
    /// How it sounds (`friendly`, `formal`…); default `neutral`.
    pub tone: Option<String>,
    /// BCP 47 language tag; default `en`.
    pub language: Option<String>,
    /// The system prompt (≤ 20,000 characters).
    pub instructions: Option<String>,
    /// Named prompt templates.
    pub task_templates: Option<Vec<TaskTemplateInput>>,
    /// Sampling temperature, 0–2; default 0.7.
    pub temperature: Option<f64>,
    /// Longest reply in tokens, 1–32,768; default 512.
    pub max_tokens: Option<i32>,
    /// Knowledge chunks retrieved per message, 1–50; default 5.
    pub top_k: Option<i32>,
    /// Lowest retrieval score used, 0–1; default 0.
    pub min_score: Option<f64>,
    /// When a conversation goes to a person by itself; default never.
    pub handoff: Option<HandoffRulesInput>,
    /// Start paused with `false`; default `true`.
    pub active: Option<bool>,
}

/// Changes for a new version; absent fields keep the base version's value.
#[derive(Debug, Clone, Default, InputObject, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAssistantInput {
    /// Display name, 1–100 characters.
    pub name: Option<String>,
    /// What the assistant is for.
    pub description: Option<String>,
    /// How it sounds.
    pub tone: Option<String>,
    /// BCP 47 language tag.
    pub language: Option<String>,
    /// The system prompt.
    pub instructions: Option<String>,
    /// Named prompt templates (replace all).
    pub task_templates: Option<Vec<TaskTemplateInput>>,
    /// Sampling temperature, 0–2.
    pub temperature: Option<f64>,
    /// Longest reply in tokens.
    pub max_tokens: Option<i32>,
    /// Knowledge chunks retrieved per message.
    pub top_k: Option<i32>,
    /// Lowest retrieval score used.
    pub min_score: Option<f64>,
    /// When a conversation goes to a person by itself (replaces the base version's rules).
    pub handoff: Option<HandoffRulesInput>,
    /// The version to start from; default the newest (drafts included).
    pub base_version: Option<i32>,
    /// REST only (GraphQL has the `promote` argument): make the new version live; default true.
    #[graphql(skip)]
    pub promote: Option<bool>,
}

fn templates(list: Option<Vec<TaskTemplateInput>>) -> Option<Vec<DomainTemplate>> {
    list.map(|l| {
        l.into_iter()
            .map(|t| DomainTemplate {
                name: t.name,
                template: t.template,
            })
            .collect()
    })
}

impl CreateAssistantInput {
    /// The settings as a patch over the defaults, and the initial `active` flag.
    pub fn into_patch(self) -> (AssistantPatch, bool) {
        let patch = AssistantPatch {
            name: Some(self.name),
            description: self.description,
            tone: self.tone,
            language: self.language,
            instructions: self.instructions,
            task_templates: templates(self.task_templates),
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            top_k: self.top_k,
            min_score: self.min_score,
            handoff: self.handoff.map(Into::into),
        };
        (patch, self.active.unwrap_or(true))
    }
}

impl UpdateAssistantInput {
    /// The changes as a patch, and the base version.
    pub fn into_patch(self) -> (AssistantPatch, Option<i32>) {
        let patch = AssistantPatch {
            name: self.name,
            description: self.description,
            tone: self.tone,
            language: self.language,
            instructions: self.instructions,
            task_templates: templates(self.task_templates),
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            top_k: self.top_k,
            min_score: self.min_score,
            handoff: self.handoff.map(Into::into),
        };
        (patch, self.base_version)
    }
}
