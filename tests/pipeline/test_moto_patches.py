"""The offline runtime's speed patches change no answer: every DynamoDB answer of a replay
written with ``json.dumps`` (tickstep.local.moto_patches.fast_dynamodb_responses) is the JSON
moto's own serializer writes, with the same status and headers; every Query answered from its
partition is moto's own answer; and a replay with all the speed patches takes the same paths
through the same executions, and reports the same, as one without them."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.pipeline.conftest import busy_config, replay
from tickstep.config import TradingConfig
from tickstep.local import moto_patches, moto_state
from tickstep.local.cloud import LocalCloud

SPEED_ONLY = (
    "fast_dynamodb_responses",
    "parse_each_state_machine_once",
    "parse_each_json_path_once",
    "query_one_partition",
    "cache_response_method_names",
    "notify_progress",
)
"""The patches that only make a run faster (the others fix where moto differs from AWS)."""
TIMINGS = ("_ms", "wall_seconds", "lambda_log")


def _replay_comparing(
    monkeypatch: pytest.MonkeyPatch,
    patch: str,
    owner: Any,
    method: str,
    compare: Callable[..., Any],
) -> dict[str, Any]:
    """Replay 30 busy closes with the speed patch ``patch`` in place, where every call of
    ``owner.method`` (the method the patch replaces) goes through ``compare(fast, motos, ...)``:
    the patched method and moto's own, both at hand, with the call's arguments."""
    real = getattr(moto_patches, patch)

    @contextlib.contextmanager
    def comparing() -> Iterator[None]:
        motos = getattr(owner, method)
        with real():
            fast = getattr(owner, method)

            def both(*args: Any, **kwargs: Any) -> Any:
                return compare(fast, motos, *args, **kwargs)

            setattr(owner, method, both)
            try:
                yield
            finally:
                setattr(owner, method, fast)

    monkeypatch.setattr(moto_patches, patch, comparing)
    return replay(TradingConfig.model_validate(busy_config()), 30, lambda cloud: None)


def test_fast_dynamodb_answers_equal_motos_serializer_for_a_whole_replay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.core.responses import ActionResult

    compared: Counter[tuple[str, bool]] = Counter()

    def compare(fast: Any, serializer: Any, result: Any, context: Any) -> Any:
        answer = fast(result, context)
        if context.service_model.service_name == "dynamodb":
            status, headers, body = serializer(result, context)
            same = answer[:2] == (status, headers) and json.loads(answer[2] or "{}") == json.loads(
                body or "{}"
            )
            compared[context.operation_model.name, same] += 1
        return answer

    report = _replay_comparing(
        monkeypatch, "fast_dynamodb_responses", ActionResult, "execute_result", compare
    )

    assert report["orders"]["intents"] > 0  # the replay reached the order path
    assert {op for op, same in compared if not same} == set()
    used = {op for op, _ in compared}
    assert {"Query", "GetItem", "PutItem", "UpdateItem", "BatchWriteItem"} <= used, used


def test_query_from_its_partition_answers_as_motos_query_for_a_whole_replay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.dynamodb.models.table import Table

    compared: Counter[bool] = Counter()

    def compare(fast: Any, motos: Any, table: Any, *args: Any, **kwargs: Any) -> Any:
        answer = fast(table, *args, **kwargs)
        items, scanned, last = motos(table, *args, **kwargs)
        same = [item.to_json() for item in answer[0]] == [
            item.to_json() for item in items
        ] and answer[1:] == (scanned, last)
        compared[same] += 1
        return answer

    report = _replay_comparing(monkeypatch, "query_one_partition", Table, "query", compare)

    assert report["orders"]["intents"] > 0
    assert compared[False] == 0
    assert compared[True] >= 2 * 30  # each close: ingest's latest candle, the signal's read


def _paths(seen: dict[str, Any]) -> Callable[[LocalCloud], None]:
    """Keep, for every execution, its machine, status and the states it went through (sorted:
    a Map's iterations run concurrently), once the replay is over."""

    def keep(cloud: LocalCloud) -> None:
        paths: Counter[tuple[Any, ...]] = Counter()
        for machine, arn in cloud.state_machines.items():
            for execution in cloud.sfn.list_executions(stateMachineArn=arn)["executions"]:
                history = moto_state.execution_history(execution["executionArn"])
                steps = sorted(
                    (str(e["type"]), e.get("stateEnteredEventDetails", {}).get("name", ""))
                    for e in history
                )
                paths[machine, execution["status"], tuple(steps)] += 1
        seen["paths"] = paths

    return keep


def _without_timings(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_timings(v) for k, v in node.items() if not any(t in k for t in TIMINGS)}
    if isinstance(node, list):
        return [_without_timings(v) for v in node]
    return node


def test_replay_when_speed_patches_are_off_then_same_executions_and_same_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = TradingConfig.model_validate(busy_config())
    fast: dict[str, Any] = {}
    fast_report = replay(config, 30, _paths(fast))
    for name in SPEED_ONLY:
        monkeypatch.setattr(moto_patches, name, lambda *_: contextlib.nullcontext())
    slow: dict[str, Any] = {}
    slow_report = replay(config, 30, _paths(slow))

    assert fast_report["orders"]["intents"] > 0  # through the order workflow too
    assert fast["paths"] == slow["paths"]
    assert sum(fast["paths"].values()) > 30
    assert _without_timings(fast_report) == _without_timings(slow_report)
