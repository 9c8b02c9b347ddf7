#!/usr/bin/env bash
# make bench: the full path (chat-api → Redis → chat-worker → emulator → Redis → chat-api → client), its floor
# (the emulator streamed straight to the load generator) and its peer (the LiteLLM proxy in front of the same
# emulator), one run, same reply settings, at 1, 20, 100 and 1,000 concurrent streams (LiteLLM up to 100;
# BENCH_SKIP_1000=1 skips the 1,000 step), plus chat-api's memory per idle open SSE connection. Release builds,
# a stack of its own on ports 6491, 27091 and 3091-3095. Writes the `bench` section of docs/benchmarks.md.
# With BENCH_PROFILE=N (make profile) it runs instead the full path alone at N streams under `perf record` of
# chat-api, chat-worker, redis-server and the accounting stand-in, and writes their profiles to .data/bench/perf-*.txt (docs untouched).
set -euo pipefail
# BENCH_BIN (below) is taken relative to where make was run.
[ -n "${BENCH_BIN:-}" ] && BENCH_BIN=$(cd "$BENCH_BIN" && pwd)
cd "$(dirname "$0")/.."
source scripts/stack.sh
trap stop_stack EXIT INT TERM

# 1,000 streams need well over 1,024 descriptors in chat-api and in the load generator.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

products=(chat-api chat-worker bedrock-emulator auth-standin accounting-standin chat-bench)
# BENCH_BIN=<dir> runs release binaries built earlier (say, of the commit before a change, for an A/B run).
if [ -n "${BENCH_BIN:-}" ]; then
  bin=$BENCH_BIN
  echo "==> running the binaries in $bin (docs/benchmarks.md is left as it was)"
else
  echo "==> building (release)"
  for product in "${products[@]}"; do
    swift build -c release --product "$product" 2>&1 | grep -E "error|warning: .*Sources/" || true
  done
  bin=$(swift build -c release --show-bin-path)
fi
for product in "${products[@]}"; do
  [ -x "$bin/$product" ] || { echo "error: $product did not build (or is not in BENCH_BIN)" >&2; exit 1; }
done

# Other stacks on this machine (make dev, make test, another worktree's bench) must not answer in our place.
for port in 6491 27091 3091 3092 3093 3094 3095; do
  if port_in_use "$port"; then echo "error: port $port is in use; make bench needs 6491, 27091 and 3091-3095" >&2; exit 1; fi
done

dir=.data/bench
rm -rf "$dir" && mkdir -p "$dir"

# LiteLLM in a virtualenv of its own (git-ignored); without it the run goes on with the two other targets.
litellm_note=""
if [ -n "${BENCH_PROFILE:-}" ] || [ "${BENCH_IDLE_ONLY:-}" = 1 ]; then
  litellm_note="not run"
elif [ ! -x .venv-litellm/bin/litellm ]; then
  echo "==> installing LiteLLM (PyPI litellm[proxy]) into .venv-litellm"
  if ! { python3 -m venv .venv-litellm && .venv-litellm/bin/pip install -q --upgrade pip &&
    .venv-litellm/bin/pip install -q 'litellm[proxy]'; } >"$dir/litellm-install.log" 2>&1; then
    litellm_note="LiteLLM could not be installed (\`pip install 'litellm[proxy]'\` failed), so this run has no LiteLLM figures."
    echo "warning: $litellm_note (see $dir/litellm-install.log)" >&2
  fi
fi

last_pid() { echo "${STACK_PIDS[${#STACK_PIDS[@]}-1]}"; }

