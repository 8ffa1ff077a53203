//! The tokenizer and chat template a GGUF file carries in its metadata, rebuilt for the
//! `tokenizers` crate and for minijinja (the Jinja dialect of Hugging Face chat templates).

use std::collections::HashMap;

use candle_core::quantized::gguf_file::{Content, Value};
use minijinja::{Environment, context};
use tokenizers::{
    AddedToken, Tokenizer,
    decoders::byte_level::ByteLevel as ByteLevelDecoder,
    models::bpe::{BPE, Vocab},
    pre_tokenizers::{byte_level::ByteLevel, digits::Digits, sequence::Sequence},
};

use super::{ChatMessage, ModelError};

/// GGUF token type of control tokens (`<|im_start|>`, …).
const CONTROL: i32 = 3;

/// The vocabulary and special tokens of the model.
pub struct GgufVocab {
    /// Encodes prompts and decodes replies.
    pub tokenizer: Tokenizer,
    /// Tokens that end a reply.
    pub end_tokens: Vec<u32>,
    /// Holds the chat template, as written in the GGUF.
    templates: Environment<'static>,
    bos: String,
    eos: String,
}

fn strings(content: &Content, key: &str) -> Result<Vec<String>, ModelError> {
    let values = content
        .metadata
        .get(key)
        .ok_or_else(|| ModelError::unavailable(format!("GGUF metadata lacks {key}")))?
        .to_vec()?;
    values.iter().map(|v| Ok(v.to_string()?.clone())).collect()
}

fn number(content: &Content, key: &str) -> Option<u32> {
    content.metadata.get(key).and_then(|v| v.to_u32().ok())
}

impl GgufVocab {
    /// Rebuilds the byte-level BPE tokenizer (`tokenizer.ggml.model = gpt2`).
    pub fn from_gguf(content: &Content) -> Result<Self, ModelError> {
        let kind = content
            .metadata
            .get("tokenizer.ggml.model")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if kind != "gpt2" {
            return Err(ModelError::unavailable(format!(
                "unsupported GGUF tokenizer {kind:?} (byte-level BPE expected)"
            )));
        }
        let tokens = strings(content, "tokenizer.ggml.tokens")?;
        let merges = strings(content, "tokenizer.ggml.merges")?
            .into_iter()
            .map(|merge| {
                merge
                    .split_once(' ')
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
                    .ok_or_else(|| ModelError::unavailable(format!("bad BPE merge {merge:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let types: Vec<i32> = match content.metadata.get("tokenizer.ggml.token_type") {
            Some(Value::Array(values)) => values.iter().map(|v| v.to_i32().unwrap_or(1)).collect(),
            _ => Vec::new(),
        };
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(id, token)| (token.clone(), id as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| ModelError::unavailable(format!("GGUF tokenizer: {e}")))?;
        let mut tokenizer = Tokenizer::new(bpe);
        // SmolLM's pre-tokenizer (`tokenizer.ggml.pre = smollm`): digits one by one, then
        // GPT-2's byte-level split.
        tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, true, true).into(),
        ])));
        tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
        let control: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(_, kind)| **kind == CONTROL)
            .map(|(token, _)| AddedToken::from(token.clone(), true))
            .collect();
        tokenizer
            .add_special_tokens(control)
            .map_err(|e| ModelError::unavailable(format!("GGUF tokenizer: {e}")))?;

        let token = |key: &str| number(content, key).and_then(|id| tokens.get(id as usize));
        let eos = token("tokenizer.ggml.eos_token_id")
            .cloned()
            .unwrap_or_default();
        let bos = token("tokenizer.ggml.bos_token_id")
            .cloned()
            .unwrap_or_default();
        let mut end_tokens: Vec<u32> = ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", eos.as_str()]
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        end_tokens.sort_unstable();
        end_tokens.dedup();
        let template = content
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .ok_or_else(|| ModelError::unavailable("GGUF metadata lacks a chat template"))?;
        let mut templates = Environment::new();
        templates.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        templates
            .add_template_owned("chat", template)
            .map_err(|e| ModelError::unavailable(format!("chat template: {e}")))?;
        Ok(Self {
            tokenizer,
            end_tokens,
            templates,
            bos,
            eos,
        })
    }

    /// The prompt for `messages`, ending where the assistant's reply begins.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String, ModelError> {
        let invalid = |e: minijinja::Error| ModelError::unavailable(format!("chat template: {e}"));
        let messages: Vec<HashMap<&str, &str>> = messages
            .iter()
            .map(|m| HashMap::from([("role", m.role.as_str()), ("content", m.content.as_str())]))
            .collect();
        self.templates
            .get_template("chat")
            .and_then(|t| {
                t.render(context! {
                    messages => messages,
                    add_generation_prompt => true,
                    bos_token => self.bos,
                    eos_token => self.eos,
                })
            })
            .map_err(invalid)
    }

    /// Token ids of a rendered prompt (special tokens in the text are matched as such).
    pub fn encode(&self, prompt: &str) -> Result<Vec<u32>, ModelError> {
        self.tokenizer
            .encode_fast(prompt, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| ModelError::unavailable(format!("tokenizing the prompt: {e}")))
    }
}
