from __future__ import annotations

from tickstep.wiring import Dependencies


def test_dependencies_when_used_twice_then_built_once_and_handed_in_value_wins() -> None:
    built: list[int] = []

    def build() -> int:
        built.append(1)
        return len(built)

    deps = Dependencies(build)
    assert deps.get() == 1
    assert deps.get() == 1
    assert len(built) == 1
    deps.set(42)
    assert deps.get() == 42
    deps.set(None)
    assert deps.get() == 2


def test_make_tracer_when_tracing_disabled_then_x_ray_sdk_is_never_imported() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from tickstep.wiring import make_tracer\n"
        "t = make_tracer({'POWERTOOLS_TRACE_DISABLED': 'true'})\n"
        "f = lambda event, context: 1\n"
        "assert t.capture_lambda_handler(f) is f and t.capture_method(f) is f\n"
        "print('aws_xray_sdk' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_make_tracer_when_tracing_on_then_powertools_tracer() -> None:
    from aws_lambda_powertools import Tracer

    from tickstep.wiring import make_tracer

    assert isinstance(make_tracer({"POWERTOOLS_TRACE_DISABLED": "false"}), Tracer)
