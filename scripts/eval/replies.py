"""Reply evaluation: every question is sent as a visitor's first message of a new session
(`POST /api/v1/conversations/send-message`) to an assistant in the question's language, and
the finished reply is judged against the passages it cites.

- *fact*: the reply states the question's fact (whitespace collapsed, as written).
- *unsupported*: a sentence of the reply is not backed by the text of its citations: fewer
  than 80 % of its words (three letters or more) occur in the cited passages, or a code-like
  token (with a digit, `-`, `/`, `_` or `.` inside) or a number does not occur there verbatim.
  Citation marks `[n]` and the closing source list are not judged.
- *none*: the reply cites nothing (it says nothing relevant was found); not judged further.
- *first token* and *complete*: the message's own `first_token_ms` and `latency_ms`.
"""
import re
import statistics

from sections import collapse

WORD = re.compile(r"\w{3,}")
CODE_LIKE = re.compile(r"\S*(?:\w[-/_.]\w|\d)\S*")
MARK = re.compile(r"\[\d+\]")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
SUPPORTED_SHARE = 0.8


def judged_text(reply):
    """The reply without its source list and citation marks."""
    body = re.split(r"\n\s*\n(?:Sources|Fuentes|Fontes|Bronnen)\s*:", reply)[0]
    return MARK.sub("", body)


def unsupported_sentences(reply, passages):
    """The sentences of `reply` that its cited `passages` do not back."""
    source = collapse(" ".join(passages)).lower()
    source_words = set(WORD.findall(source))
    bad = []
    for sentence in SENTENCE_END.split(judged_text(reply)):
        sentence = sentence.strip().strip("`*_>#-").strip()
        words = [w.lower() for w in WORD.findall(sentence)]
        if not words:
            continue
        known = sum(1 for w in words if w in source_words)
        tokens = [t.strip(".,;:!?()[]{}\"'`*").lower() for t in CODE_LIKE.findall(sentence)]
        missing_code = [t for t in tokens if t and t not in source]
        if known < SUPPORTED_SHARE * len(words) or missing_code:
            bad.append(sentence)
    return bad


class ReplyScore:
    def __init__(self):
        self.n = self.fact = self.unsupported = self.nothing = 0
        self.first, self.complete = [], []
        self.examples = []
        self.replies = []

    def add(self, reply, fact):
        self.n += 1
        self.replies.append({"content": reply["content"], "grounding": reply.get("grounding"),
                             "cited": [c["chunk_text"] for c in reply.get("citations", [])]})
        content = reply["content"]
        passages = [c["chunk_text"] for c in reply.get("citations", [])]
        if reply.get("first_token_ms") is not None:
            self.first.append(reply["first_token_ms"])
        if reply.get("latency_ms") is not None:
            self.complete.append(reply["latency_ms"])
        if not passages:
            self.nothing += 1
            return
        self.fact += fact in collapse(content)
        bad = unsupported_sentences(content, passages)
        if bad:
            self.unsupported += 1
            if len(self.examples) < 3:
                self.examples.append(bad[0][:160])

    def row(self, name):
        def pct(values):
            if not values:
                return "       -        -"
            ordered = sorted(values)
            p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
            return f"{statistics.median(ordered):8.0f} {p95:8.0f}"

        return (f"  {name:<14} {self.fact / self.n:6.2f} {self.unsupported / self.n:6.2f} "
                f"{self.nothing / self.n:6.2f} {pct(self.first)} {pct(self.complete)}")


HEADER = (f"  {'replies':<14} {'fact':>6} {'unsup':>6} {'none':>6} "
          f"{'1st p50':>8} {'1st p95':>8} {'all p50':>8} {'all p95':>8}")


def evaluate(server, key, lang, questions, limit, post):
    """Asks the first `limit` questions as visitors of an assistant in `lang`."""
    assistant = post(server.url + "/api/v1/assistants", key,
                     {"name": f"eval {lang}", "language": lang})["id"]
    score = ReplyScore()
    for q in questions[:limit]:
        session = post(server.url + "/api/v1/sessions", key, {"assistant_id": assistant})["id"]
        sent = post(server.url + "/api/v1/conversations/send-message", key,
                    {"session_id": session, "message": q["q"][lang]})
        score.add(sent["reply"], q["fact"][lang])
    return score
