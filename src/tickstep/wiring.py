"""How a Lambda handler holds its dependencies: built once per container, replaceable.

Every handler builds its clients in one ``build_dependencies()``; this keeps the result for
the container's life and lets tests and the offline runtime hand in their own instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Dependencies(Generic[T]):
    """A lazily built, replaceable value (a handler's clients, stores and services)."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None

    def get(self) -> T:
        """The dependencies, built on first use (the cold start), then reused."""
        if self._value is None:
            self._value = self._build()
        return self._value

    def set(self, value: T | None) -> None:
        """Hand in other dependencies (tests, the offline runtime); None rebuilds on next use."""
        self._value = value
