"""Settings of the tasks: built-in defaults < [tool.lockstep] in pyproject.toml < task arguments."""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from lockstep.core.errors import LockstepError
from lockstep.core.frontend import FRONTENDS, kind_of
from lockstep.core.fsutil import read_text

PYPROJECT = "pyproject.toml"
# The installer setting's values (lockstep.core.rattlerinstall.choose reads them).
INSTALLERS = ("auto", "rattler", "frontend")

# conda's own rule for env names, minus what breaks a path or a shell word.
_ENV_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$")
# exclude-newer as a duration: weeks, days, hours, in that order (conda's and pixi's spelling).
_DURATION_RE = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?$")
_EXCLUDE_NEWER_FIX = "use a duration like '7d', '2w' or '3d12h', or a date like '2026-04-01'"


@dataclass(frozen=True)
class Cooldown:
    """exclude-newer resolved at one moment: nothing published after ``cutoff`` is chosen, on
    the conda side (conda's exclude_newer) or the PyPI side (Poetry's solver.min-release-age)."""

    setting: str
    cutoff: datetime  # UTC

    @property
    def conda_value(self) -> str:
        """The cutoff as conda's exclude_newer reads it (an RFC 3339 timestamp)."""
        return self.cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")

    def poetry_days(self, now: datetime) -> int:
        """solver.min-release-age counts whole days back from Poetry's own now: rounded up, so
        Poetry's cutoff is never later than ours."""
        return max(1, math.ceil((now - self.cutoff) / timedelta(days=1)))

    def describe(self) -> str:
        return (
            f"exclude-newer = {self.setting!r}: nothing published after "
            f"{self.cutoff:%Y-%m-%d %H:%M} UTC (conda and PyPI sides)"
        )


def parse_exclude_newer(value: str, now: datetime) -> Cooldown:
    """A duration back from ``now`` or a date (a date-only value means "published on that day
    or before", as conda reads it); refused with the accepted spellings otherwise."""
    text = value.strip()
    duration = _DURATION_RE.match(text)
    if text and duration:
        weeks, days, hours = (int(g or 0) for g in duration.groups())
        span = timedelta(weeks=weeks, days=days, hours=hours)
        if span <= timedelta(0):
            raise LockstepError(f"exclude-newer {value!r} is no delay; {_EXCLUDE_NEWER_FIX}")
        return Cooldown(value, now - span)
    try:
        if "T" in text or " " in text:
            cutoff = datetime.fromisoformat(text.replace("Z", "+00:00"))
            cutoff = cutoff.replace(tzinfo=UTC) if cutoff.tzinfo is None else cutoff
        else:
            day = date.fromisoformat(text)
            cutoff = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    except ValueError:
        raise LockstepError(
            f"exclude-newer {value!r} is not understood; {_EXCLUDE_NEWER_FIX}"
        ) from None
    cutoff = cutoff.astimezone(UTC)
    if cutoff > now:
        raise LockstepError(
            f"exclude-newer {value!r} is in the future, so it excludes nothing; "
            f"{_EXCLUDE_NEWER_FIX}"
        )
    return Cooldown(value, cutoff)


