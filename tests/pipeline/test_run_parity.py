"""Parity: the same candles and configuration through `tickstep run` (the use cases over the
in-memory adapters) and through `tickstep local` (the real handlers and state machines in moto)
give the same signals, the same risk decisions and the same fills, exactly."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest

from tests.pipeline.conftest import decide_history, paper_config, replay
from tickstep.candles import bundled_series
from tickstep.cli import main
from tickstep.config import load_config_dict
from tickstep.exchanges.paper import DEFAULT_RULES, PaperState
from tickstep.local.cloud import LocalCloud
from tickstep.models import RiskDecision, Side, Signal, SignalAction
from tickstep.simulate import PaperSession, SessionResult
from tickstep.stores import PortfolioStore

ROOT = Path(__file__).resolve().parents[2]
CANDLES = 40  # candle closes replayed: ~10 s of `tickstep local`
QUOTE_AMOUNT = Decimal("0.02")

CONFIG = paper_config(
    {"name": "sma_cross", "params": {"fast": 2, "slow": 3}},
    slippage="0.0005",
    max_position_per_market="0.05",
    cooldown_after_loss_ms=1_800_000,
    max_orders_per_hour=4,
    sizing={"kind": "fixed_quote", "quote_amount": str(QUOTE_AMOUNT)},
    size_by_confidence=True,
)
"""A fast crossover over 40 closes of ETH/BTC: buys sized by the signal's strength, sells, a
SELL with nothing held, and denials by cooldown, orders per hour and minimum notional."""

SignalKey = tuple[str, int, str]
DecisionKey = tuple[str, bool, Decimal | None, tuple[str, ...]]
FillKey = tuple[str, Decimal, Decimal, Decimal]


@dataclass
class Seen:
    """What one runtime did, in comparable form."""

    signals: list[SignalKey]
    """Every BUY and SELL signal: market, candle time, action (HOLD is not stored by the
    signal function)."""
    decisions: list[DecisionKey]
    """Every risk decision: intent id, approved, amount, reason codes."""
    fills: list[FillKey]
    """Every fill of the paper exchange: client order id, amount, price, fee."""
    summary: dict[str, Any]


def signal_key(signal: Signal) -> SignalKey:
    return (signal.market.key, signal.candle_time, signal.action.value)


def decision_key(decision: RiskDecision) -> DecisionKey:
    return (
        decision.intent_id,
        decision.approved,
        decision.amount,
        tuple(r.value for r in decision.reasons),
    )


@pytest.fixture(scope="module")
def local() -> Seen:
    captured: dict[str, Any] = {}

    def capture(cloud: LocalCloud) -> None:
        signals = [
            Signal.model_validate_json(item["signal"]["S"])
            for page in cloud.ddb.get_paginator("scan").paginate(
                TableName=cloud.tables["SignalsTable"]
            )
            for item in page["Items"]
        ]
        captured["signals"] = sorted(signal_key(s) for s in signals)
        decisions = []
        for event in decide_history(cloud):
            details = event.get("stateExitedEventDetails", {})
            if details.get("name") == "CheckRisk" and details.get("output"):
                output = json.loads(details["output"])
                decision = RiskDecision.model_validate(output["decision"])
                decisions.append((output["intent"]["candle_time"], decision))
        captured["decisions"] = [decision_key(d) for _, d in sorted(decisions, key=lambda x: x[0])]
        state_json, _ = PortfolioStore(cloud.ddb, cloud.tables["PortfolioTable"]).paper_state()
        fills = PaperState.model_validate_json(state_json).fills if state_json else []
        captured["fills"] = [(f.client_order_id, f.amount, f.price, f.fee) for f in fills]

    report = replay(load_config_dict(CONFIG), CANDLES, capture)
    assert report["non_terminal_executions"] == 0
    assert report["orders"]["ledger_mismatches"] == 0
    return Seen(captured["signals"], captured["decisions"], captured["fills"], report)


@pytest.fixture(scope="module")
def session() -> SessionResult:
    """What `tickstep run --candles 40` runs, kept whole."""
    config = load_config_dict(CONFIG)
    series = bundled_series(m.market for m in config.markets)
    return PaperSession(config, series, candles=CANDLES).run()


@pytest.fixture(scope="module")
def run(session: SessionResult, tmp_path_factory: pytest.TempPathFactory) -> Seen:
    folder = tmp_path_factory.mktemp("run")
    (folder / "config.json").write_text(json.dumps(CONFIG))
    report = folder / "report.json"
    args = ["run", "--config", str(folder / "config.json"), "--candles", str(CANDLES)]
    assert main([*args, "--report", str(report)]) == 0
    return Seen(
        signals=sorted(signal_key(s) for s in session.signals if s.action is not SignalAction.HOLD),
        decisions=[decision_key(r.decision) for r in session.risk],
        fills=[(f.client_order_id, f.amount, f.price, f.fee) for f in session.fills],
        summary=json.loads(report.read_text()),
    )


def test_run_and_local_when_same_candles_and_config_then_same_signals(
    run: Seen, local: Seen
) -> None:
    assert run.signals == local.signals
    assert {a for _, _, a in run.signals} == {"BUY", "SELL"}


def test_run_and_local_when_same_candles_and_config_then_same_risk_decisions(
    run: Seen, local: Seen
) -> None:
    assert run.decisions == local.decisions
    reasons = {r for _, _, _, rs in run.decisions for r in rs}
    assert {"APPROVED", "COOLDOWN", "MAX_ORDERS_PER_HOUR"} <= reasons
    assert run.summary["decisions"] == local.summary["risk_decisions"]


def test_run_and_local_when_same_candles_and_config_then_same_fills(run: Seen, local: Seen) -> None:
    assert len(run.fills) >= 4
    assert run.fills == local.fills
    assert sum(m["fills"] for m in run.summary["markets"].values()) == local.summary["fills"]
    fees = sum((Decimal(m["fees"]) for m in run.summary["markets"].values()), Decimal(0))
    assert fees == Decimal(local.summary["fees"])


def test_run_when_sell_with_nothing_held_then_no_intent_as_in_local(
    session: SessionResult, local: Seen
) -> None:
    """The strategy says SELL with nothing held: no intent, so no risk decision (not a
    NO_POSITION denial), as the decide workflow's NoIntent."""
    decided = {(r.intent.market.key, r.intent.candle_time) for r in session.risk}
    no_intent = [
        s
        for s in session.signals
        if s.action is not SignalAction.HOLD and (s.market.key, s.candle_time) not in decided
    ]
    assert no_intent
    assert all(s.action is SignalAction.SELL for s in no_intent)
    assert local.summary["signals"]["NoIntent"] == len(no_intent)
    assert all("NO_POSITION" not in rs for _, _, _, rs in local.decisions)


def test_run_when_size_by_confidence_then_buys_are_sized_by_the_signal_strength(
    session: SessionResult,
) -> None:
    buys = [r for r in session.risk if r.decision.approved and r.intent.side is Side.BUY]
    assert buys
    for r in buys:
        assert r.intent.confidence is not None
        budget = QUOTE_AMOUNT * Decimal(str(r.intent.confidence))
        with localcontext() as context:
            context.rounding = ROUND_DOWN  # as risk sizes: never above the budget
            sized = DEFAULT_RULES.amount_to_precision(budget / r.intent.reference_price)
        assert r.decision.amount == sized
    assert any(r.intent.confidence is not None and r.intent.confidence < 1 for r in buys)
    assert len(Counter(r.decision.amount for r in buys)) > 1
