"""Risk function: CheckRisk of the decide workflow.

In: ``{"signal": Signal, "intent": OrderIntent}``.
Out: ``{"intent": OrderIntent, "decision": RiskDecision}``; a denial is a decision, not an
error. A decision that trips a loss limit sets HALTED and publishes ``TradingStateChanged``.
The intent's price is checked against the latest candle in the candles table, which this
function reads itself (the event's own prices could be forged to agree with each other).
Errors: a failure worth retrying (a throttled read or write, the idempotency record's included,
which Powertools wraps in ``IdempotencyPersistenceLayerError``) leaves as ``TransientError``,
which CheckRisk retries; another delivery deciding the same intent leaves as
``IdempotencyAlreadyInProgressError``, which it waits out (:mod:`tickstep.failures`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tickstep.failures import name_transient_failures
from tickstep.messages import RiskInput, RiskOutput
from tickstep.models import Market, MarketRules, ReasonCode, TradingState
from tickstep.usecases.risk import RiskPorts, check_risk
from tickstep.wiring import Dependencies, lambda_entry, make_tracer

logger = Logger()
tracer = make_tracer(os.environ)
metrics = Metrics()


@dataclass(frozen=True)
class Deps(RiskPorts):
    clock: Callable[[], int]
    once: Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]
    """Makes a decision once per intent id (Powertools Idempotency): a redelivered intent gets
    the decision it got first, so the order workflow it starts has the same name and input."""
    register_context: Callable[[Any], None]
    """Tells Idempotency the invocation's deadline, so a decision cut short (a timeout, a
    crash) is not left "in progress" for ever but can be made again once it has expired."""


def build_dependencies() -> Deps:
    """The one place this function's clients are made (once per container)."""
    from tickstep.aws import EventBus
    from tickstep.bootstrap import aws_client, decide_once, wall_clock_ms
    from tickstep.settings import Mode, RiskSettings
    from tickstep.stores import CandleStore, ControlStore, DenialStore, PortfolioStore

    settings = RiskSettings.from_env(os.environ)
    dynamodb = aws_client("dynamodb")

    def fallback_rules(market: Market) -> MarketRules:
        """Rules ingest has not cached yet: paper trading has its defaults, others wait."""
        if settings.mode is Mode.PAPER:
            from tickstep.exchanges.paper import DEFAULT_RULES

            return DEFAULT_RULES
        raise LookupError(f"rules: none cached yet for {market.key} (ingest caches them)")

    once, register_context = decide_once(
        settings.idempotency_table, dynamodb, key="intent.intent_id", keep_s=7 * 86_400
    )

    return Deps(
        limits=settings.risk_limits(),
        candles=CandleStore(dynamodb, settings.candles_table),
        portfolio=PortfolioStore(dynamodb, settings.portfolio_table),
        control=ControlStore(dynamodb, settings.control_table),
        denials=DenialStore(dynamodb, settings.control_table),
        publisher=EventBus(aws_client("events"), settings.event_bus_name),
        fallback_rules=fallback_rules,
        start_balances=lambda: settings.paper_settings().balances,
        clock=wall_clock_ms,
        once=once,
        register_context=register_context,
    )


set_dependencies, dependencies = Dependencies(build_dependencies).accessors()


@lambda_entry(logger, tracer, metrics, smoke=dependencies, clear_state=True)
@name_transient_failures
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # pydantic directly: the Powertools Parser package loads every AWS event model (~60 ms of
    # cold start) and this input is our own model, not an AWS envelope.
    request = RiskInput.model_validate(event)
    logger.append_keys(intent_id=request.intent.intent_id, market=request.intent.market.key)
    deps = dependencies()
    deps.register_context(context)

    def decide(request: dict[str, Any]) -> dict[str, Any]:
        decided = check_risk(RiskInput.model_validate(request), deps, now_ms=deps.clock())
        return decided.model_dump(mode="json")

    result = RiskOutput.model_validate(deps.once(decide)(request=request.model_dump(mode="json")))
    decision = result.decision
    halted = (
        decision.new_trading_state is TradingState.HALTED
        or ReasonCode.TRADING_HALTED in decision.reasons
    )
    metrics.add_metric(name="TradingHalted", unit=MetricUnit.Count, value=1 if halted else 0)
    metrics.add_metric(
        name="RiskApproved" if decision.approved else "RiskDenied", unit=MetricUnit.Count, value=1
    )
    logger.info(
        "risk decided",
        approved=decision.approved,
        reasons=[r.value for r in decision.reasons],
        detail=decision.detail,
        new_trading_state=decision.new_trading_state,
    )
    return result.model_dump(mode="json")
