"""Each handler builds its dependencies from its own settings class: with any variable that
class requires left empty, the cold start fails naming it (tests/unit/test_settings.py checks
the classes against the template)."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType

import pytest

from tests.pipeline.conftest import Aws, FakeContext
from tests.unit.test_settings import FUNCTIONS, _required
from tickstep.settings import ENV_VARS, SettingsError
from tickstep.wiring import SMOKE_EVENT


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_needs_exactly_its_class_variables(
    name: str, function: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = function(name)
    assert module.build_dependencies() is not None  # the test environment has them all
    for variable in sorted(_required(FUNCTIONS[name])):
        with monkeypatch.context() as env:
            env.setenv(variable, "")
            module.set_dependencies(None)
            with pytest.raises(SettingsError, match=f"{variable}: not set"):
                module.build_dependencies()
    unread = set(ENV_VARS.values()) - FUNCTIONS[name].variables()
    for variable in sorted(unread):  # what it does not read, it does not need
        with monkeypatch.context() as env:
            env.delenv(variable, raising=False)
            assert module.build_dependencies() is not None


def _market(exchange: str, symbol: str) -> dict[str, object]:
    return {"market": {"exchange": exchange, "symbol": symbol, "timeframe": "5m"}, "strategy": {}}


@pytest.mark.parametrize("mode", ["sandbox", "live"])
def test_reconcile_with_markets_on_two_exchanges_refuses_to_start_naming_them(
    function: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """One exchange account per stack: reconcile opens it once, so markets on two exchanges
    would leave one of them never reconciled."""
    monkeypatch.setenv("TRADING_MODE", mode)
    monkeypatch.setenv("EXCHANGE_SECRET_ARN", "tickstep/exchange")
    markets = [_market("binance", "ETH/BTC"), _market("kraken", "ETH/BTC")]
    monkeypatch.setenv("MARKETS", json.dumps(markets))
    module = function("reconcile")

    with pytest.raises(
        ValueError, match=r"one exchange account per stack, got \['binance', 'kraken'\]"
    ):
        module.build_dependencies()

    monkeypatch.setenv("MARKETS", json.dumps([markets[0], _market("binance", "BTC/USDT")]))
    assert [m.key for m in module.build_dependencies().markets] == [
        "binance:ETH/BTC:5m",
        "binance:BTC/USDT:5m",
    ]


def test_paper_reconcile_opens_one_account_for_markets_on_any_exchange(
    function: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The paper account holds every market, whatever exchange each names."""
    markets = [_market("binance", "ETH/BTC"), _market("kraken", "ETH/BTC")]
    monkeypatch.setenv("MARKETS", json.dumps(markets))
    assert len(function("reconcile").build_dependencies().markets) == 2


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_answers_the_smoke_event_by_building_its_dependencies_and_nothing_else(
    name: str,
    aws: Aws,
    function: Callable[[str], ModuleType],
    context: FakeContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What validate-deployment.sh and the pre-traffic hook send each version: a version that
    cannot start (here a required variable missing) fails it, one that can answers it, and
    neither reads nor writes a table or the bus."""
    module = function(name)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "7")

    answer = module.handler(SMOKE_EVENT, context)

    assert answer == {"tickstep": "smoke", "ok": True, "version": "7"}
    assert all(aws.items(table) == [] for table in aws.tables)
    assert aws.bus_events() == []
    required = sorted(_required(FUNCTIONS[name]))[0]
    monkeypatch.setenv(required, "")
    module.set_dependencies(None)
    with pytest.raises(SettingsError, match=required):
        module.handler(SMOKE_EVENT, context)


def test_api_cold_start_makes_the_dynamodb_client_only_and_the_rest_when_first_used(
    aws: Aws,
    function: Callable[[str], ModuleType],
    context: FakeContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each boto3 client costs tens of ms to make: the dashboard's CloudWatch, SQS and SSM
    clients and the kill switch's EventBridge client are made when a request needs them."""
    from tests.pipeline.test_handlers import api_event
    from tickstep import bootstrap

    made: list[str] = []
    real = bootstrap.aws_client

    def recording(service: str) -> object:
        made.append(service)
        return real(service)

    monkeypatch.setattr(bootstrap, "aws_client", recording)
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URLS", aws.bus_queue_url)
    monkeypatch.setenv("RELEASE_PARAMETER", "/tickstep/tickstep-test/release")
    api = function("api")

    api.set_dependencies(api.build_dependencies())
    assert made == ["dynamodb"]

    api.handler(api_event("GET", "/dashboard"), context)
    assert sorted(made) == ["cloudwatch", "dynamodb", "sqs", "ssm"]

    api.handler(api_event("POST", "/halt", {"reason": "game day"}), context)
    assert made.count("events") == 1
