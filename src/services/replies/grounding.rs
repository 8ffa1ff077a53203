//! Holding a generated reply to its passages: the text is let through a sentence at a time,
//! and only sentences the passages support reach the visitor. The first unsupported sentence
//! ends the reply; a reply with no supported sentence is replaced by a quote of the passages.
//!
//! A sentence is supported when every code-like token in it (a command, a path, a number, a
//! `code span`) occurs in a passage as written, and most of its words (stemmed in the
//! passages' language) occur in the passages. The check is lexical on purpose: a small local
//! model that paraphrases loses a sentence, which costs less than one that invents a command.

use std::collections::HashSet;

use crate::language;

/// Share of a sentence's words that must occur in the passages.
const WORDS_SUPPORTED: f32 = 0.7;

/// How a reply's text relates to its passages (stored on the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grounding {
    /// Quoted from the passages (extractive answers, Q&A answers given verbatim).
    Quoted,
    /// Generated, and every sentence was supported.
    Supported,
    /// Generated, and cut before its first unsupported sentence.
    Trimmed,
    /// Generated without a supported sentence, and replaced by a quote of the passages.
    Replaced,
    /// Generated and not checked (a provider's model).
    Unchecked,
}

impl Grounding {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quoted => "QUOTED",
            Self::Supported => "SUPPORTED",
            Self::Trimmed => "TRIMMED",
            Self::Replaced => "REPLACED",
            Self::Unchecked => "UNCHECKED",
        }
    }

    /// The value of a stored name (`None` for a name this version does not know).
    pub fn from_stored(name: &str) -> Option<Self> {
        [
            Self::Quoted,
            Self::Supported,
            Self::Trimmed,
            Self::Replaced,
            Self::Unchecked,
        ]
        .into_iter()
        .find(|g| g.as_str() == name)
    }
}

/// The sentence gate of one reply.
pub struct Gate {
    /// The passages, lower case, white space collapsed.
    source: String,
    /// Their words as the analysis of their language sees them.
    stems: HashSet<String>,
    language: Option<&'static str>,
    /// Generated text not yet judged (an unfinished sentence).
    pending: String,
    /// Whether any sentence went through.
    passed: bool,
}

/// What the gate did with the text given so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Text cleared to send (whole sentences; empty while a sentence is unfinished).
    Pass(String),
    /// A sentence is unsupported: stop generating. Carries the supported text before it
    /// (the sentences of the same piece that came first).
    Stop(String),
}

impl Gate {
    /// A gate for a reply drawn from `passages`.
    pub fn new<'a>(passages: impl IntoIterator<Item = &'a str> + Clone) -> Self {
        let language = language::detect(passages.clone());
        let joined: Vec<&str> = passages.into_iter().collect();
        let joined = joined.join("\n");
        Self {
            source: collapse(&joined).to_lowercase(),
            stems: language::stems(language, &joined).into_iter().collect(),
            language,
            pending: String::new(),
            passed: false,
        }
    }

    /// Whether any sentence went through.
    pub fn passed_any(&self) -> bool {
        self.passed
    }

    /// Takes the next piece of generated text.
    pub fn push(&mut self, piece: &str) -> Verdict {
        self.pending.push_str(piece);
        let Some(end) = last_sentence_end(&self.pending) else {
            return Verdict::Pass(String::new());
        };
        let done: String = self.pending.drain(..end).collect();
        self.judge(&done)
    }

    /// The end of the generated text: judges what is left.
    pub fn finish(&mut self) -> Verdict {
        let rest = std::mem::take(&mut self.pending);
        self.judge(&rest)
    }

    /// Lets `text` (whole sentences) through up to its first unsupported sentence.
    fn judge(&mut self, text: &str) -> Verdict {
        let mut cleared = String::new();
        for sentence in split_keeping_ends(text) {
            if !sentence.trim().is_empty() && !self.supports(sentence) {
                return Verdict::Stop(cleared);
            }
            if !sentence.trim().is_empty() {
                self.passed = true;
            }
            cleared.push_str(sentence);
        }
        Verdict::Pass(cleared)
    }

    /// Whether the passages support `sentence`.
    pub fn supports(&self, sentence: &str) -> bool {
        let text = strip_marks(sentence);
        if code_like(&text)
            .iter()
            .any(|token| !self.source.contains(&token.to_lowercase()))
        {
            return false;
        }
        let words = language::stems(self.language, &text);
        if words.is_empty() {
            return true;
        }
        let known = words.iter().filter(|w| self.stems.contains(*w)).count();
        known as f32 >= WORDS_SUPPORTED * words.len() as f32
    }
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The text without citation marks (`[2]`) and emphasis.
fn strip_marks(sentence: &str) -> String {
    let mut out = String::with_capacity(sentence.len());
    let mut rest = sentence;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(']') {
            rest = &after[digits + 1..];
        } else {
            out.push('[');
            rest = after;
        }
    }
    out.push_str(rest);
    out.replace("**", "")
}

