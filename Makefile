# Lockstep lifecycle. `make` lists the targets. Each lifecycle target calls the invoke task of the
# same name through the tooling venv (.venv, built once from tooling/poetry.lock with hashes);
# reproduce needs only a conda frontend, a Python 3.11+ and the lock files
# (tooling/scripts/env-engine.sh). tooling-test, lint and tooling-lint run their tools directly.
# This file belongs to the tooling (`invoke upgrade` replaces it): put targets of your own in
# project.mk, which is read when it exists.
.DEFAULT_GOAL := help
SHELL := /bin/sh
# No built-in rules: `make reproduce` in a folder without this Makefile must fail, not "build"
# reproduce from a reproduce.sh there.
MAKEFLAGS += --no-builtin-rules
.SUFFIXES:

# Empty: env-name in [tool.lockstep] of pyproject.toml decides (make ENV_NAME=x overrides).
ENV_NAME ?=
FRONTEND ?=
# LOCKED=1: reproduce refuses to make a conda lock when there is none (CI, images, clusters).
LOCKED ?=
# VARIANT=cuda|cpu: which conda lock reproduce installs (empty: chosen by the NVIDIA driver).
VARIANT ?=
# BUNDLE=path: reproduce offline from a bundle (`make bundle OUTPUT=path` writes one).
BUNDLE ?=
OUTPUT ?= bundle
PYTHON ?= python3
VENV ?= .venv
INVOKE ?= $(VENV)/bin/python -m invoke
# The venv's bin/ by absolute path, for recipes that run inside tooling/.
TOOL_BIN = $(abspath $(VENV))/bin
# make rename NEW_NAME=my-project; make docker-build IMAGE=my-project:dev (empty: the env name)
NEW_NAME ?=
IMAGE ?=
# make upgrade STARTER=URL-OR-PATH [STARTER_REF=v0.3.0] [DRY_RUN=1]
STARTER ?=
STARTER_REF ?=
DRY_RUN ?=

export PYTHONNOUSERSITE := 1
# Values reach recipes through the environment ("$$NAME"), never pasted into the shell text, so a
# name with spaces or quotes is refused by the tasks instead of being run; and always as
# --option="$$VALUE", so a value that looks like an option (-n, --force) is refused the same way.
export ENV_NAME FRONTEND LOCKED VARIANT BUNDLE OUTPUT PYTHON VENV NEW_NAME IMAGE STARTER STARTER_REF

.PHONY: help  ## list the targets
help:
	@grep -E '^\.PHONY: [a-z-]+ +## ' $(MAKEFILE_LIST) | sed -E 's/^\.PHONY: ([a-z-]+) +## (.*)/  \1\t\2/' | expand -t 16

.PHONY: env-create  ## create the conda env from environment.yml (first-time setup)
env-create: $(VENV)/.installed
	$(INVOKE) env-create --name="$$ENV_NAME" --frontend="$$FRONTEND"

.PHONY: lock  ## solve environment.yml into conda-linux-64.lock (and its CPU variant) with conda-lock
lock: $(VENV)/.installed
	$(INVOKE) lock

.PHONY: poetry-init  ## set up pyproject.toml for Poetry with environment.yml's Python
poetry-init: $(VENV)/.installed
	$(INVOKE) poetry-init

.PHONY: pin  ## pin conda's versions (torch, ...) in pyproject.toml and refresh poetry.lock
pin: $(VENV)/.installed
	$(INVOKE) pin

.PHONY: reproduce  ## recreate the exact env from the lock files (needs only conda/mamba; VARIANT=cuda|cpu)
reproduce:
	sh tooling/scripts/env-engine.sh reproduce --name="$$ENV_NAME" --frontend="$$FRONTEND" --variant="$$VARIANT" $(if $(LOCKED),--locked) $(if $(BUNDLE),--bundle="$$BUNDLE")

.PHONY: bundle  ## fetch both locks' conda archives and wheels into one folder (OUTPUT=bundle) for offline reproduce
bundle: $(VENV)/.installed
	$(INVOKE) bundle --output="$$OUTPUT"

.PHONY: pack  ## pack the reproduced env into a relocatable tarball with conda-pack (doctor must call it clean)
pack: $(VENV)/.installed
	$(INVOKE) pack --name="$$ENV_NAME" --frontend="$$FRONTEND"

.PHONY: update  ## re-lock, rebuild the env, refresh Poetry's side, report what changed
update: $(VENV)/.installed
	$(INVOKE) update --name="$$ENV_NAME" --frontend="$$FRONTEND" --variant="$$VARIANT"

.PHONY: verify-gpu  ## run the PyTorch CUDA sanity check inside the env
verify-gpu: $(VENV)/.installed
	$(INVOKE) verify-gpu --name="$$ENV_NAME" --frontend="$$FRONTEND"

.PHONY: rename  ## make the starter yours: make rename NEW_NAME=my-project
rename: $(VENV)/.installed
	$(INVOKE) rename --name="$$NEW_NAME"

.PHONY: upgrade  ## a newer starter's tooling in, your files kept: make upgrade STARTER=URL-OR-PATH [DRY_RUN=1]
upgrade: $(VENV)/.installed
	$(INVOKE) upgrade --source="$$STARTER" --ref="$$STARTER_REF" $(if $(DRY_RUN),--dry-run)

.PHONY: docker-build  ## build the image from the lock files (needs docker and conda-linux-64.lock)
docker-build: $(VENV)/.installed
	$(INVOKE) docker-build --image="$$IMAGE" --name="$$ENV_NAME"

.PHONY: lint  ## ruff check and format of your code (src/, tests/)
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests && $(VENV)/bin/ruff format --check src tests

.PHONY: tooling-lint  ## the tooling's linters: ruff, mypy, actionlint and hadolint
tooling-lint: $(VENV)/.installed
	cd tooling && $(TOOL_BIN)/ruff check . ../tasks.py && $(TOOL_BIN)/ruff format --check . ../tasks.py && $(TOOL_BIN)/mypy && $(TOOL_BIN)/python -m pytest -q -rs -p no:cacheprovider tests/unit/test_lint_files.py

.PHONY: check  ## static checks: stale locks, conda/Poetry conflicts, risky spec (no solve)
check: $(VENV)/.installed
	$(INVOKE) check

.PHONY: refresh-names  ## rebuild the conda-to-PyPI name map from NAMES_SOURCE (parselmouth's JSON; several: invoke)
refresh-names: $(VENV)/.installed
	$(INVOKE) refresh-names --source="$$NAMES_SOURCE"

.PHONY: doctor  ## compare the installed env with both locks (who installed what, duplicates)
doctor: $(VENV)/.installed
	$(INVOKE) doctor --name="$$ENV_NAME" --frontend="$$FRONTEND"

.PHONY: test  ## run your tests (tests/) inside the env, where torch is
test: $(VENV)/.installed
	$(INVOKE) test --name="$$ENV_NAME" --frontend="$$FRONTEND"

.PHONY: tooling-test  ## the tooling's own suite (tooling/tests), in the tooling venv
tooling-test: $(VENV)/.installed
	cd tooling && $(TOOL_BIN)/python -m pytest

# The script decides whether the venv is current (its stamp against tooling/poetry.lock and
# tooling/pyproject.toml).
.PHONY: $(VENV)/.installed
$(VENV)/.installed:
	sh tooling/scripts/bootstrap-venv.sh "$$PYTHON" "$$VENV"

# Targets of the project's own (not replaced by `invoke upgrade`).
-include project.mk
