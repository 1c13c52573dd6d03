"""DynamoDB adapters of the ports: candles, signals, the order ledger, the portfolio, the kill
switch.

Each store takes a low-level boto3 DynamoDB client (a moto- or stub-backed one in tests) and
never imports boto3 itself. Numbers cross as DynamoDB ``N`` strings written from ``Decimal`` and
read back with ``Decimal(str)``, so money stays exact; whole models that nobody queries by field
are stored as pydantic JSON in an ``S`` attribute. Every write that could race or be repeated is
conditional, so a redelivery changes nothing and a stale writer fails instead of overwriting.
"""

from tickstep.stores.candles import CandleStore
from tickstep.stores.control import ControlStore
from tickstep.stores.orders import OrderStore
from tickstep.stores.portfolio import PortfolioStore
from tickstep.stores.signals import SignalStore

__all__ = ["CandleStore", "ControlStore", "OrderStore", "PortfolioStore", "SignalStore"]
