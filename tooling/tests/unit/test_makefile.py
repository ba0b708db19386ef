"""Makefile and invoke agree: same names, help that cannot drift, one env name."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.paths import PROJECT, TOOLING

from lockstep.core.settings import load_settings

ROOT = PROJECT
LIFECYCLE = ["env-create", "lock", "poetry-init", "pin", "reproduce", "update", "verify-gpu"]
MAKEFILE = (ROOT / "Makefile").read_text()
# Targets that are not invoke tasks: help itself and reproduce, which must work without invoke.
NOT_TASKS = {"help", "reproduce"}


def _targets() -> dict[str, str]:
    found = re.findall(r"^\.PHONY: ([a-z-]+) +## (.+)$", MAKEFILE, flags=re.M)
    return dict(found)


def _recipe(target: str) -> list[str]:
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", MAKEFILE, flags=re.M)
    assert match, f"no recipe for {target}"
    return [line.strip() for line in match.group(1).splitlines()]


def _invoke_tasks() -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "--list", "--list-format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    listed = json.loads(done.stdout)["tasks"]
    assert all(t["help"] for t in listed), "every task needs a summary line"
    return [t["name"] for t in listed]


def test_make_help_lists_every_lifecycle_target() -> None:
    done = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    listed = [line.split()[0] for line in done.stdout.splitlines()]
    assert set(LIFECYCLE) <= set(listed)
    assert listed == list(_targets())


def test_default_goal_is_help() -> None:
    done = subprocess.run(
        ["make", "--no-print-directory"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0 and "reproduce" in done.stdout


def test_invoke_list_shows_the_seven_tasks_with_summaries() -> None:
    assert set(LIFECYCLE) <= set(_invoke_tasks())


def test_every_make_target_calls_the_task_of_the_same_name() -> None:
    tasks = set(_invoke_tasks())
    for target in set(_targets()) - NOT_TASKS:
        recipe = _recipe(target)
        assert len(recipe) == 1, f"{target}: one-line recipe"
        if target in tasks:
            assert recipe[0].startswith(f"$(INVOKE) {target}"), recipe
    assert tasks <= set(_targets()), f"tasks without a make target: {tasks - set(_targets())}"


def test_reproduce_needs_no_invoke() -> None:
    assert _recipe("reproduce") == [
        'sh tooling/scripts/env-engine.sh reproduce --name="$$ENV_NAME" --frontend="$$FRONTEND"'
        ' --variant="$$VARIANT" $(if $(LOCKED),--locked) $(if $(BUNDLE),--bundle="$$BUNDLE")'
    ]


def test_no_builtin_rules() -> None:
    # GNU make's built-in `%: %.sh` once turned `make reproduce` in scripts/ into a copy of
    # reproduce.sh and exit 0.
    database = subprocess.run(
        ["make", "--no-print-directory", "-p", "-n", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    assert "%: %.sh" not in database and "%.o: %.c" not in database
    in_subfolder = subprocess.run(
        ["make", "reproduce"], cwd=TOOLING / "scripts", capture_output=True, text=True
    )
    assert in_subfolder.returncode != 0
    assert not (TOOLING / "scripts" / "reproduce").exists()


# Targets that run nothing of the tooling venv: reproduce needs only a conda frontend and a
# Python (env-engine.sh bootstraps the venv itself when it must lock first).
NO_VENV = {"help", "reproduce"}


def _prerequisites(target: str) -> list[str]:
    found = re.search(rf"^{re.escape(target)}:(.*)$", MAKEFILE, flags=re.M)
    assert found, f"no rule for {target}"
    return found.group(1).split()


@pytest.mark.parametrize("target", sorted(set(_targets()) - NO_VENV))
def test_task_targets_bootstrap_the_tooling_first(target: str) -> None:
    # refresh-names once lacked it: `.venv/bin/python: not found` on a fresh clone.
    assert _prerequisites(target) == ["$(VENV)/.installed"]
    assert "INVOKE ?= $(VENV)/bin/python -m invoke" in MAKEFILE


@pytest.mark.parametrize("target", sorted(NO_VENV))
def test_targets_without_the_venv_use_nothing_of_it(target: str) -> None:
    assert _prerequisites(target) == []
    assert not any("$(INVOKE)" in line or "$(VENV)" in line for line in _recipe(target))


def test_every_recipe_passes_values_glued_to_their_option() -> None:
    # `--name "$$ENV_NAME"` with ENV_NAME=-n made argparse print its usage; `--name="$$ENV_NAME"`
    # hands any value to the one validator.
    recipes = "\n".join(line for line in MAKEFILE.splitlines() if line.startswith("\t"))
    assert not re.findall(r'--[a-z-]+ "\$\$', recipes)


def test_the_makefile_keeps_no_copy_of_the_env_name() -> None:
    # One home: env-name in [tool.lockstep]; an empty ENV_NAME reaches the tasks as "unset".
    assert re.search(r"^ENV_NAME \?=$", MAKEFILE, flags=re.M)
    assert load_settings(ROOT).env_name not in re.findall(r"^ENV_NAME.*$", MAKEFILE, flags=re.M)


def test_user_values_never_pasted_into_recipes() -> None:
    recipes = "\n".join(line for line in MAKEFILE.splitlines() if line.startswith("\t"))
    for variable in ("ENV_NAME", "FRONTEND", "CONDA_LOCK", "POETRY_LOCK"):
        assert f"$({variable})" not in recipes, f"{variable} must reach recipes via the environment"


def test_make_reproduce_refuses_an_injected_name(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    done = subprocess.run(
        ["make", "--no-print-directory", "reproduce", f"ENV_NAME=x'; touch {marker}; '"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "invalid env name" in done.stderr
    assert not marker.exists()


@pytest.mark.parametrize("name", ["-n", "--force", "--name=x", "--locked", "-h"])
def test_make_reproduce_refuses_a_name_spelled_as_an_option(name: str) -> None:
    done = subprocess.run(
        ["make", "--no-print-directory", "reproduce", f"ENV_NAME={name}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0, done.stderr
    assert done.stderr.splitlines()[0] == (
        f"error: invalid env name {name!r}: use letters, digits and _ . + - "
        "(no spaces, quotes or slashes, at most 64 characters, not 'base')"
    )
    assert "usage:" not in done.stderr


def test_invoke_dry_shows_commands_without_running(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    conda = bin_dir / "conda"
    conda.write_text("#!/bin/sh\necho should-not-run >&2\nexit 99\n")
    conda.chmod(0o755)
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "--dry", "lock"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    assert "conda-lock lock --kind explicit --file" in done.stdout
    assert f"--conda {conda}" in done.stdout
    assert "should-not-run" not in done.stderr
