//! A span per model call, with the OpenTelemetry GenAI conventions (`gen_ai.*`), and the
//! model metrics (tokens, time to the first token). Wraps whatever models are in use, so
//! local models, providers and the ones tests bring are measured alike.

use std::{sync::Arc, time::Instant};

use async_trait::async_trait;
use futures::StreamExt;
use tracing::{Instrument, Span, field::Empty};

use super::{
    ChatChunk, ChatModel, ChatRequest, ChatStream, Embedder, Faithfulness, ModelError, Models,
    Summarizer, Summary,
};
use crate::metrics::Metrics;

/// The target of model spans.
const TARGET: &str = "companin::models";

impl Models {
    /// These models, each call traced and counted in `metrics`.
    pub fn traced(self, metrics: Arc<Metrics>) -> Self {
        Self {
            embedder: Arc::new(TracedEmbedder {
                name: Name::of(self.embedder.id()),
                inner: self.embedder,
            }),
            summarizer: Arc::new(TracedSummarizer {
                name: Name::of(self.summarizer.id()),
                inner: self.summarizer,
            }),
            chat: Arc::new(TracedChat {
                name: Name::of(self.chat.id()),
                inner: self.chat,
                metrics,
            }),
            notes: self.notes,
        }
    }
}

/// A model's provider (`gen_ai.provider.name`) and name (`gen_ai.request.model`), read off its
/// id: `openai:gpt-4o-mini`, `local:SmolLM2-135M-Instruct`, `extractive`.
#[derive(Debug, Clone)]
struct Name {
    id: String,
    provider: String,
    model: String,
}

impl Name {
    fn of(id: &str) -> Self {
        let (provider, model) = id.split_once(':').unwrap_or(("companin", id));
        Self {
            id: id.to_owned(),
            provider: provider.to_owned(),
            model: model.to_owned(),
        }
    }

    fn span(&self, operation: &str) -> Span {
        tracing::info_span!(
            target: TARGET,
            "model call",
            otel.name = format!("{operation} {}", self.model),
            otel.kind = "client",
            otel.status_code = Empty,
            error.type = Empty,
            gen_ai.operation.name = operation,
            gen_ai.provider.name = %self.provider,
            gen_ai.request.model = %self.model,
            gen_ai.request.max_tokens = Empty,
            gen_ai.request.temperature = Empty,
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            gen_ai.response.finish_reasons = Empty,
            gen_ai.server.time_to_first_token = Empty,
            gen_ai.embeddings.dimension.count = Empty,
            companin.inputs = Empty,
        )
    }
}

/// Marks `span` failed with `error`.
fn failed(span: &Span, kind: &str, error: &dyn std::fmt::Display) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", kind);
    tracing::warn!(parent: span, error = %error, "the model call failed");
}

struct TracedChat {
    inner: Arc<dyn ChatModel>,
    name: Name,
    metrics: Arc<Metrics>,
}

#[async_trait]
impl ChatModel for TracedChat {
    fn id(&self) -> &str {
        &self.name.id
    }

    fn faithfulness(&self) -> Faithfulness {
        self.inner.faithfulness()
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.inner.count_tokens(text)
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, ModelError> {
        let span = self.name.span("chat");
        span.record("gen_ai.request.max_tokens", request.options.max_tokens);
        span.record(
            "gen_ai.request.temperature",
            f64::from(request.options.temperature),
        );
        let started = Instant::now();
        let mut inner = match self.inner.stream(request).instrument(span.clone()).await {
            Ok(stream) => stream,
            Err(e) => {
                failed(&span, e.kind(), &e);
                return Err(e);
            }
        };
        let (metrics, model) = (self.metrics.clone(), self.name.id.clone());
        // The span lives as long as the stream: it ends when the reply does, or is dropped.
        Ok(Box::pin(async_stream::stream! {
            let mut first = true;
            while let Some(item) = inner.next().instrument(span.clone()).await {
                match &item {
                    Ok(ChatChunk::Delta(_)) if first => {
                        first = false;
                        let seconds = started.elapsed().as_secs_f64();
                        span.record("gen_ai.server.time_to_first_token", seconds);
                        metrics.first_token(&model, seconds);
                    }
                    Ok(ChatChunk::Delta(_)) => {}
                    Ok(ChatChunk::Done(done)) => {
                        span.record("gen_ai.usage.input_tokens", done.prompt_tokens);
                        span.record("gen_ai.usage.output_tokens", done.completion_tokens);
                        span.record(
                            "gen_ai.response.finish_reasons",
                            format!("[\"{}\"]", done.finish_reason.as_str()),
                        );
                        metrics.model_tokens(&model, done.prompt_tokens, done.completion_tokens);
                    }
                    Err(e) => failed(&span, e.kind(), e),
                }
                yield item;
            }
        }))
    }
}

struct TracedEmbedder {
    inner: Arc<dyn Embedder>,
    name: Name,
}

impl TracedEmbedder {
    fn span(&self, inputs: usize) -> Span {
        let span = self.name.span("embeddings");
        span.record("gen_ai.embeddings.dimension.count", self.inner.dimension());
        span.record("companin.inputs", inputs);
        span
    }
}

#[async_trait]
impl Embedder for TracedEmbedder {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    async fn embed(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        let span = self.span(texts.len());
        let embedded = self.inner.embed(texts).instrument(span.clone()).await;
        if let Err(e) = &embedded {
            failed(&span, "embedding", e);
        }
        embedded
    }

    async fn embed_query(&self, query: &str) -> anyhow::Result<Vec<f32>> {
        let span = self.span(1);
        let embedded = self.inner.embed_query(query).instrument(span.clone()).await;
        if let Err(e) = &embedded {
            failed(&span, "embedding", e);
        }
        embedded
    }

    fn window(&self) -> Option<usize> {
        self.inner.window()
    }

    fn languages(&self) -> Option<&'static [&'static str]> {
        self.inner.languages()
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.inner.count_tokens(text)
    }
}

struct TracedSummarizer {
    inner: Arc<dyn Summarizer>,
    name: Name,
}

#[async_trait]
impl Summarizer for TracedSummarizer {
    fn id(&self) -> &str {
        self.inner.id()
    }

    async fn summarize(&self, text: &str) -> anyhow::Result<Summary> {
        let span = self.name.span("summarize");
        let summary = self.inner.summarize(text).instrument(span.clone()).await;
        if let Err(e) = &summary {
            failed(&span, "summary", e);
        }
        summary
    }

    async fn describe_image(&self, bytes: &[u8], mime: &str) -> anyhow::Result<Option<String>> {
        let span = self.name.span("describe_image");
        let described = self
            .inner
            .describe_image(bytes, mime)
            .instrument(span.clone())
            .await;
        if let Err(e) = &described {
            failed(&span, "image_description", e);
        }
        described
    }
}
