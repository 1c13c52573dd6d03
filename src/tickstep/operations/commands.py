"""``tickstep deploy|rollback|validate|health-checks <env>``: the operator's commands.

Each prints its steps as it goes (or, with ``--json``, one JSON document at the end) and
exits 0 when everything passed, 1 when a step or check failed (saying what to do), 2 for a
usage error. ``TICKSTEP_SAM`` and ``TICKSTEP_MAKE`` name the sam and make to run
(tests hand in a recording fake); ``TICKSTEP_ROOT`` the project directory.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tickstep.operations import checks
from tickstep.operations.checks import Check
from tickstep.operations.environments import Environment, load_environment
from tickstep.operations.releases import (
    Release,
    RollbackRefusedError,
    history,
    live_versions,
    move_aliases,
    record,
    rollback_target,
)
from tickstep.operations.stack import Clients, read_stack


@dataclass
class Run:
    """What a command did: its steps, its checks, and how it ended."""

    command: str
    environment: str
    as_json: bool
    steps: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    release: dict[str, Any] | None = None
    error: str | None = None

    def say(self, text: str) -> None:
        self.steps.append(text)
        if not self.as_json:
            print(f"[{self.command} {self.environment}] {text}", flush=True)

    def report(self, results: list[Check]) -> bool:
        for c in results:
            self.checks.append(asdict(c))
            if not self.as_json:
                print(f"  {c.line()}", flush=True)
        return all(c.ok for c in results)

    def finish(self, code: int, *, advice: str = "") -> int:
        if code and advice:
            self.error = advice
            if not self.as_json:
                print(f"[{self.command} {self.environment}] FAILED: {advice}", file=sys.stderr)
        if self.as_json:
            print(json.dumps({**asdict(self), "exit_code": code}, indent=2, default=str))
        return code


def project_root() -> Path:
    override = os.environ.get("TICKSTEP_ROOT")
    return Path(override) if override else Path(__file__).resolve().parents[3]


def _session(env: Environment) -> Any:
    import boto3

    return boto3.session.Session(region_name=env.region)


def _context(env: Environment) -> checks.Context:
    clients = Clients(_session(env))
    return checks.Context(
        clients=clients,
        stack=read_stack(clients, env.stack_name),
        now_ms=checks.now_ms(),
        http=checks.http_get,
    )


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def _who(clients: Clients) -> str:
    try:
        return str(clients("sts").get_caller_identity()["Arn"])
    except Exception:  # no STS answer: the local user still says who
        return getpass.getuser()


def _new_release(clients: Clients, env: Environment, kind: str, root: Path, note: str) -> Release:
    stack = read_stack(clients, env.stack_name)
    functions, machines = live_versions(clients, stack)
    commit = _git(root, "rev-parse", "HEAD") or "unknown"
    now = datetime.now(UTC)
    return Release(
        id=f"{now:%Y%m%dT%H%M%S%fZ}-{kind}",
        kind=kind,
        commit=commit,
        time=now.isoformat(timespec="seconds"),
        who=_who(clients),
        functions=functions,
        state_machines=machines,
        note=note,
    )


def _run_tool(run: Run, argv: list[str], root: Path) -> bool:
    run.say("$ " + " ".join(argv))
    done = subprocess.run(argv, cwd=root, check=False)
    return done.returncode == 0


def deploy(env_name: str, *, as_json: bool) -> int:
    run = Run("deploy", env_name, as_json)
    root = project_root()
    env = load_environment(root / "samconfig.toml", env_name)
    run.say(f"stack {env.stack_name} in {env.region}, trading mode {env.trading_mode}")
    if env.name == "production":
        if not env.parameters.get("AlarmEmail"):
            return run.finish(1, advice="AlarmEmail is empty in samconfig.toml [production]")
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=False
        )
        if status.returncode != 0 or status.stdout.strip():
            return run.finish(
                1,
                advice="the work tree has uncommitted changes (or is no git work tree): "
                "production deploys only committed code",
            )
    make = os.environ.get("TICKSTEP_MAKE", "make")
    sam = os.environ.get("TICKSTEP_SAM", str(root / ".tools" / "bin" / "sam"))
    if not _run_tool(run, [make, "build"], root):
        return run.finish(1, advice="the build failed: fix it and deploy again")
    if not _run_tool(run, [sam, "deploy", "--config-env", env.name], root):
        return run.finish(
            1,
            advice="sam deploy failed; CloudFormation rolled the stack back "
            "(docs/RUNBOOK.md, Rollback procedures)",
        )
    clients = Clients(_session(env))
    release = _new_release(clients, env, "deploy", root, note="")
    record(clients, env.stack_name, release)
    run.release = asdict(release)
    run.say(f"release {release.id} recorded (commit {release.commit[:12]})")
    run.say("validating")
    if not run.report(checks.validate(_context(env))):
        return run.finish(
            1,
            advice="validation failed: look at the failed checks; to undo the release run "
            f"deployment/scripts/rollback-backend.sh {env.name}",
        )
    return run.finish(0)


def rollback(env_name: str, *, to: str | None, as_json: bool) -> int:
    run = Run("rollback", env_name, as_json)
    root = project_root()
    env = load_environment(root / "samconfig.toml", env_name)
    clients = Clients(_session(env))
    releases = history(clients, env.stack_name)
    try:
        target = rollback_target(releases, to)
    except RollbackRefusedError as exc:
        return run.finish(1, advice=f"refused, nothing changed: {exc}")
    run.say(f"rolling back from {releases[-1].id} to {target.id} (commit {target.commit[:12]})")
    move_aliases(clients, read_stack(clients, env.stack_name), target, run.say)
    release = _new_release(clients, env, "rollback", root, note=f"to {target.id}")
    release = Release(**{**asdict(release), "commit": target.commit})
    record(clients, env.stack_name, release)
    run.release = asdict(release)
    run.say(f"release {release.id} recorded")
    run.say("health checks")
    if not run.report(checks.health_checks(_context(env))):
        return run.finish(1, advice="rolled back, but the health checks fail: see above")
    return run.finish(0)


def check_command(name: str, select: Callable[[checks.Context], list[Check]]) -> Any:
    def command(env_name: str, *, as_json: bool) -> int:
        run = Run(name, env_name, as_json)
        env = load_environment(project_root() / "samconfig.toml", env_name)
        run.say(f"stack {env.stack_name} in {env.region}")
        if not run.report(select(_context(env))):
            return run.finish(1, advice="a check failed: see its reason (docs/RUNBOOK.md)")
        return run.finish(0)

    return command


validate = check_command("validate", checks.validate)
health_checks = check_command("health-checks", checks.health_checks)
