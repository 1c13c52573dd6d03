"""Is tickstep healthy? What ``GET /api/health`` answers, and what the operator's checks read.

Healthy means: the tables answer, every configured market's latest stored candle closed no
more than two timeframes ago (risk denies older data as STALE_DATA, so a market past that no
longer trades), trading is not HALTED, and every dead-letter queue is empty. The body names
each component with its figure; it holds no secret, no position and no order (the route is
unauthenticated).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tickstep.models import Market, TradingState, TradingStateRecord

STALE_AFTER_TIMEFRAMES = 2


class LatestCandles(Protocol):
    def latest_timestamp(self, market: Market) -> int | None: ...


class TradingStateReader(Protocol):
    def get(self) -> TradingStateRecord: ...


@dataclass
class Health:
    healthy: bool
    components: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"status": "ok" if self.healthy else "unhealthy", **self.components}


def candle_age(market: Market, latest_open_ms: int | None, now_ms: int) -> dict[str, Any]:
    """A market's latest candle: its close time's age, and whether it is fresh enough."""
    if latest_open_ms is None:
        return {"market": market.key, "fresh": False, "age_ms": None, "reason": "no candle"}
    age = now_ms - (latest_open_ms + market.timeframe_ms)
    fresh = age <= STALE_AFTER_TIMEFRAMES * market.timeframe_ms
    return {"market": market.key, "fresh": fresh, "age_ms": max(age, 0)}


def check_health(
    markets: Sequence[Market],
    *,
    candles: LatestCandles,
    control: TradingStateReader,
    dead_letter_depths: Callable[[], Mapping[str, int]],
    now_ms: int,
) -> Health:
    """Every component, each read on its own: one failing read names itself and the others
    are still reported."""
    components: dict[str, Any] = {}
    healthy = True
    tables: dict[str, str] = {}
    try:
        state = control.get()
        tables["control"] = "ok"
        halted = state.state is TradingState.HALTED
        components["trading_state"] = {"state": state.state.value, "reason": state.reason}
        healthy &= not halted
    except Exception as exc:  # any failure to read is the answer: unreachable
        tables["control"] = f"unreachable: {type(exc).__name__}"
        healthy = False
    ages = []
    try:
        ages = [candle_age(m, candles.latest_timestamp(m), now_ms) for m in markets]
        tables["candles"] = "ok"
    except Exception as exc:
        tables["candles"] = f"unreachable: {type(exc).__name__}"
        healthy = False
    components["tables"] = tables
    components["candles"] = ages
    healthy &= all(a["fresh"] for a in ages)
    try:
        depths = dict(dead_letter_depths())
        components["dead_letters"] = depths
        healthy &= not any(depths.values())
    except Exception as exc:
        components["dead_letters"] = f"unreadable: {type(exc).__name__}"
        healthy = False
    return Health(healthy=healthy, components=components)
