"""Domain errors, order identity and the import-cost promise of tickstep.exchanges."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.builders import BINANCE_ETH_BTC as MARKET
from tickstep.exchanges import (
    AmbiguousOrderError,
    AuthenticationFailed,
    ExchangeError,
    FatalExchangeError,
    RetryableExchangeError,
    errors,
    order_identity,
)
from tickstep.exchanges.port import INTENT_ID_RE
from tickstep.failures import TransientError
from tickstep.models import Side
from tickstep.orders import intent_id

ORDER_WORKFLOW = Path(__file__).resolve().parents[2] / "statemachines" / "order.asl.json"


def test_importing_the_exchanges_package_does_not_import_ccxt() -> None:
    code = "import sys, tickstep.exchanges; sys.exit(1 if 'ccxt' in sys.modules else 0)"
    result = subprocess.run([sys.executable, "-c", code], check=False, timeout=300)
    assert result.returncode == 0


def error_names(node: Any) -> set[str]:
    """Every name in the ``ErrorEquals`` of a state machine definition."""
    if isinstance(node, list):
        return set().union(*map(error_names, node))
    if isinstance(node, dict):
        return set(node.get("ErrorEquals", [])).union(*map(error_names, node.values()))
    return set()


def test_error_class_names_are_the_state_machine_error_names() -> None:
    """A Lambda's ``errorType`` is the exception's class name: the order workflow's Retry and
    Catch name every error an exchange call can end in, and every name there that is not an
    AWS one (``States.``, ``DynamoDB.``) or TransientError is one of these classes."""
    named = error_names(json.loads(ORDER_WORKFLOW.read_text()))
    ours = {name for name in named if "." not in name} - {TransientError.__name__}
    assert ours == set(errors.__all__) - {ExchangeError.__name__}
    assert ExchangeError.__name__ in errors.__all__
    assert issubclass(AuthenticationFailed, FatalExchangeError)
    assert issubclass(errors.OrderNotVisibleYet, RetryableExchangeError)
    for cls in (RetryableExchangeError, AmbiguousOrderError, FatalExchangeError):
        assert cls.__bases__ == (ExchangeError,)


def test_error_code_defaults_per_class_and_leads_the_message() -> None:
    assert RetryableExchangeError().code == "retryable"
    error = FatalExchangeError("needs 1 BTC", code="insufficient_funds")
    assert error.code == "insufficient_funds"
    assert str(error) == "insufficient_funds: needs 1 BTC"
    assert error.detail == "needs 1 BTC"


def test_error_survives_pickling_with_its_class_and_code() -> None:
    error = AuthenticationFailed("key revoked", code="permission_denied")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is AuthenticationFailed
    assert (copy.code, str(copy)) == ("permission_denied", "permission_denied: key revoked")


def test_every_derived_intent_id_is_recognised_as_ours() -> None:
    for side in Side:
        assert INTENT_ID_RE.match(intent_id("sma", MARKET, 1_700_000_000_000, side))


def test_our_client_order_id_is_its_own_intent_id() -> None:
    cid = intent_id("sma", MARKET, 0, Side.BUY)
    assert order_identity(MARKET, cid, "123") == (cid, cid)


def test_external_order_gets_a_synthetic_intent_id_and_keeps_its_client_id() -> None:
    synthetic, cid = order_identity(MARKET, "web_123", "987")
    assert synthetic.startswith("ex")
    assert len(synthetic) == 32
    assert cid == "web_123"
    assert order_identity(MARKET, "web_456", "987")[0] == synthetic  # keyed by exchange id


def test_external_order_with_an_overlong_client_id_uses_the_synthetic_id_for_both() -> None:
    synthetic, cid = order_identity(MARKET, "x" * 40, None)
    assert cid == synthetic


def test_an_order_without_any_id_cannot_be_identified() -> None:
    with pytest.raises(ValueError, match="identified"):
        order_identity(MARKET, None, None)
