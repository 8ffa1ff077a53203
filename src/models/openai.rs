//! `openai`: any OpenAI-compatible provider (OpenAI, Azure, Ollama, vLLM, llama.cpp server)
//! through async-openai — streaming chat, embeddings, and LLM-written summaries. Requests have
//! a connect and a read timeout; 429, 5xx and refused connections are retried with
//! exponential backoff (honouring `Retry-After`); errors become messages that name the
//! provider and what it said.

use std::time::Duration;

use async_openai::{
    Client,
    config::OpenAIConfig,
    error::OpenAIError,
    middleware::{HttpRequestFactory, retry::OpenAIRetryLayer},
    types::{
        chat::{
            ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
            ChatCompletionRequestMessageContentPartImage,
            ChatCompletionRequestMessageContentPartText, ChatCompletionRequestSystemMessage,
            ChatCompletionRequestUserMessage, ChatCompletionRequestUserMessageContent,
            ChatCompletionRequestUserMessageContentPart, ChatCompletionStreamOptions,
            CreateChatCompletionRequest, FinishReason as ApiFinish, ImageUrl, StopConfiguration,
        },
        embeddings::{CreateEmbeddingRequest, EmbeddingInput},
    },
};
use async_trait::async_trait;
use futures::StreamExt;
use secrecy::ExposeSecret;

use super::{
    ChatChunk, ChatMessage, ChatModel, ChatRequest, ChatStream, Completion, Embedder, FinishReason,
    ModelError, Role, Summarizer, Summary, chat::prompt_messages,
};
use crate::config::ModelSettings;

/// Inputs per embeddings request.
const EMBED_BATCH: usize = 256;
/// Longest text sent for a summary.
const SUMMARY_INPUT_CHARS: usize = 12_000;

/// Sends a provider request with the current trace's `traceparent` (each attempt its own).
#[derive(Clone)]
struct WithTraceContext(reqwest::Client);

impl tower::Service<HttpRequestFactory> for WithTraceContext {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = futures::future::BoxFuture<'static, Result<reqwest::Response, OpenAIError>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: HttpRequestFactory) -> Self::Future {
        let client = self.0.clone();
        let mut trace = reqwest::header::HeaderMap::new();
        crate::telemetry::propagation::inject(&mut trace);
        Box::pin(async move {
            let mut request = request.build().await?;
            request.headers_mut().extend(trace);
            client.execute(request).await.map_err(OpenAIError::Reqwest)
        })
    }
}

/// A client of one OpenAI-compatible provider.
#[derive(Clone)]
pub struct OpenAi {
    client: Client<OpenAIConfig>,
    base: String,
}

