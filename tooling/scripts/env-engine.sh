#!/bin/sh
# `make reproduce` without invoke: runs the env engine (tooling/src/lockstep/core/engine.py, standard
# library only) under the first Python 3.11+ it finds, so make and invoke share one implementation of
# every rule (env names, platforms, lock checks, the install plan, the safety of the env).
#
# Python, in this order: $LOCKSTEP_PYTHON; the tooling venv ($VENV, default .venv); python3, then
# python3.13 ... python3.11 on PATH (python3 first: each candidate costs a start-up, a pyenv shim
# of a version not installed 0.15 s); conda's own ($CONDA_PYTHON_EXE, or beside the conda/mamba
# on PATH: Miniforge's base).
# LOCKSTEP_PYTHON is the one LOCKSTEP_* variable read here (no Python runs yet); every one of
# them is declared, with its meaning and default, in lockstep.core.variables, the reference.
#
# A first run without a conda lock needs conda-lock and Poetry: the engine says so (exit 3), and
# the tooling venv is built from poetry.lock (hashes checked) to lock, pin and build through
# `invoke reproduce`. The engine's LOCKED=1 (--locked) refuses instead.
#
# usage: env-engine.sh reproduce|create|recover [engine options]
set -u
# The tooling folder (this script's parent) and the project around it.
tooling=$(cd "$(dirname "$0")/.." && pwd)
project=$(cd "$tooling/.." && pwd)
venv=${VENV:-$project/.venv}

is_new_enough() {
  [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1
}

find_python() {
  for candidate in "${LOCKSTEP_PYTHON:-}" "$venv/bin/python" "$(command -v python3)" \
      "$(command -v python3.13)" "$(command -v python3.12)" "$(command -v python3.11)" \
      "${CONDA_PYTHON_EXE:-}"; do
    if is_new_enough "$candidate"; then echo "$candidate"; return 0; fi
  done
  for frontend in conda mamba; do
    dir=$(dirname "$(command -v "$frontend" 2>/dev/null || echo /nonexistent/x)")
    for candidate in "$dir/python" "$dir/../bin/python"; do
      if is_new_enough "$candidate"; then echo "$candidate"; return 0; fi
    done
  done
  return 1
}

py=$(find_python) || {
  echo "error: no Python 3.11+ found (python3 on PATH is $(python3 --version 2>&1 || echo missing));" \
    "install Miniforge (its base Python is enough) or set LOCKSTEP_PYTHON=/path/to/python3.11+" >&2
  exit 1
}
PYTHONPATH="$tooling/src" "$py" -s -m lockstep.core.engine "$@" --project-dir "$project"
rc=$?
if [ "$rc" -ne 3 ] || [ "${1:-}" != reproduce ]; then exit "$rc"; fi
shift
sh "$tooling/scripts/bootstrap-venv.sh" "${PYTHON:-python3}" "$venv" || exit 1
exec "$venv/bin/python" -m invoke --search-root "$project" reproduce "$@"
