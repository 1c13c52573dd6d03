"""The DynamoDB side every store shares: the key layout (template.yaml declares the same
tables) and the conversions between items and Decimal, int and str."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

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


def _n(value: Decimal | int) -> dict[str, str]:
    return {"N": str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _dec(item: dict[str, Any], name: str) -> Decimal | None:
    attr = item.get(name)
    return None if attr is None or "N" not in attr else Decimal(attr["N"])


def _int(item: dict[str, Any], name: str) -> int | None:
    value = _dec(item, name)
    return None if value is None else int(value)


def _str(item: dict[str, Any], name: str) -> str | None:
    attr = item.get(name)
    return None if attr is None or "S" not in attr else str(attr["S"])


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
