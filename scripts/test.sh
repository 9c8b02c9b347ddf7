#!/usr/bin/env bash
# make test: builds, starts a Redis (6390) and a SecantusDB (27028) of its own with fresh data, runs the unit
# and integration tests against them, and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh
trap stop_stack EXIT INT TERM

echo "==> building"
swift build --build-tests 2>&1 | grep -Ev "^\[[0-9]+/[0-9]+\]|prohibited flag|unhandled; explicitly declare" || true
swift build --build-tests >/dev/null   # fail here if the build failed above
bin=$(swift build --show-bin-path)

rm -rf .data/test && mkdir -p .data/test
start_redis 6390 .data/test/redis
start_mongo 27028 .data/test/mongo

export EMULATOR_ACCESS_KEY_ID=AKIDEMULATOREXAMPLE
export EMULATOR_SECRET_ACCESS_KEY=emulator/secret/key/EXAMPLEKEY0000000000000
export BEDROCK_ENDPOINT=http://127.0.0.1:3020
# chat-worker processes started by the tests sign their Bedrock calls with the emulator's credentials.
export AWS_ACCESS_KEY_ID=$EMULATOR_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$EMULATOR_SECRET_ACCESS_KEY AWS_REGION=us-east-1
start_process bedrock-emulator .data/test/emulator.log env PORT=3020 EMULATOR_TOKENS_PER_SECOND=400 "$bin/bedrock-emulator"
wait_for_port 3020 bedrock-emulator

start_process auth-standin .data/test/auth.log env PORT=3021 PASSWORD_HASH_ROUNDS=1000 "$bin/auth-standin"
start_process accounting-standin .data/test/accounting.log env PORT=3022 ACCOUNTING_DATABASE_PATH=.data/test/accounting.sqlite3 RESERVATION_TTL_SECONDS=60 "$bin/accounting-standin"
wait_for_port 3021 auth-standin
wait_for_port 3022 accounting-standin
export AUTH_URL=http://127.0.0.1:3021
export ACCOUNTING_URL=http://127.0.0.1:3022

export REDIS_URL=redis://127.0.0.1:6390
# Tests start several chat-worker processes: each takes a free port for its health and metrics.
export WORKER_METRICS_PORT=0
export MONGO_URI=mongodb://127.0.0.1:27028/chat_test
export REDIS_SERVER_BIN="$(command -v redis-server)"
export SECANTUSD_BIN="$PWD/.venv/bin/secantusd-py"
export CHAT_API_BIN="$bin/chat-api"
export CHAT_WORKER_BIN="$bin/chat-worker"
export ACCOUNTING_STANDIN_BIN="$bin/accounting-standin"

status=0
# The in-process API tests record every answer, for the OpenAPI check below.
export OPENAPI_EXCHANGES="$PWD/.data/test/openapi-exchanges.jsonl"
echo "==> running the Swift tests (unit and integration)"
swift test --skip-build "$@" || status=$?

echo "==> holding chat-api's answers in the tests against its OpenAPI document"
if [ -f "$OPENAPI_EXCHANGES" ]; then
  every=""; [ $# -eq 0 ] && every=--every-operation
  .venv/bin/python scripts/openapi_check.py Sources/API/Resources/openapi.json "$OPENAPI_EXCHANGES" $every || status=$?
else
  .venv/bin/python scripts/openapi_check.py Sources/API/Resources/openapi.json || status=$?
fi

echo "==> running the Bedrock emulator's conformance tests (boto3)"
.venv/bin/pytest -q Tests/Conformance || status=$?

if [ $# -eq 0 ] || [ "${BENCH_CHECK:-}" = 1 ]; then
  echo "==> running chat-bench against a chat-api and chat-worker of their own (port 3023)"
  scripts/bench-check.sh || status=$?
fi

if [ $# -eq 0 ]; then
  echo "==> checking deploy/ (compose schema, nginx -t, promtool, the Dockerfile)"
  scripts/deploy-check.sh || status=$?
fi

if [ $# -eq 0 ] || [ "${GUIDE_CHECK:-}" = 1 ]; then
  echo "==> running the testing guide's automated script against a stack on ports 3000-3002"
  scripts/guide-check.sh || status=$?
fi

if [ $# -eq 0 ] || [ "${HOSTILE_CHECK:-}" = 1 ]; then
  echo "==> hostile input: the IDOR matrix and schemathesis against a stack on ports 3061-3064"
  BIN_DIR="$bin" scripts/hostile-check.sh || status=$?
fi

if [ $# -eq 0 ] || [ "${BROWSER_CHECK:-}" = 1 ]; then
  echo "==> browsers: headless Chromium on pages of other origins (TC-09, TC-12 over WebSocket, TC-16, CORS) and the console"
  BIN_DIR="$bin" scripts/browser-check.sh || status=$?
fi

if [ $# -eq 0 ] || [ "${FAULTS_CHECK:-}" = 1 ]; then
  echo "==> faults, short: workers killed and stopped, chat-api stopped, Redis and MongoDB down, accounting down, throttling, overload"
  BIN_DIR="$bin" scripts/faults.sh short || status=$?
fi

if { [ $# -eq 0 ] && [ "${OTLP_CHECK:-1}" != 0 ]; } || [ "${OTLP_CHECK:-}" = 1 ]; then
  echo "==> span export over OTLP: the OTLP build of chat-api and chat-worker against a collector"
  scripts/otlp-check.sh || status=$?
fi
# Every process log of the run (the stack's, the bench check's and the guide's): no bearer token, refresh token
# or secret may appear in any of them, at any level they logged.
echo "==> looking for tokens and secrets in the logs of .data/test"
if grep -lE 'eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}|emulator/secret/key' .data/test/*.log .data/test/*/*.log 2>/dev/null; then
  echo "error: the logs above hold a token or a secret" >&2
  status=1
fi
exit $status
