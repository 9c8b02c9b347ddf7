#!/usr/bin/env bash
# Installs what the stack needs and is missing: Debian packages (C libraries, redis-server, Chromium and its
# WebDriver for scripts/browser-check.sh) and a git-ignored Python virtualenv (.venv) with SecantusDB (the
# local MongoDB), boto3, pytest and Selenium.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libhiredis-dev libmongoc-dev libsqlite3-dev redis-server prometheus nginx-light pkg-config python3-venv curl openssl
  chromium chromium-driver)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1 && [ ! -x /opt/swift/usr/bin/swift ]; then
  echo "error: the Swift toolchain (6.2 or later) is not installed; see https://www.swift.org/install/linux/" >&2
  exit 1
fi

if [ ! -x .venv/bin/secantusd-py ] || [ ! -f .venv/.requirements-installed ] || ! cmp -s requirements-dev.txt .venv/.requirements-installed; then
  echo "==> preparing the Python virtualenv (.venv)"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -r requirements-dev.txt
  cp requirements-dev.txt .venv/.requirements-installed
fi
