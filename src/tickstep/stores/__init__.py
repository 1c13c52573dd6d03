"""DynamoDB adapters of the ports: candles, signals, the order ledger, the portfolio, the kill
switch.

Each store takes a low-level boto3 DynamoDB client (a moto- or stub-backed one in tests) and
never makes one itself. Values cross through boto3's TypeSerializer and TypeDeserializer
(``stores.dynamo``): numbers are ``N`` strings written from ``Decimal`` and read back as
``Decimal``, so money stays exact; whole models that nobody queries by field
are stored as pydantic JSON in an ``S`` attribute. Every write that could race or be repeated is
conditional, so a redelivery changes nothing and a stale writer fails instead of overwriting.
"""

from tickstep.stores.candles import CandleStore
from tickstep.stores.control import ControlStore, DenialStore
from tickstep.stores.orders import OrderStore
from tickstep.stores.portfolio import PortfolioStore
from tickstep.stores.signals import SignalStore

__all__ = [
    "CandleStore",
    "ControlStore",
    "DenialStore",
    "OrderStore",
    "PortfolioStore",
    "SignalStore",
]
