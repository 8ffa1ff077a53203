#!/usr/bin/env python3
"""Retrieval evaluation on public text we did not write: the Debian Reference (Debian's
`debian-reference-{en,es,pt}` packages) and 60 questions phrased the way visitors ask them
(`questions.json`: the answering section's anchor, identical in every translation, and a
fact a correct answer states).

It runs the real server (`companin serve`, local models, SQLite, a temporary data dir),
uploads each language's twelve chapters as HTML files into an organization of its own
through the REST API, waits until they are indexed, and asks every question through
`POST /api/v1/knowledge/search` in each mode. In the same run it scores baselines: BM25
(`rank_bm25` from PyPI) over the sections themselves — an ideal split the server does not
get — and, when `--baseline-python` has `langchain-text-splitters` and
`sentence-transformers`, the LangChain default pipeline (`langchain_baseline.py`: its
recursive splitter over each chapter's text, the same MiniLM files, cosine ranking).

Reported per language and mode: top-1 and top-5 hit rate and MRR@5 (a hit is a chunk under
the answering section: at least 30 % of its word 6-grams are the section's), fact@5 (a
top-5 chunk states the fact), and search latency p50/p95 through the API. Then each question
is sent as a visitor's message to an assistant in its language, and the replies are judged
(`replies.py`): the share that state the fact, the share with a sentence their citations do
not back, the share that found nothing, and the time to the first token and to the end.

    cargo test --no-run              # builds target/debug/companin (the test build's binary)
    python3 scripts/eval/answers.py  # a few minutes; --langs en --modes hybrid for less
    python3 scripts/eval/answers.py --llm local --replies 10 --modes ''  # the local model
    python3 scripts/eval/answers.py --env COMPANIN_EMBEDDER=openai --env …  # another embedder

The corpus and the baseline's packages are cached in `--cache` (default
`~/.cache/companin-eval`); the packages come from Debian's archive with `apt-get download`.
"""
import argparse
import importlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import replies  # noqa: E402
from sections import chapter_sections, collapse  # noqa: E402

LANGS = ("en", "es", "pt")
MODES = ("hybrid", "vector", "text")
CHAPTERS = range(1, 13)
TOP_K = 5
# How deep each leg is read for fusion (the server's hybrid depth for top 5).
LEG_DEPTH = 20


def corpus(cache, lang):
    """The chapter files of `lang`, downloaded and unpacked once."""
    root = cache / f"debian-reference-{lang}"
    docs = root / "usr/share/debian-reference"
    if not docs.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        package = f"debian-reference-{lang}"
        subprocess.run(["apt-get", "download", package], cwd=cache, check=True)
        deb = next(cache.glob(f"{package}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return [docs / f"ch{n:02d}.{lang}.html" for n in CHAPTERS]


def bm25_module(cache):
    """`rank_bm25`, installed into the cache on first use."""
    target = cache / "pylib"
    sys.path.insert(0, str(target))
    try:
        import rank_bm25  # noqa: F401
    except ImportError:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--root-user-action=ignore",
             "--target", str(target), "rank-bm25==0.2.2", "numpy"],
            check=True,
        )
        importlib.invalidate_caches()
    import rank_bm25
    return rank_bm25


def tokens(text):
    return re.findall(r"\w+", text.lower())


class Server:
    """`companin serve` on a free port with a temporary data dir."""

    def __init__(self, binary, models, llm, extra_env=()):
        self.dir = Path(tempfile.mkdtemp(prefix="companin-eval-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.env = dict(
            os.environ,
            COMPANIN_DATA_DIR=str(self.dir),
            COMPANIN_BIND=f"127.0.0.1:{port}",
            COMPANIN_MODELS_DIR=str(models),
            COMPANIN_RATE_LIMIT_ENABLED="false",
            COMPANIN_LLM=llm,
            COMPANIN_LOG_FORMAT="json",
            RUST_LOG=os.environ.get("RUST_LOG", "warn"),
        )
        self.env.update(extra_env)
        self.binary = binary
        self.log = open(self.dir / "server.log", "w")
        self.process = subprocess.Popen([binary, "serve"], env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1)
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        raise SystemExit(f"the server did not start; see {self.dir / 'server.log'}")

    def organization(self, name):
        """A new organization's admin key (through the CLI, as an operator would)."""
        out = subprocess.run([self.binary, "org", "create", "--name", name], env=self.env,
                             check=True, capture_output=True, text=True).stdout
        return re.search(r"^api_key: (\S+)$", out, re.M).group(1)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()
        warnings = sum(1 for line in open(self.dir / "server.log") if '"WARN"' in line)
        shutil.rmtree(self.dir, ignore_errors=True)
        return warnings


def request(url, key, method="GET", body=None, content_type="application/json"):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"X-API-Key": key, "Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=120) as response:
        return json.load(response)


def upload(server, key, path):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{path.name}\"\r\nContent-Type: text/html\r\n\r\n").encode()
    body += path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return request(server.url + "/api/v1/knowledge/files", key, "POST", body,
                   f"multipart/form-data; boundary={boundary}")["id"]