start_redis 6491 "$dir/redis"; redis_pid=$(last_pid)
start_mongo 27091 "$dir/mongo"; mongo_pid=$(last_pid)
export REDIS_URL=redis://127.0.0.1:6491 MONGO_URI=mongodb://127.0.0.1:27091/chat
export EMULATOR_ACCESS_KEY_ID=AKIDEMULATOREXAMPLE EMULATOR_SECRET_ACCESS_KEY=emulator/secret/key/EXAMPLEKEY0000000000000
export AWS_ACCESS_KEY_ID=$EMULATOR_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$EMULATOR_SECRET_ACCESS_KEY AWS_REGION=us-east-1
export BEDROCK_ENDPOINT=http://127.0.0.1:3091 ACCOUNTING_URL=http://127.0.0.1:3093 CHAT_URL=http://127.0.0.1:3094
# Rate limiting off; one worker may run every stream of the 1,000 step at once, as the floor does.
# The 1,000 step saturates both cores: a reservation may wait seconds for the accounting stand-in (on the Python
# MongoDB) without anything being wrong, so calls to it get a 30 s timeout and enough connections to all be in flight.
export RATE_LIMIT_ENABLED=false LOG_LEVEL=warning WORKER_CONCURRENCY=1100 ACCOUNTING_TIMEOUT_MS=30000 ACCOUNTING_MAX_CONNECTIONS=1100
# The idle probe holds 1,000 observers as one supervisor, past the per-user cap that protects production.
export MAX_OBSERVERS_PER_USER=2000
start_process bedrock-emulator "$dir/emulator.log" env PORT=3091 "$bin/bedrock-emulator"; emulator_pid=$(last_pid)
start_process auth-standin "$dir/auth.log" env PORT=3092 PASSWORD_HASH_ROUNDS=1000 "$bin/auth-standin"; auth_pid=$(last_pid)
start_process accounting-standin "$dir/accounting.log" env PORT=3093 ACCOUNTING_DATABASE_PATH="$dir/accounting.sqlite3" "$bin/accounting-standin"
accounting_pid=$(last_pid)
start_process chat-worker "$dir/worker.log" env WORKER_METRICS_PORT=0 "$bin/chat-worker"; worker_pid=$(last_pid)
start_process chat-api "$dir/api.log" env PORT=3094 "$bin/chat-api"; api_pid=$(last_pid)
for port in 3091 3092 3093 3094; do wait_for_port "$port" "bench stack"; done

pids=(--pid "chat-api=$api_pid" --pid "chat-worker=$worker_pid" --pid "redis=$redis_pid" --pid "emulator=$emulator_pid"
  --pid "secantusdb=$mongo_pid" --pid "accounting-standin=$accounting_pid" --pid "auth-standin=$auth_pid")
targets=floor,full
if [ -z "$litellm_note" ]; then
  # PERFORMANCE.md's configuration: the invoke/ route (InvokeModelWithResponseStream), no database, one worker.
  export LITELLM_MASTER_KEY="sk-$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
  export LITELLM_URL=http://127.0.0.1:3095 LITELLM_MODEL=bench-claude
  cat >"$dir/litellm.yaml" <<YAML
model_list:
  - model_name: bench-claude
    litellm_params:
      model: bedrock/invoke/anthropic.claude-3-sonnet-20240229-v1:0
      aws_access_key_id: $EMULATOR_ACCESS_KEY_ID
      aws_secret_access_key: $EMULATOR_SECRET_ACCESS_KEY
      aws_region_name: us-east-1
      aws_bedrock_runtime_endpoint: $BEDROCK_ENDPOINT
YAML
  start_process litellm "$dir/litellm.log" env LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_TELEMETRY_DISABLED=true \
    .venv-litellm/bin/litellm --config "$dir/litellm.yaml" --host 127.0.0.1 --port 3095 --num_workers 1
  litellm_pid=$(last_pid)
  if wait_for_port 3095 litellm 240 && curl -sfN -m 30 "$LITELLM_URL/chat/completions" -H "Authorization: Bearer $LITELLM_MASTER_KEY" \
    -H "Content-Type: application/json" -d '{"model":"bench-claude","stream":true,"max_tokens":64,"messages":[{"role":"user","content":"hi [[tokens:3]]"}]}' |
    grep -q '\[DONE\]'; then
    targets=floor,full,litellm
    pids+=(--pid "litellm=$litellm_pid")
    litellm_version=$(.venv-litellm/bin/pip show litellm 2>/dev/null | awk '/^Version:/{print $2}')
  else
    litellm_note="LiteLLM was installed but did not stream (see $dir/litellm.log), so this run has no LiteLLM figures."
    echo "warning: $litellm_note" >&2
  fi
fi

