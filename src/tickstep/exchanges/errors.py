"""The few errors an exchange call can end in, whichever exchange or adapter raised them.

Callers decide on the class alone: retry a :class:`RetryableExchangeError`, look the order up
after an :class:`AmbiguousOrderError` (never send it again blindly), give up on a
:class:`FatalExchangeError` and halt trading on :class:`AuthenticationFailed`. The class names
are the ``ErrorEquals`` of the state machines' Retry/Catch (a Lambda's ``errorType`` is the
exception's class name), so they must not be renamed. ``code`` says more, for logs and ledgers.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousOrderError",
    "AuthenticationFailed",
    "ExchangeError",
    "FatalExchangeError",
    "OrderNotVisibleYet",
    "RetryableExchangeError",
]


class ExchangeError(Exception):
    """Base of every exchange failure; ``code`` is a short snake_case reason."""

    default_code = "exchange_error"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        self.code = code or self.default_code
        self.detail = message
        # The code leads the message: Step Functions only keeps errorType and errorMessage.
        super().__init__(f"{self.code}: {message}" if message else self.code)

    def __reduce__(self) -> tuple[object, tuple[type[ExchangeError], str, str]]:
        return (_restore, (type(self), self.detail, self.code))


def _restore(cls: type[ExchangeError], detail: str, code: str) -> ExchangeError:
    """Unpickle with the code intact (the default would rebuild from the formatted message)."""
    return cls(detail, code=code)


class RetryableExchangeError(ExchangeError):
    """Nothing happened and trying again later may work (rate limit, outage, network on a read)."""

    default_code = "retryable"


class OrderNotVisibleYet(RetryableExchangeError):  # noqa: N818 -- a Step Functions ErrorEquals
    """An order was sent less than a grace window ago and the exchange does not show it yet:
    look again later and do not send it again (its own Retry, without jitter, so the lookups
    outlast the grace window)."""

    default_code = "awaiting_order_visibility"


class AmbiguousOrderError(ExchangeError):
    """An order was sent and its fate is unknown: look it up by clientOrderId before resending."""

    default_code = "ambiguous"


class FatalExchangeError(ExchangeError):
    """The exchange refused the request for a reason retrying will not change."""

    default_code = "fatal"


class AuthenticationFailed(FatalExchangeError):  # noqa: N818 -- a Step Functions ErrorEquals
    """Keys are wrong, lack permission or the account is suspended: stop trading, page a human."""

    default_code = "authentication"
