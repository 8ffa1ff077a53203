//! `extractive`: answers without a model. A strongly matching Q&A pair is answered verbatim;
//! otherwise the parts of the retrieved passages that answer the question are quoted, each
//! cited as `[n]`. Nothing is generated, so nothing is made up.
//!
//! A passage is cut into parts: sentences, list items, table rows, and code blocks, which
//! stay with the sentence that introduces them (so "run this command:" keeps its command).
//! Parts are scored by the question's words they share, stemmed in the passages' language and
//! weighted by how rare they are among the parts, and — when an embedder that reads the
//! passages' language is given — by how close each part is to the question in meaning; the
//! best parts are quoted in their order. On the Debian Reference harness
//! (`scripts/eval/answers.py`) adding meaning (MiniLM, English) raised the English replies
//! that state the fact from .62 to .70 of 60; MiniLM does not read Spanish or Portuguese, and
//! there it did not help, so it is not used. multilingual-e5-small reads every language, and
//! reads meaning when it is the embedder; loaded only to read meaning next to MiniLM, it
//! stated no more facts in Spanish or Portuguese and cost 160 ms of first token, so it is not.
//! When no part shares a word with the question and the best passage is not close to it in
//! meaning either, the reply says plainly that nothing was found, in the visitor's language.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use async_trait::async_trait;
use futures::StreamExt;

use super::{
    ChatChunk, ChatModel, ChatRequest, ChatStream, Completion, ContextPassage, Embedder,
    Faithfulness, FinishReason, ModelError, Role,
};
use crate::language;

/// Passages quoted from.
const PASSAGES: usize = 3;
/// Parts quoted at most.
const PARTS: usize = 3;
/// A further part is quoted when it scores at least this share of the best one.
const FURTHER_PART_SHARE: f32 = 0.5;
/// Characters of quoted text after which no further part is added.
const QUOTE_BUDGET: usize = 900;
/// Lines of a code block quoted at most.
const CODE_LINES: usize = 20;
/// How much less a part of each further passage counts.
const RANK_DISCOUNT: f32 = 0.5;
/// Similarity from which the best passage is quoted although no word matches.
const CLOSE_IN_MEANING: f32 = 0.45;
/// The share of a part's score that is its closeness in meaning to the question, when an
/// embedder reads the passages (the rest is the shared words); measured on the harness.
const MEANING_WEIGHT: f32 = 0.7;
/// Characters of a part read for its meaning: its opening says what it is about, and a long
/// table or code block read whole costs a reply hundreds of milliseconds (measured on the
/// harness: as many facts stated with 200 as with whole parts).
const MEANING_CHARS: usize = 200;

/// What is said when the knowledge holds nothing relevant, and how the sources are
/// introduced, per language.
const PHRASES: [(&str, &str, &str); 6] = [
    (
        "en",
        "I could not find an answer to that in the knowledge I have.",
        "Sources:",
    ),
    (
        "nl",
        "Ik heb daar geen antwoord op gevonden in de kennis die ik heb.",
        "Bronnen:",
    ),
    (
        "pt",
        "Não encontrei resposta para isso no conhecimento de que disponho.",
        "Fontes:",
    ),
    (
        "es",
        "No encontré una respuesta a eso en la información de la que dispongo.",
        "Fuentes:",
    ),
    (
        "de",
        "Dazu habe ich in meinem Wissen keine Antwort gefunden.",
        "Quellen:",
    ),
    (
        "fr",
        "Je n'ai pas trouvé de réponse à cela dans les connaissances dont je dispose.",
        "Sources :",
    ),
];

/// What is said in English when the knowledge holds nothing relevant.
pub const NO_ANSWER: &str = PHRASES[0].1;

/// Quotes the knowledge; the grounded answer when no provider is configured.
#[derive(Clone, Default)]
pub struct ExtractiveChat {
    /// Reads the parts' meaning, in the languages it embeds meaningfully.
    meaning: Option<Arc<dyn Embedder>>,
}

impl ExtractiveChat {
    /// Quotes the parts that share the question's words (no model involved).
    pub fn lexical() -> Self {
        Self::default()
    }

