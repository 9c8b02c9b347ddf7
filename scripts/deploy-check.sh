#!/usr/bin/env bash
# What can be checked of deploy/ without a Docker engine or a cluster: the compose file against the Compose
# Specification's JSON schema (check-jsonschema carries it), nginx's configuration with `nginx -t`, the compose
# Prometheus configuration with promtool, and the Dockerfile and the Kubernetes files (scripts/deploy_check.py).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/check-jsonschema --builtin-schema vendor.compose-spec deploy/docker-compose.yml >/dev/null
echo "deploy-check: ok: deploy/docker-compose.yml follows the Compose Specification"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
nginx -t -q -p "$scratch" -c "$PWD/deploy/nginx/nginx.conf" -g "pid $scratch/nginx.pid; error_log stderr;"
echo "deploy-check: ok: nginx -t accepts deploy/nginx/nginx.conf"
promtool check config --syntax-only deploy/compose/prometheus.yml >/dev/null
echo "deploy-check: ok: promtool accepts deploy/compose/prometheus.yml"
.venv/bin/python scripts/deploy_check.py
