//! HTML: the main content (readability), boilerplate dropped, as Markdown sections.

use std::{borrow::Cow, sync::LazyLock};

use dom_smoothie::{Config, Readability, TextMode};
use regex::{Captures, Regex};

use super::text;
use crate::ingest::{Document, ExtractError};

/// Largest number of elements parsed; bigger pages are refused rather than stall a worker.
const MAX_ELEMENTS: usize = 200_000;

/// Deepest element nesting read. Readability walks the tree recursively: a page nested
/// thousands deep would overflow a worker's stack and abort the whole server, so it is
/// refused first (real pages nest a few dozen deep).
const MAX_DEPTH: usize = 256;

/// Elements that are never content: scripts, site chrome, forms, tables of contents.
const BOILERPLATE: &str = "script, style, noscript, nav, header, footer, aside, form, .toc, #toc, \
                           .navheader, .navfooter";

/// Readability keeps one article. On a documentation page (a chapter of many sections) that
/// is one section of it; when the article holds less than this share of the page's text,
/// the whole page is kept instead, as Markdown with its headings.
const MIN_ARTICLE_SHARE: usize = 3; // tenths

/// The page's main content: readability's article, or the whole body (boilerplate dropped)
/// when the article is a small part of the page — a documentation chapter, a listing, a
/// short page.
pub fn extract(html: &str, url: Option<&str>) -> Result<Document, ExtractError> {
    let html = &*as_html(html);
    let document = dom_query::Document::from(html);
    let nesting = depth(&document);
    if nesting > MAX_DEPTH {
        return Err(ExtractError::Corrupt(format!(
            "the page nests elements {nesting} deep; at most {MAX_DEPTH} are read"
        )));
    }
    let config = Config {
        text_mode: TextMode::Markdown,
        max_elements_to_parse: MAX_ELEMENTS,
        char_threshold: 100,
        ..Config::default()
    };
    let url = url.filter(|u| u.starts_with("http://") || u.starts_with("https://"));
    // Readability reads the document parsed for the depth check (and changes it).
    let article =
        Readability::with_document(document, url, Some(config)).and_then(|mut r| r.parse());
    let article = match article {
        Ok(article) if !article.text_content.trim().is_empty() => article,
        Err(dom_smoothie::ReadabilityError::TooManyElements(found, max)) => {
            return Err(ExtractError::Corrupt(format!(
                "the page is too large to read ({found} elements, at most {max})"
            )));
        }
        _ => return Ok(text::markdown(&body_markdown(html))),
    };
    let body = body_markdown(html);
    let kept = article.text_content.chars().count();
    if kept * 10 < body.chars().count() * MIN_ARTICLE_SHARE {
        return Ok(text::markdown(&body));
    }
    let mut markdown = String::new();
    if !article.title.trim().is_empty() && !article.text_content.trim_start().starts_with('#') {
        markdown.push_str(&format!("# {}\n\n", article.title.trim()));
    }
    markdown.push_str(&article.text_content);
    Ok(text::markdown(&markdown))
}

/// A self-closed element that HTML does not know as empty (`<a id="x"/>`).
static SELF_CLOSED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<([A-Za-z][A-Za-z0-9-]*)(\s[^<>]*?)?\s*/>").expect("a valid pattern")
});

/// Elements HTML knows as empty.
const VOID: [&str; 14] = [
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

/// XHTML (DocBook's, many documentation generators') read as HTML: its self-closed anchors
/// (`<a id="x"/>` before each heading's text) open an element an HTML parser never closes,
/// which swallows the heading's text and what follows, so they are closed explicitly first.
fn as_html(page: &str) -> Cow<'_, str> {
    let head = &page[..page.floor_char_boundary(2_048)];
    if !head.contains("<?xml") && !head.contains("http://www.w3.org/1999/xhtml") {
        return Cow::Borrowed(page);
    }
    SELF_CLOSED.replace_all(page, |c: &Captures<'_>| {
        let name = &c[1];
        if VOID.contains(&name.to_ascii_lowercase().as_str()) {
            c[0].to_owned()
        } else {
            format!("<{name}{}></{name}>", c.get(2).map_or("", |a| a.as_str()))
        }
    })
}

/// How deep the document's elements nest, counted without recursion.
fn depth(document: &dom_query::Document) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(document.root(), 0)];
    while let Some((node, level)) = pending.pop() {
        deepest = deepest.max(level);
        pending.extend(node.children_it(false).map(|child| (child, level + 1)));
    }
    deepest
}

