# The two commands a new machine needs: `make dev` and `make test`.
SHELL := /bin/bash
.PHONY: dev test build bootstrap browser bench profile bench-redis bench-bedrock bench-accounting soak clean

bootstrap:
	@scripts/bootstrap.sh

build: bootstrap
	@. scripts/stack.sh && swift build

## Installs what is missing, builds, and runs the whole stack in the foreground until Ctrl-C.
dev: build
	@scripts/dev.sh

## The same set-up, then every test (unit and integration), then everything stopped.
test: bootstrap
	@scripts/test.sh

## The browser checks alone (headless Chromium: TC-09, TC-12 over WebSocket, TC-16, CORS, the console); with
## BROWSER_WRITE_DOCS=1 the screenshots go to docs/images/.
browser: build
	@scripts/browser-check.sh

## The long fault runs (20 worker kills and the rest, about 15 minutes); writes the table of docs/reliability.md.
soak: build
	@FAULTS_WRITE_DOCS=1 scripts/faults.sh long

## The Redis client beside redis-benchmark on the same server; writes docs/benchmarks.md.
bench-redis: bootstrap
	@scripts/bench-redis.sh

## The event-stream decoder and the Bedrock client's cost per chunk; writes docs/benchmarks.md.
bench-bedrock: bootstrap
	@scripts/bench-bedrock.sh

## The full path, its floor (the emulator straight) and LiteLLM at 1-1,000 streams with chat-bench; writes docs/benchmarks.md
## (BENCH_LEVELS=1,20 runs only those steps and leaves the docs alone).
bench: bootstrap
	@scripts/bench.sh

## chat-api, chat-worker, redis-server and the accounting stand-in under perf at PROFILE_STREAMS (default 100) streams; profiles in .data/bench/perf-*.txt.
profile: bootstrap
	@BENCH_PROFILE=$${PROFILE_STREAMS:-100} scripts/bench.sh

## The accounting stand-in under 1, 20 and 100 users reserving and settling in a loop.
bench-accounting: bootstrap
	@scripts/bench-accounting.sh

clean:
	rm -rf .build .build-otlp .data
