"""Anchor for benches/models.rs: sentence-transformers embedding the same sentences with the
same all-MiniLM-L6-v2 files at batch 32. Reads sentences (one per line) from argv[1]; prints
JSON {"sentences_per_s": …}."""
import json
import os
import sys
import time

import torch
from sentence_transformers import SentenceTransformer, models

models_dir = sys.argv[2]
sentences = open(sys.argv[1], encoding="utf-8").read().split("\n")
transformer = models.Transformer(os.path.join(models_dir, "all-MiniLM-L6-v2"), max_seq_length=256)
pooling = models.Pooling(transformer.get_word_embedding_dimension(), pooling_mode="mean")
model = SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu")
model.encode(sentences[:64], batch_size=32)  # warm-up
best = float("inf")
for _ in range(3):
    started = time.perf_counter()
    model.encode(sentences, batch_size=32)
    best = min(best, time.perf_counter() - started)
print(json.dumps({"sentences_per_s": len(sentences) / best, "torch": torch.__version__,
                  "threads": torch.get_num_threads()}))