    /// Also weighs how close each part is to the question in meaning, by `embedder`, where it
    /// reads the passages' language. Meant for a local embedder: it embeds the parts of the
    /// quoted passages on every reply.
    pub fn reading_meaning_with(embedder: Arc<dyn Embedder>) -> Self {
        Self {
            meaning: Some(embedder),
        }
    }
}

#[async_trait]
impl ChatModel for ExtractiveChat {
    fn id(&self) -> &str {
        "extractive"
    }

    fn faithfulness(&self) -> Faithfulness {
        Faithfulness::Quotes
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, ModelError> {
        let (text, citations) = self.answer(&request).await;
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

/// The phrases of the visitor's language: the question's, when it is clear, else the
/// assistant's, else English.
fn phrases(request: &ChatRequest, question: &str) -> (&'static str, &'static str) {
    let wanted = language::detect_reliably(question)
        .or_else(|| request.language.as_deref().and_then(language::of_tag));
    let (_, none, sources) = PHRASES
        .iter()
        .find(|(code, _, _)| Some(*code) == wanted)
        .unwrap_or(&PHRASES[0]);
    (none, sources)
}

/// One quotable part of a passage.
struct Part {
    passage: usize,
    position: usize,
    text: String,
    terms: HashSet<String>,
}

impl ExtractiveChat {
    /// The reply text and the cited source ids.
    async fn answer(&self, request: &ChatRequest) -> (String, Vec<String>) {
        if let Some(qa) = request.context.iter().find(|p| p.answer.is_some()) {
            let text = qa.answer.clone().unwrap_or_default();
            return (text.trim().to_owned(), vec![qa.source_id.clone()]);
        }
        let question = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map_or("", |m| m.content.as_str());
        let (no_answer, sources_label) = phrases(request, question);
        let passages: Vec<&ContextPassage> = request.context.iter().take(PASSAGES).collect();
        let chosen = self.choose(question, &passages).await;
        if chosen.is_empty() {
            return (no_answer.to_owned(), Vec::new());
        }
        // `[n]` is the n-th passage given, as in a generating model's prompt, so the reply's
        // citations are the very passages quoted.
        let mut cited: Vec<usize> = Vec::new();
        let mut text = String::new();
        for part in &chosen {
            if !cited.contains(&part.passage) {
                cited.push(part.passage);
            }
            let n = part.passage + 1;
            if !text.is_empty() {
                text.push_str(if part.text.contains('\n') || text.ends_with("```") {
                    "\n\n"
                } else {
                    " "
                });
            }
            text.push_str(&format!("{} [{n}]", part.text.trim_end()));
        }
        text.push_str(&format!("\n\n{sources_label}"));
        cited.sort_unstable();
        let mut citations = Vec::new();
        for rank in cited {
            let passage = passages[rank];
            text.push_str(&format!("\n[{}] {}", rank + 1, passage.title));
            if !citations.contains(&passage.source_id) {
                citations.push(passage.source_id.clone());
            }
        }
        (text, citations)
    }

    /// The parts to quote, in passage order.
    async fn choose(&self, question: &str, passages: &[&ContextPassage]) -> Vec<Part> {
        let code = language::detect(passages.iter().map(|p| p.text.as_str()));
        let wanted: HashSet<String> = language::stems(code, question).into_iter().collect();
        let mut parts: Vec<Part> = Vec::new();
        for (rank, passage) in passages.iter().enumerate() {
            for (position, text) in parts_of(&passage.text).into_iter().enumerate() {
                let terms = language::stems(code, &text).into_iter().collect();
                parts.push(Part {
                    passage: rank,
                    position,
                    text,
                    terms,
                });
            }
        }
        // Words found in fewer parts say more about which part answers.
        let mut frequency: HashMap<&str, usize> = HashMap::new();
        for part in &parts {
            for term in part.terms.intersection(&wanted) {
                *frequency.entry(term.as_str()).or_default() += 1;
            }
        }
        let total = parts.len().max(1) as f32;
        // Retrieval's order counts too: a part of the best passage beats an equal one further
        // down.
        let score = |part: &Part| -> f32 {
            let overlap: f32 = part
                .terms
                .intersection(&wanted)
                .map(|t| (1.0 + total / frequency[t.as_str()] as f32).ln())
                .sum();
            overlap / (1.0 + RANK_DISCOUNT * part.passage as f32)
        };
        let mut scores: Vec<f32> = parts.iter().map(score).collect();
        let best_by_words = scores.iter().copied().fold(0.0, f32::max);
        // Meaning reorders the parts when words found some; it never makes a reply of passages
        // that share no word with the question (that is left to the passage's own similarity).
        if best_by_words > 0.0
            && let Some(closeness) = self.closeness(code, question, &parts).await
        {
            let discounted: Vec<f32> = closeness
                .iter()
                .zip(&parts)
                .map(|(c, part)| c / (1.0 + RANK_DISCOUNT * part.passage as f32))
                .collect();
            let best_by_meaning = discounted.iter().copied().fold(f32::MIN_POSITIVE, f32::max);
            for (score, meaning) in scores.iter_mut().zip(discounted) {
                *score = (1.0 - MEANING_WEIGHT) * *score / best_by_words
                    + MEANING_WEIGHT * meaning / best_by_meaning;
            }
        }
        let mut scored: Vec<(f32, Part)> = scores.into_iter().zip(parts).collect();
        scored.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then(a.1.passage.cmp(&b.1.passage))
                .then(a.1.position.cmp(&b.1.position))
        });
        let best = scored.first().map_or(0.0, |s| s.0);
        let mut chosen: Vec<Part> = if best > 0.0 {
            let mut budget = 0;
            let mut picked: Vec<usize> = Vec::new();
            for (i, (score, part)) in scored.iter().enumerate() {
                if picked.len() == PARTS
                    || *score < best * FURTHER_PART_SHARE
                    || (budget > 0 && budget + part.text.len() > QUOTE_BUDGET)
                {
                    break;
                }
                budget += part.text.len();
                picked.push(i);
            }
            // The best part's next part, when it holds a command: the block, table or inline
            // code the sentence leads to ("… needs the proper shutdown procedure." then the
            // command line; "… search the history efficiently." then "Press `Ctrl-R`."). On
            // the harness, retrieval unchanged, this states the fact in 2 more Spanish replies
            // of 60 (9 → 11) and changes no English one.
            let (_, top) = &scored[0];
            if let Some(next) = scored.iter().position(|(_, p)| {
                p.passage == top.passage
                    && p.position == top.position + 1
                    && (is_block(&p.text) || p.text.contains('`'))
            }) && !picked.contains(&next)
            {
                picked.push(next);
            }
            let mut chosen = Vec::new();
            for (i, (_, part)) in scored.into_iter().enumerate() {
                if picked.contains(&i) {
                    chosen.push(part);
                }
            }
            chosen
        } else if passages
            .first()
            .is_some_and(|p| p.similarity >= CLOSE_IN_MEANING)
        {
            // No word in common, but the best passage means what the question asks: its opening.
            scored
                .into_iter()
                .map(|(_, part)| part)
                .filter(|p| p.passage == 0 && p.position < 2)
                .collect()
        } else {
            Vec::new()
        };
        chosen.sort_by(|a, b| a.passage.cmp(&b.passage).then(a.position.cmp(&b.position)));
        chosen
    }

    /// How close each part is to the question (cosine, 0 below), when the embedder reads
    /// `code`; `None` without one, or when embedding fails (the words alone decide then).
    async fn closeness(
        &self,
        code: Option<&str>,
        question: &str,
        parts: &[Part],
    ) -> Option<Vec<f32>> {
        let embedder = self.meaning.as_ref()?;
        let reads = match embedder.languages() {
            None => true,
            Some(read) => code.is_some_and(|c| read.contains(&c)),
        };
        if !reads || parts.is_empty() {
            return None;
        }
        let texts: Vec<String> = parts
            .iter()
            .map(|p| p.text.chars().take(MEANING_CHARS).collect())
            .collect();
        let embedded = futures::try_join!(embedder.embed_query(question), embedder.embed(&texts));
        match embedded {
            Ok((question, parts)) => Some(
                parts
                    .iter()
                    .map(|part| {
                        let dot: f32 = part.iter().zip(&question).map(|(a, b)| a * b).sum();
                        dot.max(0.0)
                    })
                    .collect(),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "embedding the passages' parts failed; quoting by words");
                None
            }
        }
    }
}

