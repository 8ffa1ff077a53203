//! `extractive`: the local summarizer. The summary is the few sentences that best cover the
//! text's frequent words; keywords come from YAKE.

use std::collections::HashMap;

use async_trait::async_trait;

use super::{Summarizer, Summary};

/// Longest text read for a summary; the rest adds cost, not quality.
const MAX_INPUT_CHARS: usize = 100_000;
const SUMMARY_SENTENCES: usize = 3;
const MAX_SUMMARY_CHARS: usize = 600;
const KEYWORDS: usize = 8;

/// Extractive summary plus YAKE keywords; no model needed.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalSummarizer;

#[async_trait]
impl Summarizer for LocalSummarizer {
    fn id(&self) -> &str {
        "extractive"
    }

    async fn summarize(&self, text: &str) -> anyhow::Result<Summary> {
        let text: String = text.chars().take(MAX_INPUT_CHARS).collect();
        // YAKE sorts scores with `partial_cmp().unwrap()`: a NaN must not take a worker down.
        let summary = tokio::task::spawn_blocking(move || Summary {
            summary: extractive_summary(&text),
            keywords: std::panic::catch_unwind(|| keywords(&text)).unwrap_or_default(),
        })
        .await?;
        Ok(summary)
    }
}

fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        let end_of_sentence = matches!(c, '.' | '!' | '?')
            && bytes.get(i + 1).is_none_or(|b| b.is_ascii_whitespace());
        if end_of_sentence || c == '\n' {
            let s = text[start..=i].trim();
            if s.split_whitespace().count() >= 3 {
                out.push(s);
            }
            start = i + c.len_utf8();
        }
    }
    let tail = text[start..].trim();
    if tail.split_whitespace().count() >= 3 {
        out.push(tail);
    }
    out
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 3)
        .map(str::to_lowercase)
}

/// The sentences with the highest mean word frequency, in their original order.
fn extractive_summary(text: &str) -> String {
    let sentences = sentences(text);
    let mut frequency: HashMap<String, f32> = HashMap::new();
    for word in words(text) {
        *frequency.entry(word).or_default() += 1.0;
    }
    let mut scored: Vec<(usize, f32)> = sentences
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let ws: Vec<String> = words(s).collect();
            let score = ws
                .iter()
                .map(|w| frequency.get(w).copied().unwrap_or_default())
                .sum::<f32>()
                / (ws.len().max(1) as f32).sqrt();
            (i, score)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut chosen: Vec<usize> = scored
        .iter()
        .take(SUMMARY_SENTENCES)
        .map(|(i, _)| *i)
        .collect();
    chosen.sort_unstable();
    let mut summary = String::new();
    for i in chosen {
        if summary.chars().count() + sentences[i].chars().count() > MAX_SUMMARY_CHARS
            && !summary.is_empty()
        {
            break;
        }
        if !summary.is_empty() {
            summary.push(' ');
        }
        summary.push_str(sentences[i]);
    }
    if summary.is_empty() {
        summary = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(MAX_SUMMARY_CHARS)
            .collect();
    }
    summary
}

fn keywords(text: &str) -> Vec<String> {
    let Some(stop_words) = yake_rust::StopWords::predefined("en") else {
        return Vec::new();
    };
    yake_rust::get_n_best(KEYWORDS, text, &stop_words, &yake_rust::Config::default())
        .into_iter()
        .map(|item| item.keyword)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_summary_keeps_the_central_sentences_and_keywords_name_the_topic() {
        let text = "Refunds are available for thirty days. Refunds go back to the original payment method. \
                    The weather was nice on Tuesday. Refunds for gift cards are not possible. \
                    Our office has a blue door.";
        let summary = LocalSummarizer.summarize(text).await.expect("summary");
        assert!(
            summary.summary.contains("Refunds are available"),
            "{summary:?}"
        );
        assert!(!summary.summary.contains("blue door"), "{summary:?}");
        assert!(
            summary.keywords.iter().any(|k| k.contains("refund")),
            "{summary:?}"
        );
    }

    #[tokio::test]
    async fn text_without_sentences_still_gets_a_summary() {
        let summary = LocalSummarizer
            .summarize("sku: A1; name: Kettle")
            .await
            .expect("summary");
        assert!(summary.summary.contains("Kettle"));
    }
}
