"""Run every ``benchmarks/bench_*.py`` module's ``main()`` in turn.

Modules are found by file name, so a new bench needs no registration here.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from benchmarks import machine


def main() -> None:
    print(f"machine: {machine.describe()}\n")
    for path in sorted(Path(__file__).parent.glob("bench_*.py")):
        module = importlib.import_module(f"{__package__}.{path.stem}")
        print(f"== {path.stem}")
        module.main()
        print()


if __name__ == "__main__":
    main()
