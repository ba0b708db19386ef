"""A fake conda frontend for the engine's fault tests: a test double that fails like real conda.

Written as an executable into a temporary bin/ (``write_fake``). What it does as real conda 26 does:
- ``info --json`` gives ``envs_dirs`` and ``root_prefix``, and the listing ``env list --json``
  gives: ``envs`` and ``envs_details[prefix]["name"]`` (empty for a ``-p`` env outside the envs
  dirs); every folder with a conda-meta directly in an envs dir is listed, backups included. It
  writes the CONDA_OVERRIDE_CUDA it was run with to FAKE_ROOT/info-cuda-override.
- ``create --yes --prefix P`` deletes P before it does anything else (conda does, and a failed
  solve then leaves no env), then installs the explicit lock's packages one by one.
- ``create --dry-run --json`` solves nothing and answers; a spec named ``unsolvable`` fails.
Faults, from the environment (FAKE_ROOT holds the counters and the call log):
- FAKE_FAIL="env-list,info:1,create" fails those commands (``:N`` = only the first N times);
- FAKE_HANG="env-list" sleeps until killed;
- FAKE_GATE="create" blocks half-way through the install (a partial env exists) after writing
  FAKE_ROOT/gate.reached, until FAKE_ROOT/gate.release exists.
- FAKE_PIP=fail|gate: the env's ``python -m pip`` fails, or blocks like FAKE_GATE (pip.reached,
  pip.release); otherwise it records its arguments in FAKE_ROOT/pip-calls and installs nothing.
- FAKE_NO_DETAILS=1 answers without envs_details (conda 25, mamba).
- FAKE_INFO_NO_ENVS=1 answers ``info --json`` without the listing (a frontend that has none).
- FAKE_KIND=micromamba answers ``info --json`` as micromamba ("envs directories").
"""

from __future__ import annotations

import sys
from pathlib import Path

FAKE = r'''#!__PYTHON__
import json, os, shutil, sys, time
from pathlib import Path

root = Path(os.environ["FAKE_ROOT"])
args = sys.argv[1:]
with open(root / "calls.jsonl", "a") as log:
    log.write(json.dumps(args) + "\n")
envs_dir = Path(os.environ.get("FAKE_ENVS_DIR") or root / "conda root" / "envs")
conda_root = envs_dir.parent
command = "-".join(a for a in args[:2] if not a.startswith("-")) if args[:1] == ["env"] else args[0]

def counted(spec_var):
    for item in os.environ.get(spec_var, "").split(","):
        name, _, times = item.partition(":")
        if name != command:
            continue
        if not times:
            return True
        counter = root / f"count-{name}"
        seen = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(seen + 1))
        return seen < int(times)
    return False

if counted("FAKE_HANG"):
    time.sleep(3600)
if counted("FAKE_FAIL"):
    print(f"CondaError: fake {command} failure", file=sys.stderr)
    sys.exit(1)

def prefixes():
    found = [conda_root]
    if envs_dir.is_dir():
        found += sorted(p for p in envs_dir.iterdir() if (p / "conda-meta").is_dir())
    extra = root / "environments.txt"
    if extra.exists():
        found += [Path(line) for line in extra.read_text().splitlines() if line]
    return [p for p in found if (p / "conda-meta").is_dir() or p == conda_root]

# The env's python: the real interpreter, except that `-m pip` only records its arguments (or
# fails, or blocks, per FAKE_PIP), so no test ever installs into the interpreter's own env.
PYTHON_SHIM = """#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
  echo "$*" >> "$FAKE_ROOT/pip-calls"
  case "${FAKE_PIP:-}" in
    fail) echo "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES." >&2; exit 1 ;;
    gate) echo $$ > "$FAKE_ROOT/pip.reached"
          while [ ! -e "$FAKE_ROOT/pip.release" ]; do sleep 0.02; done ;;
  esac
  exit 0
fi
exec __PYTHON__ "$@"
"""

def env_listing():
    listed = prefixes()
    out = {"envs": [str(p) for p in listed]}
    if not os.environ.get("FAKE_NO_DETAILS"):
        def name(p):
            return "base" if p == conda_root else (p.name if p.parent == envs_dir else "")
        out["envs_details"] = {str(p): {"name": name(p), "base": p == conda_root} for p in listed}
    return out

if command == "info":
    (root / "info-cuda-override").write_text(os.environ.get("CONDA_OVERRIDE_CUDA", "<unset>"))
    if os.environ.get("FAKE_KIND") == "micromamba":
        info = {"envs directories": [str(envs_dir)], "base environment": str(conda_root)}
    else:
        info = {"envs_dirs": [str(envs_dir)], "root_prefix": str(conda_root)}
        if not os.environ.get("FAKE_INFO_NO_ENVS"):
            info.update(env_listing())
    print(json.dumps(info))
elif command == "env-list":
    print(json.dumps(env_listing()))
elif command == "create":
    prefix = Path(args[args.index("--prefix") + 1])
    if "--dry-run" in args:
        if "unsolvable" in args:
            print(json.dumps({"success": False, "exception_name": "PackagesNotFoundError",
                              "message": "PackagesNotFoundError: unsolvable is not available"}))
            sys.exit(1)
        print(json.dumps({"success": True, "dry_run": True, "actions": {"LINK": []}}))
        sys.exit(0)
    if prefix.exists():
        shutil.rmtree(prefix)  # real conda: --yes deletes the prefix first
    (prefix / "conda-meta").mkdir(parents=True)
    if "--file" in args:
        lock = Path(args[args.index("--file") + 1]).read_text()
        urls = [l for l in lock.splitlines() if l and not l.startswith(("#", "@"))]
    else:
        urls = [a for a in args[1:] if "=" in a and not a.startswith("-")]
    for number, url in enumerate(urls):
        if number == len(urls) // 2 and counted("FAKE_GATE"):
            (root / "gate.reached").write_text(str(os.getpid()))
            while not (root / "gate.release").exists():
                time.sleep(0.02)
        stem = url.split("#")[0].rsplit("/", 1)[-1].replace(".tar.bz2", "").replace(".conda", "")
        parts = stem.rsplit("-", 2) if stem.count("-") >= 2 else [stem.split("=")[0], "1", "0"]
        name, version, build = parts
        md5 = url.partition("#")[2]
        (prefix / "conda-meta" / f"{stem}.json").write_text(json.dumps(
            {"name": name, "version": version, "build": build, "url": url.split("#")[0], "md5": md5,
             "files": []}))
    if "FAIL_CREATE" in " ".join(urls):
        print("CondaHTTPError: HTTP 404 NOT FOUND", file=sys.stderr)
        sys.exit(1)
    (prefix / "bin").mkdir()
    python = prefix / "bin" / "python"
    python.write_text(PYTHON_SHIM)
    python.chmod(0o755)
    print(f"done: {prefix}")
else:
    print(f"fake conda: not implemented: {args}", file=sys.stderr)
    sys.exit(2)
'''


def write_fake(bin_dir: Path, name: str = "conda") -> Path:
    """The fake frontend as ``bin_dir/name``, run by this interpreter."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text(FAKE.replace("__PYTHON__", sys.executable))
    path.chmod(0o755)
    return path
