"""What the offline runtime hands the API function for the dashboard, which AWS does not
keep: the replay's mark price, and risk's decisions read back from the decide workflow's
executions (moto keeps the history of Express executions; AWS does not)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from tickstep.exchanges.errors import FatalExchangeError
from tickstep.models import Market

if TYPE_CHECKING:
    from tickstep.exchanges.replay import ReplayFeed
    from tickstep.local.cloud import LocalCloud


def feed_prices(feed: ReplayFeed) -> Callable[[Market], Decimal | None]:
    """The price the local report values positions at: the open of the candle in progress."""

    def price(market: Market) -> Decimal | None:
        try:
            return feed.price(market, feed.now_ms())
        except FatalExchangeError:  # no candle in progress: the API falls back to the last close
            return None

    return price


class RiskDenials:
    """Risk denials by reason code, counted over the decide executions that have ended (each
    read once), as ``tickstep local``'s report counts them."""

    def __init__(self, cloud: LocalCloud) -> None:
        self._cloud = cloud
        self._read: set[str] = set()
        self._decisions: Counter[str] = Counter()

    def __call__(self) -> dict[str, int]:
        from tickstep.local.recorder import runtime_calls

        with runtime_calls():  # the runtime reads these for the API; AWS keeps none
            self._read_new_executions()
        return {
            key.removeprefix("denied:"): n
            for key, n in sorted(self._decisions.items())
            if key.startswith("denied:")
        }

    def _read_new_executions(self) -> None:
        from tickstep.local.report import count_decide_outcomes

        sfn = self._cloud.sfn
        arn = self._cloud.state_machines["DecideStateMachine"]
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
            for execution in page["executions"]:
                name = execution["executionArn"]
                if name in self._read or execution["status"] == "RUNNING":
                    continue
                history = sfn.get_execution_history(executionArn=name, maxResults=1000)
                count_decide_outcomes(history["events"], Counter(), self._decisions)
                self._read.add(name)
