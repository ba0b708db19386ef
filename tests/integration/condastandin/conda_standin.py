"""TEST DOUBLE of the conda / mamba command line. It is not conda.

No conda can be installed where these tests run, yet conda-lock and the project's tasks shell
out to one. This module answers the small subset of the CLI they use, with py-rattler's real
solver and installer behind it, so solves and installs against a local channel are real while
the command line itself is simulated. Anything outside that subset exits 2 and names what is
not implemented, so a test never passes on a silently ignored flag.

Environment:
    LOCKSTEP_STANDIN_ROOT   required; the "root prefix": envs under ROOT/envs, cache ROOT/pkgs.
    CONDA_SUBDIR            target platform of solves (conda-lock sets it); default: host.
    CONDA_PKGS_DIRS         reported by `info --json` (conda-lock sets it), as conda does.
    CONDA_CHANNELS          comma-separated channels used when no -c is given (as conda reads it).
    CONDA_OVERRIDE_<NAME>   virtual packages: "" removes one, a version overrides detection.
    LOCKSTEP_STANDIN_MAMBA_VERSION   what `mamba --version` prints (default 2.5.0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import rattler
import yaml
from rattler.explicit_environment import ExplicitEnvironmentSpec

CONDA_VERSION = "26.1.0"
MAMBA_VERSION = "2.5.0"  # below 2.6, whose mamba path conda-lock cannot use (issue 906)
ROOT_VAR = "LOCKSTEP_STANDIN_ROOT"


class StandinError(Exception):
    """A conda-like failure: exit 1, JSON error on stdout under --json."""

    def __init__(self, exception_name: str, message: str) -> None:
        super().__init__(message)
        self.exception_name = exception_name


class NotImplementedInStandin(Exception):
    """Outside the implemented subset: exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise NotImplementedInStandin(f"{self.prog}: {message}")


# --- locations ----------------------------------------------------------------------------


def root_prefix() -> Path:
    root = os.environ.get(ROOT_VAR)
    if not root:
        raise NotImplementedInStandin(f"{ROOT_VAR} is not set; the stand-in needs its own root")
    # conda always has a base env; an empty conda-meta makes the root one.
    (Path(root) / "conda-meta").mkdir(parents=True, exist_ok=True)
    return Path(root)


def envs_dir() -> Path:
    return root_prefix() / "envs"


def pkgs_dir() -> Path:
    return root_prefix() / "pkgs"


def subdir() -> str:
    return os.environ.get("CONDA_SUBDIR") or str(rattler.Platform.current())


def target_prefix(args: argparse.Namespace) -> Path:
    """-p wins, then -n (base is the root prefix); an activated env is never assumed."""
    if getattr(args, "prefix", None):
        return Path(args.prefix).absolute()
    name = getattr(args, "name", None)
    if not name:
        raise NotImplementedInStandin("the stand-in needs -n NAME or -p PREFIX")
    return root_prefix() if name == "base" else envs_dir() / name


def _registry() -> Path:
    # conda keeps envs created with -p outside envs_dirs in ~/.conda/environments.txt.
    return root_prefix() / "environments.txt"


def list_envs() -> list[Path]:
    found = [root_prefix()]
    if envs_dir().is_dir():
        found += sorted(p for p in envs_dir().iterdir() if (p / "conda-meta").is_dir())
    if _registry().is_file():
        found += [Path(line) for line in _registry().read_text().splitlines() if line]
    unique = dict.fromkeys(p for p in found if (p / "conda-meta").is_dir())
    return list(unique)


def env_name(prefix: Path) -> str:
    if prefix == root_prefix():
        return "base"
    return prefix.name if prefix.parent == envs_dir() else ""


def _require_env(prefix: Path) -> None:
    if not (prefix / "conda-meta").is_dir():
        raise StandinError("EnvironmentLocationNotFound", f"Not a conda environment: {prefix}")


# --- solving and installing ---------------------------------------------------------------


def virtual_packages() -> list[rattler.GenericVirtualPackage]:
    """Host detection with conda's overrides.

    conda-lock sets CONDA_OVERRIDE_<NAME>="" for every virtual package of its spec and passes
    the spec's packages as a fake channel; dropping those here lets the channel's records stand
    in for the host, which is the outcome conda-lock asks conda for.
    """
    detected = rattler.VirtualPackage.detect(rattler.VirtualPackageOverrides.from_env())
    generic = [vp.into_generic() for vp in detected]
    cleared = {k for k, v in os.environ.items() if k.startswith("CONDA_OVERRIDE_") and v == ""}
    return [
        vp
        for vp in generic
        if f"CONDA_OVERRIDE_{vp.name.normalized.lstrip('_').upper()}" not in cleared
    ]


