"""Each function's environment is a typed class whose fields are the variables it reads: the
template sets every one of them, a missing one fails the cold start with its name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tickstep.local.template import load_template
from tickstep.settings import (
    ENV_VARS,
    ApiSettings,
    ExecuteSettings,
    IngestSettings,
    Mode,
    ReconcileSettings,
    RiskSettings,
    Settings,
    SettingsError,
    SignalSettings,
)

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS: dict[str, type[Settings]] = {
    "ingest": IngestSettings,
    "signal": SignalSettings,
    "risk": RiskSettings,
    "execute": ExecuteSettings,
    "reconcile": ReconcileSettings,
    "api": ApiSettings,
}
MARKETS = json.dumps(
    [{"market": {"exchange": "binance", "symbol": "ETH/BTC", "timeframe": "5m"}, "strategy": {}}]
)


def _template_environment(function: str) -> set[str]:
    template = load_template(ROOT / "template.yaml")
    shared = template["Globals"]["Function"]["Environment"]["Variables"]
    resource = template["Resources"][f"{function.capitalize()}Function"]["Properties"]
    own = resource.get("Environment", {}).get("Variables", {})
    return set(shared) | set(own)


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_the_template_sets_every_variable_a_function_needs(function: str) -> None:
    missing = _required(FUNCTIONS[function]) - _template_environment(function)
    assert not missing, f"{function} needs {sorted(missing)}, which the template does not set"


@pytest.mark.parametrize("variable", ["RISK_LIMITS", "EXCHANGE_SECRET_ARN"])
def test_a_variable_set_for_one_function_is_read_by_it(variable: str) -> None:
    """Variables the template gives single functions are not left unread (a secret's name
    goes only where it is used)."""
    template = load_template(ROOT / "template.yaml")
    for function, cls in FUNCTIONS.items():
        resource = template["Resources"][f"{function.capitalize()}Function"]["Properties"]
        if variable in resource.get("Environment", {}).get("Variables", {}):
            assert variable in cls.variables(), function


def _required(cls: type[Settings]) -> set[str]:
    return {ENV_VARS[name] for name, field in cls.model_fields.items() if field.is_required()}


def _full_environment() -> dict[str, str]:
    environ = {var: f"tickstep-{field}" for field, var in ENV_VARS.items()}
    environ.update(TRADING_MODE="paper", MARKETS=MARKETS, RISK_LIMITS="{}", PAPER_SETTINGS="")
    return environ


def test_fields_are_typed_values_read_from_their_variables() -> None:
    settings = ExecuteSettings.from_env(_full_environment())
    assert settings.orders_table == "tickstep-orders_table"
    assert settings.mode is Mode.PAPER
    assert [m.market.key for m in settings.markets()] == ["binance:ETH/BTC:5m"]
    assert settings.candles_table == "tickstep-candles_table"


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_a_missing_required_variable_is_named(function: str) -> None:
    cls = FUNCTIONS[function]
    assert _required(cls), f"{function} requires nothing?"
    for variable in sorted(_required(cls)):
        environ = _full_environment()
        environ[variable] = ""  # empty counts as absent
        with pytest.raises(SettingsError, match=f"{variable}: not set, and this function needs it"):
            cls.from_env(environ)


def test_the_order_path_needs_the_candles_in_paper_and_the_secret_otherwise() -> None:
    paper = _full_environment() | {"CANDLES_TABLE": ""}
    with pytest.raises(SettingsError, match="CANDLES_TABLE: paper trading fills"):
        ReconcileSettings.from_env(paper)
    live = _full_environment() | {"TRADING_MODE": "live", "EXCHANGE_SECRET_ARN": ""}
    with pytest.raises(SettingsError, match="EXCHANGE_SECRET_ARN: live trading needs it"):
        ExecuteSettings.from_env(live)
    sandbox = _full_environment() | {"TRADING_MODE": "sandbox", "CANDLES_TABLE": ""}
    assert ExecuteSettings.from_env(sandbox).exchange_secret_arn == "tickstep-exchange_secret_arn"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TRADING_MODE", "yolo", "TRADING_MODE: Input should be 'paper', 'sandbox' or 'live'"),
        ("ORDERS_TABLE", "x" * 2049, "ORDERS_TABLE: String should have at most 2048"),
    ],
)
def test_an_invalid_value_is_named(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        ApiSettings.from_env(_full_environment() | {variable: value})


@pytest.mark.parametrize(
    ("cls", "variable", "read"),
    [
        (IngestSettings, "MARKETS", lambda s: s.markets()),
        (SignalSettings, "MARKETS", lambda s: s.market_configs()),
        (RiskSettings, "RISK_LIMITS", lambda s: s.risk_limits()),
        (ExecuteSettings, "PAPER_SETTINGS", lambda s: s.paper_settings()),
    ],
)
def test_json_variables_fail_with_their_name(cls: type[Settings], variable: str, read) -> None:  # type: ignore[no-untyped-def]
    settings = cls.from_env(_full_environment() | {variable: "{not json"})
    with pytest.raises(SettingsError, match=f"{variable}: .*Invalid JSON"):
        read(settings)
    settings = cls.from_env(
        _full_environment() | {variable: "[1]" if variable != "MARKETS" else "{}"}
    )
    with pytest.raises(SettingsError, match=variable):
        read(settings)
