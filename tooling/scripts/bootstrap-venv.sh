#!/bin/sh
# Build the tooling venv (invoke, conda-lock, the linters and test runners) from
# tooling/poetry.lock, and Poetry's own venv (VENV/poetry, linked as VENV/bin/poetry) from
# tooling/poetry-cli/poetry.lock (conda-lock and Poetry 2.5 need different dulwich): exact
# versions, hashes checked, no resolver. Uses the same installer as reproduce (python -m lockstep.core.installer), so `make test` needs
# only python3 and make.
#
# Reused while VENV/.installed is newer than both locks and both pyproject.toml files (make's rule of the
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
  for input in "$here/poetry.lock" "$here/pyproject.toml" \
    "$here/poetry-cli/poetry.lock" "$here/poetry-cli/pyproject.toml"; do
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
install() { # PREFIX PROJECT_DIR
  PYTHONPATH="$here/src" "$venv/bin/python" -m lockstep.core.installer install \
    --prefix "$1" --poetry-lock "$2/poetry.lock" --pyproject "$2/pyproject.toml" --project-dir "$2"
}
install "$venv" "$here"
[ -x "$venv/poetry/bin/python" ] || "$python" -m venv "$venv/poetry"
install "$venv/poetry" "$here/poetry-cli"
ln -sf ../poetry/bin/poetry "$venv/bin/poetry"
touch "$stamp"
