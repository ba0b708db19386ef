"""The part of Lockstep that runs with the standard library alone.

``python -m lockstep.core.engine`` (``make reproduce``, scripts/env-engine.sh) and ``python -m
lockstep.core.installer`` (the image, scripts/bootstrap-venv.sh) run before any package is installed
next to them, so nothing here imports outside the standard library and this subpackage (the
Dockerfile copies it whole; tests/unit/test_core_stdlib.py imports every module under
``python -I``). The rest of the package (check, doctor, pins, lifecycle) may use PyYAML, tomlkit
and conda-lock.
"""
