//! Retrieval: vector, full-text, or both fused by their normalised scores.
//!
//! Hybrid search adds each leg's scores, scaled to 0–1 within the leg (min–max), with a
//! weight that follows the languages of the query and of what was found: where the embedder
//! reads them the vector leg weighs [`STRONG_LEG`], elsewhere (an English embedder on Spanish
//! chunks, or asked in Portuguese) the full-text leg does. Measured on the Debian Reference
//! (`scripts/eval/answers.py`, and `scripts/eval/fusion.py` for other fusions of the same
//! legs), reciprocal rank fusion with equal weights lost to the better leg in every language;
//! this fusion is at least as good as the better leg in every language.
//!
//! The fusion is done here rather than by LanceDB's built-in hybrid query so each hit keeps
//! its raw similarity, which the Q&A match and the minimum score rely on.

use std::collections::HashMap;

use anyhow::Context;
use futures::TryStreamExt;
use lancedb::{
    DistanceType, Table,
    arrow::arrow_array::{
        Array, RecordBatch,
        cast::AsArray,
        types::{Float32Type, Int32Type},
    },
    index::scalar::FullTextSearchQuery,
    query::{ExecutableQuery, QueryBase, Select},
};

use super::{VectorStore, batch, literal};
use crate::domain::ids::OrgId;

/// The weight of the leg that reads the chunks' language best; the other gets the rest.
const STRONG_LEG: f32 = 0.7;

/// Which retrieval to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    /// Vector and full text, fused.
    Hybrid,
    /// Nearest vectors only.
    Vector,
    /// Full text (BM25) only.
    Text,
}

/// One search.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// The caller's organization: every query is confined to it.
    pub org: OrgId,
    /// The query's text.
    pub text: String,
    /// Retrieval mode.
    pub mode: SearchMode,
    /// When set, only these sources.
    pub allowed: Option<Vec<String>>,
    /// Never these sources.
    pub excluded: Vec<String>,
    /// Hits wanted.
    pub limit: usize,
    /// Exact (brute-force) vector search even when an index exists.
    pub exact: bool,
    /// The languages (ISO 639-1) the embedder reads; `None`: every language.
    pub embedder_languages: Option<Vec<String>>,
}

/// One retrieved chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorHit {
    /// Its source.
    pub source_id: String,
    /// Its position in the source.
    pub chunk_index: i32,
    /// Its text.
    pub text: String,
    /// Its heading path.
    pub heading: String,
    /// Ranking score in 0–1: similarity (vector), relative BM25 (text), the weighted sum of
    /// both legs' min–max scaled scores (hybrid).
    pub score: f32,
    /// Cosine similarity to the query, -1–1.
    pub similarity: f32,
}

impl VectorStore {
    /// The best chunks for `request` among those embedded by `model`; `embedding` gives the
    /// query's vector, computed while the full-text leg searches (the text leg needs it only
    /// to report its hits' similarity).
    #[tracing::instrument(
        name = "vector search",
        skip_all,
        fields(
            otel.name = "vector search",
            otel.kind = "client",
            db.system.name = "lancedb",
            companin.organization.id = request.org.as_str(),
            companin.search.mode = ?request.mode,
            companin.search.limit = request.limit,
            companin.search.hits = tracing::field::Empty,
        )
    )]
    pub async fn search(
        &self,
        model: &str,
        dimension: usize,
        request: &SearchRequest,
        embedding: impl Future<Output = anyhow::Result<Vec<f32>>>,
    ) -> anyhow::Result<Vec<VectorHit>> {
        if request.limit == 0 || request.allowed.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let table = self.table(model, dimension).await?;
        let filter = filter(request);
        let depth = if request.mode == SearchMode::Hybrid {
            (request.limit * 2).max(20)
        } else {
            request.limit
        };
        let terms = crate::language::query_terms(&request.text);
        let vector_leg = async {
            let vector = embedding.await?;
            if request.mode == SearchMode::Text {
                return Ok((vector, Vec::new()));
            }
            let hits = vector_leg(&table, &vector, request, &filter, depth).await?;
            Ok((vector, hits))
        };
        let text_leg = async {
            if request.mode == SearchMode::Vector || terms.is_empty() {
                return Ok(Vec::new());
            }
            text_leg(&table, &terms, &filter, depth).await
        };
        let ((vector, by_vector), by_text) = futures::try_join!(vector_leg, text_leg)?;
        let by_text = by_text
            .into_iter()
            .map(|(raw, stored)| Raw {
                hit: VectorHit {
                    similarity: cosine(&vector, &stored),
                    ..raw.hit
                },
                ..raw
            })
            .collect();
        let hits = fuse(request, by_vector, by_text);
        tracing::Span::current().record("companin.search.hits", hits.len());
        Ok(hits)
    }
}

