#!/usr/bin/env bash
# The audits CI runs against a real server: graphql-http's GraphQL over HTTP audits on
# /graphql, schemathesis on the REST layer's OpenAPI document (scripts/audit/
# schemathesis.toml), and the official clients: OpenAI's Python and npm SDKs on /v1 and the
# Standard Webhooks library on a real delivery (sdk-checks.py, openai-sdk.mjs). Starts `companin serve` (the test build's binary) on an empty data dir
# with a new organization's admin key, runs each audit, stops the server.
# Usage: scripts/audit/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${CARGO_TARGET_DIR:-target}/debug/companin"
work=$(mktemp -d)
servers=()
cleanup() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

export COMPANIN_EMBEDDER=hash COMPANIN_LLM=extractive COMPANIN_RATE_LIMIT_PER_HOUR=1000000 \
  RUST_LOG=warn
# Starts `companin serve` on a data dir of its own ($1), private URLs allowed or not ($2);
# sets `key` (a new organization's admin key) and `port`.
start() {
  export COMPANIN_DATA_DIR="$work/$1" COMPANIN_ALLOW_PRIVATE_URLS="$2"
  key=$("$bin" org create --name Audit | sed -n 's/^api_key: //p')
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  COMPANIN_BIND="127.0.0.1:$port" "$bin" serve >"$work/$1.log" 2>&1 &
  servers+=($!)
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.5
  done
}

start server false

(cd "$work" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund graphql-http@1 graphql@16 openai@6.49.0 >/dev/null)
# Run from beside its node_modules, where its imports are found.
cp scripts/audit/graphql-http.mjs "$work/"
node "$work/graphql-http.mjs" "http://127.0.0.1:$port/graphql" "$key" \
  || { echo "server log:"; tail -n 50 "$work/server.log"; exit 1; }

# The official clients, pinned, in a virtualenv of their own, against a server of their own:
# its webhook receiver is on loopback, which only COMPANIN_ALLOW_PRIVATE_URLS permits (the
# server schemathesis fuzzes keeps refusing private URLs). sdk-checks.py makes the assistant
# and the Q&A pair the npm check asks about.
(
  start sdk true
  python3 -m venv "$work/sdk-venv"
  "$work/sdk-venv/bin/pip" install --quiet --disable-pip-version-check "openai==3.63.0" "standardwebhooks==1.3.0"
  "$work/sdk-venv/bin/python" scripts/audit/sdk-checks.py "http://127.0.0.1:$port" "$key" \
    || { echo "server log:"; tail -n 50 "$work/sdk.log"; kill "${servers[-1]}"; exit 1; }
  cp scripts/audit/openai-sdk.mjs "$work/"
  node "$work/openai-sdk.mjs" "http://127.0.0.1:$port" "$key" \
    || { echo "server log:"; tail -n 50 "$work/sdk.log"; kill "${servers[-1]}"; exit 1; }
  kill "${servers[-1]}"
)

# Schemathesis in a virtualenv of its own, pinned: a new release's checks change no result
# unnoticed. Key revocations name a spare key (schemathesis.toml): an id it captured from an
# answer could otherwise revoke the audit's own key and leave the rest of the run in 401s.
SPARE_KEY_ID=$(curl -fsS -X POST "http://127.0.0.1:$port/api/v1/api-keys" \
  -H "X-API-Key: $key" -H 'Content-Type: application/json' -d '{"name": "spare"}' \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["api_key"]["id"])')
export SPARE_KEY_ID
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==4.32.5"
# Run from the scratch dir: schemathesis writes its cache (.schemathesis/) where it runs.
(cd "$work" && "$work/venv/bin/schemathesis" --config-file "$OLDPWD/scripts/audit/schemathesis.toml" \
  run "http://127.0.0.1:$port/api/v1/openapi.json" \
  --header "X-API-Key: $key" --workers 2 --seed 20261207 \
  --report junit --report-junit-path "$work/schemathesis.xml") \
  || { echo "server log:"; tail -n 50 "$work/server.log"; exit 1; }
curl -fsS -o /dev/null -H "X-API-Key: $key" "http://127.0.0.1:$port/api/v1/viewer" \
  || { echo "the audit's own key stopped working during the run"; exit 1; }
python3 - "$work/schemathesis.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
tests = sum(int(s.get("tests", 0)) for s in suites)
failures = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
print(f"schemathesis: {tests} operations, {failures} failing")
PY