def index(server, key, files):
    """Uploads the chapters and waits until every one is READY; the seconds it took."""
    started = time.time()
    ids = [upload(server, key, f) for f in files]
    pending = set(ids)
    while pending:
        time.sleep(1)
        for source in list(pending):
            status = request(f"{server.url}/api/v1/knowledge/files/{source}", key)["status"]
            if status == "FAILED":
                raise SystemExit(f"indexing {source} failed")
            if status == "READY":
                pending.discard(source)
        if time.time() - started > 1800:
            raise SystemExit("indexing took longer than 30 minutes")
    return time.time() - started


class Score:
    def __init__(self):
        self.top1 = self.top5 = self.rr = self.fact = 0
        self.latencies = []
        self.n = 0

    def add(self, ranks_correct, fact_found, seconds=None):
        self.n += 1
        first = next((i for i, ok in enumerate(ranks_correct) if ok), None)
        if first is not None:
            self.top1 += first == 0
            self.top5 += first < TOP_K
            self.rr += 1 / (first + 1)
        self.fact += fact_found
        if seconds is not None:
            self.latencies.append(seconds * 1000)

    def row(self, name):
        lat = ""
        if self.latencies:
            ordered = sorted(self.latencies)
            p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
            lat = f"{statistics.median(ordered):8.1f} {p95:8.1f}"
        return (f"  {name:<14} {self.top1 / self.n:6.2f} {self.top5 / self.n:6.2f} "
                f"{self.rr / self.n:6.3f} {self.fact / self.n:7.2f} {lat}")


SHINGLE = 6


def shingles(text):
    words = tokens(text)
    return {tuple(words[i:i + SHINGLE]) for i in range(max(1, len(words) - SHINGLE + 1))}


class Locator:
    """Which sections a retrieved chunk's text comes from, by shared word 6-grams: the
    server chunks whole chapters, so a chunk is judged by its text, not by its headings."""

    def __init__(self, sections):
        self.owners = {}
        for section in sections:
            for shingle in shingles(section.title + " " + section.own):
                self.owners.setdefault(shingle, set()).add(section.anchor)

    def holds(self, text, anchor, share=0.3):
        """Whether at least `share` of the chunk's 6-grams are in section `anchor`."""
        mine = shingles(text)
        found = sum(1 for s in mine if anchor in self.owners.get(s, ()))
        return found >= share * len(mine)


def langchain(python, models, sections, questions, lang, locator):
    """The LangChain default pipeline's score (see `langchain_baseline.py`), or None when
    `python` cannot run it."""
    if not python:
        return None
    chapters = {}
    for s in sections:
        chapters.setdefault(s.chapter, []).append(f"{s.title}\n{s.own}")
    job = {"model": str(Path(models) / "all-MiniLM-L6-v2"),
           "documents": ["\n\n".join(parts) for parts in chapters.values()],
           "queries": [q["q"][lang] for q in questions], "top_k": TOP_K}
    run = subprocess.run([python, str(HERE / "langchain_baseline.py")], input=json.dumps(job),
                         capture_output=True, text=True)
    if run.returncode != 0:
        print(f"  langchain baseline skipped: {run.stderr.strip().splitlines()[-1:]}")
        return None
    out = json.loads(run.stdout.strip().splitlines()[-1])
    score = Score()
    for q, hits in zip(questions, out["hits"]):
        score.add([locator.holds(h, q["anchor"]) for h in hits],
                  any(q["fact"][lang] in collapse(h) for h in hits))
    print(score.row("langchain") + f"   ({out['chunks']} chunks, {out['seconds']:.0f} s)")
    return score