fn filter(request: &SearchRequest) -> String {
    let mut filter = format!("org_id = {}", literal(request.org.as_str()));
    let list = |ids: &[String]| {
        ids.iter()
            .map(|id| literal(id))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(allowed) = &request.allowed {
        filter.push_str(&format!(" AND source_id IN ({})", list(allowed)));
    }
    if !request.excluded.is_empty() {
        filter.push_str(&format!(
            " AND source_id NOT IN ({})",
            list(&request.excluded)
        ));
    }
    filter
}

/// A raw hit of one leg, with the leg's own score and the chunk's language.
struct Raw {
    hit: VectorHit,
    leg_score: f32,
    language: String,
}

/// The vector leg's columns. The score column is named: lance adds it when it is left out
/// and logs a deprecation warning at every search.
const VECTOR_COLUMNS: [&str; 6] = [
    "source_id",
    "chunk_index",
    "text",
    "heading",
    batch::LANGUAGE,
    "_distance",
];
/// The text leg's columns, its score named for the same reason.
const TEXT_COLUMNS: [&str; 7] = [
    "source_id",
    "chunk_index",
    "text",
    "heading",
    batch::LANGUAGE,
    "vector",
    "_score",
];

async fn vector_leg(
    table: &Table,
    vector: &[f32],
    request: &SearchRequest,
    filter: &str,
    depth: usize,
) -> anyhow::Result<Vec<Raw>> {
    let mut query = table
        .query()
        .nearest_to(vector)?
        .column("vector")
        .distance_type(DistanceType::Cosine)
        .limit(depth)
        .only_if(filter)
        .select(Select::columns(&VECTOR_COLUMNS));
    query = if request.exact {
        query.bypass_vector_index()
    } else {
        // The index is HNSW over the vectors themselves, so its distances are already exact:
        // a refine pass would only re-read candidates' vectors from the data files (measured
        // at 100k chunks: same recall, vector leg 55 → 42 ms without it). `ef` is the graph
        // search's breadth, which is what holds recall (at 100k chunks in one graph, recall@10
        // 0.94 at ef 500, 0.97 at 800, 0.98 at 1000).
        query.nprobes(20)?.ef((depth * 40).max(800))
    };
    let batches: Vec<RecordBatch> = query
        .execute()
        .await?
        .try_collect()
        .await
        .context("vector search")?;
    let mut out = Vec::new();
    for batch in &batches {
        let distance = column(batch, "_distance")?.as_primitive::<Float32Type>();
        for (i, (hit, language)) in read_hits(batch)?.into_iter().enumerate() {
            let similarity = (1.0 - distance.value(i)).clamp(-1.0, 1.0);
            out.push(Raw {
                hit: VectorHit { similarity, ..hit },
                leg_score: similarity,
                language,
            });
        }
    }
    Ok(out)
}

/// The full-text leg's hits, each with its stored vector.
async fn text_leg(
    table: &Table,
    terms: &str,
    filter: &str,
    depth: usize,
) -> anyhow::Result<Vec<(Raw, Vec<f32>)>> {
    // The terms are the query analysed in every language: words only, never query syntax.
    let query = FullTextSearchQuery::new(terms.to_owned()).with_column(batch::TERMS.to_owned())?;
    let batches: Vec<RecordBatch> = table
        .query()
        .full_text_search(query)
        .only_if(filter)
        .limit(depth)
        .select(Select::columns(&TEXT_COLUMNS))
        .execute()
        .await?
        .try_collect()
        .await
        .context("full-text search")?;
    let mut out = Vec::new();
    for batch in &batches {
        let score = column(batch, "_score")?.as_primitive::<Float32Type>();
        let vectors = column(batch, "vector")?.as_fixed_size_list();
        for (i, (hit, language)) in read_hits(batch)?.into_iter().enumerate() {
            let stored = vectors.value(i);
            let raw = Raw {
                hit,
                leg_score: score.value(i),
                language,
            };
            out.push((raw, stored.as_primitive::<Float32Type>().values().to_vec()));
        }
    }
    Ok(out)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm =
        a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        (dot / norm).clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

/// Orders the legs' hits into the final list.
fn fuse(request: &SearchRequest, by_vector: Vec<Raw>, by_text: Vec<Raw>) -> Vec<VectorHit> {
    let mut hits: Vec<VectorHit> = match request.mode {
        SearchMode::Vector => by_vector
            .into_iter()
            .map(|r| VectorHit {
                score: r.leg_score.max(0.0),
                ..r.hit
            })
            .collect(),
        SearchMode::Text => {
            let best = by_text
                .iter()
                .map(|r| r.leg_score)
                .fold(f32::MIN_POSITIVE, f32::max);
            by_text
                .into_iter()
                .map(|r| VectorHit {
                    score: r.leg_score / best,
                    ..r.hit
                })
                .collect()
        }
        SearchMode::Hybrid => {
            let vector_weight = vector_weight(request, &by_vector, &by_text);
            let mut fused: HashMap<(String, i32), VectorHit> = HashMap::new();
            for (weight, leg) in [(vector_weight, by_vector), (1.0 - vector_weight, by_text)] {
                for (normalised, raw) in min_max(leg) {
                    let contribution = weight * normalised;
                    fused
                        .entry((raw.hit.source_id.clone(), raw.hit.chunk_index))
                        .and_modify(|hit| hit.score += contribution)
                        .or_insert(VectorHit {
                            score: contribution,
                            ..raw.hit
                        });
                }
            }
            fused.into_values().collect()
        }
    };
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.similarity.total_cmp(&a.similarity))
    });
    hits.truncate(request.limit);
    hits
}

