"""Where an env is: the frontend's own answers, read by the env's real name, failing closed.

conda, mamba 2 and micromamba 2 each answer two read-only queries as JSON: ``info --json`` (where
named envs go: ``envs_dirs`` for conda, ``envs directories`` for mamba/micromamba; the root prefix)
and ``env list --json`` (every known prefix; conda 26 adds ``envs_details[prefix]["name"]``).
conda's ``info --json`` holds ``envs`` (and, in conda 26, ``envs_details``) as well, so conda is
asked once: a start-up of 0.5 s, not two. That query runs with ``CONDA_OVERRIDE_CUDA`` set empty:
its virtual packages are not read here, and conda's CUDA detection (a child process loading
libcuda) costs 0.4 s of the 0.9 s otherwise. A
named env is a prefix directly inside an envs dir, named by its folder, or whatever name conda 26
gives it; a ``-p`` env elsewhere has no name even when its folder is called like one. A query that
fails, hangs or prints something unreadable stops the caller: an env that cannot be found for
certain is never replaced.

Standard library only: the reproduce engine runs it with any Python 3.11+.
"""

from __future__ import annotations

import json
import os
import platform as _platform
import subprocess
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from lockstep.core import commands, variables
from lockstep.core.errors import LockstepError
from lockstep.core.frontend import Frontend
from lockstep.core.fsutil import atomic_write_text, user_cache_dir

# Read-only queries (`env list`, `info`, `--version`) that take longer than this are called hung.
DEFAULT_QUERY_TIMEOUT = float(variables.QUERY_TIMEOUT.default)

MACHINE_PLATFORMS: Mapping[tuple[str, str], str] = {
    ("Linux", "x86_64"): "linux-64",
    ("Linux", "aarch64"): "linux-aarch64",
    ("Linux", "ppc64le"): "linux-ppc64le",
    ("Darwin", "arm64"): "osx-arm64",
    ("Darwin", "x86_64"): "osx-64",
    ("Windows", "AMD64"): "win-64",
}


def machine_platform() -> str:
    """This machine's conda platform (``linux-64``, ...), or ``unknown``."""
    return MACHINE_PLATFORMS.get((_platform.system(), _platform.machine()), "unknown")


def query_timeout(environ: Mapping[str, str] = os.environ) -> float:
    """Seconds a read-only query may take ($LOCKSTEP_QUERY_TIMEOUT, default 120)."""
    raw = environ.get(variables.QUERY_TIMEOUT.name, "")
    try:
        value = float(raw) if raw else DEFAULT_QUERY_TIMEOUT
    except ValueError:
        raise LockstepError(
            f"{variables.QUERY_TIMEOUT.name}={raw!r} is not a number of seconds"
        ) from None
    return value if value > 0 else DEFAULT_QUERY_TIMEOUT


