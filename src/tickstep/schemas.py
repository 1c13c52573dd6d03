"""JSON Schemas of the models that cross a boundary, kept in ``events/schemas/``.

Consumers outside Python (EventBridge schema registry, the console, other services) read these;
a test fails when a model changes and the files were not regenerated (``make schemas``).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from tickstep.models import (
    Balance,
    CandleClosed,
    CandlesClosed,
    Fill,
    Order,
    OrderIntent,
    Position,
    RiskDecision,
    Signal,
    TradingStateRecord,
)

SCHEMA_MODELS: tuple[type[BaseModel], ...] = (
    CandleClosed,
    CandlesClosed,
    Signal,
    OrderIntent,
    RiskDecision,
    Order,
    Fill,
    Position,
    Balance,
    TradingStateRecord,
)


def render_schemas() -> dict[str, str]:
    """File name to file text for every boundary model (stable key order, trailing newline)."""
    return {
        f"{model.__name__}.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True)
        + "\n"
        for model in SCHEMA_MODELS
    }


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def stale_schemas(directory: Path) -> list[str]:
    """Names of schema files that are missing or differ from the models."""
    return [
        name
        for name, text in render_schemas().items()
        if not (directory / name).is_file() or (directory / name).read_text() != text
    ]
