#!/usr/bin/env bash
# Install what the tests need, then run every check: lint, format, types, tests.
# This is the README's test command; .ci/run calls it on a clean clone.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need_apt+=(postgresql)
fi
command -v nats-server >/dev/null || need_apt+=(nats-server)
command -v rclone >/dev/null || need_apt+=(rclone)
command -v curl >/dev/null || need_apt+=(curl)
command -v chromium >/dev/null || need_apt+=(chromium)  # the web UI's browser tests
command -v litmus >/dev/null || need_apt+=(litmus)
command -v owncloudcmd >/dev/null || need_apt+=(owncloud-client-cmd)
command -v nextcloudcmd >/dev/null || need_apt+=(nextcloud-desktop-cmd)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tests need Debian packages: ${need_apt[*]} (run as root or install them)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e ".[test]"

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest -p no:cacheprovider "$@"
