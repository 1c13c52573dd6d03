"""The error a configuration that cannot be used raises (its own module, so that strategies
the registry imports can raise it too)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names what is wrong."""
