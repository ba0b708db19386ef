# syntax=docker/dockerfile:1
# The Lockstep env in an image, from the lock files only: conda-<platform>.lock installed without
# a solve, then poetry.lock through pip with hashes, minus what conda provides (lockstep.core.installer),
# exactly as `make reproduce` does. Build it with `make docker-build` (README "Docker").
#
# Layer order: lock files and the installer first, the project's code last, so a code change
# reuses the env layers and reinstalls only the project itself.
#
# Build arguments (all optional): BASE_IMAGE, the image the env goes into, with FRONTEND
# (micromamba, mamba or conda: installs the explicit lock, no solve) at ENV_PREFIX, run as
# ENV_USER; LOCK_IMAGE, any image with a Python 3.11+ for the first stage; CONDA_LOCK, the lock
# to install. tests/integration/test_image.py builds it for real from a debootstrap base.
ARG LOCK_IMAGE=python:3.11-slim
ARG BASE_IMAGE=mambaorg/micromamba:2.0.5

# ---- Stage 1: the lock as it will be installed. Mirror settings (README "Mirrors") rewrite its
# URLs here; without them it is copied unchanged. Needs only Python, which micromamba lacks.
# VARIANT=cuda (default) or cpu picks the lock by [tool.lockstep] (README "Variants"): an image
# is built where it does not run, so no driver is asked. CONDA_LOCK names a lock file instead.
FROM ${LOCK_IMAGE} AS lock
ARG VARIANT=cuda
ARG CONDA_LOCK=""
ARG LOCKSTEP_CONDA_MIRROR=""
ARG LOCKSTEP_CONDA_CHANNEL_MIRRORS=""
WORKDIR /work
COPY tooling/src/lockstep/__init__.py src/lockstep/
COPY tooling/src/lockstep/core/ src/lockstep/core/
COPY pyproject.toml conda-*.lock ./
RUN lock="${CONDA_LOCK:-$(PYTHONPATH=/work/src python -m lockstep.core.variants lock-file "$VARIANT")}" \
    && PYTHONPATH=/work/src python -m lockstep.core.mirrors rewrite "$lock" --output env.lock

# ---- Stage 2: the env. By default micromamba is the frontend: one static binary, no base Python.
FROM ${BASE_IMAGE}
ARG FRONTEND=micromamba
ARG ENV_PREFIX=/opt/conda
# The default image's non-root user, mambauser, by id (Kubernetes' runAsNonRoot checks ids, not
# names); it owns ENV_PREFIX, the env everything below goes into.
USER 57439:57439
ARG PIP_INDEX_URL=""
# Poetry groups to install, comma-separated; empty means all but the pins, as `make reproduce`.
ARG POETRY_GROUPS=""
ENV PATH="$ENV_PREFIX/bin:$PATH" \
    PYTHONNOUSERSITE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /home/mambauser/app

# conda side: the explicit lock into the env at ENV_PREFIX (no solve), package cache dropped.
COPY --from=lock --chown=57439:57439 /work/env.lock /tmp/env.lock
RUN "$FRONTEND" install --yes --prefix "$ENV_PREFIX" --file /tmp/env.lock \
    && "$FRONTEND" clean --all --yes \
    && rm /tmp/env.lock

# PyPI side: poetry.lock minus what conda installed, with the installer of lockstep.core, the
# standard-library-only subpackage (copied whole and alone, so editing the rest of src/ does not
# reach this layer).
COPY --chown=57439:57439 pyproject.toml poetry.lock ./
COPY --chown=57439:57439 tooling/src/lockstep/__init__.py /tmp/installer/lockstep/
COPY --chown=57439:57439 tooling/src/lockstep/core/ /tmp/installer/lockstep/core/
RUN PYTHONPATH=/tmp/installer "$ENV_PREFIX/bin/python" -m lockstep.core.installer install \
        --prefix "$ENV_PREFIX" --poetry-lock poetry.lock --pyproject pyproject.toml \
        --groups "$POETRY_GROUPS" --no-root

# Your code, last: your package (src/, as pyproject.toml's packages name it) installed editable
# with the build backend that the conda lock provides (poetry-core), unless pyproject.toml
# says package-mode = false: then it is run from here, not installed.
COPY --chown=57439:57439 . .
RUN PYTHONPATH=/tmp/installer "$ENV_PREFIX/bin/python" -m lockstep.core.installer install-root \
        --prefix "$ENV_PREFIX" --pyproject pyproject.toml --project-dir . \
    && rm -rf /tmp/installer

# The image's own check: torch, CUDA and the devices (`docker run --gpus all IMAGE`). The check
# is the tooling's (lockstep.gpu), which is not in the env: it runs from the copied tooling/,
# on the path of this command only.
CMD ["env", "PYTHONPATH=/home/mambauser/app/tooling/src", "python", "-m", "lockstep.gpu", "--quick", "--allow-cpu"]
