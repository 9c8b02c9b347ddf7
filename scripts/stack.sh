#!/usr/bin/env bash
# Shared functions of dev.sh, test.sh and the benchmarks: start a server in the background, wait for its
# port, and stop everything started here on exit. Source it; do not run it.

STACK_PIDS=()
# libmongoc's shared-memory counters (for its mongoc-stat tool only) would print a plain warning where /dev/shm
# cannot hold them, before any log handler is installed; every process of the stack keeps them off.
export MONGOC_DISABLE_SHM=1

# wait_for_port PORT NAME [SECONDS]: returns once 127.0.0.1:PORT accepts connections.
wait_for_port() {
  local port=$1 name=$2 limit=${3:-30} waited=0
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    sleep 0.1
    waited=$((waited + 1))
    if [ "$waited" -ge $((limit * 10)) ]; then
      echo "error: $name did not open port $port within ${limit}s" >&2
      return 1
    fi
  done
}

# port_in_use PORT: true when something already listens on 127.0.0.1:PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start_redis PORT DIR: a redis-server with append-only persistence in DIR.
start_redis() {
  local port=$1 dir=$2
  if port_in_use "$port"; then echo "error: port $port (Redis) is already in use" >&2; return 1; fi
  mkdir -p "$dir" && dir=$(cd "$dir" && pwd)
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --save "" \
    --logfile "$dir/redis.log" --daemonize no &
  STACK_PIDS+=($!)
  wait_for_port "$port" "redis-server"
}

# start_mongo PORT DIR: SecantusDB (the MongoDB wire protocol) with its data in DIR.
start_mongo() {
  local port=$1 dir=$2
  if port_in_use "$port"; then echo "error: port $port (MongoDB) is already in use" >&2; return 1; fi
  mkdir -p "$dir" && dir=$(cd "$dir" && pwd)
  .venv/bin/secantusd-py --host 127.0.0.1 --port "$port" --storage-path "$dir" --cache-size 256M --standalone \
    >"$dir/secantus.log" 2>&1 &
  STACK_PIDS+=($!)
  wait_for_port "$port" "SecantusDB"
}

# start_process NAME LOGFILE COMMAND...: any other process of the stack, logging to LOGFILE ('-' = terminal).
start_process() {
  local name=$1 log=$2; shift 2
  if [ "$log" = "-" ]; then "$@" & else "$@" >"$log" 2>&1 & fi
  STACK_PIDS+=($!)
  echo "==> started $name (pid $!)"
}

# stop_stack: stops everything started, newest first, each given up to 30 s to finish (chat-api and
# chat-worker drain before Redis and MongoDB go away), then SIGKILL for what is left.
stop_stack() {
  local pid i
  for ((i = ${#STACK_PIDS[@]} - 1; i >= 0; i--)); do
    pid=${STACK_PIDS[$i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 300); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
  STACK_PIDS=()
}

# write_bench_section NAME FILE: puts FILE's text between <!-- NAME:begin --> and <!-- NAME:end --> in
# docs/benchmarks.md, replacing what a previous run wrote there.
write_bench_section() {
  local name=$1 file=$2
  touch docs/benchmarks.md
  python3 - "$name" "$file" <<'PY'
import re, sys
name, path = sys.argv[1], sys.argv[2]
doc = open("docs/benchmarks.md").read()
section = f"<!-- {name}:begin -->\n" + open(path).read().strip() + f"\n<!-- {name}:end -->"
if not doc.strip():
    doc = "# Benchmarks\n\nEach section is written by the make target it names.\n\n"
pattern = re.compile(f"<!-- {name}:begin -->.*?<!-- {name}:end -->", re.S)
doc = pattern.sub(lambda _: section, doc) if pattern.search(doc) else doc.rstrip() + "\n\n" + section + "\n"
open("docs/benchmarks.md", "w").write(doc)
PY
}

# Swift from /opt/swift when it is not on PATH.
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
  export PATH="/opt/swift/usr/bin:$PATH"
fi

# The guide's development secrets, unless the environment sets others. chat-api and chat-worker refuse these
# published values (these and the service token below) unless ALLOW_DEVELOPMENT_SECRETS says this is a development stack.
if [ -z "${JWT_ACCESS_SECRET:-}" ] || [ -z "${ACCOUNTING_SERVICE_TOKEN:-}" ]; then export ALLOW_DEVELOPMENT_SECRETS="${ALLOW_DEVELOPMENT_SECRETS:-true}"; fi
export JWT_ACCESS_SECRET="${JWT_ACCESS_SECRET:-dev_access_secret_key_change_this_in_production}"
export JWT_REFRESH_SECRET="${JWT_REFRESH_SECRET:-dev_refresh_secret_key_change_this_in_production}"
# The credential that makes reservations and settlements the chat service's alone (the accounting stand-in
# requires it, chat-api and chat-worker send it).
export ACCOUNTING_SERVICE_TOKEN="${ACCOUNTING_SERVICE_TOKEN:-dev_accounting_service_token_change_this_in_production}"
