"""Property tests: every handler, fed malformed events, rejects them and leaves no trace.

Each handler gets mutations of its ``events/<name>.json`` sample (hypothesis): a key dropped
at any depth, a leaf replaced by a value of another type (or a huge number, an exponent like
``1e999999999``, NaN), a string replaced by 100 kB, an unknown key nested anywhere, any value
replaced by JSON nested 5,000 deep, or totally random JSON. A rejection is an error that names
the mutated field (a pydantic ``ValidationError``; for the API a 4xx JSON body; for execute the
record's batch failure, or ``FatalExchangeError`` on the task when its token is recoverable)
with no item written, no bus event and no paper order. Deep nesting inside a JSON text (an SQS
or HTTP body) cannot be parsed at all, so there the error names the body. A mutation that is
still valid (an AWS envelope ignores unknown keys; ``1`` is still a valid price) must be handled
normally. Any other exception fails the test.

Examples run inside one moto account per test (``aws``); the tables are emptied and the
handler's starting state recreated before each example. ``OUTCOMES`` keeps the counts per
handler: ``(outcome, mutation kind)``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from tests.builders import FixedPrices
from tests.pipeline.conftest import TABLES, Aws, FakeContext, sample_event
from tests.pipeline.test_handlers import (
    ListSource,
    RecordingTasks,
    api_event,
    candles_ending_with,
    paper_orders,
    record_intent,
    risk_app,
    sample_close_ms,
)
from tickstep.messages import RiskOutput, SignalOutput, UnknownMarketError
from tickstep.models import CandleClosed

Loader = Callable[[str], ModuleType]
Path = tuple[str | int, ...]
Rejects = tuple[type[Exception], ...]
"""Exceptions besides pydantic's ValidationError that may reject a malformed event."""
EXAMPLES = int(os.environ.get("TICKSTEP_FUZZ_EXAMPLES", "40"))
"""Examples per handler; the default run is derandomized (the same examples, the same counts),
a run with ``TICKSTEP_FUZZ_EXAMPLES`` set draws new ones."""
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="TICKSTEP_FUZZ_EXAMPLES" not in os.environ,
    database=None,
)
UNKNOWN_KEY = "zz_unknown"
OVERSIZED = "x" * 100_000
HUGE_NUMBERS: tuple[Any, ...] = (
    10**40,
    -(10**40),
    2**64,
    10**30,
    1e27,
    1e308,
    "1e999999999",
    "-1e999999999",
    "1e-999999999",
    "1E+30",
    "0." + "1" * 40,
)
"""Any leaf may become one of these, even a number (a type the field accepts): beyond int64,
DynamoDB's 38 digits or the decimal context's exponent range (``normalize()`` of
``1e999999999`` raises ``decimal.Overflow``)."""
DEPTH = 5000
"""Deeper than ``json.loads`` can go (it raises ``RecursionError`` near 1,000)."""


class Deep:
    """JSON nested ``DEPTH`` deep in place of a value: raw text inside a JSON body (what a
    hostile SQS or HTTP body holds), the parsed structure elsewhere."""

    TEXT = "[" * DEPTH + "]" * DEPTH
    PLACEHOLDER = "__deep_json__"

    def __repr__(self) -> str:
        return f"Deep({DEPTH})"

    @staticmethod
    def parsed() -> list[Any]:
        value: list[Any] = []
        for _ in range(DEPTH - 1):
            value = [value]
        return value


DEEP = Deep()