/// The body as Markdown (headings, lists, code blocks, tables), boilerplate dropped.
fn body_markdown(html: &str) -> String {
    let document = dom_query::Document::from(html);
    document.select(BOILERPLATE).remove();
    document
        .select("body")
        .nodes()
        .first()
        .map(|body| body.md(None).to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xhtml_anchors_closed_by_a_slash_keep_each_heading_to_its_own_text() {
        let section = |id: &str, title: &str, body: &str| {
            format!(
                "<div class=\"section\"><h2 class=\"title\"><a id=\"{id}\"/>{title}</h2><p>{body}</p></div>"
            )
        };
        let html = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>Guide</title></head><body>\
             <div class=\"navheader\"><table><tr><td>Chapter 1. Guide</td><td><a href=\"ch02.html\">Next</a></td></tr></table></div>\
             <div class=\"chapter\">{}{}{}</div></body></html>",
            section(
                "returns",
                "1.1. Returns",
                &"Items can be returned within thirty days. ".repeat(5)
            ),
            section(
                "shipping",
                "1.2. Shipping",
                &"Shipping to Belgium is free. ".repeat(5)
            ),
            section(
                "hours",
                "1.3. Hours",
                &"We are open on weekdays. ".repeat(5)
            ),
        );
        let doc = extract(&html, None).expect("readable");
        let under = |heading: &str| -> String {
            doc.blocks
                .iter()
                .filter(|b| b.heading_path.last().is_some_and(|h| h == heading))
                .map(|b| b.text.clone())
                .collect()
        };
        assert!(under("1.1. Returns").contains("thirty days"), "{doc:?}");
        assert!(under("1.2. Shipping").contains("Belgium"), "{doc:?}");
        assert!(!under("1.2. Shipping").contains("weekdays"), "{doc:?}");
        assert!(
            !doc.full_text().contains("Next"),
            "the navigation header is dropped"
        );
    }

    #[test]
    fn navigation_and_scripts_are_dropped_and_the_article_kept() {
        let paragraph = "Our refund policy gives every customer thirty days to return a product for a full refund, no questions asked. ".repeat(4);
        let html = format!(
            "<html><head><title>Refunds</title><script>var tracking = 1;</script></head><body>\
             <nav><a href='/'>Home</a> <a href='/shop'>Shop</a></nav>\
             <article><h1>Refunds</h1><p>{paragraph}</p><h2>Exceptions</h2><p>{paragraph} Gift cards are final.</p></article>\
             <footer>Copyright ACME</footer></body></html>"
        );
        let doc = extract(&html, Some("https://example.com/refunds")).expect("readable");
        let all = doc.full_text();
        assert!(
            all.contains("thirty days") && all.contains("Gift cards are final"),
            "{all}"
        );
        assert!(
            !all.contains("tracking") && !all.contains("Copyright ACME"),
            "{all}"
        );
        assert!(
            doc.blocks
                .iter()
                .any(|b| b.heading_path.last().is_some_and(|h| h == "Exceptions")),
            "{doc:?}"
        );
    }

    #[test]
    fn a_short_page_still_gives_its_text() {
        let doc = extract(
            "<html><body><nav>Menu</nav><p>Open 9 to 5.</p></body></html>",
            None,
        )
        .expect("text");
        assert!(doc.full_text().contains("Open 9 to 5."));
    }

    #[test]
    fn a_documentation_chapter_keeps_every_section_under_its_heading() {
        let section = |n: usize| {
            format!(
                "<div class='section'><h2 class='title'><a id='s{n}'/>1.{n}. Topic {n}</h2>\
                 <p>{}</p><pre>run-command-{n} --now</pre></div>",
                format!("Paragraph about topic {n} with enough words to count as text. ").repeat(5)
            )
        };
        let html = format!(
            "<html><head><title>Chapter 1</title></head><body><div class='chapter'>\
             <h1 class='title'>Chapter 1. Tutorials</h1><div class='toc'><a href='#s1'>1.1</a></div>{}\
             </div></body></html>",
            (1..=12).map(section).collect::<String>()
        );
        let doc = extract(&html, None).expect("readable");
        for n in 1..=12 {
            let command = format!("run-command-{n} --now");
            assert!(
                doc.blocks.iter().any(|b| b.text.contains(&command)
                    && b.heading_path
                        .last()
                        .is_some_and(|h| h.ends_with(&format!("Topic {n}")))),
                "section {n} with its heading: {doc:?}"
            );
        }
    }

    #[test]
    fn deeply_nested_markup_is_refused_instead_of_exhausting_the_stack() {
        for tag in ["blockquote", "ul><li", "div", "table><tr><td"] {
            let depth = 20_000;
            let parts: Vec<&str> = tag.split("><").collect();
            let close: String = parts.iter().rev().map(|t| format!("</{t}>")).collect();
            let html = format!(
                "<html><body>{}<p>deep</p>{}</body></html>",
                format!("<{tag}>").repeat(depth),
                close.repeat(depth)
            );
            let refused = on_worker_stack(html);
            assert!(
                matches!(&refused, Err(ExtractError::Corrupt(m)) if m.contains("nests")),
                "{tag}: {refused:?}"
            );
        }
        let html = format!(
            "<html><body>{}<p>Nested two hundred deep and still read.</p>{}</body></html>",
            "<div>".repeat(200),
            "</div>".repeat(200)
        );
        assert!(on_worker_stack(html).is_ok_and(|t| t.contains("still read")));
    }

    /// The page's text, extracted on a thread with the blocking pool's stack size (2 MiB),
    /// as ingestion runs it.
    fn on_worker_stack(html: String) -> Result<String, ExtractError> {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || extract(&html, None).map(|d| d.full_text()))
            .expect("thread")
            .join()
            .expect("no stack overflow")
    }
}
