"""Faults the drill injects at the delivery and exchange layers, by name and probability.

``duplicate-delivery`` (an EventBridge target delivered twice), ``lambda-retry`` (a handler
invoked again with the same event after it succeeded), ``ddb-throttle`` (DynamoDB answers
ThrottlingException to a handler's request, which the SDK retries), ``malformed-event`` (a
CandlesClosed with a broken market on the bus), and at the exchange: ``rate-limit`` (the
order is refused before it is sent), ``timeout-before-accept`` (lost on the way: the exchange
never had it), ``timeout-after-accept`` (placed, answer lost), ``partial-fill`` (the answer
shows part of the fill; the exchange later reports the rest), ``not-found-after-accept``
(placed, then missing from lookups for ``HIDDEN_MS`` of the exchange's clock: "tens of seconds",
inside the execute function's grace window, which is the contract that makes a re-send safe).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tickstep.exchanges.errors import AmbiguousOrderError, RetryableExchangeError
from tickstep.exchanges.port import OrderRequest
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
    "release",
)
HIDDEN_MS = 30_000
"""How long a not-found-after-accept order stays invisible to lookups (its exchange's clock)."""


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


VOLATILE_KEYS = frozenset(
    {"task_token", "messageId", "receiptHandle", "md5OfBody", "attributes", "id", "time"}
)
"""Fields that differ from run to run (tokens, message and event ids, wall-clock times)."""


def stable_key(*parts: Any) -> str:
    """A key for :meth:`FaultInjector.roll` from what an event says, not from the ids and
    tokens the services make up afresh each run (a JSON string field is read as JSON)."""

    def strip(value: Any) -> Any:
        if isinstance(value, str) and value[:1] in "{[":
            try:
                return strip(json.loads(value))
            except ValueError:
                return value
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in VOLATILE_KEYS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    text = json.dumps([strip(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class FaultInjector:
    """Decides, reproducibly from ``seed``, when each fault happens, and counts them.

    A roll with a ``key`` (an order's client id, an event's content) is drawn from the seed,
    the fault, the key and how many times that key has rolled for that fault, so the same
    seed injects the same faults into the same orders and events whichever thread of the
    Step Functions interpreter gets there first. A roll without one (a DynamoDB request,
    whose content holds wall-clock times) is drawn in turn from one seeded stream.
    """

    probabilities: dict[str, float]
    seed: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    ddb_throttle_only: Callable[[str, dict[str, Any]], bool] | None = None
    """Which DynamoDB requests ``ddb-throttle`` may hit, by operation (``PutItem``) and
    request body; None: every one (the drill). Tests aim it at one write."""

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._rolled: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def roll(self, name: str, key: str | None = None) -> bool:
        probability = self.probabilities.get(name, 0.0)
        if not probability:
            return False
        with self._lock:
            if key is None:
                draw = self._rng.random()
            else:
                nth = self._rolled[name, key]
                self._rolled[name, key] += 1
                draw = random.Random(f"{self.seed}:{name}:{key}:{nth}").random()
            if draw < probability:
                self.injected[name] += 1
                return True
        return False

    def choice(self, options: list[Any], key: str) -> Any:
        """One of ``options``, drawn like a keyed :meth:`roll`."""
        return random.Random(f"{self.seed}:choice:{key}").choice(options)


class ChaosExchange:
    """An exchange port that misbehaves the way real exchanges do, per the injector."""

    def __init__(
        self,
        inner: Any,
        faults: FaultInjector,
        hidden: dict[str, int],
        clock: Callable[[], int],
    ) -> None:
        self._inner = inner
        self._faults = faults
        self._hidden = hidden  # client order id -> visible from (ms); the exchange's memory
        self._clock = clock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def fetch_order_by_client_id(self, market: Market, client_order_id: str) -> Order | None:
        if self._clock() < self._hidden.get(client_order_id, 0):
            return None
        order: Order | None = self._inner.fetch_order_by_client_id(market, client_order_id)
        return order

    def create_order(self, request: OrderRequest) -> Order:
        client_order_id = request.client_order_id
        if self._faults.roll("rate-limit", client_order_id):
            raise RetryableExchangeError("429 too many requests (drill)", code="rate_limited")
        if self._faults.roll("timeout-before-accept", client_order_id):
            raise AmbiguousOrderError("request timed out (drill)", code="request_timeout")
        order: Order = self._inner.create_order(request)
        if self._faults.roll("not-found-after-accept", client_order_id):
            self._hidden[client_order_id] = self._clock() + HIDDEN_MS
        if self._faults.roll("timeout-after-accept", client_order_id):
            raise AmbiguousOrderError("response timed out (drill)", code="request_timeout")
        if self._faults.roll("partial-fill", client_order_id) and order.filled > 0:
            half = (order.filled / 2).quantize(Decimal("0.001"))
            return order.model_copy(update={"status": OrderStatus.PARTIALLY_FILLED, "filled": half})
        return order


THROTTLED = "_tickstep_drill_throttled"
"""Set on a request the drill answered with a throttle: moto must not also carry it out."""


def throttle_dynamodb(faults: FaultInjector) -> Callable[..., Any]:
    """A botocore ``before-send`` hook answering some DynamoDB requests with a throttle,
    as DynamoDB does under load (the SDK's retry policy then retries them).

    botocore calls every ``before-send`` handler and uses the first answer, so moto's own
    handler (called after this one) would still carry the request out: a throttled write
    that happened anyway (it left idempotency records "in progress" no one owned). The
    request is marked, and :func:`tickstep.local.cloud.LocalCloud` has moto skip marked ones.
    """
    from botocore.awsrequest import AWSResponse

    class _Raw:
        def __init__(self, body: bytes) -> None:
            self._body = body

        def stream(self, **_: Any) -> Any:
            yield self._body

    def before_send(request: Any, **_: Any) -> Any:
        if faults.ddb_throttle_only is not None and not faults.ddb_throttle_only(
            *_operation_and_body(request)
        ):
            return None
        if not faults.roll("ddb-throttle"):
            return None
        setattr(request, THROTTLED, True)
        body = (
            b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException",'
            b'"message":"Rate of requests exceeds the allowed throughput (drill)"}'
        )
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "drill"}
        return AWSResponse(request.url, 400, headers, _Raw(body))

    return before_send


def _operation_and_body(request: Any) -> tuple[str, dict[str, Any]]:
    """``("PutItem", {...})`` from a DynamoDB request (JSON protocol: the operation is in the
    X-Amz-Target header, ``DynamoDB_20120810.PutItem``)."""
    target = request.headers.get("X-Amz-Target", b"")
    operation = (target.decode() if isinstance(target, bytes) else str(target)).rpartition(".")[2]
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = {}
    return operation, body if isinstance(body, dict) else {}
