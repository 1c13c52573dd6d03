"""``tickstep local``: the whole pipeline on this machine, from ``template.yaml``, in moto.

A simulated clock walks the bundled candles. At every candle close the ingest function runs
(as its schedule would) and publishes ``CandlesClosed``; the decide workflow (the real ASL)
calls the signal and risk functions for each market; approved intents start the order
workflow, which records the intent and queues it on the FIFO queue; the execute function
places it on the paper exchange, which fills at the next candle's open. The runtime waits
for every execution to finish before the clock moves on, so a run is deterministic and
nothing is left running.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, TextIO

from tickstep.candles import CandleArrays, bundled_series
from tickstep.config import TradingConfig
from tickstep.exchanges.replay import ReplayFeed, SimClock
from tickstep.local import moto_state
from tickstep.local.cloud import LocalCloud, LocalRuntimeError
from tickstep.local.faults import ChaosExchange, FaultInjector
from tickstep.local.records import Delivery
from tickstep.local.report import build_report, render_local_summary
from tickstep.models import Market

__all__ = [
    "LocalRun",
    "TickClock",
    "build_report",
    "project_root",
    "render_local_summary",
    "settle",
]

SETTLE_TIMEOUT_S = 60.0
RECONCILE_AFTER_MS = 5 * 60_000
"""Reconcile runs this long after the last candle (past the execute grace window), and again
as often apart, as its schedule would, until it finds no drift (at most RECONCILE_RUNS)."""
RECONCILE_RUNS = 3


def project_root() -> Path:
    """The folder holding ``template.yaml`` (the repository, or the current directory)."""
    for candidate in (Path.cwd(), *Path(__file__).resolve().parents):
        if (candidate / "template.yaml").is_file() and (candidate / "statemachines").is_dir():
            return candidate
    raise LocalRuntimeError("template.yaml not found: run tickstep local from the project root")


def execution_name(delivery: Delivery) -> str:
    """What the execution is: ``tick-<first candle time>-<markets>m-<event id>`` for a
    CandlesClosed (80 chars max). Each delivery is its own Express execution, as a rule
    target starts on AWS; a redelivered candle is stopped later, by risk's idempotency and
    the order workflow's named start."""
    event_id = str(delivery.event.get("id", ""))
    candles = delivery.event.get("detail", {}).get("candles")
    if isinstance(candles, list) and candles:
        first = min(int(c.get("candle", {}).get("timestamp", 0)) for c in candles)
        name = f"tick-{first}-{len(candles)}m-{event_id[:8]}"
    else:
        name = f"{delivery.event.get('detail-type', 'event')}-{event_id}"
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)
    return safe[:80]


@dataclass
class Progress:
    out: TextIO
    total: int
    started: float
    every: int

    def tick(self, done: int, now_ms: int, cloud: LocalCloud) -> None:
        if done % self.every and done != self.total:
            return
        elapsed = time.monotonic() - self.started
        stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(now_ms / 1000))
        invocations = sum(len(s.durations_ms) for s in cloud.stats.values())
        print(
            f"  [{done:>5}/{self.total}] {stamp} UTC  lambda invocations {invocations:>6}"
            f"  {elapsed:5.1f}s",
            file=self.out,
            flush=True,
        )


class Attachment(Protocol):
    """Something that runs beside the replay: ``tickstep local --serve``'s dashboard server."""

    def start(self, cloud: LocalCloud) -> None:
        """The stack is up, the replay about to start."""

    def finish(self, report: dict[str, Any]) -> None:
        """The replay is over (the stack stays up until this returns)."""


