"""Anchor for benches/models.rs: llama.cpp (llama-cpp-python) running the same GGUF on the same
prompt. argv: gguf path, prompt file, max new tokens. Prints JSON with time to first token,
prefill and decode tokens/s, measured like the Rust side (streamed completion, greedy)."""
import json
import os
import sys
import time

from llama_cpp import Llama

path, prompt_file, max_tokens = sys.argv[1], sys.argv[2], int(sys.argv[3])
prompt = open(prompt_file, encoding="utf-8").read()
llm = Llama(model_path=path, n_ctx=2048, n_threads=os.cpu_count(), n_batch=512, verbose=False)
prompt_tokens = len(llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))
results = []
for _ in range(3):
    llm.reset()
    started = time.perf_counter()
    first = None
    count = 0
    for _chunk in llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0,
                                        stream=True):
        count += 1
        if first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    ttft = first - started
    results.append({"ttft_s": ttft, "prefill_tok_s": prompt_tokens / ttft,
                    "decode_tok_s": (count - 1) / (end - first) if count > 1 else 0.0,
                    "generated": count})
best = min(results, key=lambda r: r["ttft_s"])
best["decode_tok_s"] = max(r["decode_tok_s"] for r in results)
best["prompt_tokens"] = prompt_tokens
print(json.dumps(best))
