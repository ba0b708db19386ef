# syntax=docker/dockerfile:1
# The Lockstep env in an image, from the lock files only: conda-<platform>.lock installed without
# a solve, then poetry.lock through pip with hashes, minus what conda provides (lockstep.core.pypi),
# exactly as `make reproduce` does. Build it with `make docker-build` (README "Docker").
#
# Layer order: lock files and the installer first, the project's code last, so a code change
# reuses the env layers and reinstalls only the project itself.

# ---- Stage 1: the lock as it will be installed. Mirror settings (README "Mirrors") rewrite its
# URLs here; without them it is copied unchanged. Needs only Python, which micromamba lacks.
# VARIANT=cuda (default) or cpu picks the lock by [tool.lockstep] (README "Variants"): an image
# is built where it does not run, so no driver is asked. CONDA_LOCK names a lock file instead.
FROM python:3.11-slim AS lock
ARG VARIANT=cuda
ARG CONDA_LOCK=""
ARG LOCKSTEP_CONDA_MIRROR=""
ARG LOCKSTEP_CONDA_CHANNEL_MIRRORS=""
WORKDIR /work
COPY src/lockstep/__init__.py src/lockstep/
COPY src/lockstep/core/ src/lockstep/core/
COPY pyproject.toml conda-*.lock ./
RUN lock="${CONDA_LOCK:-$(PYTHONPATH=/work/src python -m lockstep.core.variants lock-file "$VARIANT")}" \
    && PYTHONPATH=/work/src python -m lockstep.core.mirrors rewrite "$lock" --output env.lock

# ---- Stage 2: the env. micromamba is the frontend: one static binary, no base Python.
FROM mambaorg/micromamba:2.0.5
# The image's non-root user, mambauser, by id (Kubernetes' runAsNonRoot checks ids, not names);
# it owns /opt/conda, the env everything below goes into.
USER 57439:57439
ARG PIP_INDEX_URL=""
# Poetry groups to install, comma-separated; empty means all but the pins, as `make reproduce`.
ARG POETRY_GROUPS=""
ENV PYTHONNOUSERSITE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /home/mambauser/app

# conda side: the explicit lock into the base env (no solve), package cache dropped.
COPY --from=lock --chown=mambauser:mambauser /work/env.lock /tmp/env.lock
RUN micromamba install --yes --name base --file /tmp/env.lock \
    && micromamba clean --all --yes \
    && rm /tmp/env.lock

# PyPI side: poetry.lock minus what conda installed, with the installer of lockstep.core, the
# standard-library-only subpackage (copied whole and alone, so editing the rest of src/ does not
# reach this layer).
COPY --chown=mambauser:mambauser pyproject.toml poetry.lock ./
COPY --chown=mambauser:mambauser src/lockstep/__init__.py /tmp/installer/lockstep/
COPY --chown=mambauser:mambauser src/lockstep/core/ /tmp/installer/lockstep/core/
RUN PYTHONPATH=/tmp/installer /opt/conda/bin/python -m lockstep.core.pypi install \
        --prefix /opt/conda --poetry-lock poetry.lock --pyproject pyproject.toml \
        --groups "$POETRY_GROUPS" --no-root \
    && rm -rf /tmp/installer

# The project's code, last; installed editable with the build backend conda provides.
COPY --chown=mambauser:mambauser . .
RUN /opt/conda/bin/python -m pip install --no-deps --no-build-isolation --no-input \
        --no-cache-dir -e .

# The image's own check: torch, CUDA and the devices (`docker run --gpus all IMAGE`).
CMD ["python", "-m", "lockstep.gpu", "--quick", "--allow-cpu"]
