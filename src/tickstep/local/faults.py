"""Faults the drill injects at the delivery and exchange layers, by name and probability.

``duplicate-delivery`` (an EventBridge target delivered twice), ``lambda-retry`` (a handler
invoked again with the same event after it succeeded), ``ddb-throttle`` (DynamoDB answers
ThrottlingException to a handler's request, which the SDK retries), ``malformed-event`` (a
CandlesClosed with a broken market on the bus), and at the exchange: ``rate-limit`` (the
order is refused before it is sent), ``timeout-before-accept`` (lost on the way: the exchange
never had it), ``timeout-after-accept`` (placed, answer lost), ``partial-fill`` (the answer
shows part of the fill; the exchange later reports the rest), ``not-found-after-accept``
(placed, then missing from lookups for a while).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tickstep.exchanges.errors import AmbiguousOrderError, RetryableExchangeError
from tickstep.models import Market, Order, OrderStatus

FAULTS = (
    "duplicate-delivery",
    "lambda-retry",
    "ddb-throttle",
    "malformed-event",
    "rate-limit",
    "timeout-before-accept",
    "timeout-after-accept",
    "partial-fill",
    "not-found-after-accept",
)
HIDDEN_LOOKUPS = 2
"""How many lookups a not-found-after-accept order stays invisible for."""


class FaultSpecError(ValueError):
    """A --faults value that cannot be used; names the part that is wrong."""


def parse_fault_spec(spec: str) -> dict[str, float]:
    """``"rate-limit=0.2,duplicate-delivery=0.3"`` to ``{name: probability}``."""
    faults: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise FaultSpecError(f"{part!r}: expected NAME=PROBABILITY")
        if name not in FAULTS:
            raise FaultSpecError(f"{name!r}: unknown fault; known: {', '.join(FAULTS)}")
        try:
            probability = float(value)
        except ValueError as exc:
            raise FaultSpecError(f"{part!r}: {value!r} is not a number") from exc
        if not 0.0 <= probability <= 1.0:
            raise FaultSpecError(f"{part!r}: the probability must be within [0, 1]")
        faults[name] = probability
    return faults


@dataclass
class FaultInjector:
    """Decides, reproducibly from ``seed``, when each fault happens, and counts them."""

    probabilities: dict[str, float]
    seed: int = 0
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def roll(self, name: str) -> bool:
        probability = self.probabilities.get(name, 0.0)
        if probability and self._rng.random() < probability:
            self.injected[name] += 1
            return True
        return False

    def choice(self, options: list[Any]) -> Any:
        return self._rng.choice(options)


class ChaosExchange:
    """An exchange port that misbehaves the way real exchanges do, per the injector."""

    def __init__(self, inner: Any, faults: FaultInjector, hidden: dict[str, int]) -> None:
        self._inner = inner
        self._faults = faults
        self._hidden = hidden  # shared across invocations: the exchange's memory

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def fetch_order_by_client_id(self, market: Market, client_order_id: str) -> Order | None:
        if self._hidden.get(client_order_id, 0) > 0:
            self._hidden[client_order_id] -= 1
            return None
        order: Order | None = self._inner.fetch_order_by_client_id(market, client_order_id)
        return order

    def create_order(self, *args: Any, **kwargs: Any) -> Order:
        client_order_id = str(kwargs.get("client_order_id"))
        if self._faults.roll("rate-limit"):
            raise RetryableExchangeError("429 too many requests (drill)", code="rate_limited")
        if self._faults.roll("timeout-before-accept"):
            raise AmbiguousOrderError("request timed out (drill)", code="request_timeout")
        order: Order = self._inner.create_order(*args, **kwargs)
        if self._faults.roll("not-found-after-accept"):
            self._hidden[client_order_id] = HIDDEN_LOOKUPS
        if self._faults.roll("timeout-after-accept"):
            raise AmbiguousOrderError("response timed out (drill)", code="request_timeout")
        if self._faults.roll("partial-fill") and order.filled > 0:
            half = (order.filled / 2).quantize(Decimal("0.001"))
            return order.model_copy(update={"status": OrderStatus.PARTIALLY_FILLED, "filled": half})
        return order


def throttle_dynamodb(faults: FaultInjector) -> Callable[..., Any]:
    """A botocore ``before-send`` hook answering some DynamoDB requests with a throttle,
    as DynamoDB does under load (the SDK's retry policy then retries them)."""
    from botocore.awsrequest import AWSResponse

    class _Raw:
        def __init__(self, body: bytes) -> None:
            self._body = body

        def stream(self, **_: Any) -> Any:
            yield self._body

    def before_send(request: Any, **_: Any) -> Any:
        if not faults.roll("ddb-throttle"):
            return None
        body = (
            b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException",'
            b'"message":"Rate of requests exceeds the allowed throughput (drill)"}'
        )
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "drill"}
        return AWSResponse(request.url, 400, headers, _Raw(body))

    return before_send