impl OpenAi {
    /// A client configured from `OPENAI_API_KEY`, `OPENAI_BASE_URL` and the timeouts.
    pub fn new(settings: &ModelSettings) -> Result<Self, ModelError> {
        let mut config = OpenAIConfig::new().with_api_key(
            settings
                .openai_api_key
                .as_ref()
                .map(|k| k.expose_secret().to_owned())
                .unwrap_or_default(),
        );
        let base = settings
            .openai_base_url
            .clone()
            .unwrap_or_else(|| "https://api.openai.com/v1".into());
        config = config.with_api_base(base.trim_end_matches('/'));
        let http = crate::tls::client_builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(settings.openai_timeout_seconds.max(1)))
            .build()
            .map_err(|e| ModelError::unavailable(format!("HTTP client: {e}")))?;
        let service = tower::ServiceBuilder::new()
            .layer(OpenAIRetryLayer::new(settings.openai_max_retries))
            .service(WithTraceContext(http));
        Ok(Self {
            client: Client::with_config(config).with_http_service(service),
            base,
        })
    }

    fn error(&self, e: OpenAIError) -> ModelError {
        match e {
            OpenAIError::ApiError(e) if e.status_code.as_u16() == 429 => {
                ModelError::RateLimited(format!(
                    "the model provider is rate limiting: {}",
                    e.api_error.message
                ))
            }
            OpenAIError::ApiError(e) if matches!(e.status_code.as_u16(), 401 | 403) => {
                ModelError::unavailable(format!(
                    "the model provider at {} refused the API key ({}): {}",
                    self.base, e.status_code, e.api_error.message
                ))
            }
            OpenAIError::ApiError(e) => ModelError::unavailable(format!(
                "the model provider answered {}: {}",
                e.status_code, e.api_error.message
            )),
            OpenAIError::Reqwest(e) if e.is_connect() => ModelError::unavailable(format!(
                "cannot reach the model provider at {}: {e}",
                self.base
            )),
            OpenAIError::Reqwest(e) if e.is_timeout() => {
                ModelError::unavailable(format!("the model provider at {} timed out", self.base))
            }
            OpenAIError::JSONDeserialize(e, body) => ModelError::unavailable(format!(
                "the model provider's answer was not understood ({e}): {}",
                body.chars().take(200).collect::<String>()
            )),
            other => ModelError::unavailable(format!("model provider: {other}")),
        }
    }

    async fn complete(&self, request: CreateChatCompletionRequest) -> Result<String, ModelError> {
        let response = self
            .client
            .chat()
            .create(request)
            .await
            .map_err(|e| self.error(e))?;
        Ok(response
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .unwrap_or_default())
    }
}

fn api_message(message: &ChatMessage) -> ChatCompletionRequestMessage {
    let content = message.content.clone();
    match message.role {
        Role::System => ChatCompletionRequestSystemMessage::from(content.as_str()).into(),
        Role::User => ChatCompletionRequestUserMessage::from(content.as_str()).into(),
        Role::Assistant => ChatCompletionRequestAssistantMessage::from(content.as_str()).into(),
    }
}

/// Chat through the provider.
pub struct OpenAiChat {
    api: OpenAi,
    model: String,
    id: String,
}

impl OpenAiChat {
    /// Chat with `model` at the provider.
    pub fn new(api: OpenAi, model: &str) -> Self {
        Self {
            api,
            model: model.to_owned(),
            id: format!("openai:{model}"),
        }
    }
}

