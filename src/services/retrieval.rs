//! Searching an organization's knowledge, scoped to what an assistant may use.

use std::collections::HashMap;

use entity::knowledge_source::{self, Kind};

use crate::{
    auth::{Principal, Scope, Tenant},
    domain::ids::{AssistantId, SourceId},
    error::{AppError, AppResult},
    language::normalized,
    repo,
    state::AppState,
    vector::{SearchMode, SearchRequest},
};

/// Similarity of a visitor's wording to a Q&A pair's question (pairs are embedded by their
/// question) from which the pair counts as a strong match, answered verbatim. On our
/// paraphrase set (`scripts/eval/gaps.py`) questions of different meanings reach 0.47 with
/// all-MiniLM-L6-v2, and close rewordings ("How can I…" for "How do I…") 0.99.
pub const QA_MATCH_SIMILARITY: f32 = 0.85;
/// The same for multilingual-e5-small, whose vectors are all close: questions of different
/// meanings reach 0.885 there.
pub const E5_QA_MATCH_SIMILARITY: f32 = 0.92;

/// The strong-match similarity for the vectors of `embedder`.
fn qa_match_similarity(embedder: &str) -> f32 {
    if embedder.starts_with("multilingual-e5") {
        E5_QA_MATCH_SIMILARITY
    } else {
        QA_MATCH_SIMILARITY
    }
}
/// Most hits one search returns.
pub const MAX_TOP_K: i32 = 50;
/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 2_000;

/// A search.
#[derive(Debug, Clone)]
pub struct Search {
    /// What to look for.
    pub query: String,
    /// Restrict to the sources this assistant may use; its top-k and minimum score apply.
    pub assistant_id: Option<AssistantId>,
    /// Hits wanted (default: the assistant's, else 5).
    pub top_k: Option<i32>,
    /// Retrieval mode (default hybrid).
    pub mode: Option<SearchMode>,
    /// Lowest score kept (default: the assistant's, else 0).
    pub min_score: Option<f64>,
}

/// One hit with its source.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The source the chunk belongs to.
    pub source: knowledge_source::Model,
    /// Position of the chunk in the source.
    pub chunk_index: i32,
    /// The chunk's text.
    pub text: String,
    /// Its heading path.
    pub heading: String,
    /// Ranking score, 0–1.
    pub score: f32,
    /// Cosine similarity to the query.
    pub similarity: f32,
    /// A Q&A pair whose question matches the query strongly: answer it verbatim.
    pub strong_qa_match: bool,
}

/// The best chunks for a search (read scope: visitors do not search knowledge directly).
pub async fn search(
    state: &AppState,
    principal: &Principal,
    search: Search,
) -> AppResult<Vec<Hit>> {
    search_in(state, &principal.scope(Scope::Read)?, search).await
}

/// The best chunks for a search of `tenant`'s knowledge (a caller's handle with the read
/// scope).
async fn search_in(state: &AppState, tenant: &Tenant, search: Search) -> AppResult<Vec<Hit>> {
    if tenant.visitor().is_some() {
        return Err(AppError::Forbidden(
            "a visitor token does not search knowledge directly".into(),
        ));
    }
    let query = search.query.trim();
    if query.is_empty() || query.chars().count() > MAX_QUERY_CHARS {
        return Err(AppError::bad_input(
            "query",
            format!("must be 1 to {MAX_QUERY_CHARS} characters"),
        ));
    }
    let scope = match &search.assistant_id {
        Some(assistant) => assistant_scope(state, tenant, assistant).await?,
        None => AssistantScope::default(),
    };
    let (top_k, min_score) = limits(&search, &scope)?;
    let mode = search.mode.unwrap_or(SearchMode::Hybrid);
    searched(state, tenant, query, mode, scope.links, top_k, min_score).await
}

/// Passages for a reply of `assistant`: its links apply, and the top-k and minimum score of
/// the version answering (already read, so the assistant is not read again).
pub(crate) async fn for_reply(
    state: &AppState,
    work: &Tenant,
    assistant: &AssistantId,
    query: &str,
    top_k: i32,
    min_score: f64,
) -> AppResult<Vec<Hit>> {
    let links = links(state, work, assistant).await?;
    let top_k = top_k.clamp(1, MAX_TOP_K);
    searched(
        state,
        work,
        query,
        SearchMode::Hybrid,
        links,
        top_k,
        min_score,
    )
    .await
}

/// The search itself, its limits checked.
async fn searched(
    state: &AppState,
    tenant: &Tenant,
    query: &str,
    mode: SearchMode,
    links: Links,
    top_k: i32,
    min_score: f64,
) -> AppResult<Vec<Hit>> {
    let embedder = &state.models.embedder;
    if !repo::knowledge::has_indexed(&state.db, tenant, embedder.id()).await? {
        return Ok(Vec::new());
    }
    let request = SearchRequest {
        org: tenant.org().clone(),
        text: query.to_owned(),
        mode,
        allowed: links.allowed,
        excluded: links.excluded,
        limit: top_k as usize,
        exact: false,
        embedder_languages: embedder
            .languages()
            .map(|codes| codes.iter().map(|c| (*c).to_owned()).collect()),
    };
    let found = state
        .vectors
        .search(
            embedder.id(),
            embedder.dimension(),
            &request,
            embedder.embed_query(query),
        )
        .await?;
    with_sources(
        state,
        tenant,
        query,
        found
            .into_iter()
            .filter(|h| f64::from(h.score) >= min_score)
            .collect(),
    )
    .await
}

