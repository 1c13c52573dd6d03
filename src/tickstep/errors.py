"""The error a configuration that cannot be used raises.

In a module of its own, importing nothing: the ``tickstep`` command catches it around every
subcommand, and ``tickstep --help`` must not pay for numpy or pydantic to do so.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names what is wrong."""
