"""How a Lambda handler holds its dependencies: built once per container, replaceable.

Every handler builds its clients in one ``build_dependencies()``; this keeps the result for
the container's life and lets tests and the offline runtime hand in their own instead.
"""

from __future__ import annotations

import functools
import os
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


SMOKE_EVENT: dict[str, str] = {"tickstep": "smoke"}
"""What the deploy checks and the pre-traffic hook send each function version: it builds its
dependencies (settings, clients, stores), as its first real event would, and answers
:func:`smoke_answer` without reading or writing anything."""


def smoke_answer(environ: Mapping[str, str]) -> dict[str, Any]:
    return {
        **SMOKE_EVENT,
        "ok": True,
        "version": environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    }


def lambda_entry(
    logger: Any,
    tracer: TracerLike,
    metrics: Any,
    *,
    smoke: Callable[[], object],
    **inject: Any,
) -> Callable[[F], F]:
    """Powertools' three decorators, in the order every handler wears them: the Lambda context
    in every log line (``inject``: e.g. ``clear_state`` or a correlation id path), the trace,
    then the metrics, flushed when the invocation ends. Inside them, the :data:`SMOKE_EVENT`
    is answered by ``smoke()`` (the handler's dependencies, built) instead of the handler."""

    def wear(handler: F) -> F:
        @functools.wraps(handler)
        def answer_smoke(event: Any, context: Any) -> Any:
            if event == SMOKE_EVENT:
                smoke()
                logger.info("smoke event answered")
                return smoke_answer(os.environ)
            return handler(event, context)

        traced = tracer.capture_lambda_handler(metrics.log_metrics(answer_smoke))
        return cast(F, logger.inject_lambda_context(**inject)(traced))

    return wear


def scheduled_entry(
    logger: Any, tracer: TracerLike, metrics: Any, *, smoke: Callable[[], object]
) -> Callable[[F], F]:
    """:func:`lambda_entry` for a function on a schedule: the EventBridge event is validated
    (a malformed one fails the invocation, naming its field) and its id is in every log line
    of the invocation (``clear_state``: not in the next one's)."""

    def wear(handler: F) -> F:
        @functools.wraps(handler)
        def tagged(event: dict[str, Any], context: Any) -> Any:
            from aws_lambda_powertools.utilities.parser import parse
            from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

            logger.append_keys(schedule_event=parse(event=event, model=EventBridgeModel).id)
            return handler(event, context)

        entry = lambda_entry(logger, tracer, metrics, smoke=smoke, clear_state=True)
        return entry(cast(F, tagged))

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
