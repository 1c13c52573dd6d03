"""The offline runtime's speed patches change no answer: every DynamoDB answer of a replay
written with ``json.dumps`` (tickstep.local.moto_patches.fast_dynamodb_responses) is the JSON
moto's own serializer writes, with the same status and headers."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.pipeline.conftest import busy_config, replay
from tickstep.config import TradingConfig
from tickstep.local import moto_patches


def test_fast_dynamodb_answers_equal_motos_serializer_for_a_whole_replay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.core.responses import ActionResult

    compared: Counter[tuple[str, bool]] = Counter()
    real = moto_patches.fast_dynamodb_responses

    @contextlib.contextmanager
    def comparing() -> Iterator[None]:
        serializer = ActionResult.execute_result  # moto's own
        with real():
            fast = ActionResult.execute_result

            def both(self: Any, context: Any) -> Any:
                answer = fast(self, context)
                if context.service_model.service_name == "dynamodb":
                    status, headers, body = serializer(self, context)
                    same = answer[:2] == (status, headers) and json.loads(
                        answer[2] or "{}"
                    ) == json.loads(body or "{}")
                    compared[context.operation_model.name, same] += 1
                return answer

            ActionResult.execute_result = both  # type: ignore[method-assign]
            try:
                yield
            finally:
                ActionResult.execute_result = fast  # type: ignore[method-assign]

    monkeypatch.setattr(moto_patches, "fast_dynamodb_responses", comparing)

    report = replay(TradingConfig.model_validate(busy_config()), 30, lambda cloud: None)

    assert report["orders"]["intents"] > 0  # the replay reached the order path
    assert {op for op, same in compared if not same} == set()
    used = {op for op, _ in compared}
    assert {"Query", "GetItem", "PutItem", "UpdateItem", "BatchWriteItem"} <= used, used
