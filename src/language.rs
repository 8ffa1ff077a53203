//! Text analysis for the full-text leg: each source is analysed in its own language
//! (stop words removed, words stemmed, accents folded), and a query in every language a
//! source may have, each term marked with its language.
//!
//! The index holds these terms, not the raw text: a chunk of a Portuguese source holds
//! `pt:instal` for "instalação", an English one `en:instal` for "installing". A query is
//! analysed in every language, so its Portuguese terms meet Portuguese chunks and its English
//! terms English ones, and a Spanish stop word that is a word in another language never
//! matches a chunk of that other language. Nobody has to say which language a visitor
//! writes in, and a knowledge base in several languages works.

use std::{collections::HashSet, sync::LazyLock};

use lance_tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer, TokenStream,
};
use whatlang::Lang;

/// Longest word indexed; longer tokens are base64, hashes or noise.
const MAX_WORD: usize = 40;
/// How much of a source language detection reads.
const DETECTION_SAMPLE: usize = 20_000;
/// The mark of terms of a source whose language is not one of [`LANGUAGES`].
const UNDETERMINED: &str = "und";

/// The languages analysed: their detection, their analysis and their ISO 639-1 code.
const LANGUAGES: [(Lang, Language, &str); 18] = [
    (Lang::Ara, Language::Arabic, "ar"),
    (Lang::Dan, Language::Danish, "da"),
    (Lang::Nld, Language::Dutch, "nl"),
    (Lang::Eng, Language::English, "en"),
    (Lang::Fin, Language::Finnish, "fi"),
    (Lang::Fra, Language::French, "fr"),
    (Lang::Deu, Language::German, "de"),
    (Lang::Ell, Language::Greek, "el"),
    (Lang::Hun, Language::Hungarian, "hu"),
    (Lang::Ita, Language::Italian, "it"),
    (Lang::Nob, Language::Norwegian, "no"),
    (Lang::Por, Language::Portuguese, "pt"),
    (Lang::Ron, Language::Romanian, "ro"),
    (Lang::Rus, Language::Russian, "ru"),
    (Lang::Spa, Language::Spanish, "es"),
    (Lang::Swe, Language::Swedish, "sv"),
    (Lang::Tam, Language::Tamil, "ta"),
    (Lang::Tur, Language::Turkish, "tr"),
];

/// One analyser per language, and the undetermined one (lower case and folding only) last.
static ANALYZERS: LazyLock<Vec<(&'static str, TextAnalyzer)>> = LazyLock::new(|| {
    LANGUAGES
        .iter()
        .map(|&(_, language, code)| (code, analyzer(Some(language))))
        .chain([(UNDETERMINED, analyzer(None))])
        .collect()
});

fn analyzer(language: Option<Language>) -> TextAnalyzer {
    let builder = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter_dynamic(RemoveLongFilter::limit(MAX_WORD))
        .filter_dynamic(LowerCaser);
    let builder = match language {
        Some(language) => {
            let builder = match StopWordFilter::new(language) {
                Some(stop_words) => builder.filter_dynamic(stop_words),
                None => builder,
            };
            builder.filter_dynamic(Stemmer::new(language))
        }
        None => builder,
    };
    builder.filter_dynamic(AsciiFoldingFilter).build()
}

/// The ISO 639-1 code of the language most of `texts` is written in, when it is one the
/// analysis knows.
pub fn detect<'a>(texts: impl IntoIterator<Item = &'a str>) -> Option<&'static str> {
    let mut sample = String::new();
    for text in texts {
        if sample.len() >= DETECTION_SAMPLE {
            break;
        }
        let room = DETECTION_SAMPLE - sample.len();
        let end = (0..=room.min(text.len()))
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        sample.push_str(&text[..end]);
        sample.push('\n');
    }
    code_of(whatlang::detect_lang(&sample)?)
}

/// The code of a detected language, when the analysis knows it.
fn code_of(lang: Lang) -> Option<&'static str> {
    LANGUAGES
        .iter()
        .find(|(l, _, _)| *l == lang)
        .map(|(_, _, code)| *code)
}

/// The language of a short text such as a visitor's question, when the detector is sure of
/// it and the analysis knows it.
pub fn detect_reliably(text: &str) -> Option<&'static str> {
    code_of(
        whatlang::detect(text)
            .filter(whatlang::Info::is_reliable)?
            .lang(),
    )
}