#[async_trait]
impl ChatModel for OpenAiChat {
    fn id(&self) -> &str {
        &self.id
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, ModelError> {
        let options = &request.options;
        let stop: Vec<String> = options.stop.iter().take(4).cloned().collect();
        let api_request = CreateChatCompletionRequest {
            model: self.model.clone(),
            messages: prompt_messages(&request).iter().map(api_message).collect(),
            max_completion_tokens: Some(options.max_tokens),
            temperature: Some(options.temperature.clamp(0.0, 2.0)),
            stop: (!stop.is_empty()).then_some(StopConfiguration::StringArray(stop)),
            stream_options: Some(ChatCompletionStreamOptions {
                include_usage: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut upstream = self
            .api
            .client
            .chat()
            .create_stream(api_request)
            .await
            .map_err(|e| self.api.error(e))?;
        // The provider's refusal (status, rate limit) arrives as the first event: report it
        // as the request's error rather than mid-reply.
        let first = match upstream.next().await {
            Some(Err(e)) => return Err(self.api.error(e)),
            first => first,
        };
        let mut upstream = futures::stream::iter(first).chain(upstream);
        let api = self.api.clone();
        let stream = async_stream::try_stream! {
            let mut completion = Completion {
                finish_reason: FinishReason::Stop,
                prompt_tokens: 0,
                completion_tokens: 0,
                citations: Vec::new(),
            };
            while let Some(item) = upstream.next().await {
                let chunk = item.map_err(|e| api.error(e))?;
                if let Some(usage) = chunk.usage {
                    completion.prompt_tokens = usage.prompt_tokens;
                    completion.completion_tokens = usage.completion_tokens;
                }
                for choice in chunk.choices {
                    if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                        yield ChatChunk::Delta(text);
                    }
                    if let Some(reason) = choice.finish_reason {
                        completion.finish_reason = match reason {
                            ApiFinish::Length => FinishReason::Length,
                            _ => FinishReason::Stop,
                        };
                    }
                }
            }
            yield ChatChunk::Done(completion);
        };
        Ok(stream.boxed())
    }
}

/// Embeddings through the provider.
pub struct OpenAiEmbedder {
    api: OpenAi,
    model: String,
    query_model: String,
    query_prefix: String,
    passage_prefix: String,
    id: String,
    dimension: usize,
}

impl OpenAiEmbedder {
    /// Embeddings of `model`; the dimension comes from the settings, is known for OpenAI's
    /// models, or is asked of the provider with one request.
    pub async fn new(api: OpenAi, settings: &ModelSettings) -> Result<Self, ModelError> {
        let model = settings.openai_embedding_model.clone();
        let known = match model.as_str() {
            "text-embedding-3-small" | "text-embedding-ada-002" => Some(1536),
            "text-embedding-3-large" => Some(3072),
            _ => None,
        };
        let query_model = settings
            .openai_embedding_query_model
            .clone()
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| model.clone());
        let mut embedder = Self {
            api,
            id: format!("openai:{model}"),
            query_model,
            query_prefix: settings.openai_embedding_query_prefix.clone(),
            passage_prefix: settings.openai_embedding_passage_prefix.clone(),
            model,
            dimension: settings.openai_embedding_dimensions.or(known).unwrap_or(0),
        };
        if embedder.dimension == 0 {
            let probe = embedder
                .request(&embedder.model, vec!["dimension probe".into()])
                .await?;
            embedder.dimension = probe.first().map_or(0, Vec::len);
            if embedder.dimension == 0 {
                return Err(ModelError::unavailable(
                    "the embeddings endpoint returned no vector; set COMPANIN_OPENAI_EMBEDDING_DIMENSIONS",
                ));
            }
        }
        Ok(embedder)
    }

    async fn request(&self, model: &str, input: Vec<String>) -> Result<Vec<Vec<f32>>, ModelError> {
        let expected = input.len();
        let request = CreateEmbeddingRequest {
            model: model.to_owned(),
            input: EmbeddingInput::StringArray(input),
            ..Default::default()
        };
        let mut data = self
            .api
            .client
            .embeddings()
            .create(request)
            .await
            .map_err(|e| self.api.error(e))?
            .data;
        if data.len() != expected {
            return Err(ModelError::unavailable(format!(
                "the embeddings endpoint returned {} vectors for {expected} texts",
                data.len()
            )));
        }
        data.sort_by_key(|e| e.index);
        let vectors: Vec<Vec<f32>> = data
            .into_iter()
            .map(|e| super::hash::normalized(e.embedding))
            .collect();
        if self.dimension > 0
            && let Some(bad) = vectors.iter().find(|v| v.len() != self.dimension)
        {
            return Err(ModelError::unavailable(format!(
                "the embeddings endpoint returned {} dimensions, {} expected",
                bad.len(),
                self.dimension
            )));
        }
        Ok(vectors)
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    async fn embed(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(EMBED_BATCH) {
            let input = batch
                .iter()
                .map(|text| format!("{}{text}", self.passage_prefix))
                .collect();
            vectors.extend(self.request(&self.model, input).await?);
        }
        Ok(vectors)
    }

    async fn embed_query(&self, query: &str) -> anyhow::Result<Vec<f32>> {
        let input = vec![format!("{}{query}", self.query_prefix)];
        Ok(self
            .request(&self.query_model, input)
            .await?
            .pop()
            .unwrap_or_default())
    }
}

/// Summaries and keywords written by the provider's chat model, and image descriptions when
/// that model sees images.
pub struct OpenAiSummarizer {
    api: OpenAi,
    model: String,
    id: String,
    vision: bool,
}

impl OpenAiSummarizer {
    /// Summaries by `model`; `vision` when it accepts images.
    pub fn new(api: OpenAi, model: &str, vision: bool) -> Self {
        Self {
            api,
            model: model.to_owned(),
            id: format!("openai:{model}"),
            vision,
        }
    }
}

#[async_trait]
impl Summarizer for OpenAiSummarizer {
    fn id(&self) -> &str {
        &self.id
    }

    async fn summarize(&self, text: &str) -> anyhow::Result<Summary> {
        let text: String = text.chars().take(SUMMARY_INPUT_CHARS).collect();
        let instructions = "Summarise the document in at most three sentences, in its own \
            language. Then list up to eight key phrases. Answer with JSON only: \
            {\"summary\": \"...\", \"keywords\": [\"...\"]}";
        let request = CreateChatCompletionRequest {
            model: self.model.clone(),
            messages: vec![
                api_message(&ChatMessage::new(Role::System, instructions)),
                api_message(&ChatMessage::new(Role::User, text)),
            ],
            temperature: Some(0.0),
            max_completion_tokens: Some(400),
            ..Default::default()
        };
        let answer = self.api.complete(request).await?;
        parse_summary(&answer)
    }

    async fn describe_image(&self, bytes: &[u8], mime: &str) -> anyhow::Result<Option<String>> {
        if !self.vision {
            return Ok(None);
        }
        use base64::Engine as _;
        let url = format!(
            "data:{mime};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        );
        let parts = vec![
            ChatCompletionRequestUserMessageContentPart::Text(
                ChatCompletionRequestMessageContentPartText {
                    text: "Describe this image for a search index: what it shows, any text in \
                        it, and what it could help answer. At most five sentences."
                        .into(),
                    prompt_cache_breakpoint: None,
                },
            ),
            ChatCompletionRequestUserMessageContentPart::ImageUrl(
                ChatCompletionRequestMessageContentPartImage {
                    image_url: ImageUrl { url, detail: None },
                    prompt_cache_breakpoint: None,
                },
            ),
        ];
        let request = CreateChatCompletionRequest {
            model: self.model.clone(),
            messages: vec![
                ChatCompletionRequestUserMessage::from(
                    ChatCompletionRequestUserMessageContent::Array(parts),
                )
                .into(),
            ],
            temperature: Some(0.0),
            max_completion_tokens: Some(300),
            ..Default::default()
        };
        let description = self.api.complete(request).await?;
        Ok(Some(description.trim().to_owned()).filter(|d| !d.is_empty()))
    }
}

/// Reads the `{summary, keywords}` object out of a reply, tolerating code fences around it.
fn parse_summary(answer: &str) -> anyhow::Result<Summary> {
    #[derive(serde::Deserialize)]
    struct Reply {
        summary: String,
        #[serde(default)]
        keywords: Vec<String>,
    }
    let start = answer.find('{');
    let end = answer.rfind('}');
    let json = match (start, end) {
        (Some(start), Some(end)) if start < end => &answer[start..=end],
        _ => anyhow::bail!("the summary model did not answer with JSON: {answer:.200}"),
    };
    let reply: Reply = serde_json::from_str(json)
        .map_err(|e| anyhow::anyhow!("the summary model's JSON was not understood: {e}"))?;
    Ok(Summary {
        summary: reply.summary.trim().to_owned(),
        keywords: reply
            .keywords
            .into_iter()
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty())
            .take(8)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_wrapped_in_a_code_fence_is_read() {
        let s = parse_summary(
            "```json\n{\"summary\": \" Short. \", \"keywords\": [\"a\", \" \"]}\n```",
        )
        .expect("parsed");
        assert_eq!(s.summary, "Short.");
        assert_eq!(s.keywords, vec!["a".to_owned()]);
        assert!(parse_summary("no json here").is_err());
    }
}
