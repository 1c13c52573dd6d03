"""CodeDeploy's pre-traffic hook for the order path (deployment/hooks/pretraffic/app.py).

Before CodeDeploy moves any traffic to the new versions of signal, risk and execute, each
new version is invoked with the smoke event (it builds its dependencies and answers, with no
effect) and must answer so; the hook then
reports Succeeded or Failed, and a failure stops the deployment with no traffic moved
(docs/decisions/0012-canaries-on-the-order-path.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def run_pre_traffic_hook(
    event: dict[str, Any], *, targets: Sequence[str], lambda_client: Any, codedeploy: Any
) -> str:
    """Invoke each target (a qualified function ARN) and report the outcome to CodeDeploy."""
    from tickstep.operations.checks import smoke_invoke

    status = "Succeeded"
    for target in targets:
        name, _, version = target.rpartition(":")
        try:
            failed = smoke_invoke(lambda_client, name, version)
        except Exception as exc:  # the new version cannot be invoked: no traffic may reach it
            failed = f"{type(exc).__name__}: {exc}"
        if failed is not None:
            print(f"pre-traffic: {target}: {failed}")
            status = "Failed"
    codedeploy.put_lifecycle_event_hook_execution_status(
        deploymentId=event["DeploymentId"],
        lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
        status=status,
    )
    return status
