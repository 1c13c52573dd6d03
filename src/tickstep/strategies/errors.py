"""The error a configuration that cannot be used raises (re-exported here so that strategies
the registry imports can raise it too; it lives in :mod:`tickstep.errors`)."""

from __future__ import annotations

from tickstep.errors import ConfigError

__all__ = ["ConfigError"]
