#!/usr/bin/env bash
# Keeps chat-bench working: a chat-api (port 3023) and a chat-worker of their own on test.sh's Redis, MongoDB,
# emulator and stand-ins (their own job stream and databases), then `chat-bench` (debug build) with target full,
# 2 virtual users, 2 messages each, short replies, and its idle probe with 30 observers. Fails if any request failed,
# the JSON file is missing, or an observer was refused.
# Used by `make test`; expects REDIS_URL, MONGO_URI, BEDROCK_ENDPOINT, ACCOUNTING_URL (and AUTH_URL) from test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh
trap stop_stack EXIT INT TERM

if port_in_use 3023; then echo "bench-check: port 3023 is in use" >&2; exit 1; fi
swift build --product chat-bench 2>&1 | grep -E "error|warning: .*Sources/" || true
bin=$(swift build --show-bin-path)
mongo_base="${MONGO_URI%/*}"
json=.data/test/chat-bench.json
rm -f "$json"

export RATE_LIMIT_ENABLED=false JOB_STREAM=chat:jobs:bench MONGO_URI="$mongo_base/chat_bench" MAX_OBSERVERS_PER_USER=100
start_process chat-worker .data/test/bench-worker.log "$bin/chat-worker"
worker_pid=${STACK_PIDS[${#STACK_PIDS[@]}-1]}
start_process chat-api .data/test/bench-api.log env PORT=3023 "$bin/chat-api"
api_pid=${STACK_PIDS[${#STACK_PIDS[@]}-1]}
wait_for_port 3023 chat-api

status=0
"$bin/chat-bench" run --target full --concurrency 2 --messages 2 --tokens 5 --pace-ms 5 --warmup 0 --timeout 60 \
  --chat-url http://127.0.0.1:3023 --pid "chat-api=$api_pid" --pid "chat-worker=$worker_pid" --json "$json" --fail-on-error || status=$?
if [ "$status" -eq 0 ] && ! python3 - "$json" <<'PY'
import json, sys
steps = json.load(open(sys.argv[1]))["steps"]
assert steps and all(s["requests"] == 4 and s["completed"] == 4 and s["chunks"] == 20 for s in steps), steps
PY
then status=1; fi
# The idle probe of `make bench` too, small: one supervisor's observers held open (it fails when any is refused).
idle=0
"$bin/chat-bench" idle --connections 30 --sessions 3 --settle 1 --chat-url http://127.0.0.1:3023 --pid "chat-api=$api_pid" \
  --json .data/test/chat-bench-idle.json >.data/test/chat-bench-idle.md || idle=$?
passed=$(( (status == 0) + (idle == 0) ))
echo "bench-check: $passed passed, $(( 2 - passed )) failed"
[ "$status" -eq 0 ] && [ "$idle" -eq 0 ]
