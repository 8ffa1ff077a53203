//! An assistant's configuration and the rules it must satisfy.

use std::collections::HashSet;

use super::{
    handoff::HandoffRules,
    template::{self, TaskTemplate},
};
use crate::error::AppError;

/// A complete, validated configuration: what one version holds.
#[derive(Debug, Clone, PartialEq)]
pub struct AssistantConfig {
    /// Display name, 1–100 characters.
    pub name: String,
    /// Free text, at most 2,000 characters.
    pub description: String,
    /// How the assistant sounds (`friendly`, `formal`…), at most 100 characters.
    pub tone: String,
    /// BCP 47 language tag (`en`, `nl-NL`, `pt-BR`).
    pub language: String,
    /// The system prompt, at most 20,000 characters.
    pub instructions: String,
    /// Named prompt templates.
    pub task_templates: Vec<TaskTemplate>,
    /// Sampling temperature, 0–2.
    pub temperature: f64,
    /// Longest reply in tokens, 1–32,768.
    pub max_tokens: i32,
    /// Chunks retrieved per message, 1–50.
    pub top_k: i32,
    /// Lowest retrieval score used, 0–1.
    pub min_score: f64,
    /// When a conversation goes to a person by itself.
    pub handoff: HandoffRules,
}

/// Changes to a configuration: `None` keeps the base version's value.
#[derive(Debug, Clone, Default)]
pub struct AssistantPatch {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New tone.
    pub tone: Option<String>,
    /// New language tag.
    pub language: Option<String>,
    /// New instructions.
    pub instructions: Option<String>,
    /// New templates (replacing all).
    pub task_templates: Option<Vec<TaskTemplate>>,
    /// New temperature.
    pub temperature: Option<f64>,
    /// New reply length limit.
    pub max_tokens: Option<i32>,
    /// New retrieval depth.
    pub top_k: Option<i32>,
    /// New minimum retrieval score.
    pub min_score: Option<f64>,
    /// New handoff rules (replacing all).
    pub handoff: Option<HandoffRules>,
}

impl AssistantPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && self.tone.is_none()
            && self.language.is_none()
            && self.instructions.is_none()
            && self.task_templates.is_none()
            && self.temperature.is_none()
            && self.max_tokens.is_none()
            && self.top_k.is_none()
            && self.min_score.is_none()
            && self.handoff.is_none()
    }

    /// A new configuration from a name and these settings over the defaults.
    pub fn into_new_config(self) -> Result<AssistantConfig, AppError> {
        let name = self
            .name
            .clone()
            .ok_or_else(|| AppError::bad_input("name", "is required"))?;
        let base = AssistantConfig {
            name,
            description: String::new(),
            tone: "neutral".into(),
            language: "en".into(),
            instructions: String::new(),
            task_templates: Vec::new(),
            temperature: 0.7,
            max_tokens: 512,
            top_k: 5,
            min_score: 0.0,
            handoff: HandoffRules::default(),
        };
        self.apply_to(base)
    }

    /// `base` with this patch applied, validated.
    pub fn apply_to(self, base: AssistantConfig) -> Result<AssistantConfig, AppError> {
        AssistantConfig {
            name: self.name.map_or(base.name, |n| n.trim().to_owned()),
            description: self.description.unwrap_or(base.description),
            tone: self.tone.map_or(base.tone, |t| t.trim().to_owned()),
            language: self.language.map_or(base.language, |l| l.trim().to_owned()),
            instructions: self.instructions.unwrap_or(base.instructions),
            task_templates: self.task_templates.unwrap_or(base.task_templates),
            temperature: self.temperature.unwrap_or(base.temperature),
            max_tokens: self.max_tokens.unwrap_or(base.max_tokens),
            top_k: self.top_k.unwrap_or(base.top_k),
            min_score: self.min_score.unwrap_or(base.min_score),
            handoff: self.handoff.unwrap_or(base.handoff),
        }
        .validated()
    }
}

