#!/usr/bin/env python3
"""Fusion study, offline: how would hybrid search rank with another fusion of the same legs?

Reads a dump of `answers.py --dump FILE --legs` (each question's vector and full-text top 20
through the running server, with which chunks hold the answering section) and prints top-1 /
top-5 per language for the legs alone and for each fusion tried: min–max scaled scores with a
vector weight from 0 to 1 (the server's fusion), scores divided by each leg's best, and
reciprocal rank fusion. The server weighs the legs by the language of the chunks found; here
one weight holds for a whole language, which is what the grid chooses between.

    python3 scripts/eval/answers.py --modes hybrid --replies 0 --legs --dump /tmp/legs.json
    python3 scripts/eval/fusion.py /tmp/legs.json
"""
import json
import sys

TOP_K = 5


def min_max(leg):
    if not leg:
        return {}
    low, high = min(h["score"] for h in leg), max(h["score"] for h in leg)
    return {h["id"]: (h["score"] - low) / (high - low) if high > low else 1.0 for h in leg}


def by_best(leg):
    best = max((h["score"] for h in leg), default=0) or 1.0
    return {h["id"]: max(h["score"], 0) / best for h in leg}


def reciprocal(leg, k=60):
    return {h["id"]: 1 / (k + rank + 1) for rank, h in enumerate(leg)}


def fuse(legs, weight, scale):
    scores = {}
    for w, leg in ((weight, legs["vector"]), (1 - weight, legs["text"])):
        for chunk, s in scale(leg).items():
            scores[chunk] = scores.get(chunk, 0) + w * s
    # Ties go to the higher similarity, as on the server.
    similarity = {h["id"]: h["similarity"] for leg in legs.values() for h in leg}
    return sorted(scores, key=lambda c: (-scores[c], -similarity.get(c, 0)))


def score(questions, rank):
    top1 = top5 = 0
    for q in questions:
        correct = {h["id"] for leg in q["legs"].values() for h in leg if h["correct"]}
        ranked = rank(q["legs"])[:TOP_K]
        first = next((i for i, c in enumerate(ranked) if c in correct), None)
        top1 += first == 0
        top5 += first is not None
    n = len(questions)
    return top1 / n, top5 / n


def main(path):
    dump = json.load(open(path))
    for lang, questions in dump.items():
        questions = [q for q in questions if "legs" in q]
        print(f"\n{lang}: {len(questions)} questions      top1   top5")
        rows = [
            ("vector", lambda legs: [h["id"] for h in legs["vector"]]),
            ("text", lambda legs: [h["id"] for h in legs["text"]]),
        ]
        for weight in [i / 10 for i in range(11)]:
            rows.append((f"min-max w={weight:.1f}",
                         lambda legs, w=weight: fuse(legs, w, min_max)))
        for weight in (0.3, 0.5, 0.7):
            rows.append((f"by-best w={weight:.1f}",
                         lambda legs, w=weight: fuse(legs, w, by_best)))
            rows.append((f"rrf w={weight:.1f}",
                         lambda legs, w=weight: fuse(legs, w, reciprocal)))
        for name, rank in rows:
            top1, top5 = score(questions, rank)
            print(f"  {name:<22} {top1:6.2f} {top5:6.2f}")


if __name__ == "__main__":
    main(sys.argv[1])
