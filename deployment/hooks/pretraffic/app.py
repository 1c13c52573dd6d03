"""CodeDeploy pre-traffic hook: invoke the order path's new versions before traffic moves."""

from __future__ import annotations

import os
from typing import Any

from tickstep.bootstrap import aws_client
from tickstep.operations.hook import run_pre_traffic_hook


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    targets = [t for t in os.environ.get("HOOK_TARGETS", "").split(",") if t]
    status = run_pre_traffic_hook(
        event,
        targets=targets,
        lambda_client=aws_client("lambda"),
        codedeploy=aws_client("codedeploy"),
    )
    return {"status": status}
