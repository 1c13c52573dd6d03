"""Import every built function's handler with only its own code and layers, as Lambda would.

A dependency that a function's layers lack (numpy outside the signal function, ccxt outside
the exchange functions), also in the imports its handler makes lazily, only shows on AWS, at
the first invocation; this finds it after ``sam build``. It runs the runtime's Python with
``-S`` (no site-packages), so nothing from the machine can stand in for a missing layer.

Usage: ``python tools/check_imports.py --python /path/to/python3.12 [--build-dir .aws-sam/build]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from package_sizes import function_paths  # a sibling script, not a package

_PROBE = """
import ast, importlib, sys, time
sys.path[:0] = sys.argv[1:]
t = time.perf_counter()
import app
ms = (time.perf_counter() - t) * 1000
at_import = ('numpy' in sys.modules, 'ccxt' in sys.modules)
# What the handler imports lazily (inside build_dependencies and the like) must load too;
# boto3 and botocore come with the Lambda runtime, not with the layers.
lazy = set()
for node in ast.walk(ast.parse(open(app.__file__).read())):
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        lazy.add(node.module)
    elif isinstance(node, ast.Import):
        lazy.update(alias.name for alias in node.names)
for name in sorted(lazy - {"boto3", "botocore", "__future__"}):
    importlib.import_module(name)
print(f"{ms:.0f} ms (numpy={at_import[0]}, ccxt={at_import[1]} at import);"
      f" {len(lazy)} modules it names load")
"""


RUNTIME_SDK = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
"""What the Lambda Python runtime itself ships (the AWS SDK and its pure-Python needs)."""


def _provide_runtime_sdk(target: Path) -> None:
    """Link the SDK the runtime provides from this Python's packages (pure Python: any
    version of CPython 3 reads them), after the layers on the path, as on Lambda."""
    import importlib.util

    for name in RUNTIME_SDK:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise SystemExit(f"check_imports: {name} not installed here; run make tools")
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (target / source.name).symlink_to(source)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--python", required=True, help="the Lambda runtime's Python")
    parser.add_argument("--build-dir", type=Path, default=Path(".aws-sam/build"))
    args = parser.parse_args(argv)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    failed = []
    runtime_dir = tempfile.mkdtemp(prefix="lambda-runtime-")
    _provide_runtime_sdk(Path(runtime_dir))
    for name, code_dir, layers in function_paths(args.build_dir):
        paths = (
            [str(code_dir.resolve())]
            + [str((content / "python").resolve()) for content in layers.values()]
            + [runtime_dir]
        )
        result = subprocess.run(
            [args.python, "-S", "-c", _PROBE, *paths],
            capture_output=True,
            check=False,
            text=True,
            env=env,
            cwd=code_dir,
        )
        if result.returncode == 0:
            print(f"{name:<20} imports: {result.stdout.strip()}")
        else:
            failed.append(name)
            error = (result.stderr.strip().splitlines() or ["?"])[-1]
            print(f"{name:<20} FAILS: {error}")
    if failed:
        print(f"check_imports: {', '.join(failed)} cannot import with their own layers")
        return 1
    print("check_imports: every function imports with only its own code and layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