def evaluate(lang, files, questions, server, modes, bm25, reply_limit, baseline_python=None,
             models=None, legs=False):
    sections = [s for n, f in zip(CHAPTERS, files) for s in chapter_sections(f, n)]
    locator = Locator(sections)
    key = server.organization(f"eval-{lang}")
    seconds = index(server, key, files)
    print(f"\n{lang}: {len(sections)} sections, {len(questions)} questions; "
          f"12 chapters indexed in {seconds:.0f} s")
    print(f"  {'':<14} {'top1':>6} {'top5':>6} {'mrr@5':>6} {'fact@5':>7} "
          f"{'p50 ms':>8} {'p95 ms':>8}")
    results = {"questions": [{"q": q["q"][lang], "anchor": q["anchor"],
                              "fact": q["fact"][lang], "hits": {}} for q in questions]}
    for mode in modes:
        score = Score()
        for q, record in zip(questions, results["questions"]):
            started = time.perf_counter()
            hits = request(server.url + "/api/v1/knowledge/search", key, "POST",
                           {"query": q["q"][lang], "top_k": TOP_K, "mode": mode})
            elapsed = time.perf_counter() - started
            correct = [locator.holds(h["text"], q["anchor"]) for h in hits]
            fact = any(q["fact"][lang] in collapse(h["text"]) for h in hits)
            record["hits"][mode] = [{"text": h["text"], "score": h["score"], "correct": ok}
                                    for h, ok in zip(hits, correct)]
            score.add(correct, fact, elapsed)
        print(score.row(mode))
        results[mode] = score
    if legs:
        # Each leg's own top 20 (hybrid fuses these), to study fusion offline (`fusion.py`).
        for q, record in zip(questions, results["questions"]):
            record["legs"] = {}
            for mode in ("vector", "text"):
                hits = request(server.url + "/api/v1/knowledge/search", key, "POST",
                               {"query": q["q"][lang], "top_k": LEG_DEPTH, "mode": mode})
                record["legs"][mode] = [
                    {"id": f"{h['source']['id']}#{h['chunk_index']}", "score": h["score"],
                     "similarity": h["similarity"],
                     "correct": locator.holds(h["text"], q["anchor"]),
                     "fact": q["fact"][lang] in collapse(h["text"])}
                    for h in hits]
    corpus_tokens = [tokens(s.title + " " + s.own) for s in sections]
    index_ = bm25.BM25Okapi(corpus_tokens)
    score = Score()
    for q in questions:
        ranked = index_.get_top_n(tokens(q["q"][lang]), sections, n=TOP_K)
        score.add([s.anchor == q["anchor"] for s in ranked],
                  any(q["fact"][lang] in s.own for s in ranked))
    print(score.row("bm25 sections"))
    results["bm25"] = score
    results["langchain"] = langchain(baseline_python, models, sections, questions, lang, locator)
    if reply_limit:
        post = lambda url, key, body: request(url, key, "POST", body)  # noqa: E731
        print(replies.HEADER)
        score = replies.evaluate(server, key, lang, questions, reply_limit, post)
        print(score.row(server.env["COMPANIN_LLM"]))
        for example in score.examples:
            print(f"    unsupported: {example}")
        results["replies"] = score
        for record, reply in zip(results["questions"], score.replies):
            record["reply"] = reply
    return results


def check(cache, langs):
    """Every question's anchor exists in every language and its section states the fact."""
    questions = json.loads((HERE / "questions.json").read_text())
    failures = 0
    for lang in langs:
        files = corpus(cache, lang)
        sections = {s.anchor: s for n, f in zip(CHAPTERS, files) for s in chapter_sections(f, n)}
        for q in questions:
            section = sections.get(q["anchor"])
            if section is None or q["fact"][lang] not in section.own:
                failures += 1
                print(f"{lang} {q['anchor']}: the section does not state {q['fact'][lang]!r}")
    print(f"{len(questions)} questions x {len(langs)} languages, {failures} failures")
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = Path(os.environ.get("CARGO_TARGET_DIR", HERE.parent.parent / "target"))
    parser.add_argument("--bin", default=str(target / "debug/companin"))
    parser.add_argument("--models", default=os.environ.get("COMPANIN_MODELS_DIR",
                                                          str(HERE.parent.parent / "models")))
    parser.add_argument("--cache", default=str(Path.home() / ".cache/companin-eval"))
    parser.add_argument("--langs", default=",".join(LANGS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--llm", default="extractive",
                        help="the chat model that replies (COMPANIN_LLM): extractive, local…")
    parser.add_argument("--replies", type=int, default=60,
                        help="questions asked as visitors' messages (0: none)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the server, e.g. COMPANIN_EMBEDDER=openai (repeatable)")
    parser.add_argument("--baseline-python", default=None, metavar="PYTHON",
                        help="a Python with langchain-text-splitters and sentence-transformers: "
                             "adds the LangChain default pipeline as a baseline")
    parser.add_argument("--dump", metavar="FILE",
                        help="write every question's hits per mode and reply as JSON, to study")
    parser.add_argument("--legs", action="store_true",
                        help="with --dump: also dump each leg's top 20, for fusion.py")
    parser.add_argument("--check", action="store_true",
                        help="only check that every question's section states its fact")
    args = parser.parse_args()
    if args.check:
        return check(Path(args.cache), args.langs.split(","))
    if not os.access(args.bin, os.X_OK):
        raise SystemExit(f"{args.bin} is not built: run `cargo test --no-run` first")
    cache = Path(args.cache)
    questions = json.loads((HERE / "questions.json").read_text())
    bm25 = bm25_module(cache)
    langs = [l for l in args.langs.split(",") if l]
    files = {lang: corpus(cache, lang) for lang in langs}
    extra_env = [setting.split("=", 1) for setting in args.env]
    if any(len(pair) != 2 for pair in extra_env):
        raise SystemExit("--env takes NAME=VALUE")
    server = Server(args.bin, Path(args.models).resolve(), args.llm, extra_env)
    dump = {}
    try:
        for lang in langs:
            dump[lang] = evaluate(lang, files[lang], questions, server, [m for m in args.modes.split(",") if m],
                     bm25, args.replies, args.baseline_python, Path(args.models).resolve(),
                     args.legs)
    finally:
        warnings = server.stop()
    if args.dump:
        Path(args.dump).write_text(json.dumps(
            {lang: r["questions"] for lang, r in dump.items()}, ensure_ascii=False, indent=1))
    print(f"\nserver log lines at WARN: {warnings}")


if __name__ == "__main__":
    sys.exit(main())