if [ -n "${BENCH_PROFILE:-}" ]; then
  if ! command -v perf >/dev/null 2>&1; then
    echo "==> installing linux-perf (perf)"
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq linux-perf >/dev/null
  fi
  # perf's own reports: where the CPU of chat-api, chat-worker, redis-server and the accounting stand-in goes,
  # by function (self) and with callees.
  echo "==> profiling chat-api, chat-worker, redis-server and the accounting stand-in at $BENCH_PROFILE streams"
  perf_pids=()
  for name in api worker redis accounting; do
    pid_var=${name}_pid
    perf record -e cpu-clock -F 1999 -g -p "${!pid_var}" -o "$dir/perf-$name.data" >"$dir/perf-$name.log" 2>&1 &
    perf_pids+=($!)
  done
  redis-cli -p 6491 CONFIG RESETSTAT >/dev/null
  redis-cli -p 6491 CONFIG SET slowlog-log-slower-than 0 >/dev/null && redis-cli -p 6491 CONFIG SET slowlog-max-len 1000000 >/dev/null
  redis-cli -p 6491 SLOWLOG RESET >/dev/null
  "$bin/chat-bench" run --target full --concurrency "$BENCH_PROFILE" --messages "${BENCH_PROFILE_MESSAGES:-10}" --tokens 12 --pace-ms 20 \
    --warmup 4 --redis-port 6491 "${pids[@]}" --json "$dir/chat-bench.json" --markdown "$dir/run.md" >/dev/null
  kill -INT "${perf_pids[@]}" && wait "${perf_pids[@]}" || true
  # What Redis did for the run (warm-up included): calls and microseconds per command.
  redis-cli -p 6491 INFO commandstats | tr -d '\r' | grep '^cmdstat' | sort -t= -k3 -n -r >"$dir/redis-commandstats.txt" || true
  # Scripts apart, by their first key's kind (every command was logged, with its microseconds).
  python3 scripts/redis-slowlog-summary.py 6491 >>"$dir/redis-commandstats.txt" || true
  for name in api worker redis accounting; do
    perf report -i "$dir/perf-$name.data" --no-children --sort dso,symbol --percent-limit 0.7 --stdio -g none 2>/dev/null |
      grep -v '^$' >"$dir/perf-$name.txt" || true
    perf report -i "$dir/perf-$name.data" --children --sort symbol --percent-limit 3 --stdio -g none 2>/dev/null |
      grep -v '^$' >"$dir/perf-$name-children.txt" || true
  done
  cat "$dir/run.md"
  echo "==> Redis commands: $dir/redis-commandstats.txt"; cat "$dir/redis-commandstats.txt"
  echo "==> profiles: $dir/perf-{api,worker,redis,accounting}.txt (self) and $dir/perf-*-children.txt (with callees)"
  exit 0
fi

# BENCH_IDLE_ONLY=1: the idle probe alone (chat-api's memory per idle open stream), docs untouched.
if [ "${BENCH_IDLE_ONLY:-}" = 1 ]; then
  "$bin/chat-bench" idle --connections 1000 --pid "chat-api=$api_pid" --redis-port 6491 --json "$dir/idle.json" >"$dir/idle.md"
  cat "$dir/idle.md"
  exit 0
fi

levels=1,20,100
[ "${BENCH_SKIP_1000:-}" = 1 ] || levels=1,20,100,1000
# BENCH_LEVELS=1,20 (say) runs those steps alone, for a quick look: no idle probe, docs untouched; with it,
# BENCH_TARGETS=floor,full (say) picks the targets, BENCH_MESSAGES=N the replies each virtual user streams and
# BENCH_TOKENS=N the chunks of each reply.
quick=""
[ -n "${BENCH_LEVELS:-}" ] && { levels=$BENCH_LEVELS; quick=1; }
if [ -z "$quick" ] && [ -n "${BENCH_TARGETS:-}${BENCH_MESSAGES:-}${BENCH_TOKENS:-}" ]; then
  echo "note: BENCH_TARGETS, BENCH_MESSAGES and BENCH_TOKENS apply with BENCH_LEVELS only; this run keeps the documented settings"
  unset BENCH_TARGETS BENCH_MESSAGES BENCH_TOKENS
