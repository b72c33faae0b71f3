#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: Debian packages, PostgreSQL running (tests),
# and the project's virtualenv. Re-running does only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

want_postgres=0
[[ "${1:-}" == "--with-postgres" ]] && want_postgres=1

# Debian packages: only call apt-get when something is missing.
lists=(deps/apt.txt)
((want_postgres)) && lists+=(deps/apt-test.txt)
mapfile -t pkgs < <(cat "${lists[@]}" | grep -Ev '^\s*(#|$)')
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
fi

if ((want_postgres)) && command -v pg_ctlcluster >/dev/null; then
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        echo "setup: starting PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    fi
fi

# Tests only: a real OpenID provider (oidc-provider on Node) for the OIDC login test,
# installed from the npm registry at the versions package-lock.json pins.
if ((want_postgres)); then
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        echo "setup: installing Node.js and npm"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends nodejs npm </dev/null
    fi
    oidc=tests/integration/aaa/oidc
    oidc_stamp=$oidc/node_modules/.installed-$(sha256sum $oidc/package-lock.json | cut -c1-16)
    if [[ ! -f $oidc_stamp ]]; then
        echo "setup: installing the test OpenID provider (npm ci)"
        npm ci --prefix $oidc --no-audit --no-fund --loglevel=error </dev/null
        touch "$oidc_stamp"
    fi
fi

# Python virtualenv; reinstall only when pyproject.toml changed.
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "setup: Python 3.11+ required, found $("$PY" --version)" >&2; exit 1; }
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [[ ! -f $stamp ]]; then
    echo "setup: installing Python packages into .venv"
    .venv/bin/pip install -q --upgrade pip </dev/null
    .venv/bin/pip install -q -e '.[dev,libvirt]' </dev/null
    rm -f .venv/.installed-*
    touch "$stamp"
fi
