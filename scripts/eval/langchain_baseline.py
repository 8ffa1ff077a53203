#!/usr/bin/env python3
"""The LangChain default pipeline as a retrieval baseline for `answers.py`: each document
split by `RecursiveCharacterTextSplitter` (1,000 characters, 200 overlap, its documented
defaults), the chunks and the questions embedded by the same all-MiniLM-L6-v2 files through
sentence-transformers (mean pooling, unit vectors, 256 tokens as the model card sets), and
the chunks ranked by cosine similarity.

Run by `answers.py` with a Python that has `langchain-text-splitters` and
`sentence-transformers` (`--baseline-python`). Reads JSON on stdin — `{"model": dir,
"documents": [text, …], "queries": [text, …], "top_k": n}` — and prints JSON: the top
chunks' texts per query and the seconds spent splitting and embedding.
"""
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from langchain_text_splitters import RecursiveCharacterTextSplitter  # noqa: E402
from sentence_transformers import SentenceTransformer, models  # noqa: E402


def main():
    job = json.load(sys.stdin)
    started = time.time()
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    chunks = [c for doc in job["documents"] for c in splitter.split_text(doc)]
    # The files hold the transformer alone; the pooling is all-MiniLM-L6-v2's own.
    encoder = models.Transformer(job["model"], max_seq_length=256)
    pooling = models.Pooling(encoder.get_word_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(modules=[encoder, pooling], device="cpu")
    vectors = model.encode(chunks, batch_size=32, normalize_embeddings=True)
    indexed = time.time() - started
    queries = model.encode(job["queries"], normalize_embeddings=True)
    ranked = (queries @ vectors.T).argsort(axis=1)[:, ::-1][:, : job["top_k"]]
    print(json.dumps({
        "chunks": len(chunks),
        "seconds": indexed,
        "hits": [[chunks[i] for i in row] for row in ranked],
    }))


if __name__ == "__main__":
    main()
