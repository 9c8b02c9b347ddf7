#!/usr/bin/env bash
# scripts/faults.sh [short|long]: the fault-injection harness. Starts the parts of a stack that
# are never faulted (the Bedrock emulator, the auth stand-in) with scripts/stack.sh, then scripts/faults.py,
# which starts and kills everything else (Redis, SecantusDB, the accounting stand-in, two chat-api, two or more
# chat-worker) and checks every promise of docs/reliability.md against what the API, the accounting service
# and Redis hold afterwards. Exits non-zero if any promise is broken.
#
#   FAULTS_MODE=short|long (or the first argument; short by default): short takes about 4 minutes on 2 cores
#     (one round of each fault, 5 worker kills), long about 15 minutes (20 kills, 3-10 rounds of each fault,
#     more when the service misbehaves) and rewrites the table in docs/reliability.md.
#   FAULTS_WRITE_DOCS=1: a short run rewrites the table too.
#   FAULTS_ONLY=1,4,6: run only those faults (numbers of docs/reliability.md).
#   FAULTS_SEED: the seed of the random kill moments (printed by each run); FAULTS_TIMEOUT: the whole run's
#     deadline in seconds (900 short, 7200 long).
#   BIN_DIR: where the executables are (default .build/debug; `swift build --show-bin-path` gives it).
#
# Ports of its own, so it never clashes with make dev, make test or another harness: Redis 6410, SecantusDB
# 27048, emulator 3050, auth 3051, accounting 3052, chat-api 3053 and 3054, workers' metrics 3055-3058.
# Data and logs under .data/faults/ (fresh each run).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh
trap stop_stack EXIT INT TERM

mode="${1:-${FAULTS_MODE:-short}}"
case "$mode" in short | long) ;; *) echo "faults: mode must be short or long (got $mode)" >&2; exit 2 ;; esac
export FAULTS_MODE="$mode"
export BIN_DIR="${BIN_DIR:-$PWD/.build/debug}"
for exe in chat-api chat-worker bedrock-emulator auth-standin accounting-standin; do
  [ -x "$BIN_DIR/$exe" ] || { echo "faults: $BIN_DIR/$exe not found (build first, or set BIN_DIR)" >&2; exit 2; }
done
[ -x .venv/bin/python ] && [ -x .venv/bin/secantusd-py ] || { echo "faults: .venv with SecantusDB missing (make dev installs it)" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "faults: redis-server not found" >&2; exit 2; }
for port in 6410 27048 3050 3051 3052 3053 3054 3055 3056 3057 3058; do
  if port_in_use "$port"; then echo "faults: port $port is in use (another harness running?)" >&2; exit 1; fi
done

export FAULTS_DATA="$PWD/.data/faults"
rm -rf "$FAULTS_DATA" && mkdir -p "$FAULTS_DATA/bin"
# A snapshot of the executables (hard links where possible), so a build during the run cannot change the
# binary a restarted process runs.
for exe in chat-api chat-worker bedrock-emulator auth-standin accounting-standin; do
  ln "$BIN_DIR/$exe" "$FAULTS_DATA/bin/$exe" 2>/dev/null || cp "$BIN_DIR/$exe" "$FAULTS_DATA/bin/$exe"
done
export BIN_DIR="$FAULTS_DATA/bin"

# The emulator's credentials; chat-worker signs its Bedrock calls with them.
export EMULATOR_ACCESS_KEY_ID=AKIDEMULATOREXAMPLE
export EMULATOR_SECRET_ACCESS_KEY=emulator/secret/key/EXAMPLEKEY0000000000000
export AWS_ACCESS_KEY_ID=$EMULATOR_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$EMULATOR_SECRET_ACCESS_KEY AWS_REGION=us-east-1
export BEDROCK_ENDPOINT=http://127.0.0.1:3050
# The published development secret (from stack.sh) is refused by chat-api and chat-worker unless allowed.
export ALLOW_DEVELOPMENT_SECRETS=true

start_process bedrock-emulator "$FAULTS_DATA/emulator.log" env PORT=3050 EMULATOR_TOKENS_PER_SECOND=100 "$BIN_DIR/bedrock-emulator"
start_process auth-standin "$FAULTS_DATA/auth.log" env PORT=3051 PASSWORD_HASH_ROUNDS=1000 ACCESS_TOKEN_TTL_SECONDS=7200 "$BIN_DIR/auth-standin"
wait_for_port 3050 bedrock-emulator
wait_for_port 3051 auth-standin

export AUTH_URL=http://127.0.0.1:3051
export ACCOUNTING_URL=http://127.0.0.1:3052
export REDIS_URL=redis://127.0.0.1:6410
export MONGO_URI=mongodb://127.0.0.1:27048/chat_faults
export JOB_STREAM=chat:jobs

# faults.py gives itself a deadline (FAULTS_TIMEOUT, 900 s short, 7200 s long) and stops what it started.
status=0
.venv/bin/python -u scripts/faults.py || status=$?
exit $status
