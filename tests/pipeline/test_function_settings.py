"""Each handler builds its dependencies from its own settings class: with any variable that
class requires left empty, the cold start fails naming it (tests/unit/test_settings.py checks
the classes against the template)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest

from tests.unit.test_settings import FUNCTIONS, _required
from tickstep.settings import ENV_VARS, SettingsError


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_needs_exactly_its_class_variables(
    name: str, function: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = function(name)
    assert module.build_dependencies() is not None  # the test environment has them all
    for variable in sorted(_required(FUNCTIONS[name])):
        with monkeypatch.context() as env:
            env.setenv(variable, "")
            module.set_dependencies(None)
            with pytest.raises(SettingsError, match=f"{variable}: not set"):
                module.build_dependencies()
    unread = set(ENV_VARS.values()) - FUNCTIONS[name].variables()
    for variable in sorted(unread):  # what it does not read, it does not need
        with monkeypatch.context() as env:
            env.delenv(variable, raising=False)
            assert module.build_dependencies() is not None
