#!/usr/bin/env bash
# make bench-bedrock: the event-stream decoder (MB/s on large synthetic streams) and the Bedrock client's
# CPU cost per streamed chunk against the emulator sending as fast as it can; release builds. The results
# replace the Bedrock section of docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh
trap stop_stack EXIT INT TERM

echo "==> building bedrock-bench and bedrock-emulator (release)"
swift build -c release --product bedrock-bench 2>&1 | grep -E "error|warning: .*Sources/" || true
swift build -c release --product bedrock-emulator 2>&1 | grep -E "error|warning: .*Sources/" || true
bin=$(swift build -c release --show-bin-path)
mkdir -p .data/bench
start_process bedrock-emulator .data/bench/emulator.log env PORT=3030 EMULATOR_TOKENS_PER_SECOND=0 "$bin/bedrock-emulator"
wait_for_port 3030 bedrock-emulator

rows=.data/bench/bedrock-rows.md
BEDROCK_ENDPOINT=http://127.0.0.1:3030 "$bin/bedrock-bench" | tee "$rows"
{
  echo "## Bedrock client and event-stream decoder (\`make bench-bedrock\`)"
  echo
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -m)), release build. The client rows stream from the"
  echo "emulator on the same machine (it sends without pacing), so the emulator's own CPU shares the two cores;"
  echo "CPU per chunk counts only the client's process."
  echo
  cat "$rows"
} > .data/bench/bedrock-section.md
write_bench_section bedrock .data/bench/bedrock-section.md
echo "==> docs/benchmarks.md updated"