impl AssistantConfig {
    /// Checks every rule; the first violation names its field.
    pub fn validated(self) -> Result<Self, AppError> {
        text_len("name", &self.name, 1, 100)?;
        text_len("description", &self.description, 0, 2_000)?;
        text_len("tone", &self.tone, 0, 100)?;
        text_len("instructions", &self.instructions, 0, 20_000)?;
        check_language(&self.language)?;
        if !(0.0..=2.0).contains(&self.temperature) {
            return Err(AppError::bad_input(
                "temperature",
                "must be between 0 and 2",
            ));
        }
        if !(1..=32_768).contains(&self.max_tokens) {
            return Err(AppError::bad_input(
                "max_tokens",
                "must be between 1 and 32768",
            ));
        }
        if !(1..=50).contains(&self.top_k) {
            return Err(AppError::bad_input("top_k", "must be between 1 and 50"));
        }
        if !(0.0..=1.0).contains(&self.min_score) {
            return Err(AppError::bad_input("min_score", "must be between 0 and 1"));
        }
        check_templates(&self.task_templates)?;
        let handoff = self.handoff.validated()?;
        Ok(Self { handoff, ..self })
    }
}

fn text_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), AppError> {
    let len = value.chars().count();
    if len < min || len > max {
        let rule = if min == 0 {
            format!("must be at most {max} characters")
        } else {
            format!("must be {min} to {max} characters")
        };
        return Err(AppError::bad_input(field, rule));
    }
    Ok(())
}

fn check_language(tag: &str) -> Result<(), AppError> {
    let parsed = language_tags::LanguageTag::parse(tag).map_err(|_| {
        AppError::bad_input("language", format!("`{tag}` is not a BCP 47 language tag"))
    })?;
    parsed.validate().map_err(|_| {
        AppError::bad_input(
            "language",
            format!("`{tag}` is not a valid BCP 47 language tag"),
        )
    })
}

fn check_templates(templates: &[TaskTemplate]) -> Result<(), AppError> {
    if templates.len() > 50 {
        return Err(AppError::bad_input(
            "task_templates",
            "at most 50 templates",
        ));
    }
    let mut seen = HashSet::new();
    for (i, t) in templates.iter().enumerate() {
        template::check_name(&t.name)
            .map_err(|m| AppError::bad_input(format!("task_templates[{i}].name"), m))?;
        if !seen.insert(t.name.as_str()) {
            return Err(AppError::bad_input(
                format!("task_templates[{i}].name"),
                format!("`{}` is used twice", t.name),
            ));
        }
        template::placeholders(&t.template)
            .map_err(|m| AppError::bad_input(format!("task_templates[{i}].template"), m))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> AssistantPatch {
        AssistantPatch {
            name: Some(name.into()),
            ..AssistantPatch::default()
        }
    }

    fn field_of(err: AppError) -> String {
        match err {
            AppError::BadInput { field, .. } => field.unwrap_or_default(),
            other => panic!("expected BadInput, got {other:?}"),
        }
    }

    #[test]
    fn a_name_alone_makes_a_valid_assistant_with_defaults() {
        let config = named("  Ada ").into_new_config().expect("valid");
        assert_eq!(config.name, "Ada");
        assert_eq!(config.language, "en");
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases: Vec<(AssistantPatch, &str)> = vec![
            (named(""), "name"),
            (named(&"x".repeat(101)), "name"),
            (
                AssistantPatch {
                    language: Some("english please".into()),
                    ..named("a")
                },
                "language",
            ),
            (
                AssistantPatch {
                    temperature: Some(2.5),
                    ..named("a")
                },
                "temperature",
            ),
            (
                AssistantPatch {
                    temperature: Some(f64::NAN),
                    ..named("a")
                },
                "temperature",
            ),
            (
                AssistantPatch {
                    max_tokens: Some(0),
                    ..named("a")
                },
                "max_tokens",
            ),
            (
                AssistantPatch {
                    top_k: Some(51),
                    ..named("a")
                },
                "top_k",
            ),
            (
                AssistantPatch {
                    min_score: Some(-0.1),
                    ..named("a")
                },
                "min_score",
            ),
            (
                AssistantPatch {
                    task_templates: Some(vec![TaskTemplate {
                        name: "x".into(),
                        template: "Hi {{name".into(),
                    }]),
                    ..named("a")
                },
                "task_templates[0].template",
            ),
        ];
        for (patch, field) in cases {
            assert_eq!(field_of(patch.into_new_config().expect_err(field)), field);
        }
    }

    #[test]
    fn regional_language_tags_are_accepted() {
        for tag in ["nl", "pt-BR", "es-419", "zh-Hant-TW"] {
            let patch = AssistantPatch {
                language: Some(tag.into()),
                ..named("a")
            };
            assert!(patch.into_new_config().is_ok(), "{tag}");
        }
    }
}
