"""Shared stubs: deterministic markets, candles and intents (no clock, no network)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.builders import PAPER_ETH_BTC
from tickstep.candles import CandleArrays, bundled_file, load_csv
from tickstep.models import Market, MarketRules


@pytest.fixture(scope="session")
def eth_btc() -> Market:
    return PAPER_ETH_BTC


@pytest.fixture(scope="session")
def eth_btc_candles() -> CandleArrays:
    return load_csv(bundled_file("ETH-BTC_5m.csv"))


@pytest.fixture(scope="session")
def eth_btc_rules() -> MarketRules:
    return MarketRules(
        amount_step=Decimal("0.001"),
        price_step=Decimal("0.000001"),
        min_amount=Decimal("0.001"),
        min_cost=Decimal("0.0001"),
    )