/// The quotable parts of a passage: sentences, list items, table rows and code blocks, a
/// block kept with the sentence that introduces it.
fn parts_of(text: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let block = if let Some(fence) = fence_of(trimmed) {
            let mut block = vec![line.to_owned()];
            for next in lines.by_ref() {
                block.push(next.to_owned());
                if next.trim().starts_with(fence) {
                    break;
                }
            }
            Some(code_block(block, Some(fence)))
        } else if line.starts_with("    ") || line.starts_with('\t') || trimmed.starts_with('|') {
            let indented = !trimmed.starts_with('|');
            let mut block = vec![line.to_owned()];
            while let Some(next) = lines.peek() {
                let continues = if indented {
                    next.starts_with("    ") || next.starts_with('\t')
                } else {
                    next.trim().starts_with('|')
                };
                if !continues {
                    break;
                }
                block.push(lines.next().unwrap_or_default().to_owned());
            }
            Some(code_block(block, None))
        } else {
            None
        };
        match block {
            Some(block) => match parts.last_mut() {
                // "Run the following command:" keeps its command; so does the sentence before
                // a block however it ends ("… with shutdown(8)." then the command line).
                Some(intro) if !intro.contains('\n') => {
                    intro.push('\n');
                    intro.push_str(&block);
                }
                _ => parts.push(block),
            },
            None => parts.extend(sentences(trimmed).into_iter().map(str::to_owned)),
        }
    }
    parts
}

