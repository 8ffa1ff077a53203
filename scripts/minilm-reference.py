"""Writes tests/fixtures/minilm-reference.json: all-MiniLM-L6-v2 vectors of a few fixed
sentences, computed by sentence-transformers from the same files the server loads.

    python3 -m venv .venv && .venv/bin/pip install sentence-transformers
    scripts/fetch-models.sh
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/minilm-reference.py
"""
import json
import os
import sys

import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

SENTENCES = [
    "How long does shipping to Portugal take?",
    "Onze klantenservice is bereikbaar van maandag tot en met vrijdag.",
    "El reembolso se procesa en un plazo de cinco días hábiles.",
    "A cat sat on the mat.",
    "Résumé: naïve café owners ♥ emoji 🚀 and numbers 12345.",
    "",
]

models_dir = os.environ.get("COMPANIN_MODELS_DIR", "models")
# The wheel's model directory holds the sentence-transformers modules (pooling, normalize);
# fetch-models.sh keeps only the three files the server needs, so load from the wheel when
# given, else build the same pipeline from the copied files.
source = sys.argv[1] if len(sys.argv) > 1 else None
if source:
    model = SentenceTransformer(source, device="cpu")
else:
    from sentence_transformers import models

    transformer = models.Transformer(os.path.join(models_dir, "all-MiniLM-L6-v2"), max_seq_length=256)
    pooling = models.Pooling(transformer.get_word_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu")

vectors = model.encode(SENTENCES, batch_size=32, convert_to_numpy=True)
out = {
    "made_with": f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}, scripts/minilm-reference.py",
    "model": "all-MiniLM-L6-v2",
    "sentences": [
        {"text": text, "vector": [round(float(x), 7) for x in vector]}
        for text, vector in zip(SENTENCES, vectors)
    ],
}
path = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "minilm-reference.json")
with open(path, "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False, indent=1)
print(f"wrote {path}")
