#!/usr/bin/env bash
# The services the two-replica suite needs beyond PostgreSQL and Redis, started for CI and
# for developers: an S3-compatible object store (moto_server, from PyPI, in its own
# virtualenv) with a bucket, and a Redis that speaks only TLS (its certificate signed by a
# throwaway CA).
# Prints the environment the suite reads; `eval "$(scripts/ci/services.sh)"` sets it.
set -euo pipefail
state="${COMPANIN_CI_SERVICES:-$HOME/.cache/companin-services}"
mkdir -p "$state"
moto_port=5055
tls_port=6380
bucket=companin-ci

# moto: pinned, installed once.
if [ ! -x "$state/moto/bin/moto_server" ]; then
  python3 -m venv "$state/moto" >&2
  "$state/moto/bin/pip" install -q 'moto[server]==5.2.6' >&2
fi
if ! curl -fs "http://127.0.0.1:$moto_port/moto-api/" >/dev/null 2>&1; then
  nohup "$state/moto/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$state/moto.log" 2>&1 &
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$moto_port/moto-api/" >/dev/null 2>&1 && break
    sleep 0.2
  done
fi
curl -fs --aws-sigv4 "aws:amz:us-east-1:s3" --user test:test -X PUT \
  "http://127.0.0.1:$moto_port/$bucket" >/dev/null 2>&1 || true

# Redis over TLS: a throwaway CA, and a certificate for localhost it signs.
tls="$state/tls"
if [ ! -f "$tls/server.pem" ]; then
  mkdir -p "$tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Companin CI CA" \
    -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$tls/server.ext"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
    -days 3650 -extfile "$tls/server.ext" -out "$tls/server.pem" 2>/dev/null
fi
if ! redis-cli --tls --cacert "$tls/ca.pem" -h localhost -p "$tls_port" ping >/dev/null 2>&1; then
  redis-server --daemonize yes --port 0 --tls-port "$tls_port" --bind 127.0.0.1 \
    --tls-cert-file "$tls/server.pem" --tls-key-file "$tls/server.key" \
    --tls-ca-cert-file "$tls/ca.pem" --tls-auth-clients no \
    --save "" --appendonly no --logfile "$state/redis-tls.log" >&2
fi

cat <<ENV
export AWS_ENDPOINT_URL=http://127.0.0.1:$moto_port
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export TEST_S3_BUCKET=$bucket
export TEST_REDISS_URL=rediss://localhost:$tls_port
export TEST_REDIS_CA_FILE=$tls/ca.pem
ENV
