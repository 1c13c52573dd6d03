"""What a deployed stack is made of, read from AWS (never from the local template)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALIAS = "live"
"""Every function's and state machine's AutoPublishAlias (template.yaml)."""
HEALTHY_STATUSES = ("CREATE_COMPLETE", "UPDATE_COMPLETE")


@dataclass
class Clients:
    """The AWS clients of one environment's region (``AWS_ENDPOINT_URL`` is honoured)."""

    session: Any
    cache: dict[str, Any] = field(default_factory=dict)

    def __call__(self, service: str) -> Any:
        if service not in self.cache:
            self.cache[service] = self.session.client(service)
        return self.cache[service]


@dataclass
class Stack:
    name: str
    status: str
    outputs: dict[str, str]
    resources: dict[str, tuple[str, str]]
    """Logical id -> (resource type, physical id)."""

    def of_type(self, resource_type: str) -> dict[str, str]:
        return {k: pid for k, (t, pid) in sorted(self.resources.items()) if t == resource_type}

    @property
    def functions(self) -> dict[str, str]:
        return self.of_type("AWS::Lambda::Function")

    @property
    def state_machines(self) -> dict[str, str]:
        """From the resources, and the stack's ``<Name>StateMachineArn`` outputs."""
        named = {
            key.removesuffix("Arn"): value
            for key, value in self.outputs.items()
            if key.endswith("StateMachineArn")
        }
        return dict(sorted({**named, **self.of_type("AWS::StepFunctions::StateMachine")}.items()))

    @property
    def dead_letter_queues(self) -> dict[str, str]:
        return {k: v for k, v in self.of_type("AWS::SQS::Queue").items() if k.endswith("DLQ")}


def read_stack(clients: Clients, name: str) -> Stack:
    cfn = clients("cloudformation")
    described = cfn.describe_stacks(StackName=name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    resources: dict[str, tuple[str, str]] = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name):
        for r in page["StackResourceSummaries"]:
            resources[r["LogicalResourceId"]] = (r["ResourceType"], r["PhysicalResourceId"])
    return Stack(name, described["StackStatus"], outputs, resources)


def function_alias(clients: Clients, function: str) -> dict[str, Any] | None:
    lam = clients("lambda")
    try:
        alias: dict[str, Any] = lam.get_alias(FunctionName=function, Name=ALIAS)
    except lam.exceptions.ResourceNotFoundException:
        return None
    return alias


def state_machine_alias_arn(clients: Clients, state_machine_arn: str) -> str | None:
    page = clients("stepfunctions").list_state_machine_aliases(stateMachineArn=state_machine_arn)
    for alias in page.get("stateMachineAliases", []):
        if alias["stateMachineAliasArn"].rsplit(":", 1)[-1] == ALIAS:
            return str(alias["stateMachineAliasArn"])
    return None


def state_machine_alias(clients: Clients, state_machine_arn: str) -> dict[str, Any] | None:
    arn = state_machine_alias_arn(clients, state_machine_arn)
    if arn is None:
        return None
    described: dict[str, Any] = clients("stepfunctions").describe_state_machine_alias(
        stateMachineAliasArn=arn
    )
    return described


def function_environment(clients: Clients, function: str) -> dict[str, str]:
    config = clients("lambda").get_function_configuration(FunctionName=function)
    variables: dict[str, str] = config.get("Environment", {}).get("Variables", {})
    return variables