/// The ISO 639-1 code of a BCP 47 tag's language (`pt-BR` → `pt`), when the analysis knows
/// it.
pub fn of_tag(tag: &str) -> Option<&'static str> {
    let primary = tag.split(['-', '_']).next()?.to_ascii_lowercase();
    LANGUAGES
        .iter()
        .find(|(_, _, code)| *code == primary)
        .map(|(_, _, code)| *code)
}

/// `text` as compared for sameness: its words (letters and digits) in lower case, single
/// spaces between them.
pub fn normalized(text: &str) -> String {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The words of `text` as the analysis of `language` sees them: lower case, stemmed, folded,
/// stop words dropped (with no language: lower case and folded only).
pub fn stems(language: Option<&str>, text: &str) -> Vec<String> {
    analyze(known(language), text)
}

fn known(language: Option<&str>) -> &str {
    language
        .filter(|code| ANALYZERS.iter().any(|(c, _)| c == code))
        .unwrap_or(UNDETERMINED)
}

/// The terms of a chunk of a source in `language` (a code [`detect`] gave, or none).
pub fn document_terms(language: Option<&str>, texts: &[&str]) -> String {
    let code = known(language);
    let mut terms = String::new();
    for text in texts {
        for term in analyze(code, text) {
            push_term(&mut terms, code, &term);
        }
    }
    terms
}

/// A query's terms in every language, each once.
pub fn query_terms(text: &str) -> String {
    let mut seen = HashSet::new();
    let mut terms = String::new();
    for (code, _) in ANALYZERS.iter() {
        for term in analyze(code, text) {
            if seen.insert(format!("{code}:{term}")) {
                push_term(&mut terms, code, &term);
            }
        }
    }
    terms
}

fn analyze(code: &str, text: &str) -> Vec<String> {
    let Some((_, analyzer)) = ANALYZERS.iter().find(|(c, _)| *c == code) else {
        return Vec::new();
    };
    let mut analyzer = analyzer.clone();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        let term = &stream.token().text;
        // A letter alone ("é", "a") says nothing of a topic, whatever the stop-word list.
        let mut chars = term.chars();
        if let (Some(c), None) = (chars.next(), chars.next())
            && !c.is_ascii_digit()
        {
            continue;
        }
        out.push(term.clone());
    }
    out
}

fn push_term(terms: &mut String, code: &str, term: &str) {
    if !terms.is_empty() {
        terms.push(' ');
    }
    terms.push_str(code);
    terms.push(':');
    terms.push_str(term);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_detected_in_the_customers_languages() {
        let samples = [
            (
                "en",
                "To install a package, run the package manager with the name of the package.",
            ),
            (
                "nl",
                "Om een pakket te installeren, voert u de pakketbeheerder uit met de naam van het pakket.",
            ),
            (
                "pt",
                "Para instalar um pacote, execute o gestor de pacotes com o nome do pacote desejado.",
            ),
            (
                "es",
                "Para instalar un paquete, ejecute el gestor de paquetes con el nombre del paquete.",
            ),
        ];
        for (code, text) in samples {
            assert_eq!(detect([text]), Some(code), "{text}");
        }
        assert_eq!(detect(["1234 5678 !!"]), None);
        assert_eq!(of_tag("pt-BR"), Some("pt"));
        assert_eq!(of_tag("NL"), Some("nl"));
        assert_eq!(of_tag("x-klingon"), None);
    }

    #[test]
    fn inflections_meet_in_the_source_language_and_stop_words_are_dropped() {
        let document = document_terms(Some("pt"), &["As instalações dos pacotes"]);
        let query = query_terms("Como instalo um pacote?");
        let document: HashSet<&str> = document.split(' ').collect();
        let query: HashSet<&str> = query.split(' ').collect();
        assert!(document.contains("pt:pacot"), "{document:?}");
        assert!(query.contains("pt:pacot"), "{query:?}");
        assert!(
            !document
                .iter()
                .any(|t| t.ends_with(":as") || t.ends_with(":dos"))
        );
        assert!(
            !query.contains("pt:como") && !query.contains("pt:um"),
            "{query:?}"
        );
        assert!(query.contains("en:como"), "another language keeps the word");
    }

    #[test]
    fn accents_fold_and_unknown_languages_are_still_searchable() {
        let terms = document_terms(None, &["Ação RÁPIDA"]);
        assert_eq!(terms, "und:acao und:rapida");
        assert!(query_terms("acao").split(' ').any(|t| t == "und:acao"));
        assert_eq!(document_terms(Some("xx"), &["word"]), "und:word");
        assert_eq!(query_terms("?! ..."), "");
    }
}
