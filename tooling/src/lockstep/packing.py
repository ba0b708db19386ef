"""`python -m lockstep.packing --prefix ENV --output FILE`: conda-pack's archive of an env, with
progress (lockstep.progress: files, bytes, rate, time left).

conda-pack's own command line shows a bar only on a terminal and no bytes or time left; its
library packs the same archive file by file, so the files are counted as conda-pack takes them.
The project itself (installed editable from its checkout) stays out, as before: the nodes run it
from the checkout, as the env expects. Runs in the tooling venv, where conda-pack is.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from lockstep.progress import Progress


class _Counted(list[Any]):
    """conda-pack's file list; each file is counted once conda-pack asks for the next one (it
    has added the previous one to the archive by then)."""

    def __init__(self, files: Sequence[Any], progress: Progress) -> None:
        super().__init__(files)
        self.progress = progress

    def __iter__(self) -> Iterator[Any]:
        previous = None
        for file in super().__iter__():
            if previous is not None:
                self.progress.step(_size(previous))
            previous = file
            yield file
        if previous is not None:
            self.progress.step(_size(previous))


def _size(file: Any) -> int:
    try:
        return os.lstat(file.source).st_size
    except OSError:
        return 0


def pack(prefix: str, output: str) -> str:
    """Pack the env at ``prefix`` into ``output`` (conda-pack's formats, by its suffix)."""
    from conda_pack import CondaEnv

    env = CondaEnv.from_prefix(prefix, ignore_editable_packages=True)
    total = sum(_size(f) for f in env.files)
    with Progress("pack", len(env.files), total) as progress:
        env.files = _Counted(env.files, progress)
        return str(env.pack(output=output, verbose=False))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lockstep.packing", description=__doc__)
    parser.add_argument("--prefix", required=True, help="the env to pack")
    parser.add_argument("--output", required=True, help="the archive to write (.tar.gz, ...)")
    args = parser.parse_args(argv)
    try:
        pack(args.prefix, args.output)
    except Exception as exc:  # conda-pack's CondaPackError and the OSErrors of writing
        print(f"error: conda-pack could not pack {args.prefix}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