/// The vector leg's weight: [`STRONG_LEG`] when the embedder reads the language of the
/// chunks found, `1 - STRONG_LEG` when it reads none of them, in proportion between — and
/// `1 - STRONG_LEG` whatever the chunks when the detector is sure the query is in a language
/// the embedder does not read (an English embedder's vector of a Portuguese question is no
/// guide even to English chunks). Measured on the harness's Portuguese
/// (`scripts/eval/answers.py`), where a tenth of the answering sections are untranslated
/// English: hybrid top-1 / top-5 .32 / .57 by the chunks alone, below the text leg's
/// .33 / .58; .38 / .60 with the query's language.
fn vector_weight(request: &SearchRequest, by_vector: &[Raw], by_text: &[Raw]) -> f32 {
    let Some(read) = &request.embedder_languages else {
        return STRONG_LEG;
    };
    if crate::language::detect_reliably(&request.text)
        .is_some_and(|asked| !read.iter().any(|r| r == asked))
    {
        return 1.0 - STRONG_LEG;
    }
    let found: Vec<&str> = by_vector
        .iter()
        .chain(by_text)
        .map(|r| r.language.as_str())
        .collect();
    if found.is_empty() {
        return STRONG_LEG;
    }
    let readable = found
        .iter()
        .filter(|l| read.iter().any(|r| r == *l))
        .count();
    let share = readable as f32 / found.len() as f32;
    (1.0 - STRONG_LEG) + (2.0 * STRONG_LEG - 1.0) * share
}

/// A leg's hits with their scores scaled to 0–1 (the best 1, the worst 0; a single hit 1).
fn min_max(leg: Vec<Raw>) -> Vec<(f32, Raw)> {
    let (low, high) = leg.iter().fold((f32::MAX, f32::MIN), |(low, high), r| {
        (low.min(r.leg_score), high.max(r.leg_score))
    });
    leg.into_iter()
        .map(|raw| {
            let normalised = if high > low {
                (raw.leg_score - low) / (high - low)
            } else {
                1.0
            };
            (normalised, raw)
        })
        .collect()
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> anyhow::Result<&'a std::sync::Arc<dyn Array>> {
    batch
        .column_by_name(name)
        .with_context(|| format!("search result without `{name}`"))
}

