"""Cold start: each handler module's import time as a ratio to a bare ``import boto3``.

Both are measured in fresh interpreters in the same run (best of several), with the bytecode
already compiled, as the layers ship it, and with each function's literal environment
variables from template.yaml (tracing off, OpenBLAS on one thread for signal). Goal: at most
1.5x for functions without ccxt and 2.5x for those with it (ingest, execute, reconcile).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ("api", "risk", "signal", "ingest", "execute", "reconcile")
WITH_CCXT = {"ingest", "execute", "reconcile"}
REPEATS = 7

_IMPORT_HANDLER = """
import importlib.util, sys, time
t = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
print(time.perf_counter() - t)
"""
_IMPORT_BOTO3 = """
import time
t = time.perf_counter()
import boto3
print(time.perf_counter() - t)
"""


def function_environment(name: str) -> dict[str, str]:
    """The literal environment variables template.yaml gives a function (Globals and its
    own; values computed by CloudFormation are left out: they are names, not settings that
    change an import)."""
    from tickstep.local.template import load_template

    template = load_template(ROOT / "template.yaml")
    logical_id = f"{name.capitalize()}Function"
    sources = [
        template.get("Globals", {}).get("Function", {}),
        template["Resources"][logical_id]["Properties"],
    ]
    env = {}
    for source in sources:
        for key, value in source.get("Environment", {}).get("Variables", {}).items():
            if isinstance(value, str):
                env[key] = value
    return env


def _best(code: str, *args: str, env_extra: dict[str, str] | None = None) -> float:
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "1"}
    env.update(env_extra or {})
    times = []
    for _ in range(REPEATS):
        out = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return min(times)


def measure() -> dict[str, tuple[float, float]]:
    """Function name to (import seconds, ratio to bare boto3)."""
    _best(_IMPORT_HANDLER, str(ROOT / "functions" / "api" / "app.py"))  # warm bytecode
    boto3_s = _best(_IMPORT_BOTO3)
    results = {}
    for name in FUNCTIONS:
        seconds = _best(
            _IMPORT_HANDLER,
            str(ROOT / "functions" / name / "app.py"),
            env_extra=function_environment(name),
        )
        results[name] = (seconds, seconds / boto3_s)
    results["boto3"] = (boto3_s, 1.0)
    return results


def main() -> None:
    results = measure()
    print(
        f"\ncold start: handler import time vs bare `import boto3` "
        f"({results['boto3'][0] * 1000:.0f} ms), best of {REPEATS} fresh interpreters"
    )
    print(f"{'function':<12}{'ms':>8}{'ratio':>8}  goal")
    for name in FUNCTIONS:
        seconds, ratio = results[name]
        goal = 2.5 if name in WITH_CCXT else 1.5
        verdict = "ok" if ratio <= goal else "OVER"
        print(f"{name:<12}{seconds * 1000:>8.0f}{ratio:>7.2f}x  <= {goal}x {verdict}")


if __name__ == "__main__":
    main()