def _gateway() -> rattler.Gateway:
    return rattler.Gateway(cache_dir=pkgs_dir() / "cache")


def channels_from(args: argparse.Namespace, extra: Sequence[str] = ()) -> list[str]:
    given = [*(getattr(args, "channel", None) or []), *extra]
    if not given and not getattr(args, "override_channels", False):
        given = [c for c in os.environ.get("CONDA_CHANNELS", "").split(",") if c]
    # `nodefaults` is conda's token for "none of the default channels", not a channel.
    given = [c for c in given if c != "nodefaults"]
    if not given:
        raise NotImplementedInStandin("no channel: the stand-in has no defaults; pass -c")
    return given


def solve(channels: Sequence[str], specs: Sequence[str]) -> list[rattler.RepoDataRecord]:
    try:
        return asyncio.run(
            rattler.solve(
                list(channels),
                list(specs),
                gateway=_gateway(),
                platforms=[subdir(), "noarch"],
                virtual_packages=virtual_packages(),
            )
        )
    except Exception as exc:  # rattler raises SolverError, channel errors, ...
        raise StandinError("UnsatisfiableError", str(exc)) from exc


def _split_url(url: str) -> tuple[str, str, str]:
    """channel URL, subdir and file name of a package URL."""
    base, sub, filename = url.rsplit("/", 2)
    return base, sub, filename


def _package_name(filename: str) -> str:
    return filename.removesuffix(".tar.bz2").removesuffix(".conda").rsplit("-", 2)[0]


def explicit_records(lock: Path) -> list[rattler.RepoDataRecord]:
    """Records for the url#md5 lines of an explicit lock, read from each channel's repodata.

    conda reads the metadata from the downloaded archive; the channel's repodata holds the same
    metadata, and the md5 in the lock is checked against it as conda checks the download.
    """
    spec = ExplicitEnvironmentSpec.from_path(lock)
    records = []
    for entry in spec.packages:
        url, _, md5 = entry.url.partition("#")
        base, sub, filename = _split_url(url)
        found = asyncio.run(
            _gateway().query([base], [sub], [_package_name(filename)], recursive=False)
        )
        matches = [r for group in found for r in group if r.url == url]
        if not matches:
            raise StandinError("PackagesNotFoundError", f"not in its channel: {url}")
        if md5 and matches[0].md5 is not None and matches[0].md5.hex() != md5:
            raise StandinError("ChecksumMismatchError", f"md5 mismatch for {url}")
        records.append(matches[0])
    return records


def installed_records(prefix: Path) -> list[rattler.PrefixRecord]:
    meta = prefix / "conda-meta"
    return [rattler.PrefixRecord.from_path(p) for p in sorted(meta.glob("*.json"))]


def install(records: Sequence[rattler.RepoDataRecord], prefix: Path) -> None:
    real = [r for r in records if not r.name.normalized.startswith("__")]
    asyncio.run(rattler.install(real, prefix, cache_dir=pkgs_dir(), show_progress=False))
    (prefix / "conda-meta").mkdir(parents=True, exist_ok=True)
    if prefix.parent != envs_dir() and prefix != root_prefix():
        with _registry().open("a") as registry:
            registry.write(f"{prefix}\n")


def _fresh_prefix(prefix: Path, yes: bool) -> None:
    """conda create --yes deletes an existing env first; without --yes it would prompt."""
    if prefix.exists():
        if not yes:
            raise StandinError("CondaValueError", f"prefix already exists: {prefix} (use --yes)")
        shutil.rmtree(prefix)


def is_explicit(path: Path) -> bool:
    return any(line.strip() == "@EXPLICIT" for line in path.read_text().splitlines())