fi

if [ -z "$quick" ]; then
  echo "==> chat-api's memory per idle open SSE connection"
  "$bin/chat-bench" idle --connections 1000 --pid "chat-api=$api_pid" --redis-port 6491 --json "$dir/idle.json" >"$dir/idle.md"
  cat "$dir/idle.md"
fi

# Other work on the machine skews every figure: say how busy it was when the streams started.
# BENCH_IDLE_DURING=N (with BENCH_LEVELS): N idle observers, one per session, stay open while the streams run.
idle_pid=""
if [ -n "${BENCH_IDLE_DURING:-}" ] && [ -n "$quick" ]; then
  "$bin/chat-bench" idle --connections "$BENCH_IDLE_DURING" --sessions "$BENCH_IDLE_DURING" --settle 1 --hold 3600 \
    --pid "chat-api=$api_pid" --json "$dir/idle-during.json" >"$dir/idle-during.md" 2>"$dir/idle-during.log" &
  idle_pid=$!
  for _ in $(seq 1 600); do grep -q "holding" "$dir/idle-during.log" 2>/dev/null && break; sleep 0.5; done
  grep -q "holding" "$dir/idle-during.log" || { echo "error: the idle observers did not open" >&2; exit 1; }
  echo "==> $BENCH_IDLE_DURING idle observers open, one per session"
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "==> streaming: $targets at $levels concurrent streams (load average $load_before)"
"$bin/chat-bench" run --target "${BENCH_TARGETS:-$targets}" --concurrency "$levels" --cap litellm=100 --messages "${BENCH_MESSAGES:-3}" --min-requests 30 \
  --tokens "${BENCH_TOKENS:-12}" --pace-ms 20 --warmup 4 --redis-port 6491 "${pids[@]}" --json "$dir/chat-bench.json" --markdown "$dir/run.md" >/dev/null
cat "$dir/run.md"
[ -n "$idle_pid" ] && { kill "$idle_pid" 2>/dev/null || true; }
[ -n "$quick" ] && { echo "==> BENCH_LEVELS given: docs/benchmarks.md left as it was"; exit 0; }
[ -n "${BENCH_BIN:-}" ] && { echo "==> BENCH_BIN given (binaries built elsewhere): docs/benchmarks.md left as it was"; exit 0; }

{
  echo "## make bench"
  echo
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
  echo "with \`make bench\`$([ "${BENCH_SKIP_1000:-}" = 1 ] && echo ' (BENCH_SKIP_1000=1)'): release builds, everything on this machine: Redis, SecantusDB"
  echo "(the Python MongoDB stand-in), the emulator, the auth and accounting stand-ins, one chat-api and one chat-worker"
  echo "(\`WORKER_CONCURRENCY=1100\`, \`ACCOUNTING_TIMEOUT_MS=30000\`, \`ACCOUNTING_MAX_CONNECTIONS=1100\`, rate limiting off)$([ -n "${litellm_version:-}" ] && echo ", and LiteLLM ${litellm_version} (one worker, no database)")."
  echo "The load generator is \`chat-bench\` (\`.build/release/chat-bench --help\`): distinct virtual users with signed"
  echo "tokens and credits allocated up front, each with its own session, each streaming 3 replies in a row (30 at"
  echo "1 stream) after 4 warm-up streams; replies of 12 chunks 20 ms apart (\`[[tokens:12]] [[tps:50]]\`). Floor: the"
  echo "emulator streamed straight to the load generator through the worker's \`BedrockClient\`. LiteLLM runs up to 100 streams."
  echo "Full JSON: \`.data/bench/chat-bench.json\` and \`.data/bench/idle.json\` after a run. Load average (1, 5, 15 min)"
  echo "when the streams started: $load_before."
  [ -n "$litellm_note" ] && { echo; echo "**$litellm_note**"; }
  echo
  echo "### Streams"
  echo
  cat "$dir/run.md"
  echo
  echo "### Idle open SSE connections (supervisor observers, no reply running)"
  echo
  cat "$dir/idle.md"
} >"$dir/section.md"
write_bench_section bench "$dir/section.md"
echo "==> docs/benchmarks.md updated"
