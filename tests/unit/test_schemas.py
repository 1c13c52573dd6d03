from __future__ import annotations

import json
from pathlib import Path

from tickstep.schemas import SCHEMA_MODELS, render_schemas, stale_schemas

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "events" / "schemas"


def test_event_schemas_when_compared_with_models_then_up_to_date() -> None:
    stale = stale_schemas(SCHEMA_DIR)
    assert stale == [], f"stale JSON Schemas {stale}: run `make schemas`"


def test_stale_schemas_when_a_file_differs_then_reports_it(tmp_path: Path) -> None:
    for name, text in render_schemas().items():
        (tmp_path / name).write_text(text)
    (tmp_path / "Signal.json").write_text("{}")
    (tmp_path / "Order.json").unlink()
    assert sorted(stale_schemas(tmp_path)) == ["Order.json", "Signal.json"]


def test_schemas_forbid_unknown_fields_like_the_models() -> None:
    for model in SCHEMA_MODELS:
        schema = json.loads(render_schemas()[f"{model.__name__}.json"])
        assert schema["additionalProperties"] is False, model.__name__
