"""Companin as the official clients see it: OpenAI's Python SDK against /v1 (plain and
streamed, models, errors), and the Standard Webhooks library verifying a real delivery.

Usage: python sdk-checks.py BASE_URL API_KEY   (a fresh organization's admin key)
Exits non-zero on the first check that fails; prints one line per check.
"""

import http.server
import json
import queue
import sys
import threading
import time
import urllib.request

import openai
from standardwebhooks.webhooks import Webhook

BASE, KEY = sys.argv[1], sys.argv[2]
QUESTION = "What is the refund window?"
ANSWER = "Refunds are accepted within 30 days of delivery."


def rest(method, path, body=None):
    request = urllib.request.Request(
        BASE + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-API-Key": KEY, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def check(name, condition, detail=""):
    if not condition:
        sys.exit(f"FAILED {name}: {detail}")
    print(f"ok {name}")


# A webhook receiver on loopback, subscribed before anything happens.
received = queue.Queue()


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        received.put((dict(self.headers.items()), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
hook = rest("POST", "/api/v1/webhooks", {
    "url": f"http://127.0.0.1:{server.server_address[1]}/hook",
    "events": ["knowledge.ready"],
})
secret = hook["secret"]

assistant = rest("POST", "/api/v1/assistants", {"name": "Shop helper"})["id"]
qa = rest("POST", "/api/v1/knowledge/qas", {"question": QUESTION, "answer": ANSWER})["id"]
for _ in range(120):
    if rest("GET", f"/api/v1/knowledge/qas/{qa}")["status"] == "READY":
        break
    time.sleep(0.5)

# Standard Webhooks: the library accepts the delivery as it came, and refuses it altered.
headers, body = received.get(timeout=60)
event = Webhook(secret).verify(body, headers)
check("standardwebhooks verifies a delivery", event["type"] == "knowledge.ready", event)
check("webhook-id is the event id", headers.get("webhook-id") == event["id"], headers)
try:
    Webhook(secret).verify(body + b" ", headers)
    check("standardwebhooks refuses an altered body", False)
except Exception as e:  # WebhookVerificationError
    check("standardwebhooks refuses an altered body", "verif" in type(e).__name__.lower(), repr(e))

client = openai.OpenAI(base_url=BASE + "/v1", api_key=KEY, max_retries=0)

models = [m.id for m in client.models.list()]
check("models.list names the assistant", assistant in models, models)

completion = client.chat.completions.create(
    model="Shop helper",
    messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}],
    user="sdk-visitor",
)
check("chat.completions.create answers from the knowledge",
      completion.choices[0].message.content == ANSWER, completion)
check("usage counts tokens", completion.usage.total_tokens ==
      completion.usage.prompt_tokens + completion.usage.completion_tokens, completion.usage)
extra = completion.model_extra["companin"]
check("citations travel in the extra field", extra["citations"][0]["source_id"] == qa, extra)

raw = client.chat.completions.with_raw_response.create(
    model=assistant,
    messages=[{"role": "user", "content": "And for gift cards?"}],
    extra_headers={"X-Companin-Conversation-Id": extra["conversation_id"]},
)
check("X-Companin-Conversation-Id continues the conversation",
      raw.headers.get("x-companin-conversation-id") == extra["conversation_id"], raw.headers)

stream = client.chat.completions.create(
    model=assistant,
    messages=[{"role": "user", "content": QUESTION}],
    stream=True,
    stream_options={"include_usage": True},
)
pieces, finish, usage = [], None, None
for chunk in stream:
    if chunk.usage:
        usage = chunk.usage
    for choice in chunk.choices:
        pieces.append(choice.delta.content or "")
        finish = choice.finish_reason or finish
check("a streamed completion carries the same answer", "".join(pieces) == ANSWER, pieces)
check("the stream ends with stop and the usage", finish == "stop" and usage is not None, (finish, usage))

try:
    client.chat.completions.create(model="Nobody", messages=[{"role": "user", "content": "Hi"}])
    check("an unknown model is NotFoundError", False)
except openai.NotFoundError as e:
    check("an unknown model is NotFoundError", e.body.get("param") == "model", e.body)
try:
    openai.OpenAI(base_url=BASE + "/v1", api_key="cmp_live_wrong", max_retries=0).models.list()
    check("a wrong key is AuthenticationError", False)
except openai.AuthenticationError:
    check("a wrong key is AuthenticationError", True)
try:
    client.chat.completions.create(model=assistant, messages=[{"role": "assistant", "content": "Hi"}])
    check("a request without a user message is BadRequestError", False)
except openai.BadRequestError as e:
    check("a request without a user message is BadRequestError", e.body.get("param") == "messages", e.body)
print("sdk-checks: all passed")
