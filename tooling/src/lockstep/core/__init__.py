"""The part of Lockstep that runs with the standard library alone.

``python -m lockstep.core.engine`` (``make reproduce``, tooling/scripts/env-engine.sh) and
``python -m lockstep.core.installer`` (the image, tooling/scripts/bootstrap-venv.sh) run before
any package is installed next to them, so nothing here imports outside the standard library and
this subpackage (the Dockerfile copies it whole; tests/unit/test_core_stdlib.py imports every
module under ``python -I`` and scans each for imports of the rest of lockstep). One use is
optional: condalockhash hashes with PyYAML where it imports, and says Unsupported where not. The
rest of the package (check, doctor, pins, lifecycle) may use PyYAML, tomlkit and conda-lock.
"""
