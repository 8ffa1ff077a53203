//! HTML: the main content (readability), boilerplate dropped, as Markdown sections.

use dom_smoothie::{Config, Readability, TextMode};

use super::text;
use crate::ingest::{Document, ExtractError};

/// Largest number of elements parsed; bigger pages are refused rather than stall a worker.
const MAX_ELEMENTS: usize = 200_000;

/// The page's main content. Falls back to the whole body's text for pages readability finds
/// no article in (short pages, listings).
pub fn extract(html: &str, url: Option<&str>) -> Result<Document, ExtractError> {
    let config = Config {
        text_mode: TextMode::Markdown,
        max_elements_to_parse: MAX_ELEMENTS,
        char_threshold: 100,
        ..Config::default()
    };
    let url = url.filter(|u| u.starts_with("http://") || u.starts_with("https://"));
    let article = Readability::new(html, url, Some(config)).and_then(|mut r| r.parse());
    match article {
        Ok(article) if !article.text_content.trim().is_empty() => {
            let mut body = String::new();
            if !article.title.trim().is_empty()
                && !article.text_content.trim_start().starts_with('#')
            {
                body.push_str(&format!("# {}\n\n", article.title.trim()));
            }
            body.push_str(&article.text_content);
            Ok(text::markdown(&body))
        }
        Err(dom_smoothie::ReadabilityError::TooManyElements(found, max)) => {
            Err(ExtractError::Corrupt(format!(
                "the page is too large to read ({found} elements, at most {max})"
            )))
        }
        _ => Ok(body_text(html)),
    }
}

fn body_text(html: &str) -> Document {
    let document = dom_query::Document::from(html);
    document
        .select("script, style, noscript, nav, header, footer, aside, form")
        .remove();
    let text = document.select("body").text();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    text::plain(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