@dataclass
class LocalRun:
    """One offline run: the stack, the simulated market, and what happened."""

    root: Path
    config: TradingConfig
    candles: int
    out: TextIO = sys.stdout
    backfill: int = 200
    log_path: Path | None = None
    before_report: Callable[[LocalCloud], None] | None = None
    """Runs after the replay, before the report (tests use it to redeliver events)."""
    faults: FaultInjector | None = None
    """The drill's faults; None for a clean run."""
    stop_after_intents: int | None = None
    """Stop replaying once the ledger holds this many order intents (the drill)."""
    retry_time_scale: float = 1.0
    orders_across_closes: bool = False
    """The next candle close replays once the decisions are made, with orders still in flight
    (as on AWS, where a close does not wait for the last one's orders): the drill, whose
    workflows retry. Off, each close waits for every execution (same fills on every run)."""
    attach: Attachment | None = None
    """Started once the stack is up, and given the report before the stack goes down."""
    _shown: int = dataclasses.field(default=0, init=False, repr=False)

    def run(self) -> dict[str, Any]:
        series = bundled_series(m.market for m in self.config.markets)
        clock = SimClock()
        feed = ReplayFeed(series, clock)
        order_clock = TickClock(clock, self.retry_time_scale)
        ticks = self._ticks(series)
        parameters = {
            "TradingMode": "paper",
            "Markets": json.dumps(
                [m.model_dump(mode="json") for m in self.config.markets], separators=(",", ":")
            ),
            "RiskLimits": self.config.limits.model_dump_json(),
        }
        overrides = {"PAPER_SETTINGS": self.config.paper.model_dump_json()}
        started = time.monotonic()
        cloud_ = LocalCloud(
            self.root, parameters, environment_overrides=overrides, faults=self.faults
        )
        cloud_.retry_time_scale = self.retry_time_scale
        with cloud_ as cloud:
            cloud.before_invoke = _injector(
                feed,
                clock,
                order_clock,
                self.faults,
                in_progress_ms={
                    logical_id: int(spec.timeout_s * 1000 * self.retry_time_scale)
                    for logical_id, spec in cloud.functions.items()
                },
                api_sources=_api_sources(cloud, feed),
                release=cloud.release,
            )
            log_file = None
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                log_file = self.log_path.open("w")
                cloud.log_stream = log_file
                # moto's Step Functions interpreter logs each failed state at ERROR: that is
                # the service's log, not the run's output.
                moto_handler = logging.StreamHandler(log_file)
                logging.getLogger("moto").addHandler(moto_handler)
                logging.getLogger("moto").propagate = False
            progress = Progress(self.out, len(ticks), started, max(1, len(ticks) // 20))
            print(
                f"tickstep local: {len(self.config.markets)} markets, {len(ticks)} candle closes,"
                f" template {self.root / 'template.yaml'}",
                file=self.out,
            )
            if self.attach is not None:
                self.attach.start(cloud)
            replayed = 0
            for replayed, now in enumerate(ticks, start=1):
                order_clock.set(now)
                cloud.invoke_scheduled("IngestFunction", _scheduled_event(now))
                if self.faults is not None and self.faults.roll("malformed-event", str(now)):
                    _publish_malformed(cloud, self.faults, str(now))
                settle(cloud, machines=DECISIONS if self.orders_across_closes else None)
                progress.tick(replayed, now, cloud)
                if self.stop_after_intents and self._enough_intents(cloud, started):
                    break
            _reconcile_at_end(cloud, order_clock, clock)
            if self.before_report is not None:
                self.before_report(cloud)
                settle(cloud)
            report = build_report(cloud, series, feed)
            if log_file is not None:
                report["lambda_log"] = str(self.log_path)
            report["candle_closes"] = replayed_closes(series, ticks[:replayed])
            self._finish(report, started, replayed)  # the functions log to the file meanwhile
            if log_file is not None:
                logging.getLogger("moto").removeHandler(moto_handler)
                logging.getLogger("moto").propagate = True
                log_file.close()
        return report

    def _finish(self, report: dict[str, Any], started: float, replayed: int) -> None:
        """The run's last figures; then the attachment has the report (and the stack)."""
        report["wall_seconds"] = round(time.monotonic() - started, 2)
        report["ticks"] = replayed
        if self.faults is not None:
            report["faults_injected"] = dict(sorted(self.faults.injected.items()))
        # Every candle close replayed must end in a decision (Hold, NoIntent, Denied,
        # OrderStarted); a valid one that failed (MarketFailed besides the malformed events the
        # drill published) or never ran is a decision lost.
        outcomes = report["signals"]
        decided = sum(outcomes.values()) - outcomes.get("MarketFailed", 0)
        report["undecided_candle_closes"] = max(report["candle_closes"] - decided, 0)
        if self.attach is not None:
            self.attach.finish(report)

    def _enough_intents(self, cloud: LocalCloud, started: float) -> bool:
        """Whether the ledger holds ``stop_after_intents`` intents; shows progress by 5%."""
        assert self.stop_after_intents
        intents = _intents(cloud)
        step = max(1, self.stop_after_intents // 20)
        if intents // step > self._shown // step:
            print(
                f"  intents {intents:>5}/{self.stop_after_intents}"
                f"  ({time.monotonic() - started:5.1f}s)",
                file=self.out,
                flush=True,
            )
        self._shown = intents
        return intents >= self.stop_after_intents

    def _ticks(self, series: dict[Market, CandleArrays]) -> list[int]:
        start = max(
            int(a.timestamp[0]) + (self.backfill + 1) * m.timeframe_ms for m, a in series.items()
        )
        closes: set[int] = set()
        for market, arrays in series.items():
            opens = arrays.timestamp[:-1]  # the last candle has no next open to fill at
            close = opens + market.timeframe_ms
            closes.update(int(t) for t in close[close >= start][: self.candles])
        ordered = sorted(closes)[: self.candles]
        if not ordered:
            raise LocalRuntimeError("no candle closes to replay: fewer candles than the backfill")
        return ordered


def _reconcile_at_end(cloud: LocalCloud, order_clock: TickClock, clock: SimClock) -> None:
    """Once every execution has ended (the orders still in flight included), reconcile after
    the execute function's grace window has passed, as the schedule would: orders left unknown
    are settled against the exchange. On AWS that is after every send; here the order path's
    clock ran on while workflows retried (further on a busy machine), so count from the latest
    time it told, not from the last candle close, and go on while orders are still pending."""
    settle(cloud)
    for _ in range(RECONCILE_RUNS):
        order_clock.set(order_clock.latest_ms + RECONCILE_AFTER_MS)
        result = cloud.invoke_scheduled("ReconcileFunction", _scheduled_event(clock.now_ms()))
        settle(cloud)
        if result is not None and not result.get("drift") and not result.get("pending"):
            break


def replayed_closes(series: dict[Market, CandleArrays], ticks: list[int]) -> int:
    """How many (market, candle close) the replay of ``ticks`` produced: one decision each."""
    if not ticks:
        return 0
    first, last = ticks[0], ticks[-1]
    total = 0
    for market, arrays in series.items():
        closes = arrays.timestamp[:-1] + market.timeframe_ms
        total += int(((closes >= first) & (closes <= last)).sum())
    return total


def _scheduled_event(now_ms: int) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"local-{now_ms}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_ms / 1000)),
        "region": "us-east-1",
        "resources": [],
        "detail": {},
    }


def _api_sources(cloud: LocalCloud, feed: ReplayFeed) -> dict[str, Any]:
    """What the API function's dashboard reads here and not on AWS: the replay's mark prices
    (tickstep.dashboard.local_sources)."""
    from tickstep.dashboard.local_sources import feed_prices

    return {"prices": feed_prices(feed)}


def _injector(
    feed: ReplayFeed,
    clock: SimClock,
    order_clock: TickClock,
    faults: FaultInjector | None = None,
    *,
    in_progress_ms: dict[str, int] | None = None,
    api_sources: dict[str, Any] | None = None,
    release: Callable[[], None] = lambda: None,
) -> Callable[[str, ModuleType], None]:
    """Hand the replay feed and the simulated clock to the functions that read the market
    or the time (as the ccxt client and the wall clock would be in AWS), and, in a drill, an
    exchange that misbehaves, and the ``release`` fault: a deploy as an order is executed.

    ``in_progress_ms``: how long, per function, Idempotency may hold a decision "in progress"
    (on AWS, the invocation's remaining time: at most the function's timeout). A decision cut
    short leaves its record in progress for that long, and the decide workflow's Retry waits it
    out; the drill runs those retries ``1 / retry_time_scale`` as fast, so the hold is scaled
    the same way, or the retries would run out long before a record expires."""
    # The modules given their collaborators: a release makes new ones, and a WeakSet never
    # mistakes a new module for an old one that was freed at the same address (as ids would).
    injected: weakref.WeakSet[ModuleType] = weakref.WeakSet()
    hidden: dict[str, int] = {}  # what the misbehaving exchange is hiding, and until when

    def inject(logical_id: str, module: ModuleType) -> None:
        if logical_id == "ExecuteFunction" and faults is not None and faults.roll("release"):
            # A deploy while this order is in flight: its execute runs on the version it was
            # sent to, every later invocation (a retry, reconcile, the next order) on a new one.
            release()
        if module in injected:
            return
        injected.add(module)
        if logical_id == "IngestFunction":
            deps = module.build_dependencies(source=feed)
        elif logical_id in ("ExecuteFunction", "ReconcileFunction"):
            deps = module.build_dependencies(prices=feed, clock=order_clock.now_ms)
            if faults is not None:
                deps = dataclasses.replace(
                    deps,
                    open_exchange=_chaotic(deps.open_exchange, faults, hidden, order_clock.now_ms),
                )
        elif logical_id == "ApiFunction":
            deps = module.build_dependencies(**(api_sources or {}))
        else:
            deps = module.build_dependencies()
        if logical_id in ("ExecuteFunction", "ReconcileFunction"):
            pass  # they keep the order clock: it runs on while an order is retried
        elif (
            dataclasses.is_dataclass(deps)
            and not isinstance(deps, type)
            and any(f.name == "clock" for f in dataclasses.fields(deps))
        ):
            deps = dataclasses.replace(deps, clock=clock.now_ms)
        hold_ms = (in_progress_ms or {}).get(logical_id)
        if hold_ms is not None and hasattr(deps, "register_context"):
            deps = dataclasses.replace(
                deps, register_context=_scaled_context(deps.register_context, hold_ms)
            )
        module.set_dependencies(deps)

    return inject


class _HeldFor:
    """A Lambda context whose remaining time is ``remaining_ms`` (see :func:`_injector`)."""

    def __init__(self, inner: Any, remaining_ms: int) -> None:
        self._inner = inner
        self._remaining_ms = remaining_ms

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get_remaining_time_in_millis(self) -> int:
        return min(self._remaining_ms, int(self._inner.get_remaining_time_in_millis()))


def _scaled_context(register: Callable[[Any], None], hold_ms: int) -> Callable[[Any], None]:
    def register_scaled(context: Any) -> None:
        register(_HeldFor(context, max(1, hold_ms)))

    return register_scaled


class TickClock:
    """Simulated time for the order path: the candle close, running on at ``1 / scale`` of
    real time while the state machines retry (their intervals are slept ``scale`` times as
    long), so the execute function's grace window passes as it would on AWS."""

    def __init__(self, clock: SimClock, scale: float) -> None:
        if scale <= 0:
            raise ValueError("retry_time_scale: must be > 0")
        self._clock = clock
        self._scale = scale
        self._since = time.monotonic()
        self.latest_ms = 0
        """The latest time this clock has told: each tick sets it back to its candle close,
        but an order retried for long in one tick may have been sent later than the next
        tick's close (time runs 1 / scale as fast, faster still on a busy machine)."""

    def set(self, now_ms: int) -> None:
        self._clock.set(now_ms)
        self._since = time.monotonic()

    def now_ms(self) -> int:
        elapsed_ms = (time.monotonic() - self._since) * 1000 / self._scale
        now = self._clock.now_ms() + int(elapsed_ms)
        self.latest_ms = max(self.latest_ms, now)
        return now


def _chaotic(
    open_exchange: Callable[..., Any],
    faults: FaultInjector,
    hidden: dict[str, int],
    clock: Callable[[], int],
) -> Callable[..., Any]:
    def open_chaotic(*args: Any) -> Any:
        session = open_exchange(*args)
        return dataclasses.replace(
            session, exchange=ChaosExchange(session.exchange, faults, hidden, clock)
        )

    return open_chaotic


def _intents(cloud: LocalCloud) -> int:
    table = cloud.functions["ExecuteFunction"].environment["ORDERS_TABLE"]
    return moto_state.item_count(table)


MALFORMED = ("unknown-market", "missing-close", "negative-price", "wrong-type")


def _publish_malformed(cloud: LocalCloud, faults: FaultInjector, key: str) -> None:
    """A CandlesClosed event whose candle is broken, on the project bus."""
    candle: dict[str, Any] = {
        "timestamp": 1515560100000,
        "open": "0.0984",
        "high": "0.0994766",
        "low": "0.09828605",
        "close": "0.0994766",
        "volume": "1820.5",
    }
    market: dict[str, Any] = {"exchange": "paper", "symbol": "ETH/BTC", "timeframe": "5m"}
    kind = faults.choice(list(MALFORMED), key)
    if kind == "unknown-market":
        market["symbol"] = "NOPE/BTC"
    elif kind == "missing-close":
        del candle["close"]
    elif kind == "negative-price":
        candle["low"] = "-1"
    else:
        candle["volume"] = {"not": "a number"}
    cloud.events.put_events(
        Entries=[
            {
                "Source": "tickstep.ingest",
                "DetailType": "CandlesClosed",
                "Detail": json.dumps({"candles": [{"market": market, "candle": candle}]}),
                "EventBusName": cloud.resolver.refs["EventBus"],
            }
        ]
    )


SETTLE_WAKE_S = 0.05
"""settle's longest wait between polls: it is woken sooner by ``LocalCloud.progress`` (an
execution ended, a message was queued, a rule matched); the timer only catches what no hook
reports (a message whose visibility timeout ran out)."""


DECISIONS = ("DecideStateMachine",)


def settle(
    cloud: LocalCloud,
    timeout_s: float = SETTLE_TIMEOUT_S,
    *,
    machines: Sequence[str] | None = None,
) -> None:
    """Deliver events and queue messages until no execution is running (with a deadline);
    ``machines``: only these state machines' executions are waited for."""
    deadline = time.monotonic() + timeout_s
    arns = [
        arn
        for logical_id, arn in cloud.state_machines.items()
        if machines is None or logical_id in machines
    ]
    while True:
        cloud.progress.clear()  # before looking: what happens from here on wakes the wait
        moved = cloud.deliver_pending(execution_name) + cloud.poll_sqs_sources()
        if moved:
            continue
        running = moto_state.running_executions(arns)
        if not running and not cloud.pending:
            return
        if time.monotonic() > deadline:
            stuck = "; ".join(_where(cloud, arn) for arn in running[:5])
            raise LocalRuntimeError(
                f"{len(running)} executions still running after {timeout_s}s: {stuck}"
            )
        # Polling is not free (every call goes through moto and holds the GIL the running
        # executions need): wait until something moves.
        cloud.progress.wait(SETTLE_WAKE_S)


def _where(cloud: LocalCloud, execution_arn: str) -> str:
    """``name at <last state entered>``: where a stuck execution waits."""
    # Oldest first: moto 5.2.5 ignores reverseOrder.
    events = cloud.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    entered = next(
        (
            e["stateEnteredEventDetails"]["name"]
            for e in reversed(events)
            if e["type"].endswith("Entered")
        ),
        "start",
    )
    return f"{execution_arn.rsplit(':', 1)[-1]} at {entered}"
