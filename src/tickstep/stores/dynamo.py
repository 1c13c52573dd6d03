"""The DynamoDB side every store shares: the key layout (template.yaml declares the same
tables) and the conversions between items and plain values (boto3's TypeSerializer)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

PK = "pk"
"""Partition key of every table (Orders: the intent id, written by the order workflow)."""


SK = "sk"
"""Sort key: N (open time ms) in candles and signals; S (the item kind's id) in portfolio."""


TTL_ATTRIBUTE = "expires_at"
"""Epoch seconds; DynamoDB deletes candles and signals after it."""


BY_STATUS_INDEX = "by_status"
"""Orders GSI: hash ``status``, range ``candle_time``."""


CONTROL_KEY = "trading_state"
"""The control table's one item: the kill switch."""


POSITION_PK = "POSITION"  # sk = market key


FILL_CURSOR_PK = "FILLED"  # sk = client order id: how much of that order is in the position


ACCOUNT_PK = "ACCOUNT"  # sk = "equity" | "activity" | "balances"


PAPER_PK = "PAPER"  # sk = "state"


RULES_PK = "RULES"  # sk = market key


HOUR_MS = 3_600_000


DAY_MS = 86_400_000


def condition_failed(client: Any) -> tuple[type[Exception], ...]:
    """What a refused ``ConditionExpression`` raises, as boto3 models it for ``client``: a
    conditional write, or a transaction one of whose conditions failed (or that met another)."""
    errors = client.exceptions
    return (errors.ConditionalCheckFailedException, errors.TransactionCanceledException)


_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values from plain ones, by boto3's TypeSerializer: ``str`` is S,
    ``int`` and ``Decimal`` are N, exactly (a float is refused); None is left out."""
    return {name: _SERIALIZER.serialize(v) for name, v in values.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """Plain values from DynamoDB attribute values (TypeDeserializer: N is ``Decimal``)."""
    return {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}


def _n(value: Decimal | int) -> dict[str, str]:
    number: dict[str, str] = _SERIALIZER.serialize(value)
    return number


def _s(value: str) -> dict[str, str]:
    text: dict[str, str] = _SERIALIZER.serialize(value)
    return text


def _dec(item: Mapping[str, Any], name: str) -> Decimal | None:
    attr = item.get(name)
    return None if attr is None or "N" not in attr else Decimal(_DESERIALIZER.deserialize(attr))


def _int(item: Mapping[str, Any], name: str) -> int | None:
    value = _dec(item, name)
    return None if value is None else int(value)


def _str(item: Mapping[str, Any], name: str) -> str | None:
    attr = item.get(name)
    return None if attr is None or "S" not in attr else str(_DESERIALIZER.deserialize(attr))


def _iso(ms: int) -> str:
    """The timestamp format the order workflow writes (``$$.State.EnteredTime``)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _query_all(client: Any, *, limit: int | None = None, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item a Query matches, page after page (boto3's paginator), ``limit`` at most."""
    pages = client.get_paginator("query").paginate(
        **kwargs, PaginationConfig={"MaxItems": limit} if limit is not None else {}
    )
    for page in pages:
        yield from page.get("Items", [])
