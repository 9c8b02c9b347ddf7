#!/usr/bin/env bash
# Span export over OTLP, end to end: builds chat-api and chat-worker with the OTLP trait (in .build-otlp, apart
# from the default build), runs them against test.sh's Redis, MongoDB, emulator and stand-ins with
# OTEL_EXPORTER_OTLP_ENDPOINT pointing at a small collector of its own (scripts/otlp_check.py), streams one reply
# with a traceparent, and requires both processes' spans of that trace at the collector. Called by test.sh with
# its stack running (OTLP_CHECK=0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh
trap stop_stack EXIT INT TERM

echo "==> building chat-api and chat-worker with the OTLP trait (.build-otlp)"
started=$(date +%s)
mkdir -p .data/test
for product in chat-api chat-worker; do
  if ! swift build --scratch-path .build-otlp --traits OTLP --product "$product" >.data/test/otlp-build.log 2>&1; then
    grep -E "error" .data/test/otlp-build.log | head -20 >&2
    echo "otlp-check: FAILED: the OTLP build of $product failed (.data/test/otlp-build.log)" >&2
    exit 1
  fi
done
bin=$(swift build --scratch-path .build-otlp --traits OTLP --show-bin-path)
for product in chat-api chat-worker; do [ -x "$bin/$product" ] || { echo "otlp-check: $product did not build" >&2; exit 1; }; done
echo "otlp-check: the OTLP build took $(($(date +%s) - started)) s"

collector_port=3026 api_port=3025 dir=.data/test/otlp
rm -rf "$dir" && mkdir -p "$dir"
for port in $collector_port $api_port; do
  if port_in_use "$port"; then echo "otlp-check: port $port is in use" >&2; exit 1; fi
done
start_process otlp-collector "$dir/collector.log" .venv/bin/python scripts/otlp_check.py serve "$collector_port" "$dir/exports"
wait_for_port "$collector_port" otlp-collector
export OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$collector_port" OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_BSP_SCHEDULE_DELAY=200
mongo_base="${MONGO_URI%/*}"
export MONGO_URI="$mongo_base/chat_otlp" JOB_STREAM=chat:jobs:otlp WORKER_METRICS_PORT=0
start_process chat-worker "$dir/worker.log" "$bin/chat-worker"
start_process chat-api "$dir/api.log" env PORT=$api_port "$bin/chat-api"
wait_for_port "$api_port" "chat-api (OTLP build)"
.venv/bin/python scripts/otlp_check.py drive "http://127.0.0.1:$api_port" "$dir/exports"
