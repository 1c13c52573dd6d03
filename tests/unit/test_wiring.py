from __future__ import annotations

from tickstep.wiring import Dependencies


def test_dependencies_when_used_twice_then_built_once_and_handed_in_value_wins() -> None:
    built: list[int] = []

    def build() -> int:
        built.append(1)
        return len(built)

    deps = Dependencies(build)
    assert deps.get() == 1
    assert deps.get() == 1
    assert len(built) == 1
    deps.set(42)
    assert deps.get() == 42
    deps.set(None)
    assert deps.get() == 2
