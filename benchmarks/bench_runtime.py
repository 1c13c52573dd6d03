"""The offline runtime and the cost model, as a user runs them: ``make run``'s replay, the fault
drill at issue 14's size, and ``tickstep cost`` for 20 markets at 1m on that replay's report.

Each is the real command in a fresh interpreter, timed whole (start-up included). These are
times on this machine, not ratios: the machine line above says which one gave them. Issue 14's
goals were set on a 2-vCPU AVX2 machine about 1.3x (the drill) to 2.5x (``make run``) slower than
the AVX-512 one the decision records were measured on: ``make run`` at most 30 s, the drill at
most 180 s, there. ``TICKSTEP_BENCH_DRILL_INTENTS`` changes the drill's size (default 500).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Issue 12's game-day rates for the nine faults issue 14 timed (docs/RUNBOOK.md adds `release`).
NINE_FAULTS = (
    "duplicate-delivery=0.4,lambda-retry=0.4,ddb-throttle=0.15,malformed-event=0.2,"
    "rate-limit=0.4,timeout-before-accept=0.35,timeout-after-accept=0.35,partial-fill=0.4,"
    "not-found-after-accept=0.35"
)
CLI = (sys.executable, "-m", "tickstep.cli")


def _timed(args: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, check=False)
    return time.perf_counter() - start, done


def _require(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        raise SystemExit(
            f"{what} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "local.json"
        seconds, done = _timed(
            ["local", "--candles", "120", "--report", str(local), "--log", f"{tmp}/local.log"]
        )
        _require(done, "tickstep local")
        report = json.loads(local.read_text())
        decided = report["executions"]["DecideStateMachine"]
        print(
            f"make run (tickstep local, 120 closes, 3 markets): {seconds:.1f} s; "
            f"decide {decided}, orders {report['orders']['intents']}, fills {report['fills']}"
        )

        intents = int(os.environ.get("TICKSTEP_BENCH_DRILL_INTENTS", "500"))
        drill = Path(tmp) / "drill.json"
        seconds, done = _timed(
            [
                *("drill", "--seed", "777", "--intents", str(intents), "--faults", NINE_FAULTS),
                *("--report", str(drill), "--log", f"{tmp}/drill.log"),
            ]
        )
        _require(done, "tickstep drill")
        result = json.loads(drill.read_text())
        orders = result["orders"]
        print(
            f"tickstep drill, {orders['intents']} intents, nine faults: {seconds:.1f} s; "
            f"duplicates {orders['intents_with_multiple_exchange_orders']}, "
            f"mismatches {orders['ledger_mismatches']}, stuck {result['non_terminal_executions']}, "
            f"undecided closes {result['undecided_candle_closes']}"
        )

        _, done = _timed(["cost", "--markets", "20", "--timeframe", "1m", "--report", str(local)])
        _require(done, "tickstep cost")
        lines = [
            line
            for line in done.stdout.splitlines()
            if line.lstrip().startswith(("services", "total"))
        ]
        print("tickstep cost --markets 20 --timeframe 1m (on the replay above; list, free tier):")
        for line in lines:
            print(f"  {' '.join(line.split())}")


if __name__ == "__main__":
    main()
