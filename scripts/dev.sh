#!/usr/bin/env bash
# make dev: Redis on 6380 and SecantusDB on 27018 (data in .data/dev), then chat-api on 3002 and chat-worker,
# in the foreground until Ctrl-C, which stops everything started here.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh
trap stop_stack EXIT INT TERM

export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6380}"
export MONGO_URI="${MONGO_URI:-mongodb://127.0.0.1:27018/chat}"
export PORT="${PORT:-3002}"
bin=$(swift build --show-bin-path)

start_redis 6380 .data/dev/redis
start_mongo 27018 .data/dev/mongo
start_process chat-worker - "$bin/chat-worker"
start_process chat-api - "$bin/chat-api"
wait_for_port "$PORT" chat-api
echo "==> the stack is up: chat-api on http://localhost:$PORT (Ctrl-C stops it)"
wait -n "${STACK_PIDS[@]}" || true
echo "==> a process of the stack exited; stopping the rest"
