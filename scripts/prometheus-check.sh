#!/usr/bin/env bash
# The monitoring set-up checked against a running stack: promtool validates deploy/prometheus/prometheus.yml
# and its alert rules; then a real Prometheus (Debian's package) scrapes the stack with the same rules, every
# target must be up, and every PromQL expression of the alert rules and of the Grafana dashboards must parse,
# run, and name only metrics the stack exports. Called by guide-check.sh once the guide's script has sent its
# traffic. Usage: prometheus-check.sh TARGETS, TARGETS being job=host:port,... (the jobs of prometheus.yml).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh
trap stop_stack EXIT INT TERM

targets=${1:?usage: prometheus-check.sh job=host:port,...}
port=${PROMETHEUS_CHECK_PORT:-9191}
dir=.data/test/prometheus
rm -rf "$dir" && mkdir -p "$dir"

promtool check config --syntax-only deploy/prometheus/prometheus.yml >/dev/null
promtool check rules deploy/prometheus/alerts.yml >/dev/null
echo "prometheus-check: ok: promtool accepts deploy/prometheus/prometheus.yml and alerts.yml"

# The deployed file with this stack's addresses, scraped every second, and the same rules.
.venv/bin/python scripts/prometheus_check.py render deploy/prometheus/prometheus.yml "$targets" "$PWD/deploy/prometheus/alerts.yml" >"$dir/prometheus.yml"
promtool check config "$dir/prometheus.yml" >/dev/null
if port_in_use "$port"; then echo "prometheus-check: port $port is in use" >&2; exit 1; fi
start_process prometheus "$dir/prometheus.log" prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
  --web.listen-address="127.0.0.1:$port"
wait_for_port "$port" prometheus
.venv/bin/python scripts/prometheus_check.py check "http://127.0.0.1:$port" "$dir/prometheus.yml" deploy/prometheus/alerts.yml deploy/grafana/dashboards
