//! `extractive`: answers without a model. A strongly matching Q&A pair is answered verbatim;
//! otherwise the sentences of the retrieved passages that share most words with the question
//! are quoted, each cited as `[n]`. Nothing is generated, so nothing is made up.

use std::collections::HashSet;

use async_trait::async_trait;
use futures::StreamExt;

use super::{
    ChatChunk, ChatModel, ChatRequest, ChatStream, Completion, FinishReason, ModelError, Role,
};

/// Passages quoted from.
const PASSAGES: usize = 3;
/// Sentences quoted in all.
const SENTENCES: usize = 3;
/// What is said when the knowledge holds nothing relevant.
pub const NO_ANSWER: &str = "I could not find an answer to that in the knowledge I have.";

/// Quotes the knowledge; the fallback when no chat model is available.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractiveChat;

#[async_trait]
impl ChatModel for ExtractiveChat {
    fn id(&self) -> &str {
        "extractive"
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, ModelError> {
        let (text, citations) = answer(&request);
        let words: Vec<String> = text.split_inclusive(' ').map(str::to_owned).collect();
        let max = request.options.max_tokens.max(1) as usize;
        let finish_reason = if words.len() > max {
            FinishReason::Length
        } else {
            FinishReason::Stop
        };
        let sent: Vec<String> = words.into_iter().take(max).collect();
        let completion = Completion {
            finish_reason,
            prompt_tokens: 0,
            completion_tokens: sent.len() as u32,
            citations,
        };
        let chunks = sent
            .into_iter()
            .map(|w| Ok(ChatChunk::Delta(w)))
            .chain(std::iter::once(Ok(ChatChunk::Done(completion))));
        Ok(futures::stream::iter(chunks).boxed())
    }
}

fn terms(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 2)
        .map(str::to_lowercase)
        .collect()
}

/// The reply text and the cited source ids.
fn answer(request: &ChatRequest) -> (String, Vec<String>) {
    if let Some(qa) = request.context.iter().find(|p| p.answer.is_some()) {
        let text = qa.answer.clone().unwrap_or_default();
        return (text.trim().to_owned(), vec![qa.source_id.clone()]);
    }
    let question = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| terms(&m.content))
        .unwrap_or_default();
    // (overlap, passage rank, position) of every sentence of the best passages.
    let mut candidates = Vec::new();
    for (rank, passage) in request.context.iter().take(PASSAGES).enumerate() {
        for (position, sentence) in sentences(&passage.text).into_iter().enumerate() {
            let overlap = terms(sentence).intersection(&question).count();
            candidates.push((overlap, rank, position, sentence));
        }
    }
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let best_overlap = candidates.first().map_or(0, |c| c.0);
    let mut chosen: Vec<_> = if best_overlap == 0 {
        // Nothing shares a word with the question: the best passage's opening.
        candidates
            .into_iter()
            .filter(|c| c.1 == 0)
            .take(2)
            .collect()
    } else {
        candidates
            .into_iter()
            .filter(|c| c.0 > 0)
            .take(SENTENCES)
            .collect()
    };
    if chosen.is_empty() {
        return (NO_ANSWER.to_owned(), Vec::new());
    }
    chosen.sort_by(|a, b| a.1.cmp(&b.1).then(a.2.cmp(&b.2)));
    let mut cited: Vec<usize> = Vec::new();
    let mut text = String::new();
    for (_, rank, _, sentence) in &chosen {
        if !cited.contains(rank) {
            cited.push(*rank);
        }
        let n = cited.iter().position(|r| r == rank).unwrap_or(0) + 1;
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!("{} [{n}]", sentence.trim()));
    }
    text.push_str("\n\nSources:");
    let mut citations = Vec::new();
    for (n, rank) in cited.iter().enumerate() {
        let passage = &request.context[*rank];
        text.push_str(&format!("\n[{}] {}", n + 1, passage.title));
        if !citations.contains(&passage.source_id) {
            citations.push(passage.source_id.clone());
        }
    }
    (text, citations)
}

/// Sentences of a passage (ends at `.`, `!`, `?` followed by white space, or a line break).
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(at, c)) in chars.iter().enumerate() {
        let next_is_space = chars.get(i + 1).is_none_or(|(_, n)| n.is_whitespace());
        if c == '\n' || (matches!(c, '.' | '!' | '?') && next_is_space) {
            let end = at + c.len_utf8();
            let sentence = text[start..end].trim();
            if !sentence.is_empty() {
                out.push(sentence);
            }
            start = end;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{ChatMessage, ContextPassage};

    fn passage(id: &str, title: &str, text: &str) -> ContextPassage {
        ContextPassage {
            source_id: id.into(),
            title: title.into(),
            text: text.into(),
            score: 1.0,
            answer: None,
        }
    }

    #[test]
    fn the_sentences_sharing_words_with_the_question_are_quoted_with_citations() {
        let request = ChatRequest {
            messages: vec![ChatMessage::new(Role::User, "How long does shipping take?")],
            context: vec![
                passage(
                    "ks_1",
                    "Shipping",
                    "We ship worldwide. Shipping takes three days. Returns are free.",
                ),
                passage("ks_2", "Payments", "We accept cards."),
            ],
            ..Default::default()
        };
        let (text, citations) = answer(&request);
        assert!(text.starts_with("Shipping takes three days. [1]"), "{text}");
        assert!(!text.contains("cards"), "{text}");
        assert!(text.ends_with("Sources:\n[1] Shipping"), "{text}");
        assert_eq!(citations, vec!["ks_1".to_owned()]);
    }

    #[test]
    fn a_strong_qa_match_is_answered_verbatim_and_no_context_says_so() {
        let mut qa = passage("ks_9", "Hours", "When are you open?");
        qa.answer = Some("Nine to five, Monday to Friday.".into());
        let request = ChatRequest {
            messages: vec![ChatMessage::new(Role::User, "opening hours?")],
            context: vec![passage("ks_1", "Other", "Unrelated."), qa],
            ..Default::default()
        };
        assert_eq!(
            answer(&request),
            (
                "Nine to five, Monday to Friday.".to_owned(),
                vec!["ks_9".to_owned()]
            )
        );
        let empty = ChatRequest::default();
        assert_eq!(answer(&empty), (NO_ANSWER.to_owned(), Vec::new()));
    }
}
