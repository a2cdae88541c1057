#!/usr/bin/env bash
# Installs what the exporter, its tests and the demo need, and nothing twice:
# Debian packages (when root and missing), the Python virtual environment, and
# the npm packages of the dashboard schema check (dashboards/schema) and of the
# stack's TimescaleDB (stack/pglite: PGlite with TimescaleDB, served by Node).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
DEBIAN_PACKAGES=(
    redis-server postgresql postgresql-client prometheus prometheus-alertmanager
    jsonnet pgbackrest prometheus-redis-exporter prometheus-postgres-exporter
    g++ openssl docker-compose pgbouncer
)

missing=()
if command -v dpkg-query >/dev/null; then
    for pkg in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    # npm (and node) for the dashboard schema check and the stack's TimescaleDB;
    # a Node.js installed by other means brings its own npm, and then nothing is
    # installed.
    command -v npm >/dev/null || missing+=(nodejs npm)
fi
if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "setup: missing Debian packages (run as root or install them): ${missing[*]}" >&2
        exit 1
    fi
fi

stamp="$VENV/.setup-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "setup: preparing the Python environment in $VENV"
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip
    "$VENV/bin/pip" install -q --disable-pip-version-check -e '.[dev]'
    rm -f "$VENV"/.setup-*
    touch "$stamp"
fi

npm_ci() { # DIR WHAT: the lock file's packages, once per lock file
    local stamp
    stamp="$1/node_modules/.setup-$(sha256sum "$1/package-lock.json" | cut -c1-16)"
    if [ ! -f "$stamp" ]; then
        echo "setup: installing the npm packages of $2 in $1"
        (cd "$1" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
        touch "$stamp"
    fi
}
npm_ci dashboards/schema "the dashboard schema check"
npm_ci stack/pglite "the stack's TimescaleDB (PGlite)"
