#!/usr/bin/env bash
# make bench-redis: the Redis client (release build) and redis-benchmark against the same redis-server,
# in the same run; the results replace the Redis section of docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh
trap stop_stack EXIT INT TERM

echo "==> building redis-bench (release)"
swift build -c release --product redis-bench 2>&1 | grep -E "error|warning: .*Sources/" || true
bin=$(swift build -c release --show-bin-path)
rm -rf .data/bench && start_redis 6391 .data/bench/redis
redis-cli -p 6391 config set appendonly no >/dev/null

rows=$(mktemp)
echo "==> redis-benchmark"
rb() { redis-benchmark -p 6391 -q "$@" | tr '\r' '\n' | grep -E "requests per second" | tail -1 | sed -E 's/.*: ([0-9.]+) requests per second.*/\1/'; }
seq_rate=$(rb -c 1 -n 20000 -t set)
p16_rate=$(rb -c 1 -n 200000 -P 16 -t set)
p1000_rate=$(rb -c 1 -n 1000000 -P 1000 -t set)
c100_rate=$(rb -c 100 -n 100000 -t set)

echo "==> redis-bench (this project's client)"
REDIS_URL=redis://127.0.0.1:6391 "$bin/redis-bench" | tee "$rows"

{
  echo "## Redis client (\`make bench-redis\`)"
  echo
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -m)), redis-server $(redis-server --version | sed -E 's/.*v=([0-9.]+).*/\1/'),"
  echo "loopback, release build; both columns from the same run against the same server."
  echo
  echo "| this project's client | rate | latency |"
  echo "|---|---|---|"
  cat "$rows"
  echo
  echo "| redis-benchmark (same server, same run) | rate |"
  echo "|---|---|"
  echo "| \`-c 1 -t set\` (one connection, sequential) | ${seq_rate} ops/s |"
  echo "| \`-c 1 -P 16 -t set\` (one connection, pipeline of 16) | ${p16_rate} ops/s |"
  echo "| \`-c 1 -P 1000 -t set\` (one connection, pipeline of 1,000) | ${p1000_rate} ops/s |"
  echo "| \`-c 100 -t set\` (100 connections) | ${c100_rate} ops/s |"
} > .data/bench/redis-section.md
rm -f "$rows"
write_bench_section redis .data/bench/redis-section.md
echo "==> docs/benchmarks.md updated"
cat .data/bench/redis-section.md
