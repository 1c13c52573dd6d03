"""How a Lambda handler holds its dependencies: built once per container, replaceable.

Every handler builds its clients in one ``build_dependencies()``; this keeps the result for
the container's life and lets tests and the offline runtime hand in their own instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar, cast

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class Dependencies(Generic[T]):
    """A lazily built, replaceable value (a handler's clients, stores and services)."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None

    def get(self) -> T:
        """The dependencies, built on first use (the cold start), then reused."""
        if self._value is None:
            self._value = self._build()
        return self._value

    def set(self, value: T | None) -> None:
        """Hand in other dependencies (tests, the offline runtime); None rebuilds on next use."""
        self._value = value

    def accessors(self) -> tuple[Callable[[T | None], None], Callable[[], T]]:
        """``set_dependencies, dependencies``: what a handler module exposes."""
        return self.set, self.get


class TracerLike(Protocol):
    def capture_lambda_handler(self, lambda_handler: F) -> F: ...

    def capture_method(self, method: F) -> F: ...


class _NoTracer:
    """Stands in for Powertools' Tracer when tracing is off: its decorators do nothing."""

    def capture_lambda_handler(self, lambda_handler: F) -> F:
        return lambda_handler

    def capture_method(self, method: F) -> F:
        return method


def lambda_entry(logger: Any, tracer: TracerLike, metrics: Any, **inject: Any) -> Callable[[F], F]:
    """Powertools' three decorators, in the order every handler wears them: the Lambda context
    in every log line (``inject``: e.g. ``clear_state`` or a correlation id path), the trace,
    then the metrics, flushed when the invocation ends."""

    def wear(handler: F) -> F:
        traced = tracer.capture_lambda_handler(metrics.log_metrics(handler))
        return cast(F, logger.inject_lambda_context(**inject)(traced))

    return wear


TRACE_DISABLED = "POWERTOOLS_TRACE_DISABLED"


def make_tracer(environ: Mapping[str, str]) -> TracerLike:
    """Powertools' Tracer, unless ``POWERTOOLS_TRACE_DISABLED`` is true.

    ``Tracer()`` imports the X-Ray SDK (about 170 ms here) even when tracing is disabled, which
    would more than double every function's cold start; tracing is off by default
    (template.yaml's EnableTracing), so the SDK is only loaded when it is used.
    """
    if environ.get(TRACE_DISABLED, "").strip().lower() in ("1", "true"):
        return _NoTracer()
    from aws_lambda_powertools import Tracer

    # Its decorators take optional arguments too; used bare, as here, they are these.
    return cast(TracerLike, Tracer())