/// The fence a line opens, if it opens a fenced code block.
fn fence_of(line: &str) -> Option<&'static str> {
    ["```", "~~~"].into_iter().find(|f| line.starts_with(f))
}

/// A code block's lines, cut to [`CODE_LINES`] (a cut fenced block is closed again).
fn code_block(mut lines: Vec<String>, fence: Option<&str>) -> String {
    if lines.len() > CODE_LINES {
        lines.truncate(CODE_LINES);
        if let Some(fence) = fence {
            lines.push(fence.to_owned());
        }
    }
    lines.join("\n")
}

/// Whether a part is a block: code, a table, or a sentence with its block.
fn is_block(part: &str) -> bool {
    part.contains('\n') || part.starts_with("```") || part.starts_with('|')
}

/// Abbreviations whose period ends no sentence.
const ABBREVIATIONS: [&str; 9] = [
    "e.g.", "i.e.", "etc.", "cf.", "vs.", "p.", "ej.", "ex.", "z.B.",
];

/// Sentences of a line (ends at `.`, `!`, `?` followed by white space, unless the period
/// closes an abbreviation or the next word starts in lower case).
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(at, c)) in chars.iter().enumerate() {
        let next_is_space = chars.get(i + 1).is_none_or(|(_, n)| n.is_whitespace());
        let continues = c == '.'
            && (chars[i + 1..]
                .iter()
                .find(|(_, n)| !n.is_whitespace())
                .is_some_and(|(_, n)| n.is_lowercase())
                || ABBREVIATIONS.iter().any(|a| {
                    let word = text[start..at + 1].rsplit(char::is_whitespace).next();
                    word.is_some_and(|w| w.eq_ignore_ascii_case(a))
                }));
        if matches!(c, '.' | '!' | '?') && next_is_space && !continues {
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
    use crate::models::ChatMessage;

    fn passage(id: &str, title: &str, text: &str) -> ContextPassage {
        ContextPassage {
            source_id: id.into(),
            title: title.into(),
            text: text.into(),
            score: 1.0,
            similarity: 0.3,
            answer: None,
        }
    }

    async fn ask(question: &str, context: Vec<ContextPassage>) -> (String, Vec<String>) {
        ExtractiveChat::lexical()
            .answer(&ChatRequest {
                messages: vec![ChatMessage::new(Role::User, question)],
                context,
                ..Default::default()
            })
            .await
    }

    #[tokio::test]
    async fn the_parts_answering_the_question_are_quoted_with_citations() {
        let (text, citations) = ask(
            "How long does shipping take?",
            vec![
                passage(
                    "ks_1",
                    "Shipping",
                    "We ship worldwide. Shipping takes three days. Returns are free.",
                ),
                passage("ks_2", "Payments", "We accept cards."),
            ],
        )
        .await;
        assert!(text.starts_with("Shipping takes three days. [1]"), "{text}");
        assert!(
            !text.contains("cards") && !text.contains("Returns"),
            "{text}"
        );
        assert!(text.ends_with("Sources:\n[1] Shipping"), "{text}");
        assert_eq!(citations, vec!["ks_1".to_owned()]);

        // A mark names the passage's place among those given, as a generating model's do.
        let (text, _) = ask(
            "Which cards do you accept?",
            vec![
                passage("ks_1", "Shipping", "We ship worldwide."),
                passage("ks_2", "Payments", "We accept cards."),
            ],
        )
        .await;
        assert_eq!(text, "We accept cards. [2]\n\nSources:\n[2] Payments");
    }

    #[tokio::test]
    async fn a_command_stays_with_the_sentence_that_introduces_it() {
        let text = "The system can be stopped in several ways.\n\
                    To power off the machine right away, run:\n\
                    ```\n# shutdown -h now\n```\n\
                    Rebooting is similar.";
        let (reply, _) = ask(
            "How do I power off the machine?",
            vec![passage("ks_1", "Shutdown", text)],
        )
        .await;
        assert!(
            reply.starts_with(
                "To power off the machine right away, run:\n```\n# shutdown -h now\n``` [1]"
            ),
            "{reply}"
        );
        assert!(!reply.contains("Rebooting"), "{reply}");
    }

    #[tokio::test]
    async fn an_abbreviation_ends_no_sentence_and_the_block_after_the_best_part_comes_with_it() {
        let text = "It is common to let the user run every command as root, e.g. as follows.\n\
                    ```\nuser ALL=(ALL) NOPASSWD:ALL\n```\n\
                    Other setups exist.";
        let (reply, _) = ask(
            "Can sudo stop asking the user for a password for every command?",
            vec![passage("ks_1", "sudo", text)],
        )
        .await;
        assert!(reply.starts_with("It is common to let the user run every command as root, e.g. as follows.\n```\nuser ALL=(ALL) NOPASSWD:ALL\n``` [1]"), "{reply}");
        assert_eq!(
            sentences("Stop it, i.e. now. Then go. and stay."),
            ["Stop it, i.e. now.", "Then go. and stay."]
        );
    }

    #[tokio::test]
    async fn the_key_or_command_in_the_sentence_after_the_best_part_comes_with_it() {
        let text = "You can pick a command from the shell history with little effort. \
                    Press `Ctrl-R` at the prompt. Typing part of it narrows the candidates. \
                    Completion works differently.";
        let (reply, _) = ask(
            "Is there a shortcut to search the shell history for a command?",
            vec![passage("ks_1", "Shell", text)],
        )
        .await;
        assert!(
            reply.starts_with(
                "You can pick a command from the shell history with little effort. [1] \
                 Press `Ctrl-R` at the prompt. [1]"
            ),
            "{reply}"
        );
        assert!(
            !reply.contains("narrows") && !reply.contains("Completion"),
            "{reply}"
        );
    }

    #[tokio::test]
    async fn words_match_across_inflections_in_the_passages_language() {
        let text = "O sistema Debian usa o APT para gerir o software que está instalado. \
                    Para instalar pacotes, use apt install seguido do nome do pacote. \
                    A rede é configurada pelo NetworkManager, que também gere as ligações \
                    sem fios e as redes privadas virtuais.";
        let (reply, _) = ExtractiveChat::lexical()
            .answer(&ChatRequest {
                messages: vec![ChatMessage::new(
                    Role::User,
                    "Como é que instalo um pacote novo?",
                )],
                context: vec![passage("ks_1", "APT", text)],
                language: Some("pt-PT".into()),
                ..Default::default()
            })
            .await;
        assert!(
            reply.starts_with("Para instalar pacotes, use apt install"),
            "{reply}"
        );
        assert!(!reply.contains("NetworkManager"), "{reply}");
        assert!(reply.ends_with("Fontes:\n[1] APT"), "{reply}");
    }

    #[tokio::test]
    async fn a_strong_qa_match_is_answered_verbatim_and_nothing_relevant_is_said_plainly() {
        let mut qa = passage("ks_9", "Hours", "When are you open?");
        qa.answer = Some("Nine to five, Monday to Friday.".into());
        assert_eq!(
            ask(
                "opening hours?",
                vec![passage("ks_1", "Other", "Unrelated."), qa]
            )
            .await,
            (
                "Nine to five, Monday to Friday.".to_owned(),
                vec!["ks_9".to_owned()]
            )
        );
        assert_eq!(
            ask("Hello?", Vec::new()).await,
            (NO_ANSWER.to_owned(), Vec::new())
        );
        let (reply, citations) = ask(
            "¿Cuál es el horario de apertura de la tienda los domingos?",
            vec![passage(
                "ks_1",
                "Kettles",
                "Our kettles boil water quickly.",
            )],
        )
        .await;
        assert_eq!(reply, PHRASES[3].1);
        assert!(citations.is_empty());
    }

    /// An embedder that knows one meaning: switching a machine off, however it is said.
    struct KnowsShuttingDown;

    #[async_trait]
    impl Embedder for KnowsShuttingDown {
        fn id(&self) -> &str {
            "knows-shutting-down"
        }
        fn dimension(&self) -> usize {
            2
        }
        fn languages(&self) -> Option<&'static [&'static str]> {
            Some(&["en"])
        }
        async fn embed(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
            Ok(texts
                .iter()
                .map(|t| {
                    let t = t.to_lowercase();
                    let off = ["power off", "shutdown", "apagar"]
                        .iter()
                        .any(|w| t.contains(w));
                    if off { vec![1.0, 0.0] } else { vec![0.0, 1.0] }
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn with_an_embedder_the_part_that_means_the_answer_is_quoted_in_the_languages_it_reads() {
        let request = |question: &str, text: &str| ChatRequest {
            messages: vec![ChatMessage::new(Role::User, question)],
            context: vec![passage("ks_1", "Shutdown", text)],
            ..Default::default()
        };
        let english = request(
            "How do I power off the machine right away?",
            "Power must never be cut while the disks write, or the machine loses data. \
             Journals help after a crash.\n\
             You can stop everything from the command line:\n\
             ```\n# shutdown -h now\n```",
        );
        let by_meaning = ExtractiveChat::reading_meaning_with(Arc::new(KnowsShuttingDown));
        let (reply, _) = by_meaning.answer(&english).await;
        assert!(
            reply.starts_with(
                "You can stop everything from the command line:\n```\n# shutdown -h now\n``` [1]"
            ),
            "{reply}"
        );
        assert!(!reply.contains("Power must never"), "{reply}");
        // Words alone pick the sentence that shares them.
        let (reply, _) = ExtractiveChat::lexical().answer(&english).await;
        assert!(reply.starts_with("Power must never be cut"), "{reply}");
        assert!(!reply.contains("shutdown -h now"), "{reply}");

        // An embedder that reads only English leaves Spanish passages to their words.
        let spanish = request(
            "¿Cómo puedo apagar el equipo ahora mismo?",
            "Nunca se debe cortar la corriente del equipo mientras los discos escriben datos.\n\
             Desde la línea de órdenes se detiene todo:\n\
             ```\n# shutdown -h now\n```",
        );
        assert_eq!(
            by_meaning.answer(&spanish).await,
            ExtractiveChat::lexical().answer(&spanish).await
        );
    }
}