/// The hits of a batch with their chunks' languages.
fn read_hits(batch: &RecordBatch) -> anyhow::Result<Vec<(VectorHit, String)>> {
    let source = column(batch, "source_id")?.as_string::<i32>();
    let index = column(batch, "chunk_index")?.as_primitive::<Int32Type>();
    let text = column(batch, "text")?.as_string::<i32>();
    let heading = column(batch, "heading")?.as_string::<i32>();
    let language = column(batch, super::batch::LANGUAGE)?.as_string::<i32>();
    Ok((0..batch.num_rows())
        .map(|i| {
            let hit = VectorHit {
                source_id: source.value(i).to_owned(),
                chunk_index: index.value(i),
                text: text.value(i).to_owned(),
                heading: heading.value(i).to_owned(),
                score: 0.0,
                similarity: 0.0,
            };
            let language = if language.is_null(i) {
                String::new()
            } else {
                language.value(i).to_owned()
            };
            (hit, language)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(chunk: i32, leg_score: f32, language: &str) -> Raw {
        Raw {
            hit: VectorHit {
                source_id: "ks_1".into(),
                chunk_index: chunk,
                text: String::new(),
                heading: String::new(),
                score: 0.0,
                similarity: 0.0,
            },
            leg_score,
            language: language.into(),
        }
    }

    fn hybrid(read: Option<&[&str]>) -> SearchRequest {
        SearchRequest {
            org: OrgId::generate(),
            text: String::new(),
            mode: SearchMode::Hybrid,
            allowed: None,
            excluded: Vec::new(),
            limit: 3,
            exact: false,
            embedder_languages: read.map(|r| r.iter().map(|l| (*l).to_owned()).collect()),
        }
    }

    /// The vector leg ranks chunk 0 first, the full-text leg chunk 1.
    fn legs(language: &str) -> (Vec<Raw>, Vec<Raw>) {
        (
            vec![
                raw(0, 0.62, language),
                raw(1, 0.55, language),
                raw(2, 0.40, language),
            ],
            vec![
                raw(1, 9.0, language),
                raw(0, 4.0, language),
                raw(2, 1.0, language),
            ],
        )
    }

    #[tokio::test]
    async fn concurrent_writes_leave_no_chunk_outside_the_text_index() -> anyhow::Result<()> {
        use crate::{domain::ids::SourceId, vector::ChunkRow};

        let dir = tempfile::tempdir()?;
        let store = VectorStore::open(&dir.path().display().to_string(), 1_000).await?;
        let org = OrgId::generate();
        let texts = [
            "plans[0].name: Starter\nplans[0].seats: 3\nplans[1].name: Enterprise",
            "The warehouse cat is called Pixel and guards the loading bay.",
            "A kettle may be returned within forty days if the lid is undamaged.",
            "Parcels to Iceland travel by ferry and arrive within nine working days.",
            "The espresso grinder warranty lasts thirty six months.",
            "Photo of the Utrecht storefront with a green awning.",
        ];
        let writes = texts.iter().map(|text| {
            let (store, org, source) = (store.clone(), org.clone(), SourceId::generate());
            async move {
                let row = ChunkRow {
                    org_id: org.to_string(),
                    source_id: source.to_string(),
                    chunk_index: 0,
                    text: (*text).to_owned(),
                    heading: String::new(),
                    vector: vec![1.0, 0.0],
                };
                store.replace_source("m", 2, &org, &source, vec![row]).await
            }
        });
        futures::future::try_join_all(writes).await?;

        let table = store.table("m", 2).await?;
        let stats = table
            .index_stats(super::super::TEXT_INDEX)
            .await?
            .expect("the text index exists");
        assert_eq!(
            (stats.num_indexed_rows, stats.num_unindexed_rows),
            (texts.len(), 0)
        );
        let request = SearchRequest {
            org: org.clone(),
            text: "warehouse cat name".into(),
            mode: SearchMode::Text,
            ..hybrid(None)
        };
        let hits = store
            .search("m", 2, &request, async { Ok(vec![1.0, 0.0]) })
            .await?;
        assert_eq!(hits.first().map(|h| h.text.as_str()), Some(texts[1]));
        Ok(())
    }

    #[test]
    fn hybrid_follows_the_vector_leg_where_the_embedder_reads_the_language_and_text_elsewhere() {
        let order = |read: Option<&[&str]>, language: &str| -> Vec<i32> {
            let (by_vector, by_text) = legs(language);
            fuse(&hybrid(read), by_vector, by_text)
                .iter()
                .map(|h| h.chunk_index)
                .collect()
        };
        assert_eq!(order(Some(&["en"]), "en"), [0, 1, 2]);
        assert_eq!(order(Some(&["en"]), "es"), [1, 0, 2]);
        assert_eq!(
            order(None, "pt"),
            [0, 1, 2],
            "a multilingual embedder leads"
        );
        let (by_vector, by_text) = legs("en");
        let asked_in_portuguese = SearchRequest {
            text: "Criei um utilizador só para testes. Como é que o removo, incluindo a pasta \
                   pessoal dele?"
                .into(),
            ..hybrid(Some(&["en"]))
        };
        let order_asked: Vec<i32> = fuse(&asked_in_portuguese, by_vector, by_text)
            .iter()
            .map(|h| h.chunk_index)
            .collect();
        assert_eq!(
            order_asked,
            [1, 0, 2],
            "a question the embedder does not read follows the text leg, even to English chunks"
        );
        let (by_vector, by_text) = legs("es");
        let hits = fuse(&hybrid(Some(&["en"])), by_vector, by_text);
        assert!(
            hits.iter().all(|h| (0.0..=1.0).contains(&h.score)),
            "{hits:?}"
        );
        assert_eq!(hits[2].score, 0.0, "last in both legs");
    }
}
