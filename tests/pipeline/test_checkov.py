"""checkov on template.yaml: no failed check, and every check skipped in .checkov.yaml says why.

Runs what ``make checkov`` runs (the raw SAM template, the cloudformation framework) with the
project's .checkov.yaml, twice: with the template's defaults (paper mode) and with live-mode
defaults (tools/render_mode.py), because checkov resolves each resource's Condition with the
parameters' defaults and paper mode has no exchange secret to scan. The tool comes from .tools/
(``make tools``); a missing tool fails the test, it never skips. Some skips lean on a free
alternative (SSE-SQS, DynamoDB's AWS-managed key, a DLQ on every asynchronously invoked
function): the tests below hold the template to it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
CONFIG = ROOT / ".checkov.yaml"
CHECKOV = ROOT / ".tools" / "bin" / "checkov"
MIN_REASON_WORDS = 4
SKIP_LINE = re.compile(r"^\s*-\s*(?P<id>[A-Z][A-Z0-9_]*_\d+)\s*(?:#\s*(?P<reason>.*))?$")
ASYNC_EVENT_TYPES = {"Schedule", "ScheduleV2", "EventBridgeRule", "CloudWatchEvent", "SNS", "S3"}


def _load_template(template: Path = TEMPLATE) -> dict[str, Any]:
    path = ROOT / "tools" / "render_asl.py"
    spec = importlib.util.spec_from_file_location("render_asl", path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loaded: dict[str, Any] = module.load_template(template)
    return loaded


def resources_of(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def skipped_checks() -> dict[str, str]:
    """{check id: the comment beside it} for every line of .checkov.yaml's skip-check list."""
    skips: dict[str, str] = {}
    in_list = False
    for line in CONFIG.read_text(encoding="utf-8").splitlines():
        if re.match(r"^skip-check\s*:", line):
            in_list = True
            continue
        if in_list and line and not line[0].isspace() and not line.startswith("#"):
            in_list = False
        match = SKIP_LINE.match(line) if in_list else None
        if match:
            skips[match["id"]] = (match["reason"] or "").strip()
    return skips


def render(mode: str, out_dir: Path) -> Path:
    """The template as ``make checkov`` scans it in ``mode`` (``default``: template.yaml)."""
    if mode == "default":
        return TEMPLATE
    out = out_dir / mode / "template.yaml"
    script = ROOT / "tools" / "render_mode.py"
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "--template",
            str(TEMPLATE),
            "--mode",
            mode,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return out


def run_checkov(template: Path, workdir: Path) -> dict[str, Any]:
    """Only the project's config: checkov would also merge a .checkov.yaml found in the working
    directory or the home directory, so both point at an empty folder here."""
    if not os.access(CHECKOV, os.X_OK):
        pytest.fail(f"{CHECKOV} is missing: run `make tools` (the test command depends on it)")
    result = subprocess.run(
        [
            str(CHECKOV),
            "--config-file",
            str(CONFIG),
            "--compact",
            "--framework",
            "cloudformation",
            "--file",
            str(template),
            "-o",
            "json",
        ],
        cwd=workdir,
        env={**os.environ, "HOME": str(workdir)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.stdout.strip(), (
        f"checkov printed nothing (exit {result.returncode}):\n{result.stderr}"
    )
    report = json.loads(result.stdout)
    # One framework gives one report; several would give a list of them.
    reports = report if isinstance(report, list) else [report]
    assert len(reports) == 1, [r.get("check_type") for r in reports]
    assert result.returncode == (1 if reports[0]["summary"]["failed"] else 0), result.stderr
    return dict(reports[0])


@pytest.fixture(scope="module", params=["default", "live"])
def checkov_report(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, Any]]:
    workdir = tmp_path_factory.mktemp(f"checkov-{request.param}")
    return request.param, run_checkov(render(request.param, workdir), workdir)


def test_checkov_reports_no_failed_check(checkov_report: tuple[str, dict[str, Any]]) -> None:
    mode, report = checkov_report
    summary = report["summary"]
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for check in report["results"]["failed_checks"]
    ]
    assert summary["parsing_errors"] == 0, (mode, summary)
    assert summary["failed"] == 0 and not failed, f"{mode}:\n" + "\n".join(failed)
    assert summary["passed"] > 0, (mode, summary)


