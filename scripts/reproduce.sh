#!/bin/sh
# Recreate the env exactly from the lock files: conda's explicit lock (no solve), then
# poetry.lock through pip with hashes, minus what conda provides (python -m lockstep.pypi).
#
# Needs only a conda frontend (conda, mamba or micromamba): no invoke, no host Python. It is
# the engine of both `make reproduce` and `invoke reproduce`.
#
# Safety: an existing env of that name is moved aside, not deleted. It is deleted only once
# the new env is complete; on any failure the partial env is removed and the old one put back.
#
# usage: reproduce.sh FRONTEND ENV_NAME CONDA_LOCK POETRY_LOCK [--force]
set -eu

die() { echo "reproduce: $*" >&2; exit 1; }

[ $# -ge 4 ] || die "usage: reproduce.sh FRONTEND ENV_NAME CONDA_LOCK POETRY_LOCK [--force]"
frontend=$1 env_name=$2 conda_lock=$3 poetry_lock=$4 force=${5:-}
here=$(cd "$(dirname "$0")/.." && pwd)

case "$env_name" in
  ''|base|root|*[!A-Za-z0-9_.+-]*)
    die "invalid env name '$env_name': use letters, digits and _ . + - (not 'base')" ;;
esac
if [ -z "$frontend" ]; then
  for candidate in conda mamba micromamba; do
    if command -v "$candidate" >/dev/null 2>&1; then frontend=$candidate; break; fi
  done
  [ -n "$frontend" ] || die "no conda, mamba or micromamba on PATH; install Miniforge, or set FRONTEND=/path/to/conda"
fi
command -v "$frontend" >/dev/null 2>&1 || die "frontend '$frontend' not found; install it or set FRONTEND=conda|mamba|micromamba"
[ -f "$conda_lock" ] || die "$conda_lock not found; create it with 'invoke lock' where conda channels are reachable"
[ -f "$poetry_lock" ] || die "$poetry_lock not found; create it with 'poetry lock'"
grep -q '^@EXPLICIT' "$conda_lock" || die "$conda_lock is not an explicit lock; regenerate it with 'invoke lock'"

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) machine=linux-64 ;;
  Linux-aarch64) machine=linux-aarch64 ;;
  Linux-ppc64le) machine=linux-ppc64le ;;
  Darwin-arm64) machine=osx-arm64 ;;
  Darwin-x86_64) machine=osx-64 ;;
  *) machine=unknown ;;
esac
locked=$(sed -n 's/^# platform: *//p' "$conda_lock")
[ "$locked" = "$machine" ] || die "$conda_lock is for '$locked', this machine is '$machine'; use conda-$machine.lock (invoke lock --platform $machine)"

# Mirrors (README "Mirrors"): the lock's URLs are rewritten into a temporary copy, the lock itself
# is never edited. Only then is a host python3 needed (the rewrite is src/lockstep/mirrors.py).
mirrored=""
if [ -n "${LOCKSTEP_CONDA_MIRROR:-}${LOCKSTEP_CONDA_CHANNEL_MIRRORS:-}" ]; then
  command -v python3 >/dev/null 2>&1 || die "a conda mirror is set: rewriting $conda_lock needs python3 on PATH"
  mirrored=$(mktemp "${TMPDIR:-/tmp}/lockstep-mirror.XXXXXX")
  trap 'rm -f "$mirrored"' EXIT
  PYTHONPATH="$here/src" python3 -m lockstep.mirrors rewrite "$conda_lock" --output "$mirrored" \
    || die "could not rewrite $conda_lock for the mirror; nothing was changed"
fi
install_lock=${mirrored:-$conda_lock}

env_prefix() {
  "$frontend" env list | awk -v name="$1" '$1 == name { print $NF; exit }'
}

old=$(env_prefix "$env_name")
backup=""
if [ -n "$old" ] && [ -d "$old" ]; then
  if [ "$force" = "--force" ]; then
    echo "+ $frontend env remove --yes --name $env_name"
    "$frontend" env remove --yes --name "$env_name"
  else
    backup="$old.lockstep-backup"
    [ ! -e "$backup" ] || die "$backup exists from an interrupted run; put it back with: mv '$backup' '$old' (or delete it)"
    echo "reproduce: keeping the current '$env_name' at $backup until the new env is complete"
    mv "$old" "$backup"
  fi
fi

done_ok=""
new=""
cleanup() {
  [ -z "$mirrored" ] || rm -f "$mirrored"
  if [ -z "$done_ok" ]; then
    [ -n "$new" ] && [ -d "$new" ] && rm -rf "$new"
    if [ -n "$backup" ] && [ -d "$backup" ]; then
      rm -rf "$old"
      mv "$backup" "$old"
      echo "reproduce: failed; the previous '$env_name' is back at $old" >&2
    else
      echo "reproduce: failed; nothing was left behind" >&2
    fi
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "+ $frontend create --yes --name $env_name --file $install_lock"
"$frontend" create --yes --name "$env_name" --file "$install_lock"
new=$(env_prefix "$env_name")
[ -n "$new" ] && [ -x "$new/bin/python" ] || die "the env from $conda_lock has no bin/python; is python in environment.yml?"

export PYTHONNOUSERSITE=1
export PYTHONPATH="$here/src"
py="$new/bin/python"
echo "+ $py -m lockstep.pypi install --prefix $new --poetry-lock $poetry_lock"
"$py" -m lockstep.pypi install --prefix "$new" --poetry-lock "$poetry_lock" \
  --pyproject "${LOCKSTEP_PYPROJECT:-$here/pyproject.toml}" --project-dir "$here"
"$py" -m lockstep.envvars --prefix "$new" PYTHONNOUSERSITE=1

done_ok=1
[ -z "$backup" ] || rm -rf "$backup"
echo "reproduce: '$env_name' at $new matches $conda_lock and $poetry_lock"
