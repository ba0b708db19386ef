#!/bin/sh
# Build the tooling venv (invoke, conda-lock, Poetry, the linters and test runners) from
# tooling/poetry.lock: exact versions, hashes checked, no
# resolver. Uses the same installer as reproduce (python -m lockstep.core.installer), so `make test` needs
# only python3 and make.
#
# Reused while VENV/.installed is newer than poetry.lock and pyproject.toml (make's rule of the
# same name, and the first run of `make reproduce`, both call this script).
#
# usage: bootstrap-venv.sh PYTHON VENV
set -eu
python=${1:-python3}
venv=${2:-.venv}
here=$(cd "$(dirname "$0")/.." && pwd)
stamp="$venv/.installed"
fresh() {
  [ -f "$stamp" ] || return 1
  for input in "$here/poetry.lock" "$here/pyproject.toml"; do
    [ ! -e "$input" ] || [ "$stamp" -nt "$input" ] || return 1
  done
}
fresh && exit 0
[ -f "$here/poetry.lock" ] || {
  echo "bootstrap: $here/poetry.lock not found: the tooling is installed from it; restore it (git checkout tooling/poetry.lock)" >&2
  exit 1
}

command -v "$python" >/dev/null 2>&1 || { echo "bootstrap: '$python' not found; install Python 3.11" >&2; exit 1; }
"$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
  echo "bootstrap: $python is not Python 3.11 (pyproject requires >=3.11,<3.12); set PYTHON=python3.11" >&2
  exit 1
}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
PYTHONPATH="$here/src" "$venv/bin/python" -m lockstep.core.installer install \
  --prefix "$venv" --poetry-lock "$here/poetry.lock" --pyproject "$here/pyproject.toml" \
  --project-dir "$here"
touch "$stamp"
