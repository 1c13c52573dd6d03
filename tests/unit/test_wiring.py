from __future__ import annotations

from typing import Any

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


def test_lambda_entry_when_a_handler_wears_it_then_logs_carry_the_context_and_metrics_flush(
    capsys: Any, monkeypatch: Any
) -> None:
    """The three Powertools decorators every handler wears, applied in one place: the log
    line carries the Lambda context, state is cleared between invocations, and the metrics
    the handler adds are flushed (EMF on stdout) when it returns."""
    import json
    from dataclasses import dataclass

    from aws_lambda_powertools import Logger, Metrics

    from tickstep.wiring import lambda_entry, make_tracer

    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "tickstep-test")
    logger, metrics = Logger(service="wiring-test"), Metrics()
    tracer = make_tracer({"POWERTOOLS_TRACE_DISABLED": "true"})

    @dataclass
    class Context:
        function_name: str = "fn"
        memory_limit_in_mb: int = 128
        invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:fn"
        aws_request_id: str = "req-1"

    smoked: list[bool] = []

    @lambda_entry(logger, tracer, metrics, smoke=lambda: smoked.append(True), clear_state=True)
    def handler(event: dict[str, Any], context: Any) -> str:
        logger.append_keys(call=event["n"])
        logger.info("handled")
        metrics.add_metric(name="Handled", unit="Count", value=1)
        return "done"

    assert handler({"n": 1}, Context()) == "done"
    assert handler({"n": 2}, Context()) == "done"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    logs = [line for line in lines if line.get("message") == "handled"]
    flushed = [line for line in lines if "Handled" in line]
    assert [(log["function_name"], log["call"]) for log in logs] == [("fn", 1), ("fn", 2)]
    assert len(flushed) == 2 and flushed[0]["Handled"] == [1.0]
    # The smoke event builds the dependencies (smoke) and never reaches the handler.
    assert handler({"tickstep": "smoke"}, Context())["ok"] is True
    assert smoked == [True]
    assert "handled" not in capsys.readouterr().out
