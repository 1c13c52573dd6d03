"""Reconcile function: on its schedule, bring the ledger to what the exchange says.

In: the EventBridge scheduled event. Out: the
:class:`tickstep.usecases.reconcile.ReconcileReport` as JSON. Publishes ``LedgerDrift``
(differences found), the metric the drift alarm watches.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from tickstep.models import Market
from tickstep.orders import DEFAULT_GRACE_MS
from tickstep.ports import OrderRepository, PortfolioRepository
from tickstep.redaction import redact
from tickstep.usecases.reconcile import reconcile
from tickstep.wiring import Dependencies, make_tracer

if TYPE_CHECKING:
    from tickstep.exchanges.port import ExchangePort

logger = Logger()
tracer = make_tracer(os.environ)
metrics = Metrics()


@dataclass(frozen=True)
class Session:
    """``secrets``: values to keep out of the report and the log lines."""

    exchange: ExchangePort
    commit: Callable[[], None]
    secrets: Sequence[str] = ()


@dataclass(frozen=True)
class Deps:
    markets: list[Market]
    orders: OrderRepository
    portfolio: PortfolioRepository
    open_exchange: Callable[[], Session]
    clock: Callable[[], int]
    grace_ms: int = DEFAULT_GRACE_MS


def wall_clock_ms() -> int:
    import time

    return time.time_ns() // 1_000_000


def build_dependencies(*, prices: Any = None, clock: Callable[[], int] | None = None) -> Deps:
    """The one place this function's clients are made (once per container). The exchange is
    the paper account (prices injectable, as in the execute function) or ccxt with the
    exchange secret (Powertools Parameters, cached 5 minutes)."""
    import boto3

    from tickstep.settings import Mode, Settings
    from tickstep.stores import CandleStore, OrderStore, PortfolioStore

    settings = Settings.from_env(os.environ)
    dynamodb = boto3.client("dynamodb")
    now = clock or wall_clock_ms
    portfolio = PortfolioStore(dynamodb, settings.require("portfolio_table"))
    markets = [m.market for m in settings.markets()]

    if settings.mode is Mode.PAPER:
        from tickstep.exchanges.paper import DEFAULT_RULES
        from tickstep.paper_account import PaperAccount, StoredCandlePrices

        paper = settings.paper_settings()
        source = prices or StoredCandlePrices(
            CandleStore(dynamodb, settings.require("candles_table")), now
        )

        def open_exchange() -> Session:
            account = PaperAccount(
                portfolio, source, paper, lambda m: portfolio.rules(m) or DEFAULT_RULES, markets
            )
            return Session(account.open(), account.commit)

    else:
        from aws_lambda_powertools.utilities.parameters import get_secret

        from tickstep.exchanges.ccxt_adapter import CcxtExchange, build_ccxt_client

        secret_name = settings.require("exchange_secret_arn")
        exchanges = {m.exchange for m in markets}
        if len(exchanges) != 1:
            raise ValueError(f"MARKETS: one exchange account per stack, got {sorted(exchanges)}")
        exchange_id = exchanges.pop()
        sandbox = settings.mode is Mode.SANDBOX

        def open_exchange() -> Session:
            secret = get_secret(secret_name, max_age=300, transform="json")
            if not isinstance(secret, dict):
                raise ValueError("the exchange secret is not a JSON object")
            client = build_ccxt_client(
                exchange_id,
                api_key=secret.get("apiKey"),
                secret=secret.get("secret"),
                password=secret.get("password"),
                sandbox=sandbox,
            )
            values = tuple(str(v) for v in secret.values() if v)
            return Session(CcxtExchange(client, secrets=values), lambda: None, values)

    return Deps(
        markets=markets,
        orders=OrderStore(dynamodb, settings.require("orders_table")),
        portfolio=portfolio,
        open_exchange=open_exchange,
        clock=now,
    )


_deps: Dependencies[Deps] = Dependencies(build_dependencies)
set_dependencies = _deps.set
dependencies = _deps.get


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    tick = parse(event=event, model=EventBridgeModel)
    logger.append_keys(schedule_event=tick.id)
    deps = dependencies()
    session = deps.open_exchange()
    report = reconcile(
        deps.markets,
        exchange=session.exchange,
        orders=deps.orders,
        portfolio=deps.portfolio,
        now_ms=deps.clock(),
        commit=session.commit,
        grace_ms=deps.grace_ms,
    )
    # An exchange error may echo a signed request, key included.
    report.errors = {k: redact(v, session.secrets) for k, v in report.errors.items()}
    metrics.add_metric(name="LedgerDrift", unit=MetricUnit.Count, value=report.drift)
    for key, error in report.errors.items():
        logger.error("not reconciled", item=key, error=error)
    logger.info("reconciled", **{k: v for k, v in asdict(report).items() if k != "errors"})
    return asdict(report)
