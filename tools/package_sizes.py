"""Print each built function's unzipped size with its layers; fail when one is over the limit.

Reads ``.aws-sam/build/template.yaml`` (written by ``sam build``), where every ``CodeUri`` and
``ContentUri`` names a built directory, and adds up the function's own directory and each layer
it uses (the Globals' layers first, as SAM does). Lambda's hard limit is 250 MB unzipped; the
project's budget is lower (cold starts grow with what is shipped).

Usage: ``python tools/package_sizes.py [--build-dir .aws-sam/build] [--limit-mb 100]``
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from render_asl import load_template  # a sibling script, not a package

MB = 1024 * 1024


def tree_size(path: Path) -> int:
    """Bytes of every regular file under ``path`` (symlinks not followed)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            file = Path(root, name)
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def _layer_ids(layers: Any) -> list[str]:
    ids = []
    for layer in layers or []:
        if isinstance(layer, dict) and "Ref" in layer:
            ids.append(str(layer["Ref"]))
        else:
            raise ValueError(f"layer {layer!r}: only !Ref to a layer in this template is measured")
    return ids


def function_paths(build_dir: Path) -> list[tuple[str, Path, dict[str, Path]]]:
    """``(function, code dir, {layer: content dir})`` for every function in the built
    template, layers in the order Lambda stacks them (the Globals' first, as SAM does)."""
    template = load_template(build_dir / "template.yaml")
    resources = template["Resources"]
    global_layers = _layer_ids(template.get("Globals", {}).get("Function", {}).get("Layers"))
    rows = []
    for logical_id, resource in sorted(resources.items()):
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        layers = {
            layer_id: build_dir / resources[layer_id]["Properties"]["ContentUri"]
            for layer_id in global_layers + _layer_ids(properties.get("Layers"))
        }
        rows.append((logical_id, build_dir / properties["CodeUri"], layers))
    return rows


def function_sizes(build_dir: Path) -> list[tuple[str, int, dict[str, int]]]:
    """``(function, own bytes, {layer: bytes})`` for every function in the built template."""
    layer_bytes: dict[Path, int] = {}
    rows = []
    for logical_id, code_dir, layers in function_paths(build_dir):
        sizes = {}
        for layer_id, content in layers.items():
            if content not in layer_bytes:
                layer_bytes[content] = tree_size(content)
            sizes[layer_id] = layer_bytes[content]
        rows.append((logical_id, tree_size(code_dir), sizes))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--build-dir", type=Path, default=Path(".aws-sam/build"))
    parser.add_argument("--limit-mb", type=float, default=100.0)
    args = parser.parse_args(argv)
    if not (args.build_dir / "template.yaml").is_file():
        print(f"package_sizes: {args.build_dir}/template.yaml not found; run sam build first")
        return 1
    rows = function_sizes(args.build_dir)
    over = []
    print(f"{'function':<20} {'total MB':>9} {'own MB':>7}  layers (MB)")
    for name, own, layers in rows:
        total = own + sum(layers.values())
        detail = ", ".join(f"{layer} {size / MB:.1f}" for layer, size in layers.items())
        flag = "  OVER LIMIT" if total > args.limit_mb * MB else ""
        print(f"{name:<20} {total / MB:>9.1f} {own / MB:>7.1f}  {detail}{flag}")
        if flag:
            over.append(name)
    if over:
        print(f"package_sizes: over {args.limit_mb:g} MB unzipped: {', '.join(over)}")
        return 1
    print(f"package_sizes: every function is within {args.limit_mb:g} MB unzipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
