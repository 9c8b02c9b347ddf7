#!/usr/bin/env bash
# make dev: Redis on 6380 and SecantusDB on 27018 (data in .data/dev), then chat-api on 3002, chat-worker (its
# health and metrics on 3011) and Prometheus on 9091, in the foreground until Ctrl-C, which stops everything
# started here.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh
trap stop_stack EXIT INT TERM

export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6380}"
export MONGO_URI="${MONGO_URI:-mongodb://127.0.0.1:27018/chat}"
export PORT="${PORT:-3002}"
# Pages served from this machine (a console on another port, a local HTML file's server) may call the API.
export CORS_ALLOWED_ORIGINS="${CORS_ALLOWED_ORIGINS:-http://localhost:*,http://127.0.0.1:*}"
bin=$(swift build --show-bin-path)

start_redis 6380 .data/dev/redis
start_mongo 27018 .data/dev/mongo
export EMULATOR_ACCESS_KEY_ID="${EMULATOR_ACCESS_KEY_ID:-AKIDEMULATOREXAMPLE}"
export EMULATOR_SECRET_ACCESS_KEY="${EMULATOR_SECRET_ACCESS_KEY:-emulator/secret/key/EXAMPLEKEY0000000000000}"
export BEDROCK_ENDPOINT="${BEDROCK_ENDPOINT:-http://127.0.0.1:3010}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-$EMULATOR_ACCESS_KEY_ID}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-$EMULATOR_SECRET_ACCESS_KEY}"
start_process bedrock-emulator .data/dev/emulator.log env PORT=3010 "$bin/bedrock-emulator"
wait_for_port 3010 bedrock-emulator
start_process auth-standin .data/dev/auth.log env PORT=3000 "$bin/auth-standin"
start_process accounting-standin .data/dev/accounting.log env PORT=3001 ACCOUNTING_DATABASE_PATH=.data/dev/accounting.sqlite3 "$bin/accounting-standin"
wait_for_port 3000 auth-standin
wait_for_port 3001 accounting-standin
export ACCOUNTING_URL="${ACCOUNTING_URL:-http://127.0.0.1:3001}"
export AUTH_URL="${AUTH_URL:-http://127.0.0.1:3000}"
start_process chat-worker - "$bin/chat-worker"
start_process chat-api - "$bin/chat-api"
wait_for_port "$PORT" chat-api
# The guide's Prometheus on 9091, scraping every process above with the alert rules of deploy/prometheus.
start_process prometheus .data/dev/prometheus.log prometheus --config.file=deploy/prometheus/prometheus.yml \
  --storage.tsdb.path=.data/dev/prometheus --web.listen-address=127.0.0.1:9091
wait_for_port 9091 prometheus
echo "==> the stack is up: chat-api on http://localhost:$PORT (its console at http://localhost:$PORT/console/), Prometheus on http://localhost:9091 (Ctrl-C stops it)"
wait -n "${STACK_PIDS[@]}" || true
echo "==> a process of the stack exited; stopping the rest"
