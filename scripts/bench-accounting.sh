#!/usr/bin/env bash
# make bench-accounting: the accounting stand-in (release) on an SQLite file of its own, loaded by accounting-bench
# with 1, 20 and 100 users each doing initialize → finalize in a loop; p50 / p99 of each call, calls per second,
# and the stand-in's CPU per call (from /proc, warm-up and credit grants included).
# Prints the table; with WRITE_DOCS=1 also writes the accounting-standin section of docs/benchmarks.md.
# STANDIN_BIN runs another build of the stand-in (an older one, to compare in the same conditions).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh
trap stop_stack EXIT INT TERM

echo "==> building (release)"
for product in accounting-standin accounting-bench; do
  swift build -c release --product "$product" 2>&1 | grep -E "error|warning: .*Sources/" || true
done
bin=$(swift build -c release --show-bin-path)
data=.data/bench-accounting
rm -rf "$data" && mkdir -p "$data"
start_process accounting-standin "$data/accounting.log" env PORT=3061 LOG_LEVEL=warning \
  ACCOUNTING_DATABASE_PATH="$data/accounting.sqlite3" "${STANDIN_BIN:-$bin/accounting-standin}"
standin_pid=${STACK_PIDS[${#STACK_PIDS[@]}-1]}
wait_for_port 3061 accounting-standin

# The stand-in's CPU time so far, in clock ticks (user + system).
ticks() { awk '{print $14 + $15}' "/proc/$standin_pid/stat"; }

rows=$data/rows.md
echo "| concurrent users | initialize p50 / p99 | finalize p50 / p99 | calls/s (both kinds) | failed calls | stand-in CPU-µs per call |" >"$rows"
echo "| --- | --- | --- | --- | --- | --- |" >>"$rows"
for concurrency in ${BENCH_CONCURRENCY:-1 20 100}; do
  before=$(ticks)
  row=$(ACCOUNTING_URL=http://127.0.0.1:3061 BENCH_CONCURRENCY=$concurrency BENCH_HEADER=0 "$bin/accounting-bench" 2>"$data/calls")
  after=$(ticks)
  calls=$(sed -n 's/^calls=//p' "$data/calls")
  per=$(python3 -c "import os; print(f'{($after - $before) * 1e6 / os.sysconf(\"SC_CLK_TCK\") / $calls:.0f}')")
  echo "$row $per |" >>"$rows"
done
cat "$rows"
if [ "${WRITE_DOCS:-0}" = 1 ]; then
  {
    echo "## accounting stand-in (\`make bench-accounting\`)"
    echo
    echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, release build, the stand-in and its SQLite file on this machine;"
    echo "each user reserves 1,000 Sonnet tokens and settles 200 + 300, in a loop, ${BENCH_SECONDS:-10} s after ${BENCH_WARMUP_SECONDS:-2} s of warm-up."
    echo
    cat "$rows"
  } >"$data/section.md"
  write_bench_section accounting-standin "$data/section.md"
  echo "==> docs/benchmarks.md updated"
fi
