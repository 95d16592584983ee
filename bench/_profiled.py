"""Run a Python program (`-m module` or a script) with cProfile off until SIGUSR1, so that a
profile holds the steady state only; SIGUSR2 stops it and writes the stats to OUT.

Usage: `python bench/_profiled.py OUT -m module args…` or `python bench/_profiled.py OUT script args…`.
"""

from __future__ import annotations

import cProfile
import runpy
import signal
import sys
from types import FrameType

_profile = cProfile.Profile()
_out: list[str] = []


def _start(signum: int, frame: FrameType | None) -> None:
    _profile.enable()


def _stop(signum: int, frame: FrameType | None) -> None:
    _profile.disable()
    _profile.dump_stats(_out[0])


def main() -> None:
    out, *rest = sys.argv[1:]
    _out.append(out)
    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
    if rest[0] == "-m":
        sys.argv = [rest[1], *rest[2:]]
        runpy.run_module(rest[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = rest
        runpy.run_path(rest[0], run_name="__main__")


if __name__ == "__main__":
    main()
