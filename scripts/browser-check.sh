#!/usr/bin/env bash
# The service in a real browser: a stack of its own (Bedrock emulator 3100, auth stand-in 3101, accounting
# stand-in 3102, chat-api 3103, chat-worker with health on 3104, Redis 6460, SecantusDB 27098), job stream
# chat:jobs:browser, database chat_browser, data in .data/browser/; the test pages of scripts/browser-pages/
# served by `python3 -m http.server` from three origins (3105 and 3106 allowed by CORS_ALLOWED_ORIGINS, 3107
# not); then scripts/browser_check.py drives headless Chromium (Selenium, /usr/bin/chromedriver) through
#   a  TC-09: a page signs user1 in, creates a session and streams a reply with EventSource
#   b  TC-12: a page on the other origin observes that user's session over a WebSocket (same chunks, in order;
#      resume with lastEventId, the observer's token expiring, the server shutting down)
#   c  CORS: preflights from a foreign origin get no Access-Control-* header, the allowed origin gets them; a
#      page on a foreign origin cannot read the services' answers
#   d  TC-16: ten users stream at once from one page; the accounting stand-in charged each exactly its reply
#   e  the web console (scripts/browser_console.py's check_console), when it exists
#   f  screenshots in .data/browser/shots (BROWSER_WRITE_DOCS=1 copies them into docs/images/)
# `scripts/browser-check.sh [a] [b] ...` runs only those. Builds nothing: the binaries come from BIN_DIR
# (default .build/debug of this checkout). Exit status 1 when any check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# The stack signs with the guide's published secret unless JWT_ACCESS_SECRET says otherwise.
export ALLOW_DEVELOPMENT_SECRETS=true
source scripts/stack.sh

harness_pid=""
cleanup() {
  # The harness runs in a process group of its own with its chromedriver and Chromium processes: end that group
  # (it quits its drivers itself on SIGTERM), then the stack and the page servers.
  if [ -n "$harness_pid" ] && kill -0 "$harness_pid" 2>/dev/null; then
    local target=$harness_pid
    # The group only when the harness leads one of its own (setsid made it so); else the harness alone.
    [ "$(ps -o pgid= -p "$harness_pid" | tr -d ' ')" = "$harness_pid" ] && target=-$harness_pid
    kill -TERM -- "$target" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$harness_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "$target" 2>/dev/null || true
  fi
  stop_stack
}
trap cleanup EXIT
trap 'echo "browser-check: interrupted" >&2; exit 130' INT TERM

started=$(date +%s)
bin=${BIN_DIR:-$PWD/.build/debug}
for product in chat-api chat-worker auth-standin accounting-standin bedrock-emulator; do
  [ -x "$bin/$product" ] || { echo "browser-check: $bin/$product is missing (build first, or set BIN_DIR)" >&2; exit 1; }
done
for tool in /usr/bin/chromedriver /usr/bin/chromium; do
  [ -x "$tool" ] || { echo "browser-check: $tool is missing (scripts/bootstrap.sh installs chromium and chromium-driver)" >&2; exit 1; }
done
.venv/bin/python -c "import selenium" 2>/dev/null || { echo "browser-check: selenium is not in .venv (scripts/bootstrap.sh)" >&2; exit 1; }

dir=.data/browser
for port in 3100 3101 3102 3103 3104 3105 3106 3107 6460 27098; do
  if port_in_use "$port"; then echo "browser-check: port $port is in use" >&2; exit 1; fi
done
rm -rf "$dir" && mkdir -p "$dir/shots"

# Only this stack's servers: whatever the environment says about others.
start_redis 6460 "$dir/redis"
start_mongo 27098 "$dir/mongo"
export REDIS_URL=redis://127.0.0.1:6460 MONGO_URI=mongodb://127.0.0.1:27098/chat_browser
export EMULATOR_ACCESS_KEY_ID=AKIDEMULATOREXAMPLE EMULATOR_SECRET_ACCESS_KEY=emulator/secret/key/EXAMPLEKEY0000000000000
export AWS_ACCESS_KEY_ID=$EMULATOR_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$EMULATOR_SECRET_ACCESS_KEY AWS_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE
export BEDROCK_ENDPOINT=http://127.0.0.1:3100
# 24 words at 16 a second: a reply of 24 chunks over about a second and a half, long enough to watch.
start_process bedrock-emulator "$dir/emulator.log" env PORT=3100 EMULATOR_TOKENS_PER_SECOND=16 EMULATOR_REPLY_TOKENS=24 "$bin/bedrock-emulator"

# The pages' origins that may call the services: the two test origins and chat-api's own (the console it
# serves at /console/ calls auth and accounting cross-origin). 3107 serves the same pages and is not listed.
export CORS_ALLOWED_ORIGINS=http://127.0.0.1:3105,http://127.0.0.1:3106,http://127.0.0.1:3103
start_process auth-standin "$dir/auth.log" env PORT=3101 PASSWORD_HASH_ROUNDS=1000 "$bin/auth-standin"
start_process accounting-standin "$dir/accounting.log" env PORT=3102 ACCOUNTING_DATABASE_PATH="$dir/accounting.sqlite3" "$bin/accounting-standin"
wait_for_port 3100 bedrock-emulator
wait_for_port 3101 auth-standin
wait_for_port 3102 accounting-standin
export AUTH_URL=http://127.0.0.1:3101 ACCOUNTING_URL=http://127.0.0.1:3102 JOB_STREAM=chat:jobs:browser
# Every call of the run comes from 127.0.0.1, and the console check signs in the same users again: limits the
# run does not reach, so no 429 hides the answer under test.
limits=(RATE_LIMIT_IP=1000000/60:100000 RATE_LIMIT_SESSION_CREATE=1000000/60:100000 RATE_LIMIT_GENERATION=1000000/60:100000
  RATE_LIMIT_READ=1000000/60:100000 RATE_LIMIT_OBSERVE=1000000/60:100000 RATE_LIMIT_WRITE=1000000/60:100000)
start_process chat-worker "$dir/worker.log" env WORKER_METRICS_PORT=3104 "$bin/chat-worker"
start_process chat-api "$dir/api.log" env PORT=3103 HOST=0.0.0.0 "${limits[@]}" "$bin/chat-api"
api_pid=${STACK_PIDS[-1]}

# The same page folder from three origins.
for port in 3105 3106 3107; do
  start_process "page server $port" "$dir/pages-$port.log" python3 -m http.server "$port" --bind 127.0.0.1 --directory scripts/browser-pages
done
for port in 3104 3103 3105 3106 3107; do wait_for_port "$port" "port $port"; done
echo "browser-check: stack up in $(($(date +%s) - started)) s"

status=0
# setsid: the harness, chromedriver and Chromium share a process group that cleanup can end as one.
CHAT_API_PID=$api_pid BROWSER_DATA_DIR=$dir setsid .venv/bin/python scripts/browser_check.py "$@" &
harness_pid=$!
wait "$harness_pid" || status=$?
harness_pid=""

if [ "${BROWSER_WRITE_DOCS:-}" = 1 ] && compgen -G "$dir/shots/*.png" >/dev/null; then
  mkdir -p docs/images
  cp "$dir"/shots/*.png docs/images/
  echo "browser-check: copied $(ls "$dir"/shots/*.png | wc -l) screenshots into docs/images/"
  [ "$status" -eq 0 ] || echo "browser-check: warning: some checks failed; look at the screenshots before keeping them" >&2
fi
echo "browser-check: $(($(date +%s) - started)) s in all"
[ "$status" -eq 0 ] || exit 1
