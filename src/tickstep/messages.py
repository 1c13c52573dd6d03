"""The messages between the pipeline's steps: what the workflows pass to and from the
functions, the order queue's body, and the events on the bus (their sources and types)."""

from __future__ import annotations

import json
import re
from typing import Self

from pydantic import Field, model_validator

from tickstep.models import (
    Model,
    OrderIntent,
    RiskDecision,
    Signal,
    TradingState,
    TradingStateRecord,
)

SOURCE_INGEST = "tickstep.ingest"


SOURCE_RISK = "tickstep.risk"


SOURCE_CONTROL = "tickstep.control"


EVENT_CANDLES_CLOSED = "CandlesClosed"


CANDLES_PER_EVENT = 100
"""CandleClosed items per event: ~0.5 kB each, well inside EventBridge's 256 kB entry."""


EVENT_TRADING_STATE_CHANGED = "TradingStateChanged"


class UnknownMarketError(ValueError):
    """An event names a market that is not configured."""


class SignalOutput(Model):
    """What the signal function returns to the decide workflow (``intent`` null: no order)."""

    signal: Signal
    intent: OrderIntent | None


class RiskInput(Model):
    """What the decide workflow's CheckRisk passes: the signal and the intent it produced."""

    signal: Signal
    intent: OrderIntent

    @model_validator(mode="after")
    def _intent_matches_signal(self) -> Self:
        if self.intent.market != self.signal.market:
            raise ValueError("intent.market: differs from signal.market")
        if self.intent.candle_time != self.signal.candle_time:
            raise ValueError("intent.candle_time: differs from signal.candle_time")
        return self


class RiskOutput(Model):
    intent: OrderIntent
    decision: RiskDecision


class ExecuteCommand(Model):
    """The order queue's message body, as the order workflow's SubmitOrder sends it."""

    task_token: str = Field(min_length=1, max_length=4096)
    intent: OrderIntent
    decision: RiskDecision
    execution: str = Field(min_length=1, max_length=2048)
    attempt: int = Field(ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _decision_approves_intent(self) -> Self:
        if self.decision.intent_id != self.intent.intent_id:
            raise ValueError("decision.intent_id: differs from intent.intent_id")
        if not self.decision.approved:
            raise ValueError("decision.approved: only an approved intent is executed")
        return self


_JSON_SPACE = re.compile(r"[ \t\n\r]*")


_JSON = json.JSONDecoder()


def _after_space(body: str, at: int) -> int:
    match = _JSON_SPACE.match(body, at)
    return match.end() if match else at


def task_token_of(body: str) -> str | None:
    """The ``task_token`` of an order message that is otherwise invalid, so its workflow hears
    now instead of waiting out its timeout. Only the top-level object is read, and the values
    nested in it are skipped without recursion: a body nested 5,000 deep still gives its token
    (``json.loads`` raises ``RecursionError`` on it, pydantic stops at depth 200)."""
    token = None
    try:
        at = _after_space(body, 0)
        if body[at : at + 1] != "{":
            return None
        at += 1
        while body[(at := _after_space(body, at)) : at + 1] == '"':
            key, at = _JSON.raw_decode(body, at)  # a string: no recursion
            at = _after_space(body, at)
            if body[at : at + 1] != ":":
                return None
            at = _after_space(body, at + 1)
            if body[at : at + 1] == '"':
                value, at = _JSON.raw_decode(body, at)
                if key == "task_token" and isinstance(value, str):
                    token = value
            else:
                at = _skip_json_value(body, at)
            at = _after_space(body, at)
            if body[at : at + 1] != ",":
                break
            at += 1
    except ValueError:  # a malformed string
        return None
    return token if token is not None and 0 < len(token) <= 4096 else None


def _skip_json_value(body: str, at: int) -> int:
    """Where the value starting at ``at`` ends (the ``,`` or ``}`` after it), by counting
    brackets outside strings."""
    depth = 0
    while at < len(body):
        char = body[at]
        if char == '"':
            _, at = _JSON.raw_decode(body, at)
            continue
        if char in "[{":
            depth += 1
        elif char in "]}":
            if depth == 0:
                return at
            depth -= 1
        elif char == "," and depth == 0:
            return at
        at += 1
    return at


class TradingStateChange(Model):
    """Detail of the ``TradingStateChanged`` event."""

    previous: TradingState
    current: TradingStateRecord
