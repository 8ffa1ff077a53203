//! `hash`: a dependency-free embedder by feature hashing. Words, word pairs and character
//! trigrams are hashed (FNV-1a, stable across builds) into signed buckets, then the vector is
//! L2-normalised. No semantics beyond shared vocabulary and word forms, but deterministic,
//! fast and always available.

use async_trait::async_trait;

use super::Embedder;

/// `vector` scaled to unit length (unchanged when it is all zeros).
pub(crate) fn normalized(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

/// Feature-hashing embedder.
#[derive(Debug, Clone)]
pub struct HashEmbedder {
    dimension: usize,
    id: String,
}

impl Default for HashEmbedder {
    fn default() -> Self {
        Self::new(384)
    }
}

impl HashEmbedder {
    /// An embedder of `dimension` buckets.
    pub fn new(dimension: usize) -> Self {
        Self {
            dimension,
            id: "hash-v1".into(),
        }
    }

    /// The vector of one text.
    pub fn vector(&self, text: &str) -> Vec<f32> {
        let mut vector = vec![0f32; self.dimension];
        let words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let mut add = |feature: &str, weight: f32| {
            let h = fnv1a(feature.as_bytes());
            let bucket = (h % self.dimension as u64) as usize;
            let sign = if (h >> 63) == 0 { 1.0 } else { -1.0 };
            vector[bucket] += sign * weight;
        };
        for (i, word) in words.iter().enumerate() {
            add(word, 1.0);
            if let Some(next) = words.get(i + 1) {
                add(&format!("{word} {next}"), 0.5);
            }
            let padded: Vec<char> = format!("<{word}>").chars().collect();
            for trigram in padded.windows(3) {
                add(&trigram.iter().collect::<String>(), 0.25);
            }
        }
        normalized(vector)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[async_trait]
impl Embedder for HashEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    async fn embed(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| self.vector(t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn vectors_are_normalised_and_stable() {
        let e = HashEmbedder::default();
        let v = e.vector("How do refunds work?");
        assert_eq!(v.len(), 384);
        assert!((cosine(&v, &v) - 1.0).abs() < 1e-5);
        assert_eq!(v, e.vector("How do refunds work?"));
        assert_eq!(
            fnv1a(b"refund"),
            0xcbd4_c41d_1e3a_433f,
            "the hash never changes: stored vectors depend on it"
        );
    }

    #[test]
    fn texts_sharing_words_and_word_forms_are_closer() {
        let e = HashEmbedder::default();
        let query = e.vector("refund policy");
        let related = e.vector("Our refunds policy: money back within 30 days");
        let unrelated = e.vector("The office is closed on public holidays");
        assert!(cosine(&query, &related) > cosine(&query, &unrelated) + 0.2);
    }
}