/// Tokens that must appear as written: code spans, and words with a digit or an inner `-`,
/// `/`, `_`, `.` or `=` (commands, options, paths, file names, versions, amounts).
fn code_like(text: &str) -> Vec<String> {
    let mut tokens: Vec<String> = text
        .split('`')
        .skip(1)
        .step_by(2)
        .map(collapse)
        .filter(|span| !span.is_empty())
        .collect();
    for word in text.split_whitespace() {
        let word = word.trim_matches(|c: char| !c.is_alphanumeric() && c != '/' && c != '-');
        // Between its first and last character, counted as characters: "área" starts with
        // two bytes.
        let mut middle = word.chars();
        let inner = middle.next().is_some()
            && middle.next_back().is_some()
            && middle.any(|c| matches!(c, '-' | '/' | '_' | '.' | '='));
        if word.chars().any(|c| c.is_ascii_digit()) || inner || word.starts_with("--") {
            tokens.push(word.trim_matches('`').to_owned());
        }
    }
    tokens.retain(|t| !t.is_empty());
    tokens
}

/// Where the last complete sentence of `text` ends (after its closing punctuation and the
/// white space that follows, or after a line break).
fn last_sentence_end(text: &str) -> Option<usize> {
    let mut end = None;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(at, c)) in chars.iter().enumerate() {
        let ends = match c {
            '\n' => true,
            '.' | '!' | '?' => chars.get(i + 1).is_some_and(|(_, n)| n.is_whitespace()),
            _ => false,
        };
        if ends {
            end = Some(at + c.len_utf8());
        }
    }
    end
}

/// The sentences of `text` with their trailing white space.
fn split_keeping_ends(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(at, c)) in chars.iter().enumerate() {
        let ends = match c {
            '\n' => true,
            '.' | '!' | '?' => chars.get(i + 1).is_none_or(|(_, n)| n.is_whitespace()),
            _ => false,
        };
        if ends {
            let mut end = at + c.len_utf8();
            while let Some(next) = text[end..].chars().next().filter(|n| *n == ' ') {
                end += next.len_utf8();
            }
            if end > start {
                out.push(&text[start..end]);
                start = end;
            }
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSAGE: &str = "To power off the system right away, run `shutdown -h now` as root. \
                           The command waits for running services to stop.";

    #[test]
    fn a_sentence_the_passage_states_passes_and_an_invented_command_stops_the_reply() {
        let mut gate = Gate::new([PASSAGE]);
        assert_eq!(gate.push("Run `shutdown -h "), Verdict::Pass(String::new()));
        assert_eq!(
            gate.push("now` to power off the system [1]. Then"),
            Verdict::Pass("Run `shutdown -h now` to power off the system [1].".into())
        );
        assert_eq!(
            gate.push(" delete the logs with `rm -rf /var/log`. It"),
            Verdict::Stop(String::new())
        );
        assert!(gate.passed_any());
    }

    #[test]
    fn numbers_and_words_the_passages_lack_are_unsupported() {
        let gate = Gate::new(["Refunds are paid within 30 days of the return."]);
        assert!(gate.supports("Refunds are paid within 30 days."));
        assert!(!gate.supports("Refunds are paid within 14 days."));
        assert!(!gate.supports("Our premium members also get free express shipping worldwide."));
        assert!(
            gate.supports("[1]"),
            "a sentence without words has nothing to refuse"
        );
    }

    #[test]
    fn words_that_begin_with_an_accented_letter_are_read_by_characters() {
        let gate = Gate::new(["El área de índices de apt está en /var/lib/apt/lists, según él."]);
        assert!(gate.supports("El área de índices está en /var/lib/apt/lists según él."));
        assert!(!gate.supports("El área está en /var/cache/ñu-é."));
    }

    #[test]
    fn the_end_of_the_reply_is_judged_and_inflections_count_in_the_passages_language() {
        let mut gate = Gate::new(["Para instalar pacotes, use o comando apt install."]);
        assert_eq!(
            gate.push("Instale os pacotes com apt"),
            Verdict::Pass(String::new())
        );
        assert_eq!(
            gate.finish(),
            Verdict::Pass("Instale os pacotes com apt".into())
        );
    }
}
