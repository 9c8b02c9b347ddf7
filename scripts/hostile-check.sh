#!/usr/bin/env bash
# Hostile input against real processes: a stack of its own (chat-api 3063, chat-worker with health on 3064,
# auth stand-in 3061, accounting stand-in 3062; the Bedrock emulator on 3060, Redis on 6420 and SecantusDB on
# 27058 only when BEDROCK_ENDPOINT, REDIS_URL, MONGO_URI are not given), job stream chat:jobs:hostile, database
# chat_hostile, data in .data/hostile/; then
#   idor          scripts/idor_check.py: every route of openapi.json with a path parameter, every method, called
#                 with another user's session, job and event ids (404 everywhere but what the docs allow), and
#                 no side effect (balances, reservations, the job stream, the owner's session);
#   schemathesis  scripts/schemathesis_check.py: schemathesis over /openapi.json with a token of each role
#                 (checks not_a_server_error, status_code_conformance, response_schema_conformance);
#   logs          no bearer token in any log of the stack (the fuzzer sends them in headers and query strings).
# `scripts/hostile-check.sh [idor] [schemathesis] [logs]` runs only those (default: all). Builds nothing: the
# binaries come from BIN_DIR (default .build/debug of this checkout). Exit status 1 on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
# The stack signs with the guide's published secret unless JWT_ACCESS_SECRET says otherwise.
export ALLOW_DEVELOPMENT_SECRETS=true
source scripts/stack.sh
trap stop_stack EXIT INT TERM

started=$(date +%s)
bin=${BIN_DIR:-$PWD/.build/debug}
checks=("$@"); [ ${#checks[@]} -eq 0 ] && checks=(idor schemathesis logs)
for product in chat-api chat-worker auth-standin accounting-standin bedrock-emulator; do
  [ -x "$bin/$product" ] || { echo "hostile-check: $bin/$product is missing (build first, or set BIN_DIR)" >&2; exit 1; }
done

dir=.data/hostile
for port in 3061 3062 3063 3064; do
  if port_in_use "$port"; then echo "hostile-check: port $port is in use" >&2; exit 1; fi
done
rm -rf "$dir" && mkdir -p "$dir"

if [ -z "${REDIS_URL:-}" ]; then
  start_redis 6420 "$dir/redis"
  export REDIS_URL=redis://127.0.0.1:6420
fi
if [ -z "${MONGO_URI:-}" ]; then
  start_mongo 27058 "$dir/mongo"
  export MONGO_URI=mongodb://127.0.0.1:27058/chat_hostile
else
  export MONGO_URI="${MONGO_URI%/*}/chat_hostile"
fi
if [ -z "${BEDROCK_ENDPOINT:-}" ]; then
  export EMULATOR_ACCESS_KEY_ID=AKIDEMULATOREXAMPLE EMULATOR_SECRET_ACCESS_KEY=emulator/secret/key/EXAMPLEKEY0000000000000
  export AWS_ACCESS_KEY_ID=$EMULATOR_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$EMULATOR_SECRET_ACCESS_KEY AWS_REGION=us-east-1
  export BEDROCK_ENDPOINT=http://127.0.0.1:3060
  start_process bedrock-emulator "$dir/emulator.log" env PORT=3060 EMULATOR_TOKENS_PER_SECOND=400 "$bin/bedrock-emulator"
  wait_for_port 3060 bedrock-emulator
fi

start_process auth-standin "$dir/auth.log" env PORT=3061 PASSWORD_HASH_ROUNDS=1000 "$bin/auth-standin"
start_process accounting-standin "$dir/accounting.log" env PORT=3062 ACCOUNTING_DATABASE_PATH="$dir/accounting.sqlite3" "$bin/accounting-standin"
wait_for_port 3061 auth-standin
wait_for_port 3062 accounting-standin
export AUTH_URL=http://127.0.0.1:3061 ACCOUNTING_URL=http://127.0.0.1:3062 JOB_STREAM=chat:jobs:hostile
# The rate limiter stays on (its answers are fuzzed too) with limits the checks do not reach: a 429 would hide
# the answer under test.
limits=(RATE_LIMIT_IP=1000000/60:100000 RATE_LIMIT_SESSION_CREATE=1000000/60:100000 RATE_LIMIT_GENERATION=1000000/60:100000
  RATE_LIMIT_READ=1000000/60:100000 RATE_LIMIT_OBSERVE=1000000/60:100000 RATE_LIMIT_WRITE=1000000/60:100000)
start_process chat-worker "$dir/worker.log" env WORKER_METRICS_PORT=3064 "$bin/chat-worker"
start_process chat-api "$dir/api.log" env PORT=3063 "${limits[@]}" MESSAGE_WAIT_TIMEOUT_MS=20000 "$bin/chat-api"
wait_for_port 3064 chat-worker
wait_for_port 3063 chat-api
echo "hostile-check: stack up in $(($(date +%s) - started)) s"

passed=0 failed=0
run_check() {
  local name=$1; shift
  local t0=$(date +%s)
  if "$@"; then passed=$((passed + 1)); echo "hostile-check: ok: $name ($(($(date +%s) - t0)) s)"
  else failed=$((failed + 1)); echo "hostile-check: FAILED: $name ($(($(date +%s) - t0)) s)" >&2; fi
}
api=http://127.0.0.1:3063
for check in "${checks[@]}"; do
  case $check in
    idor) run_check idor .venv/bin/python scripts/idor_check.py "$api" ;;
    schemathesis) run_check schemathesis .venv/bin/python scripts/schemathesis_check.py "$api" "$dir/schemathesis" ;;
    logs)
      # Everything this run left in $dir (process logs, the reports, and in a standalone run Redis' append-only
      # file and SecantusDB's files): no bearer token (sent in headers and access_token queries) nor secret.
      run_check "no token or secret in $dir" bash -c "! grep -rlaE 'eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}|emulator/secret/key|dev_accounting_service_token' $dir" ;;
    *) echo "hostile-check: unknown check $check (idor, schemathesis, logs)" >&2; exit 2 ;;
  esac
done
echo "hostile-check: $(($(date +%s) - started)) s in all"
echo "hostile-check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
