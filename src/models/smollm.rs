//! `local` chat model: SmolLM2-135M-Instruct from its GGUF file through candle, with the
//! tokenizer and chat template the file carries. Tokens are streamed as they are decoded;
//! generation runs on the bounded blocking pool and stops as soon as the reply's stream is
//! dropped.

use std::{io::BufReader, path::Path, sync::Arc};

use async_trait::async_trait;
use candle_core::quantized::gguf_file;
use candle_transformers::generation::{LogitsProcessor, Sampling};
use futures::StreamExt;
use tokio::sync::mpsc;

use super::{
    ChatChunk, ChatModel, ChatRequest, ChatStream, Completion, Faithfulness, FinishReason,
    GenerationOptions, ModelError,
    chat::{StopMatcher, prompt_messages},
    gguf_vocab::GgufVocab,
    llama::Llama,
    pool::BlockingPool,
};

/// The model file under the models dir.
pub const FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Penalty on tokens generated recently; small models loop without it.
const REPEAT_PENALTY: f32 = 1.1;
const REPEAT_WINDOW: usize = 64;
const TOP_P: f64 = 0.9;
/// Prompt tokens per forward pass.
const PREFILL_SLICE: usize = 512;

/// SmolLM2 on the CPU.
pub struct LocalChat {
    model: Arc<Llama>,
    vocab: Arc<GgufVocab>,
    pool: BlockingPool,
}

impl LocalChat {
    /// Loads `<models_dir>/SmolLM2-135M-Instruct.Q4_1.gguf`.
    pub fn load(models_dir: &Path, pool: BlockingPool) -> Result<Self, ModelError> {
        let path = models_dir.join(FILE);
        let file = std::fs::File::open(&path)
            .map_err(|e| ModelError::unavailable(format!("{}: {e}", path.display())))?;
        let mut reader = BufReader::new(file);
        let content = gguf_file::Content::read(&mut reader)
            .map_err(|e| ModelError::unavailable(format!("{}: {e}", path.display())))?;
        let vocab = GgufVocab::from_gguf(&content)?;
        let model = Llama::from_gguf(&content, &mut reader)?;
        Ok(Self {
            model: model.into(),
            vocab: vocab.into(),
            pool,
        })
    }

    /// The prompt text for `request`: its messages and context in the model's chat template.
    pub fn prompt_text(&self, request: &ChatRequest) -> Result<String, ModelError> {
        self.vocab.render(&prompt_messages(request))
    }

    /// The prompt's token ids for `request`.
    pub fn prompt_tokens(&self, request: &ChatRequest) -> Result<Vec<u32>, ModelError> {
        self.vocab.encode(&self.prompt_text(request)?)
    }
}

#[async_trait]
impl ChatModel for LocalChat {
    fn id(&self) -> &str {
        "local:SmolLM2-135M-Instruct"
    }

    fn faithfulness(&self) -> Faithfulness {
        // 135M parameters paraphrase freely and invent commands: every sentence is checked.
        Faithfulness::Checked
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.vocab
            .encode(text)
            .map_or_else(|_| text.len().div_ceil(4), |tokens| tokens.len())
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, ModelError> {
        let prompt = self.prompt_tokens(&request)?;
        let context = self.model.context_length;
        if prompt.len() >= context {
            return Err(ModelError::Invalid(format!(
                "the prompt is {} tokens long; the local model reads at most {}",
                prompt.len(),
                context - 1
            )));
        }
        let (tx, rx) = mpsc::channel(64);
        let slot = self.pool.slot().await;
        let (model, vocab) = (self.model.clone(), self.vocab.clone());
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            if let Err(e) = generate(&model, &vocab, &prompt, &request.options, &tx) {
                let _ = tx.blocking_send(Err(e));
            }
        });
        Ok(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        })
        .boxed())
    }
}

type Sender = mpsc::Sender<Result<ChatChunk, ModelError>>;

/// The decoding loop. Returns early, without error, when the receiver is gone.
fn generate(
    model: &Llama,
    vocab: &GgufVocab,
    prompt: &[u32],
    options: &GenerationOptions,
    tx: &Sender,
) -> Result<(), ModelError> {
    let budget = (options.max_tokens as usize).min(model.context_length - prompt.len());
    let mut session = model.session(prompt.len() + budget);
    let sampling = if options.temperature <= 0.0 {
        Sampling::ArgMax
    } else {
        Sampling::TopP {
            p: TOP_P,
            temperature: f64::from(options.temperature),
        }
    };
    let seed = options.seed.unwrap_or_else(rand::random);
    let mut sampler = LogitsProcessor::from_sampling(seed, sampling);
    let mut stops = StopMatcher::new(&options.stop);
    let mut decoder = vocab.tokenizer.decode_stream(true);
    let mut generated: Vec<u32> = Vec::new();
    let mut finish_reason = FinishReason::Length;
    // The prompt in slices, so a long one never needs a prompt-by-prompt attention matrix.
    let mut logits = None;
    for slice in prompt.chunks(PREFILL_SLICE) {
        if tx.is_closed() {
            return Ok(());
        }
        logits = Some(model.forward(&mut session, slice)?);
    }
    let Some(mut logits) = logits else {
        return Err(ModelError::Invalid("the prompt is empty".into()));
    };
    while generated.len() < budget {
        if tx.is_closed() {
            return Ok(());
        }
        let recent = &generated[generated.len().saturating_sub(REPEAT_WINDOW)..];
        let penalised =
            candle_transformers::utils::apply_repeat_penalty(&logits, REPEAT_PENALTY, recent)?;
        let token = sampler.sample(&penalised)?;
        if vocab.end_tokens.contains(&token) {
            finish_reason = FinishReason::Stop;
            break;
        }
        generated.push(token);
        let text = decoder
            .step(token)
            .map_err(|e| ModelError::unavailable(format!("decoding: {e}")))?;
        if let Some(text) = text {
            let (ready, stopped) = stops.push(&text);
            if !ready.is_empty() && tx.blocking_send(Ok(ChatChunk::Delta(ready))).is_err() {
                return Ok(());
            }
            if stopped {
                finish_reason = FinishReason::Stop;
                break;
            }
        }
        if generated.len() < budget {
            logits = model.forward(&mut session, &[token])?;
        }
    }
    let rest = stops.finish();
    if !rest.is_empty() {
        let _ = tx.blocking_send(Ok(ChatChunk::Delta(rest)));
    }
    let _ = tx.blocking_send(Ok(ChatChunk::Done(Completion {
        finish_reason,
        prompt_tokens: prompt.len() as u32,
        completion_tokens: generated.len() as u32,
        citations: Vec::new(),
    })));
    Ok(())
}
