"""Releases: which published version of every function and state machine a deploy (or a
rollback) made live, kept as the history of one SSM parameter per stack
(docs/decisions/0011-releases-in-ssm-parameter-history.md)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from tickstep.operations.stack import (
    ALIAS,
    Clients,
    Stack,
    function_alias,
    state_machine_alias,
    state_machine_alias_arn,
)


class RollbackRefusedError(RuntimeError):
    """Nothing to roll back to: no alias was moved."""


@dataclass(frozen=True)
class Release:
    id: str
    kind: str  # "deploy" or "rollback"
    commit: str
    time: str
    who: str
    functions: dict[str, str] = field(default_factory=dict)
    """Function logical id -> published version its alias routes to."""
    state_machines: dict[str, str] = field(default_factory=dict)
    """State machine logical id -> version ARN its alias routes to."""
    note: str = ""

    def same_versions(self, other: Release) -> bool:
        return (self.functions, self.state_machines) == (other.functions, other.state_machines)


def parameter_name(stack: str) -> str:
    return f"/tickstep/{stack}/release"


def live_versions(clients: Clients, stack: Stack) -> tuple[dict[str, str], dict[str, str]]:
    """What each alias routes all its traffic to now (a half-shifted alias: its main one)."""
    functions = {}
    for logical, name in stack.functions.items():
        alias = function_alias(clients, name)
        if alias is not None:
            functions[logical] = str(alias["FunctionVersion"])
    machines = {}
    for logical, arn in stack.state_machines.items():
        alias = state_machine_alias(clients, arn)
        if alias is not None:
            routes = sorted(alias["routingConfiguration"], key=lambda r: -r["weight"])
            machines[logical] = str(routes[0]["stateMachineVersionArn"])
    return functions, machines


def record(clients: Clients, stack: str, release: Release) -> None:
    clients("ssm").put_parameter(
        Name=parameter_name(stack),
        Value=json.dumps(asdict(release), sort_keys=True, separators=(",", ":")),
        Type="String",
        Overwrite=True,
        Description="tickstep releases: the parameter's history is the release history",
    )


def history(clients: Clients, stack: str) -> list[Release]:
    """Every release, oldest first (SSM keeps a parameter's last 100 values)."""
    ssm = clients("ssm")
    releases: list[Release] = []
    try:
        for page in ssm.get_paginator("get_parameter_history").paginate(Name=parameter_name(stack)):
            releases += [Release(**json.loads(p["Value"])) for p in page["Parameters"]]
    except ssm.exceptions.ParameterNotFound:
        return []
    return releases


def rollback_target(releases: list[Release], to: str | None) -> Release:
    if not releases:
        raise RollbackRefusedError("no release is recorded for this stack: nothing to roll back to")
    current = releases[-1]
    if to is not None:
        for release in releases:
            if release.id == to:
                return release
        raise RollbackRefusedError(f"no release {to!r}; known: {', '.join(r.id for r in releases)}")
    for release in reversed(releases[:-1]):
        if not release.same_versions(current):
            return release
    raise RollbackRefusedError(f"no release before {current.id} with other versions: nothing to do")


def move_aliases(clients: Clients, stack: Stack, target: Release, say: Any) -> None:
    """Every alias to the target's versions, all traffic (any canary weight removed)."""
    lam, sfn = clients("lambda"), clients("stepfunctions")
    for logical, version in sorted(target.functions.items()):
        if logical not in stack.functions:
            continue
        say(f"alias {logical}:{ALIAS} -> version {version}")
        lam.update_alias(
            FunctionName=stack.functions[logical],
            Name=ALIAS,
            FunctionVersion=version,
            RoutingConfig={"AdditionalVersionWeights": {}},
        )
    for logical, version_arn in sorted(target.state_machines.items()):
        if logical not in stack.state_machines:
            continue
        alias_arn = state_machine_alias_arn(clients, stack.state_machines[logical])
        if alias_arn is None:
            continue
        say(f"alias {logical}:{ALIAS} -> {version_arn.rsplit(':', 1)[-1]}")
        sfn.update_state_machine_alias(
            stateMachineAliasArn=alias_arn,
            routingConfiguration=[{"stateMachineVersionArn": version_arn, "weight": 100}],
        )
