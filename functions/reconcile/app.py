"""Reconcile function: on its schedule, bring the ledger to what the exchange says.

In: the EventBridge scheduled event. Out: the
:class:`tickstep.usecases.reconcile.ReconcileReport` as JSON. Publishes ``LedgerDrift``
(differences found), the metric the drift alarm watches.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tickstep.usecases.reconcile import ReconcilePorts, reconcile_account
from tickstep.wiring import Dependencies, make_tracer, scheduled_entry

logger = Logger()
tracer = make_tracer(os.environ)
metrics = Metrics()


Deps = ReconcilePorts


def build_dependencies(*, prices: Any = None, clock: Callable[[], int] | None = None) -> Deps:
    """The one place this function's clients are made (once per container); the exchange
    account is opened as the execute function opens it (:mod:`tickstep.bootstrap`)."""
    from tickstep.bootstrap import aws_client, exchange_sessions, single_exchange, wall_clock_ms
    from tickstep.settings import Mode, ReconcileSettings
    from tickstep.stores import OrderStore, PortfolioStore

    settings = ReconcileSettings.from_env(os.environ)
    dynamodb = aws_client("dynamodb")
    now = clock or wall_clock_ms
    portfolio = PortfolioStore(dynamodb, settings.portfolio_table)
    markets = [m.market for m in settings.markets()]
    # The paper account holds every market; a real one is one exchange account per stack.
    account = markets[0] if settings.mode is Mode.PAPER else single_exchange(markets)
    sessions = exchange_sessions(settings, portfolio, dynamodb=dynamodb, prices=prices, clock=now)
    return Deps(
        markets=markets,
        orders=OrderStore(dynamodb, settings.orders_table),
        portfolio=portfolio,
        open_exchange=lambda: sessions(account),
        clock=now,
    )


set_dependencies, dependencies = Dependencies(build_dependencies).accessors()


@scheduled_entry(logger, tracer, metrics, smoke=dependencies)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = reconcile_account(dependencies())
    metrics.add_metric(name="LedgerDrift", unit=MetricUnit.Count, value=report.drift)
    for key, error in report.errors.items():
        logger.error("not reconciled", item=key, error=error)
    logger.info("reconciled", **{k: v for k, v in asdict(report).items() if k != "errors"})
    return asdict(report)