def materialise(doc: Any) -> Any:
    """``doc`` with each :class:`Deep` left in it replaced by the nested structure."""
    if isinstance(doc, Deep):
        return Deep.parsed()
    if isinstance(doc, dict):
        return {k: materialise(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [materialise(v) for v in doc]
    return doc


OTHER_VALUES: tuple[Any, ...] = (
    0,
    -1,
    1.5,
    float("nan"),
    float("inf"),
    True,
    None,
    "",
    "text",
    [],
    [1, "a"],
    {},
    {"k": "v"},
)
"""A leaf becomes one of these of another type than its own (NaN even for a float)."""
OUTCOMES: dict[str, Counter[tuple[str, str]]] = {}
"""Per handler (the API per route): (``rejected`` | ``accepted``, mutation kind) -> examples."""

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


# -- mutations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    kind: str  # drop | retype | huge | oversize | extra | deep | random
    path: Path
    value: Any = None

    def apply(self, doc: Any) -> Any:
        if self.kind == "random" and not self.path:
            return self.value
        doc = copy.deepcopy(doc)
        if self.kind == "extra":
            node = doc
            for key in self.path:
                node = node[key]
            node[UNKNOWN_KEY] = self.value
            return doc
        *parents, last = self.path
        node = doc
        for key in parents:
            node = node[key]
        if self.kind == "drop":
            del node[last]
        else:
            node[last] = self.value
        return doc

    @property
    def field(self) -> Path:
        """The path an error must name (for ``extra``, the unknown key)."""
        return (*self.path, UNKNOWN_KEY) if self.kind == "extra" else self.path


def nodes(doc: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every (path, value) below ``doc``, containers included, the root excluded."""
    items: list[tuple[str | int, Any]] = []
    if isinstance(doc, dict):
        items = list(doc.items())
    elif isinstance(doc, list):
        items = list(enumerate(doc))
    for key, value in items:
        yield (*path, key), value
        yield from nodes(value, (*path, key))


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _is_number(value: Any) -> bool:
    """A number, or a string holding one (prices and amounts travel as strings)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    try:
        return isinstance(value, str) and Decimal(value).is_finite()
    except ArithmeticError:
        return False


def other_type(original: Any) -> st.SearchStrategy[Any]:
    pool = [v for v in OTHER_VALUES if type(v) is not type(original) or _is_nan(v)]
    return st.sampled_from([*pool, *HUGE_NUMBERS])


def mutations(doc: dict[str, Any], under: Path = ()) -> st.SearchStrategy[Mutation]:
    """One mutation of ``doc`` at or below ``under`` (random JSON replaces ``under``)."""
    found = [(p, v) for p, v in nodes(doc) if p[: len(under)] == under]
    keyed = [p for p, _ in found if isinstance(p[-1], str)]
    leaves = [(p, v) for p, v in found if not isinstance(v, dict | list) or not v]
    strings = [p for p, v in found if isinstance(v, str)]
    dicts: list[Path] = [p for p, v in found if isinstance(v, dict)]
    drop = st.sampled_from(keyed).map(lambda p: Mutation("drop", p))
    retype = st.sampled_from(leaves).flatmap(
        lambda pv: other_type(pv[1]).map(lambda v: Mutation("retype", pv[0], v))
    )
    numeric = [p for p, v in leaves if _is_number(v)] or [p for p, _ in leaves]
    huge = st.tuples(st.sampled_from(numeric), st.sampled_from(HUGE_NUMBERS)).map(
        lambda pv: Mutation("huge", *pv)
    )
    oversize = st.sampled_from(strings).map(lambda p: Mutation("oversize", p, OVERSIZED))
    if not under:
        dicts.insert(0, ())
    extra = st.tuples(st.sampled_from(dicts), json_values).map(
        lambda pv: Mutation("extra", pv[0], pv[1])
    )
    deep = st.sampled_from([under, *(p for p, _ in found)]).map(
        lambda p: Mutation("deep", p, DEEP) if p else Mutation("random", p, DEEP)
    )
    random = json_values.map(lambda v: Mutation("random", under, v))
    kinds = {
        "drop": drop,
        "retype": retype,
        "huge": huge,
        "oversize": oversize,
        "extra": extra,
        "deep": deep,
        "random": random,
    }
    return st.sampled_from(list(kinds.values())).flatmap(lambda kind: kind)


def with_json_body(doc: dict[str, Any], path: Path) -> dict[str, Any]:
    """``doc`` with the JSON string at ``path`` decoded, so mutations reach inside it."""
    doc = copy.deepcopy(doc)
    *parents, last = path
    node: Any = doc
    for key in parents:
        node = node[key]
    node[last] = json.loads(node[last])
    return doc


def encode_json_body(doc: Any, path: Path) -> Any:
    """The inverse of :func:`with_json_body`, for whatever a mutation left at ``path`` (a
    :class:`Deep` in it becomes raw text), then :func:`materialise` for the rest."""
    node = doc
    try:
        for key in path[:-1]:
            node = node[key]
        if isinstance(node[path[-1]], dict | Deep):
            text = json.dumps(node[path[-1]], default=lambda _: Deep.PLACEHOLDER)
            node[path[-1]] = text.replace(f'"{Deep.PLACEHOLDER}"', Deep.TEXT)
    except (KeyError, IndexError, TypeError):
        pass
    return materialise(doc)


def inside_text(mutation: Mutation, body: Path) -> bool:
    """Whether the mutation put deep nesting inside the JSON text at ``body``: the parser
    stops there, so only the body as a whole can be named."""
    return mutation.value is DEEP and mutation.path[: len(body)] == body


# -- what a rejection must name ---------------------------------------------------------------

_LEADING_FIELD = re.compile(r"^(?:Value error, )?([A-Za-z_][\w.\-]*):")


def _compatible(a: Path, b: Path) -> bool:
    a, b = tuple(map(str, a)), tuple(map(str, b))
    n = min(len(a), len(b))
    return n > 0 and a[:n] == b[:n]


def names_field(field: Path, problems: list[tuple[Path, str]], root: Path = ()) -> bool:
    """Whether one problem (location below ``root``, message) names ``field``: its location
    (or the field a model validator's message starts with) lies on ``field``'s path, or the
    message spells ``field`` out (a cross-field check: ``differs from signal.candle_time``).
    A problem at ``root`` itself names only ``root`` (or a field its message spells out)."""
    names = tuple(map(str, field))
    if names[: len(root)] != tuple(map(str, root)):
        return False
    relative = names[len(root) :]
    if not relative:  # the whole input was replaced: any problem names it
        return bool(problems)
    spelled = re.compile(rf"(?<![\w.]){re.escape('.'.join(relative))}(?![\w])")
    for loc, message in problems:
        if _compatible(loc, relative) or spelled.search(message):
            return True
        leading = _LEADING_FIELD.match(message)
        if leading and _compatible((*loc, *leading.group(1).split(".")), relative):
            return True
    return False


def problems_of(exc: ValidationError) -> list[tuple[Path, str]]:
    return [(tuple(err["loc"]), err["msg"]) for err in exc.errors()]


def cause_problems(cause: str) -> list[tuple[Path, str]]:
    """The problems of a task failure's cause, ``loc.path: message; ...`` (``body``: root)."""
    problems: list[tuple[Path, str]] = []
    for problem in cause.split("; "):
        loc, _, message = problem.partition(": ")
        problems.append(((), problem) if loc == "body" else (tuple(loc.split(".")), message))
    return problems


# -- the account ------------------------------------------------------------------------------


def reset(aws: Aws) -> None:
    """Every table empty and the bus queue drained: the state before an example."""
    for env_var, (keys, _) in TABLES.items():
        names = [name for name, _, _ in keys]
        for item in aws.items(env_var):
            aws.dynamodb.delete_item(TableName=aws.tables[env_var], Key={k: item[k] for k in names})
    aws.bus_events()


def snapshot(aws: Aws) -> dict[str, list[str]]:
    return {
        env_var: sorted(json.dumps(item, sort_keys=True) for item in aws.items(env_var))
        for env_var in TABLES
    }


def assert_untouched(aws: Aws, before: dict[str, list[str]], mutation: Mutation) -> None:
    assert snapshot(aws) == before, f"{mutation}: wrote before rejecting"
    assert aws.bus_events() == [], f"{mutation}: published before rejecting"
    assert paper_orders(aws) == 0, f"{mutation}: placed a paper order"


def record(name: str, outcome: str, mutation: Mutation) -> None:
    OUTCOMES.setdefault(name, Counter())[(outcome, mutation.kind)] += 1


def assert_fuzzed(name: str) -> None:
    counts = OUTCOMES[name]
    assert sum(counts.values()) >= EXAMPLES
    assert sum(n for (outcome, _), n in counts.items() if outcome == "rejected") > 0
    if FUZZ.derandomize:  # the default run: these examples, always
        drawn = {kind for _, kind in counts}
        assert {"huge", "deep"} <= drawn, f"{name}: no huge number or deep nesting drawn"


# -- event handlers (pydantic in, ValidationError out) ----------------------------------------


def check_validating_handler(
    name: str,
    *,
    aws: Aws,
    prepare: Callable[[], ModuleType],
    context: FakeContext,
    handled: Callable[[dict[str, Any]], object],
    also_rejects: Rejects = (),
) -> None:
    sample = sample_event(name)

    @FUZZ
    @given(mutation=mutations(sample))
    def check(mutation: Mutation) -> None:
        reset(aws)
        app = prepare()
        before = snapshot(aws)
        try:
            result = app.handler(materialise(mutation.apply(sample)), context)
        except ValidationError as exc:
            assert names_field(mutation.field, problems_of(exc)), f"{mutation}: {exc}"
        except also_rejects as exc:
            assert names_field(mutation.field, [((), str(exc))]), f"{mutation}: {exc}"
        else:
            handled(result)
            record(name, "accepted", mutation)
            return
        assert_untouched(aws, before, mutation)
        record(name, "rejected", mutation)

    check()
    assert_fuzzed(name)


def test_fuzz_ingest_rejects_bad_schedule_events_and_writes_nothing(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    latest = CandleClosed.model_validate(sample_event("signal")).candle
    rows = [*candles_ending_with(latest, ["0.035"] * 4), latest]

    def prepare() -> ModuleType:
        app = function("ingest")
        app.set_dependencies(app.build_dependencies(source=ListSource(rows)))
        return app

    def handled(result: dict[str, Any]) -> None:
        assert result == {"candles": 5, "events": 1, "failures": {}}

    check_validating_handler("ingest", aws=aws, prepare=prepare, context=context, handled=handled)


DECIDE_FUNCTIONS: dict[str, tuple[Callable[[Loader], ModuleType], type[BaseModel], Rejects]] = {
    # name: (the handler ready for the sample, its output, what else may reject an event)
    # signal: a well-formed market that is not configured is named by the domain's own error
    "signal": (lambda function: function("signal"), SignalOutput, (UnknownMarketError,)),
    "risk": (lambda function: risk_app(function, sample_close_ms()), RiskOutput, ()),
}


@pytest.mark.parametrize("name", list(DECIDE_FUNCTIONS))
def test_fuzz_decide_function_rejects_bad_events_and_writes_nothing(
    aws: Aws, function: Loader, context: FakeContext, name: str
) -> None:
    """Signal's candle events and risk's intents: a valid one is answered with the output."""
    prepare, output, also_rejects = DECIDE_FUNCTIONS[name]
    check_validating_handler(
        name,
        aws=aws,
        prepare=lambda: prepare(function),
        context=context,
        handled=output.model_validate,
        also_rejects=also_rejects,
    )


def test_fuzz_reconcile_rejects_bad_schedule_events_and_writes_nothing(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    now = sample_close_ms()

    def prepare() -> ModuleType:
        app = function("reconcile")
        app.set_dependencies(
            app.build_dependencies(prices=FixedPrices("0.03527", now), clock=lambda: now)
        )
        return app

    def handled(result: dict[str, Any]) -> None:
        assert (result["checked"], result["drift"], result["errors"]) == (0, 0, {})

    check_validating_handler(
        "reconcile", aws=aws, prepare=prepare, context=context, handled=handled
    )


# -- execute (SQS batch, task token) ----------------------------------------------------------

BODY: Path = ("Records", 0, "body")


def test_fuzz_execute_rejects_bad_order_messages_and_places_nothing(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    sample = sample_event("execute")
    body = json.loads(sample["Records"][0]["body"])
    doc = with_json_body(sample, BODY)
    now = sample_close_ms()

    @FUZZ
    @given(mutation=mutations(doc))
    def check(mutation: Mutation) -> None:
        reset(aws)
        record_intent(aws, body)  # what the order workflow wrote before sending the message
        app = function("execute")
        tasks = RecordingTasks()
        deps = app.build_dependencies(prices=FixedPrices("0.03527", now), clock=lambda: now)
        app.set_dependencies(type(deps)(**{**deps.__dict__, "tasks": tasks}))
        before = snapshot(aws)
        event = encode_json_body(mutation.apply(doc), BODY)
        field = BODY if inside_text(mutation, BODY) else mutation.field
        try:
            result = app.handler(event, context)
        except ValidationError as exc:  # not an SQS batch at all
            assert names_field(field, problems_of(exc)), f"{mutation}: {exc}"
        except BatchProcessingError as exc:  # the record failed: no token to answer
            assert tasks.answers == []
            causes = [e for _, e, _ in exc.child_exceptions]
            invalid = [e for e in causes if isinstance(e, ValidationError)]
            assert causes and invalid == causes, f"{mutation}: {causes}"
            problems = [p for e in invalid for p in problems_of(e)]
            assert names_field(field, problems, BODY), f"{mutation}: {problems}"
        else:
            assert result == {"batchItemFailures": []}, f"{mutation}: {result}"
            assert len(tasks.answers) == 1, f"{mutation}: {tasks.answers}"
            error, cause = tasks.answers[0]
            if error == "success" or not cause.startswith("invalid order message"):
                record("execute", "accepted", mutation)  # answered as a valid message is
                return
            assert error == "FatalExchangeError"
            problems = cause_problems(cause.removeprefix("invalid order message: "))
            assert names_field(field, problems, BODY), f"{mutation}: {cause}"
        assert_untouched(aws, before, mutation)
        record("execute", "rejected", mutation)

    check()
    assert_fuzzed("execute")


# -- api (HTTP 4xx naming the field) ----------------------------------------------------------

API_BODY: Path = ("body",)
ROUTING = (("rawPath",), ("method",), ("stage",))
"""What the route is found by: another value of these may answer 404, as any unknown route."""
API_REQUESTS = {
    # request: (event, what to mutate: the whole event, or the part its caller chooses)
    "status-event": (sample_event("api"), ()),
    "halt-body": (api_event("POST", "/halt", {"reason": "game day"}), API_BODY),
    "orders-query": (
        api_event("GET", "/orders", query="status=new&limit=10"),
        ("queryStringParameters",),
    ),
}


def api_problems(response: dict[str, Any]) -> list[tuple[Path, str]]:
    """Each error's field, also as a path in the event (a body or query field)."""
    problems: list[tuple[Path, str]] = []
    for err in json.loads(response["body"])["errors"]:
        field = tuple(err["field"].split("."))
        problems += [
            (field, err["message"]),
            (("body", *field), err["message"]),
            (("queryStringParameters", *field), err["message"]),
        ]
    return problems


@pytest.mark.parametrize("request_name", list(API_REQUESTS))
def test_fuzz_api_answers_bad_requests_with_4xx_naming_the_field_and_changes_nothing(
    aws: Aws, function: Loader, context: FakeContext, request_name: str
) -> None:
    sample, under = API_REQUESTS[request_name]
    doc = with_json_body(sample, API_BODY) if "body" in sample else sample
    name = f"api {request_name}"

    @FUZZ
    @given(mutation=mutations(doc, under))
    def check(mutation: Mutation) -> None:
        reset(aws)
        app = function("api")
        before = snapshot(aws)
        event = encode_json_body(mutation.apply(doc), API_BODY)
        field = API_BODY if inside_text(mutation, API_BODY) else mutation.field
        response = app.handler(event, context)
        status = response["statusCode"]
        if status < 400:
            assert status == 200, f"{mutation}: {response}"
            record(name, "accepted", mutation)
            return
        assert status < 500, f"{mutation}: {response}"
        if status in (404, 405) and mutation.path[-1:] in ROUTING:
            record(name, "accepted", mutation)  # another route: not found is normal
            return
        assert names_field(field, api_problems(response)), f"{mutation}: {response}"
        assert_untouched(aws, before, mutation)
        record(name, "rejected", mutation)

    check()
    assert_fuzzed(name)


def test_names_field_matches_locations_messages_and_cross_field_checks() -> None:
    assert names_field(("candle", "close"), [(("candle", "close"), "Input should be...")])
    assert names_field(("candle", "high"), [(("candle",), "Value error, high/low: ...")])
    assert names_field(
        ("intent", "market", "symbol"), [((), "Value error, intent.market: differs")]
    )
    assert names_field(
        ("signal", "candle_time"), [((), "intent.candle_time: differs from signal.candle_time")]
    )
    assert not names_field(("candle", "close"), [(("market",), "Field required")])
    assert not names_field(("candle",), [((), "Invalid JSON")])
    body = ("Records", 0, "body")
    assert not names_field((*body, "intent", "side"), [((), "Invalid JSON")], body)
    assert names_field((*body, "intent", "side"), [((), "intent.side: Input should be")], body)
    assert names_field(body, [((), "Invalid JSON")], body)
    assert not names_field(("signal",), [((), "intent.signals_seen: ...")])
