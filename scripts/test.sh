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

export REDIS_URL=redis://127.0.0.1:6390
export MONGO_URI=mongodb://127.0.0.1:27028/chat_test
export REDIS_SERVER_BIN="$(command -v redis-server)"
export SECANTUSD_BIN="$PWD/.venv/bin/secantusd-py"
export CHAT_API_BIN="$bin/chat-api"
export CHAT_WORKER_BIN="$bin/chat-worker"

echo "==> running the tests"
swift test --skip-build "$@"