@dataclass(frozen=True)
class Settings:
    """Every knob of the tasks, in one place."""

    env_name: str = "lockstep"
    platforms: tuple[str, ...] = ("linux-64",)
    environment_file: str = "environment.yml"
    virtual_packages_file: str = "virtual-packages.yml"
    lock_file_template: str = "conda-{platform}.lock"
    poetry_lock_file: str = "poetry.lock"
    # "auto" or one of FRONTENDS, or a path to one of them.
    frontend: str = "auto"
    # Who installs the conda lock: "rattler" (py-rattler, in-process speed), "frontend" (the
    # frontend's `create`), or "auto": rattler where py-rattler imports, else the frontend.
    installer: str = "auto"
    # conda name -> PyPI name overrides ("" = not a Python distribution).
    pypi_names: Mapping[str, str] = field(default_factory=dict)
    # Poetry dependency group that `pin` owns.
    pin_group: str = "conda"
    # conda packages that are pinned even when not named in environment.yml.
    pin_extra: tuple[str, ...] = ()
    # The CPU variant, derived from environment.yml: conda name -> its spec there ("" = dropped).
    # Empty: no CPU variant, one lock per platform.
    cpu_specs: Mapping[str, str] = field(default_factory=dict)
    # Virtual packages left out of the CPU solve (a CPU build must not need a driver).
    cpu_drop_virtual: tuple[str, ...] = ("__cuda",)
    cpu_lock_file_template: str = "conda-{platform}-cpu.lock"
    # Release-age cooldown of both solves ("" = none): a duration ("7d") or a date.
    exclude_newer: str = ""

    def cooldown(self, now: datetime | None = None) -> Cooldown | None:
        """exclude-newer resolved now (or at ``now``); None when not set."""
        if not self.exclude_newer:
            return None
        return parse_exclude_newer(self.exclude_newer, now or datetime.now(UTC))

    def lock_file(self, platform: str) -> str:
        """Name of the explicit lock of one platform."""
        return self.lock_file_template.format(platform=platform)

    def cpu_lock_file(self, platform: str) -> str:
        """Name of the CPU variant's explicit lock of one platform."""
        return self.cpu_lock_file_template.format(platform=platform)

    @property
    def has_cpu_variant(self) -> bool:
        return bool(self.cpu_specs)

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy where every override that is not None wins."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _toml_key(attribute: str) -> str:
    return attribute.replace("_", "-")


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a syntax error or another encoding is one line naming the file."""
    try:
        return tomllib.loads(read_text(path))
    except FileNotFoundError:
        raise LockstepError(f"{path}: file not found; run the task from the project root") from None
    except tomllib.TOMLDecodeError as exc:
        raise LockstepError(f"{path}: invalid TOML: {exc}; fix the syntax at that line") from None


def settings_from_table(table: Mapping[str, Any], source: str = PYPROJECT) -> Settings:
    """Build Settings from a [tool.lockstep] table, refusing unknown keys and wrong types."""
    defaults = Settings()
    known = {_toml_key(f.name): f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise LockstepError(
                f"{source}: unknown key [tool.lockstep] {key!r}; known keys: {', '.join(known)}"
            )
        attribute = known[key]
        default = getattr(defaults, attribute)
        if isinstance(default, tuple):
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise LockstepError(f"{source}: [tool.lockstep] {key} must be a list of strings")
            value = tuple(value)
        elif isinstance(default, Mapping):
            if not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
                raise LockstepError(f"{source}: [tool.lockstep.{key}] must map names to strings")
            value = dict(value)
        elif not isinstance(value, str):
            raise LockstepError(f"{source}: [tool.lockstep] {key} must be a string")
        values[attribute] = value
    settings = replace(defaults, **values)
    validate(settings, source)
    return settings


def validate(settings: Settings, source: str = PYPROJECT) -> None:
    """Refuse settings that would make a command wrong or unsafe."""
    check_env_name(settings.env_name)
    if "{platform}" not in settings.lock_file_template:
        raise LockstepError(
            f"{source}: lock-file-template {settings.lock_file_template!r} must contain "
            "{platform}, e.g. 'conda-{platform}.lock'"
        )
    for attribute in ("environment_file", "virtual_packages_file", "poetry_lock_file"):
        _check_inside_project(attribute, getattr(settings, attribute), source)
    if "{platform}" not in settings.cpu_lock_file_template:
        raise LockstepError(
            f"{source}: cpu-lock-file-template {settings.cpu_lock_file_template!r} must contain "
            "{platform}, e.g. 'conda-{platform}-cpu.lock'"
        )
    if settings.cpu_lock_file_template == settings.lock_file_template:
        raise LockstepError(
            f"{source}: cpu-lock-file-template equals lock-file-template; give the CPU lock its "
            "own name, e.g. 'conda-{platform}-cpu.lock'"
        )
    for platform in settings.platforms:
        _check_lock_file_name(settings, platform, source)
        _check_lock_file_name(settings, platform, source, cpu=True)
    if settings.installer not in INSTALLERS:
        raise LockstepError(
            f"{source}: installer {settings.installer!r} is not one of {', '.join(INSTALLERS)}"
        )
    if settings.exclude_newer:
        try:
            settings.cooldown()
        except LockstepError as exc:
            raise LockstepError(f"{source}: [tool.lockstep] {exc}") from None
    frontend = settings.frontend
    if frontend != "auto":
        try:
            kind_of(frontend)
        except LockstepError:
            raise LockstepError(
                f"frontend {frontend!r} is not one of auto, {', '.join(FRONTENDS)} "
                "(or a path to one)"
            ) from None


def _check_inside_project(attribute: str, value: str, source: str) -> None:
    """A file setting is a relative path that stays in the project: tasks read and write it."""
    path = PurePosixPath(value)
    if not value.strip() or path.is_absolute() or ".." in path.parts or "\\" in value:
        raise LockstepError(
            f"{source}: {_toml_key(attribute)} {value!r} points outside the project; use a path "
            f"relative to the project folder without '..', e.g. {getattr(Settings(), attribute)!r}"
        )


def _check_lock_file_name(
    settings: Settings, platform: str, source: str, cpu: bool = False
) -> None:
    """Each platform's lock is a file in the project folder (the Makefile and make reproduce
    look for it there), so the formatted template has no folder part."""
    template = settings.cpu_lock_file_template if cpu else settings.lock_file_template
    try:
        name = settings.cpu_lock_file(platform) if cpu else settings.lock_file(platform)
    except (KeyError, IndexError, ValueError):
        raise LockstepError(
            f"{source}: lock-file-template {template!r} has a placeholder other than {{platform}}; "
            "use e.g. 'conda-{platform}.lock'"
        ) from None
    if "/" in name or "\\" in name or name in {".", ".."}:
        raise LockstepError(
            f"{source}: lock-file-template {template!r} gives {name!r} for platform {platform!r}, "
            "which is not a file name in the project folder; use e.g. 'conda-{platform}.lock'"
        )


def check_env_name(name: str) -> str:
    """Return ``name`` if it is a safe conda env name, else raise with the rule."""
    if not _ENV_NAME_RE.match(name) or name in {"base", "root"}:
        raise LockstepError(
            f"invalid env name {name!r}: use letters, digits and _ . + - "
            "(no spaces, quotes or slashes, at most 64 characters, not 'base')"
        )
    return name


def load_settings(project_dir: Path = Path("."), **overrides: Any) -> Settings:
    """Settings of the project in ``project_dir``, with task arguments applied last."""
    pyproject = Path(project_dir) / PYPROJECT
    table: Mapping[str, Any] = {}
    if pyproject.exists():
        table = read_toml(pyproject).get("tool", {}).get("lockstep", {})
    settings = settings_from_table(table, str(pyproject)).with_overrides(**overrides)
    validate(settings, "arguments")
    return settings
