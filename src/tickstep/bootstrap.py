"""What every Lambda handler builds its dependencies from: AWS clients with one retry policy,
the wall clock, and the exchange, paper or ccxt, chosen in one place.

Each handler's ``build_dependencies`` picks the stores and ports its use case needs from
here, once per container (:class:`tickstep.wiring.Dependencies`). Nothing heavy is imported at
module scope: boto3, ccxt, the paper exchange and Powertools Parameters are imported by the
function that needs them, so the API function still imports neither ccxt nor numpy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tickstep.models import Market
from tickstep.ports import ExchangeSession

if TYPE_CHECKING:
    from tickstep.exchanges.ccxt_adapter import CcxtExchange
    from tickstep.exchanges.paper import PriceSource
    from tickstep.exchanges.port import CandleSource
    from tickstep.models import MarketRules
    from tickstep.settings import OrderPathSettings, Settings
    from tickstep.stores import PortfolioStore

RETRIES = {"mode": "standard", "total_max_attempts": 6}
"""Every AWS client's retry policy: the SDK's standard mode (exponential back-off with full
jitter, throttles and 5xx and connection errors retried) over six attempts in all, so a
throttled DynamoDB write waits out a burst inside the function before the workflow's own
Retry has to."""
TIMEOUTS = {"connect_timeout": 5, "read_timeout": 20}
"""Well inside every function's own timeout (template.yaml: 10 s to 90 s): a hung connection
is retried instead of using up the invocation."""

SECRET_MAX_AGE_S = 300
"""How long a read exchange secret is used before it is read again: a rotated key is picked
up within five minutes, without a redeploy."""


def aws_client(service: str) -> Any:
    """A boto3 client for ``service`` with :data:`RETRIES` and :data:`TIMEOUTS`."""
    import boto3
    from botocore.config import Config

    return boto3.client(service, config=Config(retries=RETRIES, **TIMEOUTS))


class LazyClient:
    """A boto3 client made on first use (each costs tens of milliseconds to make): for calls
    most invocations never make, such as the API's dashboard-only CloudWatch, SQS and SSM reads
    and its kill-switch publish, which would otherwise all be paid on every cold start."""

    def __init__(self, service: str, make: Callable[[str], Any] | None = None) -> None:
        self._service = service
        self._make = make  # None: this module's aws_client, as it is when first used
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = (self._make or aws_client)(self._service)
        return getattr(self._client, name)


Decide = Callable[..., dict[str, Any]]


def decide_once(
    table: str | None, dynamodb: Any, *, key: str, keep_s: int
) -> tuple[Callable[[Decide], Decide], Callable[[Any], None]]:
    """Make each decision once per ``key`` (a JMESPath into the request), with Powertools
    Idempotency over ``table``: a redelivered request gets the answer it got first, for
    ``keep_s``. Also what tells Idempotency the invocation's deadline, so a decision cut short
    is not left "in progress" for ever. Without a table, every request is decided."""
    if not table:
        return (lambda decide: decide), (lambda context: None)
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    persistence = DynamoDBPersistenceLayer(table_name=table, boto3_client=dynamodb)
    config = IdempotencyConfig(event_key_jmespath=key, expires_after_seconds=keep_s)

    def once(decide: Decide) -> Decide:
        wrapped: Decide = idempotent_function(
            decide, data_keyword_argument="request", persistence_store=persistence, config=config
        )
        return wrapped

    return once, config.register_lambda_context


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def exchange_sessions(
    settings: OrderPathSettings,
    portfolio: PortfolioStore,
    *,
    dynamodb: Any,
    prices: PriceSource | None = None,
    clock: Callable[[], int] = wall_clock_ms,
) -> Callable[[Market], ExchangeSession]:
    """How execute and reconcile reach the exchange, by trading mode.

    Paper: the paper account kept in the portfolio table, filling at ``prices`` (the offline
    runtime hands in its replay feed; in AWS, the latest stored candle's close). Sandbox and
    live: ccxt with the exchange secret (Powertools Parameters, cached
    :data:`SECRET_MAX_AGE_S`), one client per exchange and secret.
    """
    from tickstep.settings import Mode

    if settings.mode is Mode.PAPER:
        return _paper_sessions(settings, portfolio, dynamodb=dynamodb, prices=prices, clock=clock)
    assert settings.exchange_secret_arn is not None  # OrderPathSettings requires it here
    return _ccxt_sessions(settings.exchange_secret_arn, settings.mode is Mode.SANDBOX)


def _paper_sessions(
    settings: OrderPathSettings,
    portfolio: PortfolioStore,
    *,
    dynamodb: Any,
    prices: PriceSource | None,
    clock: Callable[[], int],
) -> Callable[[Market], ExchangeSession]:
    from tickstep.exchanges.paper import DEFAULT_RULES
    from tickstep.paper_account import PaperAccount, StoredCandlePrices
    from tickstep.stores import CandleStore

    paper = settings.paper_settings()
    markets = [m.market for m in settings.markets()]
    if prices is None:
        assert settings.candles_table is not None  # OrderPathSettings requires it for paper
        prices = StoredCandlePrices(CandleStore(dynamodb, settings.candles_table), clock)

    def rules(market: Market) -> MarketRules:
        return portfolio.rules(market) or DEFAULT_RULES

    def open_paper(market: Market) -> ExchangeSession:
        account = PaperAccount(portfolio, prices, paper, rules, markets)
        return ExchangeSession(account.open(), account.commit)

    return open_paper


def _ccxt_sessions(secret_name: str, sandbox: bool) -> Callable[[Market], ExchangeSession]:
    from aws_lambda_powertools.utilities.parameters import get_secret

    from tickstep.exchanges.ccxt_adapter import CcxtExchange, build_ccxt_client
    from tickstep.exchanges.errors import AuthenticationFailed

    clients: dict[tuple[str, str], CcxtExchange] = {}

    def open_exchange(market: Market) -> ExchangeSession:
        secret = get_secret(secret_name, max_age=SECRET_MAX_AGE_S, transform="json")
        if not isinstance(secret, dict) or not secret.get("apiKey"):
            raise AuthenticationFailed("the exchange secret has no apiKey", code="no_secret")
        values = tuple(str(v) for v in secret.values() if v)
        # The whole secret is the key: a rotated secret or password behind the same apiKey
        # gets a new client too.
        key = (market.exchange, json.dumps(secret, sort_keys=True, default=str))
        if key not in clients:
            clients.clear()
            clients[key] = CcxtExchange(
                build_ccxt_client(
                    market.exchange,
                    api_key=secret.get("apiKey"),
                    secret=secret.get("secret"),
                    password=secret.get("password"),
                    sandbox=sandbox,
                ),
                secrets=values,
            )
        return ExchangeSession(clients[key], lambda: None, values)

    return open_exchange


def single_exchange(markets: Sequence[Market]) -> Market:
    """The market reconcile opens the account with: one exchange account per stack."""
    exchanges = sorted({m.exchange for m in markets})
    if len(exchanges) != 1:
        raise ValueError(f"MARKETS: one exchange account per stack, got {exchanges}")
    return markets[0]


def candle_source(settings: Settings) -> tuple[CandleSource, Callable[[Market], MarketRules]]:
    """Ingest's source of candles and of each market's rules: the exchange's public API."""
    from tickstep.exchanges.ccxt_adapter import CcxtCandles
    from tickstep.settings import Mode

    source = CcxtCandles(sandbox=settings.mode is Mode.SANDBOX)
    return source, source.market_rules