def _file_specs(files: Sequence[str]) -> list[str]:
    lines = [line.strip() for f in files for line in Path(f).read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


# --- output -------------------------------------------------------------------------------


def _record_dict(record: rattler.RepoDataRecord) -> dict[str, Any]:
    return json.loads(record.to_json())


def _link_entry(record: rattler.RepoDataRecord) -> dict[str, Any]:
    """One entry of `conda list --json` (and of a dry run's LINK actions)."""
    base_url = record.channel.rstrip("/") if record.channel else ""
    return {
        "base_url": base_url,
        "build_number": record.build_number,
        "build_string": str(record.build),
        "channel": base_url.rsplit("/", 1)[-1],
        "dist_name": f"{record.name.normalized}-{record.version}-{record.build}",
        "name": record.name.normalized,
        "platform": record.subdir,
        "version": str(record.version),
    }


def _pypi_base_url() -> str:
    """What conda lists as the base_url of pip-installed packages, computed, not written down."""
    from pip._internal.models.index import PyPI

    return PyPI.url


def pip_entries(prefix: Path) -> list[dict[str, Any]]:
    """Python distributions that no conda package owns, listed as conda lists them (pypi)."""
    owned = {f for rec in installed_records(prefix) for f in map(str, rec.files)}
    entries = []
    for meta in sorted(prefix.glob("lib/python*/site-packages/*.dist-info/METADATA")):
        if str(meta.relative_to(prefix)) in owned:
            continue
        fields = dict(line.split(": ", 1) for line in meta.read_text().splitlines() if ": " in line)
        name = fields.get("Name", "").lower()
        entries.append(
            {
                "base_url": _pypi_base_url(),
                "build_number": 0,
                "build_string": "pypi_0",
                "channel": "pypi",
                "dist_name": f"{name}-{fields.get('Version')}-pypi_0",
                "name": name,
                "platform": "pypi",
                "version": fields.get("Version"),
            }
        )
    return entries


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def _read_state(prefix: Path) -> dict[str, Any]:
    state = prefix / "conda-meta" / "state"
    return json.loads(state.read_text()) if state.is_file() else {}


def _write_state(prefix: Path, state: dict[str, Any]) -> None:
    (prefix / "conda-meta" / "state").write_text(json.dumps(state, indent=4) + "\n")


# --- commands -----------------------------------------------------------------------------


def info_json() -> dict[str, Any]:
    vpkgs = [
        [vp.name.normalized, str(vp.version), str(vp.build_string)] for vp in virtual_packages()
    ]
    pkgs = [p for p in os.environ.get("CONDA_PKGS_DIRS", "").split(",") if p]
    return {
        "active_prefix": os.environ.get("CONDA_PREFIX"),
        "channels": [c for c in os.environ.get("CONDA_CHANNELS", "").split(",") if c],
        "conda_version": CONDA_VERSION,
        "default_prefix": str(root_prefix()),
        "envs": [str(p) for p in list_envs()],
        "envs_dirs": [str(envs_dir())],
        "pkgs_dirs": pkgs or [str(pkgs_dir())],
        "platform": subdir(),
        "python_version": ".".join(map(str, sys.version_info[:3])),
        "root_prefix": str(root_prefix()),
        "virtual_pkgs": vpkgs,
    }


def print_env_list(as_json: bool) -> None:
    envs = list_envs()
    if as_json:
        _print_json({"envs": [str(p) for p in envs]})
        return
    active = os.environ.get("CONDA_PREFIX")
    print("# conda environments:\n#")
    for prefix in envs:
        mark = "*" if active and Path(active) == prefix else " "
        print(f"{env_name(prefix):<25}{mark}  {prefix}")


def cmd_info(args: argparse.Namespace) -> None:
    if args.envs and not args.json:
        print_env_list(as_json=False)
    elif args.json:
        _print_json(info_json())
    else:
        for key, value in info_json().items():
            print(f"{key:>20} : {value}")


def cmd_create(args: argparse.Namespace) -> None:
    prefix = target_prefix(args)
    explicit = [f for f in args.file if is_explicit(Path(f))]
    if explicit and (args.specs or len(explicit) < len(args.file)):
        raise NotImplementedInStandin("an explicit --file cannot be mixed with specs")
    if explicit:
        records = [r for f in explicit for r in explicit_records(Path(f))]
    else:
        records = solve(channels_from(args), [*_file_specs(args.file), *args.specs])
    if args.dry_run:
        actions = {
            "FETCH": [_record_dict(r) for r in records],
            "LINK": [_link_entry(r) for r in records],
            "PREFIX": str(prefix),
        }
        _print_json({"actions": actions, "dry_run": True, "prefix": str(prefix), "success": True})
        return
    _fresh_prefix(prefix, args.yes)
    install(records, prefix)
    _report_done(args, prefix)


def _report_done(args: argparse.Namespace, prefix: Path) -> None:
    if getattr(args, "json", False):
        _print_json({"prefix": str(prefix), "success": True})
    else:
        print(f"done: {prefix}")


def cmd_install(args: argparse.Namespace) -> None:
    prefix = target_prefix(args)
    _require_env(prefix)
    if args.specs or not args.file or not all(is_explicit(Path(f)) for f in args.file):
        raise NotImplementedInStandin("install supports only --file <explicit lock>")
    new = [r for f in args.file for r in explicit_records(Path(f))]
    # conda install --file adds and replaces, it never removes.
    existing = installed_records(prefix)
    by_name: dict[str, rattler.RepoDataRecord] = {r.name.normalized: r for r in existing}
    by_name.update({r.name.normalized: r for r in new})
    install(list(by_name.values()), prefix)
    _report_done(args, prefix)


def cmd_env_create(args: argparse.Namespace) -> None:
    spec = yaml.safe_load(Path(args.file).read_text()) or {}
    for key in set(spec) - {"name", "channels", "dependencies", "variables", "prefix"}:
        print(f"EnvironmentSectionNotValid: ignoring unknown key {key!r}", file=sys.stderr)
    deps = spec.get("dependencies") or []
    if any(not isinstance(d, str) for d in deps):
        raise NotImplementedInStandin("pip: sections of environment.yml are not implemented")
    args.name = args.name or (None if args.prefix else spec.get("name"))
    prefix = target_prefix(args)
    records = solve(channels_from(args, spec.get("channels") or []), deps)
    # Since conda 26.7, env create replaces an existing env of the same name without asking.
    _fresh_prefix(prefix, yes=True)
    install(records, prefix)
    if spec.get("variables"):
        _write_state(prefix, {"env_vars": {k: str(v) for k, v in spec["variables"].items()}})
    _report_done(args, prefix)


def cmd_list(args: argparse.Namespace) -> None:
    prefix = target_prefix(args)
    _require_env(prefix)
    records = sorted(installed_records(prefix), key=lambda r: r.name.normalized)
    if args.explicit:
        print(f"# platform: {subdir()}\n@EXPLICIT")
        for r in records:
            print(f"{r.url}#{r.md5.hex()}" if args.md5 and r.md5 else r.url)
        return
    entries = [_link_entry(r) for r in records]
    if not args.no_pip:
        entries = sorted(entries + pip_entries(prefix), key=lambda e: e["name"])
    if args.json:
        _print_json(entries)
        return
    print(f"# packages in environment at {prefix}:\n#")
    for e in entries:
        print(f"{e['name']:<26}{e['version']:<26}{e['build_string']:>16}  {e['channel']}")


def cmd_remove(args: argparse.Namespace) -> None:
    if not getattr(args, "all", True) or getattr(args, "specs", None):
        raise NotImplementedInStandin("remove supports only --all (whole environment)")
    prefix = target_prefix(args)
    _require_env(prefix)
    if prefix == root_prefix():
        raise StandinError("CondaEnvironmentError", "cannot remove the base environment")
    shutil.rmtree(prefix)
    print(f"Removed {prefix}")


def cmd_run(args: argparse.Namespace) -> int:
    prefix = target_prefix(args)
    _require_env(prefix)
    if not args.cmd:
        raise NotImplementedInStandin("run needs a command")
    env = dict(os.environ)
    env.update(_read_state(prefix).get("env_vars", {}))
    env["PATH"] = os.pathsep.join([str(prefix / "bin"), env.get("PATH", "")])
    env["CONDA_PREFIX"] = str(prefix)
    # conda names a -p env by its path here.
    env["CONDA_DEFAULT_ENV"] = args.name if args.name and not args.prefix else str(prefix)
    env["CONDA_SHLVL"] = "1"
    exe = shutil.which(args.cmd[0], path=env["PATH"])
    if exe is None:
        print(f"conda run: command not found: {args.cmd[0]}", file=sys.stderr)
        return 127
    return subprocess.run([exe, *args.cmd[1:]], env=env, cwd=args.cwd).returncode


def cmd_env_vars(args: argparse.Namespace) -> None:
    prefix = target_prefix(args)
    _require_env(prefix)
    state = _read_state(prefix)
    env_vars: dict[str, str] = state.setdefault("env_vars", {})
    if args.vars_command == "list":
        if args.json:
            _print_json(env_vars)
        for key, value in env_vars.items():
            if not args.json:
                print(f"{key} = {value}")
        return
    for item in args.items:
        if args.vars_command == "set":
            key, sep, value = item.partition("=")
            if not sep:
                raise StandinError("CondaValueError", f"expected KEY=VALUE, got {item!r}")
            env_vars[key] = value
        else:
            env_vars.pop(item, None)
    _write_state(prefix, state)
    print("To make your changes take effect please reactivate your environment")


# --- parser -------------------------------------------------------------------------------


def _target(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("-n", "--name")
    group.add_argument("-p", "--prefix")


def _common(p: argparse.ArgumentParser, *, yes: bool = True, json_flag: bool = True) -> None:
    _target(p)
    if yes:
        p.add_argument("-y", "--yes", action="store_true")
    if json_flag:
        p.add_argument("--json", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")


def _solve_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--channel", action="append")
    p.add_argument("--override-channels", action="store_true")
    p.add_argument("--file", action="append", default=[])
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("specs", nargs="*")


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="Test double of the conda CLI (py-rattler).")
    parser.add_argument("--version", action="store_true")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    info = sub.add_parser("info")
    info.add_argument("--json", action="store_true")
    info.add_argument("-e", "--envs", action="store_true")
    for name in ("create", "install"):
        p = sub.add_parser(name)
        _common(p)
        _solve_flags(p)
    lst = sub.add_parser("list")
    _common(lst, yes=False)
    lst.add_argument("--no-pip", action="store_true")
    lst.add_argument("--explicit", action="store_true")
    lst.add_argument("--md5", action="store_true")
    rm = sub.add_parser("remove", aliases=["uninstall"])
    _common(rm)
    rm.add_argument("--all", action="store_true")
    rm.add_argument("specs", nargs="*")
    run = sub.add_parser("run")
    _target(run)
    run.add_argument("--no-capture-output", "--live-stream", action="store_true")
    run.add_argument("--cwd")
    run.add_argument("cmd", nargs=argparse.REMAINDER)

    env = sub.add_parser("env").add_subparsers(dest="env_command", parser_class=_Parser)
    env.add_parser("list").add_argument("--json", action="store_true")
    env_create = env.add_parser("create")
    _common(env_create)
    env_create.add_argument("-f", "--file", default="environment.yml")
    env_create.add_argument("-c", "--channel", action="append")
    _common(env.add_parser("remove"))
    config = env.add_parser("config").add_subparsers(dest="config_command", parser_class=_Parser)
    vars_ = config.add_parser("vars").add_subparsers(dest="vars_command", parser_class=_Parser)
    for name in ("set", "unset", "list"):
        p = vars_.add_parser(name)
        _common(p, yes=False)
        if name != "list":
            p.add_argument("items", nargs="+")
    return parser


def dispatch(args: argparse.Namespace, prog: str) -> int:
    if args.version:
        mamba = os.environ.get("LOCKSTEP_STANDIN_MAMBA_VERSION", MAMBA_VERSION)
        # mamba 2 prints the bare version, like micromamba.
        print(mamba if prog == "mamba" else f"conda {CONDA_VERSION}")
        return 0
    command = args.command
    if command == "env":
        command = f"env {args.env_command or ''}".strip()
        if command == "env config":
            command = f"env config {args.config_command or ''}".strip()
    handlers = {
        "info": cmd_info,
        "create": cmd_create,
        "install": cmd_install,
        "list": cmd_list,
        "remove": cmd_remove,
        "uninstall": cmd_remove,
        "env create": cmd_env_create,
        "env remove": cmd_remove,
        "env config vars": cmd_env_vars,
        "env list": lambda a: print_env_list(a.json),
    }
    if command == "run":
        return cmd_run(args)
    if command not in handlers:
        raise NotImplementedInStandin(f"command not implemented: {command or '(none)'}")
    handlers[command](args)
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "conda") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    try:
        return dispatch(build_parser(prog).parse_args(argv), prog)
    except NotImplementedInStandin as exc:
        print(f"{prog} (test stand-in): not implemented: {exc}", file=sys.stderr)
        return 2
    except StandinError as exc:
        if as_json:
            _print_json(
                {
                    "error": f"{exc.exception_name}: {exc}",
                    "exception_name": exc.exception_name,
                    "message": str(exc),
                    "success": False,
                }
            )
        print(f"{exc.exception_name}: {exc}", file=sys.stderr)
        return 1


def exit_now(code: int) -> NoReturn:
    """Exit without interpreter finalization.

    rattler's native worker threads can still be winding down at exit; finalizing Python under
    them segfaults now and then (seen under load), after the work is done. Skipping
    finalization is safe here: output is flushed and every file is already closed.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def write_executables(bin_dir: Path, names: Sequence[str] = ("conda", "mamba")) -> list[Path]:
    """Write `conda`/`mamba` wrapper scripts into bin_dir (put it first on PATH)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).resolve().parent
    written = []
    for name in names:
        script = bin_dir / name
        script.write_text(
            f"#!{sys.executable}\n"
            f'"""{name}: test stand-in of the CLI (see conda_standin.py), not the real one."""\n'
            "import sys\n"
            f"sys.path.insert(0, {str(here)!r})\n"
            "from conda_standin import exit_now, main\n"
            f"exit_now(main(prog={name!r}))\n"
        )
        script.chmod(0o755)
        written.append(script)
    return written


if __name__ == "__main__":
    exit_now(main(prog=Path(sys.argv[0]).name))