def child_environ(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment of a frontend or env command: no PYTHONPATH of ours leaks into conda's
    own Python or the env's, and the user site stays off."""
    env = {k: v for k, v in environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    env["PYTHONNOUSERSITE"] = "1"
    return env


# What a listing query runs with: none of its answers about virtual packages is read.
LISTING_ENV = {"CONDA_OVERRIDE_CUDA": ""}


def run_query(
    command: Sequence[str], timeout: float | None = None, env: Mapping[str, str] | None = None
) -> str:
    """stdout of a read-only command; one-line errors for failure, a hang or a missing program.
    ``env``: variables set for this command on top of child_environ()."""
    shown = " ".join(command[1:3])
    limit = query_timeout() if timeout is None else timeout
    try:
        proc = subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            timeout=limit,
            env={**child_environ(), **(env or {})},
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise LockstepError(
            f"`{command[0]} {shown}` did not answer in {limit:g} s; the frontend hangs (a network "
            f"share or a lock?): fix it, or raise {variables.QUERY_TIMEOUT.name}; nothing was "
            "changed"
        ) from None
    except OSError as exc:
        raise LockstepError(
            f"cannot run {command[0]}: {exc.strerror}; nothing was changed"
        ) from None
    if proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise LockstepError(
            f"`{command[0]} {shown}` failed (exit {proc.returncode}"
            f"{': ' + detail[-1] if detail else ''}); the env cannot be found for certain, so "
            "nothing was changed"
        )
    return proc.stdout


def _json(text: str, what: str) -> dict:
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise LockstepError(
            f"`{what}` printed no JSON object; the env cannot be found for certain, so nothing "
            "was changed"
        )
    return data


def _paths(value: object, what: str) -> list[Path]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise LockstepError(f"`{what}` gave no list of paths; nothing was changed")
    return [Path(v) for v in value]


@dataclass(frozen=True)
class EnvListing:
    """What the frontend knows about envs."""

    envs_dirs: tuple[Path, ...]
    root_prefix: Path | None
    # name -> prefix, for named envs only
    named: Mapping[str, Path]

    def prefix_of(self, name: str) -> Path | None:
        """The prefix of the env called ``name``, if there is one."""
        return self.named.get(name)

    def new_prefix(self, name: str) -> Path:
        """Where ``create -n name`` puts a new env: the first envs dir."""
        if not self.envs_dirs:
            raise LockstepError(
                "the frontend reports no envs directory; set envs_dirs in .condarc; nothing was "
                "changed"
            )
        return self.envs_dirs[0] / name

    def target(self, name: str) -> Path:
        """The prefix the env ``name`` has, or will have."""
        return self.prefix_of(name) or self.new_prefix(name)


def parse_listing(info_text: str, env_list_text: str, fe: Frontend) -> EnvListing:
    """Combine ``info --json`` and ``env list --json`` into names and prefixes."""
    info = _json(info_text, f"{fe.kind} info --json")
    return _combine(info, _json(env_list_text, f"{fe.kind} env list --json"), fe, "env list --json")


def _combine(info: dict, listing: dict, fe: Frontend, listed_by: str) -> EnvListing:
    """Names and prefixes from the parsed answers; ``listing`` may be ``info`` itself."""
    dirs_key = "envs_dirs" if "envs_dirs" in info else "envs directories"
    envs_dirs = _paths(info.get(dirs_key, []), f"{fe.kind} info --json")
    root = info.get("root_prefix") or info.get("base environment")
    root_prefix = Path(root) if isinstance(root, str) and root else None
    prefixes = _paths(listing.get("envs", []), f"{fe.kind} {listed_by}")
    details = listing.get("envs_details")
    named: dict[str, Path] = {}
    for prefix in prefixes:
        name = _name_of(prefix, envs_dirs, root_prefix, details)
        if name and name not in named:
            named[name] = prefix
    return EnvListing(tuple(envs_dirs), root_prefix, named)


def _name_of(
    prefix: Path, envs_dirs: Sequence[Path], root: Path | None, details: object
) -> str | None:
    if isinstance(details, dict) and isinstance(details.get(str(prefix)), dict):
        name = details[str(prefix)].get("name")
        return name if isinstance(name, str) and name else None
    if root is not None and _same(prefix, root):
        return "base"
    if any(_same(prefix.parent, d) for d in envs_dirs):
        return prefix.name
    return None  # a -p env outside the envs dirs has no name, whatever its folder is called


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.normpath(a) == os.path.normpath(b)


Query = Callable[[Sequence[str]], str]


def _listing_query(command: Sequence[str]) -> str:
    return run_query(command, env=LISTING_ENV)


def list_envs(fe: Frontend, query: Query = _listing_query) -> EnvListing:
    """conda: ``info --json`` alone where it lists the envs (every conda that prints ``envs``),
    else ``env list --json`` after it; mamba and micromamba: both queries side by side (each
    costs a frontend start-up)."""
    if fe.kind == "conda":
        info = _json(query(commands.info(fe)), f"{fe.kind} info --json")
        if isinstance(info.get("envs"), list):
            return _combine(info, info, fe, "info --json")
        listing = _json(query(commands.env_list(fe)), f"{fe.kind} env list --json")
        return _combine(info, listing, fe, "env list --json")
    with ThreadPoolExecutor(max_workers=2) as pool:
        info_job = pool.submit(query, commands.info(fe))
        envs = pool.submit(query, commands.env_list(fe))
        return parse_listing(info_job.result(), envs.result(), fe)


# --------------------------------------------------------------------------- the last answer

# The prefix each frontend last gave for each env name. Only a hint: the engine reads the env at
# that prefix while the frontend answers (read-only work, 0.05 to 0.1 s at 150 packages), and
# uses what it read only where the answer is that same prefix. A stale or lost file costs time,
# never a wrong env.
PREFIXES_FILE = "env-prefixes.json"


def _prefixes_file(environ: Mapping[str, str] = os.environ) -> Path:
    return user_cache_dir(environ) / PREFIXES_FILE


def _known_prefixes(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str) and v}


def _key(fe: Frontend, name: str) -> str:
    return f"{fe.path}\n{name}"


def remembered(fe: Frontend, name: str, path: Path | None = None) -> Path | None:
    """The prefix ``fe`` gave for ``name`` last time, if any run remembered one."""
    value = _known_prefixes(path or _prefixes_file()).get(_key(fe, name))
    return Path(value) if value else None


def remember(fe: Frontend, name: str, prefix: Path, path: Path | None = None) -> None:
    """Keep ``fe``'s answer for ``name``; written only when it changed, failures ignored."""
    path = path or _prefixes_file()
    known = _known_prefixes(path)
    if known.get(_key(fe, name)) == str(prefix):
        return
    known[_key(fe, name)] = str(prefix)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(known, indent=1, sort_keys=True) + "\n")
    except OSError:
        pass