/// The hits wanted and the lowest score kept: the search's own, else the assistant's.
fn limits(search: &Search, scope: &AssistantScope) -> AppResult<(i32, f64)> {
    let top_k = search.top_k.unwrap_or(scope.top_k);
    if !(1..=MAX_TOP_K).contains(&top_k) {
        return Err(AppError::bad_input(
            "top_k",
            format!("must be between 1 and {MAX_TOP_K}"),
        ));
    }
    let min_score = search.min_score.unwrap_or(scope.min_score);
    if !(0.0..=1.0).contains(&min_score) {
        return Err(AppError::bad_input("min_score", "must be between 0 and 1"));
    }
    Ok((top_k, min_score))
}

/// What an assistant searches: its top-k and minimum score, and its link rules.
struct AssistantScope {
    top_k: i32,
    min_score: f64,
    links: Links,
}

impl Default for AssistantScope {
    fn default() -> Self {
        Self {
            top_k: 5,
            min_score: 0.0,
            links: Links::default(),
        }
    }
}

/// The sources an assistant's links let it search.
#[derive(Default)]
struct Links {
    /// Only these sources, when some are linked.
    allowed: Option<Vec<String>>,
    /// Never these.
    excluded: Vec<String>,
}

/// The search settings and link rules of `assistant` (`NOT_FOUND` for a missing one).
async fn assistant_scope(
    state: &AppState,
    tenant: &Tenant,
    assistant: &AssistantId,
) -> AppResult<AssistantScope> {
    let (_, live) = repo::assistants::find(&state.db, tenant, assistant)
        .await?
        .ok_or(AppError::NotFound("assistant"))?;
    Ok(AssistantScope {
        top_k: live.top_k,
        min_score: live.min_score,
        links: links(state, tenant, assistant).await?,
    })
}

/// The sources `assistant`'s link rules let it search.
async fn links(state: &AppState, tenant: &Tenant, assistant: &AssistantId) -> AppResult<Links> {
    let (linked, excluded) = repo::assistant_knowledge::rules(&state.db, tenant, assistant).await?;
    let allowed = (!linked.is_empty()).then(|| {
        linked
            .into_iter()
            .filter(|id| !excluded.contains(id))
            .collect()
    });
    Ok(Links { allowed, excluded })
}

/// Joins hits with their sources, dropping chunks of sources deleted meanwhile.
async fn with_sources(
    state: &AppState,
    tenant: &Tenant,
    query: &str,
    found: Vec<crate::vector::VectorHit>,
) -> AppResult<Vec<Hit>> {
    let ids: Vec<String> = found.iter().map(|h| h.source_id.clone()).collect();
    let sources: HashMap<String, knowledge_source::Model> =
        repo::knowledge::find_many(&state.db, tenant, &ids)
            .await?
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
    let strong = qa_match_similarity(state.models.embedder.id());
    Ok(found
        .into_iter()
        .filter_map(|h| {
            let source = sources.get(&h.source_id)?.clone();
            let strong_qa_match = source.kind == Kind::Qa
                && (h.similarity >= strong
                    || source
                        .question
                        .as_deref()
                        .is_some_and(|q| normalized(q) == normalized(query)));
            Some(Hit {
                source,
                chunk_index: h.chunk_index,
                text: h.text,
                heading: h.heading,
                score: h.score,
                similarity: h.similarity,
                strong_qa_match,
            })
        })
        .collect())
}

/// Links (`Some(true)`), excludes (`Some(false)`) or clears (`None`) a source for an
/// assistant. Returns the assistant.
pub async fn set_rule(
    state: &AppState,
    principal: &Principal,
    assistant: &AssistantId,
    source: &SourceId,
    linked: Option<bool>,
) -> AppResult<repo::assistants::AssistantRow> {
    let tenant = principal.scope(Scope::Write)?;
    let row = repo::assistants::find(&state.db, &tenant, assistant)
        .await?
        .ok_or(AppError::NotFound("assistant"))?;
    repo::knowledge::find(&state.db, &tenant, source)
        .await?
        .ok_or(AppError::NotFound("knowledge source"))?;
    match linked {
        Some(true) => {
            repo::assistant_knowledge::set(
                &state.db,
                &tenant,
                assistant,
                source,
                repo::assistant_knowledge::Rule::Linked,
            )
            .await?
        }
        Some(false) => {
            repo::assistant_knowledge::set(
                &state.db,
                &tenant,
                assistant,
                source,
                repo::assistant_knowledge::Rule::Excluded,
            )
            .await?
        }
        None => repo::assistant_knowledge::remove(&state.db, &tenant, assistant, source).await?,
    }
    Ok(row)
}

/// The linked and excluded source ids of an assistant (`NOT_FOUND` for a missing one).
pub async fn rules(
    state: &AppState,
    principal: &Principal,
    assistant: &AssistantId,
) -> AppResult<(Vec<String>, Vec<String>)> {
    let tenant = principal.scope(Scope::Read)?;
    repo::assistants::find(&state.db, &tenant, assistant)
        .await?
        .ok_or(AppError::NotFound("assistant"))?;
    Ok(repo::assistant_knowledge::rules(&state.db, &tenant, assistant).await?)
}

/// The linked and excluded source ids of each assistant, in one read (read scope).
pub async fn rules_of_many(
    state: &AppState,
    principal: &Principal,
    assistant_ids: &[String],
) -> AppResult<HashMap<String, (Vec<String>, Vec<String>)>> {
    let tenant = principal.scope(Scope::Read)?;
    Ok(repo::assistant_knowledge::rules_of_many(&state.db, &tenant, assistant_ids).await?)
}
