#!/usr/bin/env bash
# Runs the automated script of the user's testing guide (../shared/seed/chat-service-testing-guide.md, section
# "Automated Test Script"), exactly as written, against a stack on the guide's ports (auth 3000, accounting
# 3001, chat-api 3002), and checks what it printed; then the Prometheus set-up against the same stack
# (scripts/prometheus-check.sh) and the OpenAI SDK's tests (Tests/OpenAI). Used by `make test` once the other tests have passed; it
# expects Redis, MongoDB and the Bedrock emulator from test.sh (REDIS_URL, MONGO_URI, BEDROCK_ENDPOINT).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh
trap stop_stack EXIT INT TERM

guide="${GUIDE:-../shared/seed/chat-service-testing-guide.md}"
if [ ! -f "$guide" ]; then echo "guide-check: $guide not found" >&2; exit 1; fi
for port in 3000 3001 3002 3011; do
  if port_in_use "$port"; then echo "guide-check: port $port is in use (is make dev running?)" >&2; exit 1; fi
done

bin=$(swift build --show-bin-path)
mongo_base="${MONGO_URI%/*}"
script=.data/test/guide-script.sh
awk '/^## Automated Test Script/{s=1} s&&/^```bash/{c=1;next} c&&/^```/{exit} c{print}' "$guide" > "$script"
[ -s "$script" ] || { echo "guide-check: no script found in $guide" >&2; exit 1; }

start_process auth-standin .data/test/guide-auth.log env PORT=3000 PASSWORD_HASH_ROUNDS=1000 "$bin/auth-standin"
start_process accounting-standin .data/test/guide-accounting.log env PORT=3001 ACCOUNTING_DATABASE_PATH=.data/test/guide-accounting.sqlite3 "$bin/accounting-standin"
start_process chat-worker .data/test/guide-worker.log env MONGO_URI="$mongo_base/chat_guide" JOB_STREAM=chat:jobs:guide ACCOUNTING_URL=http://127.0.0.1:3001 \
  WORKER_METRICS_PORT=3011 "$bin/chat-worker"
start_process chat-api .data/test/guide-api.log env PORT=3002 MONGO_URI="$mongo_base/chat_guide" JOB_STREAM=chat:jobs:guide ACCOUNTING_URL=http://127.0.0.1:3001 "$bin/chat-api"
for port in 3000 3001 3002 3011; do wait_for_port "$port" "guide stack"; done

output=$(bash "$script" 2>&1)
echo "$output"

failures=0
expect() {
  if grep -Eq "$2" <<<"$output"; then echo "guide-check: ok: $1"; else echo "guide-check: FAILED: $1" >&2; failures=$((failures + 1)); fi
}
expect "admin allocates credits" 'Allocation result: \{.*"id":'
expect "the session is created" 'Session created with ID: [0-9a-f]{24}$'
expect "the message gets a reply" 'Message sent, response: \{.*"message":"success"'
expect "the session has both messages of each exchange" 'Session details: \{.*"messages":\[.*"role":"assistant".*"role":"assistant"'
expect "user1 sees usage" 'Usage: \{.*"totalCreditsUsed"'
expect "the supervisor sees user1's usage" 'Supervisor check: \{.*"userId":"user1"'
expect "the session is deleted" 'Delete result: \{.*"message":"Session deleted"'
expect "the script ends" 'Test completed!'
if [ "$failures" -gt 0 ]; then echo "guide-check: $failures failed" >&2; exit 1; fi
echo "guide-check: 8 passed, 0 failed"

# The official OpenAI SDK, unmodified, against the same stack's OpenAI-compatible API (/v1).
echo "guide-check: the openai SDK against http://127.0.0.1:3002/v1"
CHAT_API_URL=http://127.0.0.1:3002 ACCOUNTING_URL=http://127.0.0.1:3001 timeout 300 .venv/bin/pytest -q -p no:cacheprovider Tests/OpenAI/

# With the guide's traffic in their counters, the monitoring set-up is checked against this stack.
emulator=${BEDROCK_ENDPOINT#http://}
scripts/prometheus-check.sh "chat-api=127.0.0.1:3002,chat-worker=127.0.0.1:3011,auth-standin=127.0.0.1:3000,accounting-standin=127.0.0.1:3001,bedrock-emulator=${emulator%/}"
