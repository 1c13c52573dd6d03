"""Fill the ``${...}`` substitutions of every state machine in template.yaml with dummy values.

cfn-lint does not look inside ``AWS::Serverless::StateMachine`` definitions and statelint
cannot read ``${...}`` placeholders where an ARN belongs, so ``make validate`` renders each
``DefinitionUri`` with a well-formed stand-in for every ``DefinitionSubstitutions`` entry (an ARN
for a function or state machine, a URL for a queue, a name for a table or bus) and lints the
result. A placeholder with no substitution, or a substitution no placeholder uses, is an error.

Usage: ``python tools/render_asl.py [--template template.yaml] --out DIR`` writes
``DIR/<LogicalId>.asl.json`` and prints the paths.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

REGION = "us-east-1"
ACCOUNT = "123456789012"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.:]+)\}")


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that reads CloudFormation short-form tags (``!Ref X`` -> ``{"Ref": "X"}``)."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template(path: Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM template, keeping intrinsic functions as plain dicts."""
    with path.open(encoding="utf-8") as handle:
        template = yaml.load(handle, Loader=_CfnLoader)
    if not isinstance(template, dict) or "Resources" not in template:
        raise ValueError(f"{path}: not a CloudFormation template")
    return template


def _referenced_resource(value: Any) -> tuple[str, str] | None:
    """``(logical id, attribute)`` of a ``Ref``/``Fn::GetAtt`` (attribute ``""`` for Ref)."""
    if isinstance(value, dict) and len(value) == 1:
        if "Ref" in value:
            return str(value["Ref"]), ""
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            return str(logical_id), str(attribute)
    return None


def _alias_of(template: dict[str, Any], logical_id: str) -> tuple[str, str] | None:
    """``(resource, alias name)`` for SAM's ``Function.Alias`` and a state machine's generated
    ``<StateMachine>Alias<name>``; None for anything else."""
    resources = template["Resources"]
    if logical_id.endswith(".Alias") and logical_id[: -len(".Alias")] in resources:
        owner = logical_id[: -len(".Alias")]
        name = resources[owner].get("Properties", {}).get("AutoPublishAlias") or template.get(
            "Globals", {}
        ).get("Function", {}).get("AutoPublishAlias")
        return (owner, str(name)) if name else None
    for owner, resource in resources.items():
        name = resource.get("Properties", {}).get("AutoPublishAlias")
        machine = resource["Type"] == "AWS::Serverless::StateMachine"
        if machine and name and logical_id == f"{owner}Alias{name}":
            return owner, str(name)
    return None


def dummy_value(template: dict[str, Any], key: str, value: Any) -> str:
    """A well-formed stand-in for what ``value`` resolves to once deployed."""
    if isinstance(value, str | int | float):
        return str(value)
    reference = _referenced_resource(value)
    if reference is None:
        raise ValueError(f"substitution {key}: cannot make a stand-in for {value!r}")
    logical_id, attribute = reference
    prefix = f"arn:aws:{{service}}:{REGION}:{ACCOUNT}"
    alias = _alias_of(template, logical_id)
    if alias is not None:  # a function's or state machine's AutoPublishAlias
        return dummy_value(template, key, {"Ref": alias[0]}) + f":{alias[1]}"
    resource_type = template["Resources"].get(logical_id, {}).get("Type", "")
    if resource_type == "AWS::Serverless::Function":
        return prefix.format(service="lambda") + f":function:{logical_id}"
    if resource_type == "AWS::Serverless::StateMachine" and attribute in ("", "Arn"):
        return prefix.format(service="states") + f":stateMachine:{logical_id}"
    if resource_type == "AWS::SQS::Queue":
        fifo = ".fifo" if template["Resources"][logical_id]["Properties"].get("FifoQueue") else ""
        if attribute == "Arn":
            return prefix.format(service="sqs") + f":{logical_id}{fifo}"
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{logical_id}{fifo}"
    if resource_type in ("AWS::DynamoDB::Table", "AWS::Events::EventBus") and attribute == "":
        return logical_id
    if attribute == "Arn":
        return f"arn:aws:{resource_type.split('::')[1].lower()}:{REGION}:{ACCOUNT}:{logical_id}"
    raise ValueError(f"substitution {key}: no stand-in for {resource_type} {attribute!r}")


def render_state_machines(template_path: Path) -> dict[str, str]:
    """``{logical id: definition with every placeholder filled}`` for each state machine."""
    template = load_template(template_path)
    rendered: dict[str, str] = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::StateMachine":
            continue
        properties = resource.get("Properties", {})
        definition_path = template_path.parent / properties["DefinitionUri"]
        text = definition_path.read_text(encoding="utf-8")
        substitutions = properties.get("DefinitionSubstitutions", {})
        used = set(PLACEHOLDER.findall(text))
        missing = sorted(used - set(substitutions))
        unused = sorted(set(substitutions) - used)
        if missing or unused:
            raise ValueError(
                f"{logical_id} ({definition_path.name}): placeholders without a substitution "
                f"{missing}, substitutions no placeholder uses {unused}"
            )
        for key, value in substitutions.items():
            text = text.replace("${" + key + "}", dummy_value(template, key, value))
        json.loads(text)  # a substitution must not break the JSON
        rendered[logical_id] = text
    return rendered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        rendered = render_state_machines(args.template)
    except (OSError, ValueError, KeyError) as exc:
        print(f"render_asl: {exc}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for logical_id, text in rendered.items():
        path = args.out / f"{logical_id}.asl.json"
        path.write_text(text, encoding="utf-8")
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