def test_the_live_render_is_what_scans_the_exchange_secret_and_its_key(
    checkov_report: tuple[str, dict[str, Any]],
) -> None:
    """With paper defaults checkov leaves out the secret (its Condition is false): the live
    render is the one that holds it to CKV_AWS_149 (a customer-managed key) and the key to
    rotation (CKV_AWS_7)."""
    mode, report = checkov_report
    passed = {(c["check_id"], c["resource"]) for c in report["results"]["passed_checks"]}
    scanned = {
        ("CKV_AWS_149", "AWS::SecretsManager::Secret.ExchangeSecret"),
        ("CKV_AWS_7", "AWS::KMS::Key.ExchangeSecretKey"),
    }
    assert (scanned <= passed) is (mode == "live"), (mode, sorted(passed))


def test_the_live_render_changes_only_the_mode_parameters_defaults(tmp_path: Path) -> None:
    original = _load_template()
    live = _load_template(render("live", tmp_path))
    assert live["Parameters"]["TradingMode"]["Default"] == "live"
    assert live["Parameters"]["LiveTradingConfirmation"]["Default"] == "trade-real-money"
    for name in ("TradingMode", "LiveTradingConfirmation"):
        live["Parameters"][name]["Default"] = original["Parameters"][name]["Default"]
    assert live == original


def test_every_skipped_check_has_a_written_reason() -> None:
    skips = skipped_checks()
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8")) or {}
    listed = config.get("skip-check") or []
    assert isinstance(listed, list), "skip-check must be a YAML list, one check a line"
    # Every skip is on a line of its own that the parser saw: none hides in a flow list.
    assert sorted(skips) == sorted(listed), f"skip-check {listed} vs lines {sorted(skips)}"
    for check_id, reason in skips.items():
        words = re.findall(r"[A-Za-z]+", reason)
        assert len(words) >= MIN_REASON_WORDS, f"{check_id} is skipped without a reason"


def test_the_skip_parser_sees_a_skip_without_a_comment() -> None:
    bare = SKIP_LINE.match("  - CKV_AWS_1")
    assert bare is not None and bare["reason"] is None
    commented = SKIP_LINE.match("  - CKV_AWS_117  # no private resources; a NAT costs money")
    assert commented is not None and commented["id"] == "CKV_AWS_117"
    assert commented["reason"] == "no private resources; a NAT costs money"


def test_queues_skipped_for_kms_keep_sse_sqs() -> None:
    queues = resources_of(_load_template(), "AWS::SQS::Queue")
    assert queues
    for logical_id, props in queues.items():
        encrypted = props.get("SqsManagedSseEnabled") is True or props.get("KmsMasterKeyId")
        assert encrypted, f"{logical_id}: CKV_AWS_27 is skipped on the strength of SSE-SQS"


def test_tables_skipped_for_a_customer_key_keep_the_aws_managed_key() -> None:
    tables = resources_of(_load_template(), "AWS::DynamoDB::Table")
    assert tables
    for logical_id, props in tables.items():
        sse = props.get("SSESpecification", {})
        assert sse.get("SSEEnabled") is True, f"{logical_id}: CKV_AWS_119 is skipped, keep SSE"


def test_functions_invoked_asynchronously_keep_their_dead_letter_queue() -> None:
    functions = resources_of(_load_template(), "AWS::Serverless::Function")
    asynchronous = {
        logical_id
        for logical_id, props in functions.items()
        if any(e["Type"] in ASYNC_EVENT_TYPES for e in (props.get("Events") or {}).values())
    }
    assert {"IngestFunction", "ReconcileFunction"} <= asynchronous
    for logical_id in asynchronous:
        dlq = functions[logical_id].get("DeadLetterQueue", {})
        assert dlq.get("TargetArn"), f"{logical_id}: CKV_AWS_116 is skipped, keep its DLQ"
