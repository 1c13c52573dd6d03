"""Write a copy of template.yaml whose parameter defaults are those of another trading mode.

checkov resolves each resource's ``Condition`` with the parameters' defaults. Under the
default paper mode ``NeedsExchangeSecret`` is false, so the exchange secret, its KMS key and
its resource policy are never scanned. ``make checkov`` therefore also scans the copy this
writes with live-mode defaults. Only the ``Default:`` lines of the named parameters change
(the text is edited, not re-serialised, so comments and line numbers stay); the copy is
parsed again and must equal the original but for those defaults.

Usage: ``python tools/render_mode.py [--template template.yaml] --mode live --out FILE``
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from render_asl import _CfnLoader, load_template

MODE_DEFAULTS: dict[str, dict[str, str]] = {
    "live": {"TradingMode": "live", "LiveTradingConfirmation": "trade-real-money"},
    "sandbox": {"TradingMode": "sandbox"},
    "paper": {"TradingMode": "paper"},
}


def _with_default(text: str, parameter: str, value: str) -> str:
    """``text`` with the ``Default:`` line of one top-level parameter set to ``value``."""
    block = re.search(rf"(?m)^  {re.escape(parameter)}:\n(?:(?:    .*)?\n)+", text)
    if block is None:
        raise ValueError(f"parameter {parameter} not found")
    body, count = re.subn(
        r"(?m)^    Default: .*$", f"    Default: {json.dumps(value)}", block.group(0)
    )
    if count != 1:
        raise ValueError(f"parameter {parameter}: {count} Default lines, expected 1")
    return text[: block.start()] + body + text[block.end() :]


def render_mode(template_path: Path, mode: str) -> str:
    """The template's text with ``mode``'s parameter defaults, checked by parsing it again."""
    defaults = MODE_DEFAULTS[mode]
    text = template_path.read_text(encoding="utf-8")
    for parameter, value in defaults.items():
        text = _with_default(text, parameter, value)
    original = load_template(template_path)
    expected: dict[str, Any] = copy.deepcopy(original)
    for parameter, value in defaults.items():
        expected["Parameters"][parameter]["Default"] = value
    if yaml.load(text, Loader=_CfnLoader) != expected:
        raise ValueError(f"rendering {mode} changed more than the parameter defaults")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument("--mode", choices=sorted(MODE_DEFAULTS), required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        text = render_mode(args.template, args.mode)
    except (OSError, ValueError) as exc:
        print(f"render_mode: {exc}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
