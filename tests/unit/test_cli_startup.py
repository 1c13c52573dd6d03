"""``tickstep --help`` and argument errors answer before any heavy import: each subcommand
imports what it uses when it runs (issue 14: the command starts in well under 0.15 s).

Checked by what is imported, not by a time, so it holds on any machine."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("numpy", "pydantic", "boto3", "botocore", "ccxt", "aws_lambda_powertools", "moto")
PROBE = """
import sys
from tickstep.cli import main
try:
    main({argv!r})
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print(code, heavy, file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--help"], 0),
        (["backtest", "--help"], 0),
        (["local", "--help"], 0),
        ([], 2),  # no subcommand
        (["backtest"], 2),  # --data, --strategy, ... missing
        (["halt", "--stack", "s"], 2),  # --reason missing
        (["no-such-command"], 2),
    ],
)
def test_help_and_argument_errors_import_nothing_heavy(argv: list[str], code: int) -> None:
    probe = PROBE.format(argv=argv, heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    last = done.stderr.strip().splitlines()[-1]
    assert last == f"{code} []", done.stderr
