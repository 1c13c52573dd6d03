"""deploy-frontend / rollback-frontend against moto's S3 and CloudFront: a release is a new
prefix with the right headers, the distribution switches to it and invalidates what is not
cached, a rollback switches back without uploading anything, and refuses with no release
before the live one. The scripts refuse an unknown environment with exit code 2."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tickstep.dashboard.release import (
    FRONTEND_ORIGIN_ID,
    IMMUTABLE,
    NO_CACHE,
    Clients,
    ReleaseError,
    Target,
    deploy,
    history,
    live_release,
    rollback,
)

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Clients, Target]]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        cloudfront = boto3.client("cloudfront", region_name=REGION)
        s3.create_bucket(Bucket="site", CreateBucketConfiguration={"LocationConstraint": REGION})
        distribution = cloudfront.create_distribution(DistributionConfig=_distribution_config())
        target = Target(
            bucket="site",
            distribution_id=distribution["Distribution"]["Id"],
            domain="d111.cloudfront.net",
            cognito_domain="https://tickstep-test.auth.eu-west-1.amazoncognito.com",
            client_id="client123",
        )
        yield Clients(s3, cloudfront), target


def _distribution_config() -> dict[str, Any]:
    return {
        "CallerReference": "tickstep-test",
        "Comment": "dashboard",
        "Enabled": True,
        "DefaultRootObject": "index.html",
        "Origins": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": FRONTEND_ORIGIN_ID,
                    "DomainName": "site.s3.eu-west-1.amazonaws.com",
                    "OriginPath": "",
                    "S3OriginConfig": {"OriginAccessIdentity": ""},
                }
            ],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": FRONTEND_ORIGIN_ID,
            "ViewerProtocolPolicy": "redirect-to-https",
            "MinTTL": 0,
            "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
            "TrustedSigners": {"Enabled": False, "Quantity": 0},
        },
    }


def _build(folder: Path, script: str) -> Path:
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text(f'<script src="./assets/{script}"></script>')
    (folder / "assets" / script).write_text("console.log('page')")
    (folder / "assets" / "index-abc123.css").write_text("body{}")
    return folder


def _origin_path(clients: Clients, target: Target) -> str:
    config = clients.cloudfront.get_distribution_config(Id=target.distribution_id)
    return str(config["DistributionConfig"]["Origins"]["Items"][0]["OriginPath"])


def test_deploy_uploads_a_new_release_with_its_headers_and_switches_the_origin(
    aws: tuple[Clients, Target], tmp_path: Path
) -> None:
    clients, target = aws

    release = deploy(clients, target, _build(tmp_path, "index-1a2b.js"), now_s=1_764_250_000)

    assert _origin_path(clients, target) == f"/releases/{release}"
    assert live_release(clients, target) == release
    head = clients.s3.head_object
    js = head(Bucket="site", Key=f"releases/{release}/assets/index-1a2b.js")
    css = head(Bucket="site", Key=f"releases/{release}/assets/index-abc123.css")
    index = head(Bucket="site", Key=f"releases/{release}/index.html")
    assert (js["ContentType"], js["CacheControl"]) == (
        "text/javascript; charset=utf-8",
        IMMUTABLE,
    )
    assert css["ContentType"] == "text/css; charset=utf-8"
    assert (index["ContentType"], index["CacheControl"]) == ("text/html; charset=utf-8", NO_CACHE)
    config = clients.s3.get_object(Bucket="site", Key=f"releases/{release}/config.json")
    assert config["CacheControl"] == NO_CACHE
    assert json.loads(config["Body"].read()) == {
        "auth": "cognito",
        "cognitoDomain": target.cognito_domain,
        "clientId": "client123",
        "redirectUri": "https://d111.cloudfront.net/",
    }
    invalidations = clients.cloudfront.list_invalidations(DistributionId=target.distribution_id)
    assert invalidations["InvalidationList"]["Quantity"] == 1


def test_rollback_switches_back_without_uploading_and_then_refuses(
    aws: tuple[Clients, Target], tmp_path: Path
) -> None:
    clients, target = aws
    first = deploy(clients, target, _build(tmp_path / "a", "index-1.js"), now_s=1_764_250_000)
    second = deploy(clients, target, _build(tmp_path / "b", "index-2.js"), now_s=1_764_250_600)
    objects_before = clients.s3.list_objects_v2(Bucket="site")["KeyCount"]

    assert rollback(clients, target) == (second, first)

    assert _origin_path(clients, target) == f"/releases/{first}"
    assert history(clients, target) == [first]
    assert clients.s3.list_objects_v2(Bucket="site")["KeyCount"] == objects_before
    with pytest.raises(ReleaseError, match="no earlier frontend release"):
        rollback(clients, target)
    assert _origin_path(clients, target) == f"/releases/{first}"


def test_rollback_with_no_release_at_all_refuses(aws: tuple[Clients, Target]) -> None:
    clients, target = aws

    with pytest.raises(ReleaseError, match=r"live: none"):
        rollback(clients, target)


def test_deploy_without_a_build_refuses_and_switches_nothing(
    aws: tuple[Clients, Target], tmp_path: Path
) -> None:
    clients, target = aws

    with pytest.raises(ReleaseError, match="make frontend"):
        deploy(clients, target, tmp_path, now_s=1_764_250_000)

    assert _origin_path(clients, target) == ""


@pytest.mark.parametrize("script", ["deploy-frontend.sh", "rollback-frontend.sh"])
@pytest.mark.parametrize("args", [[], ["staging"], ["prod"]])
def test_scripts_when_the_environment_is_unknown_then_exit_2(script: str, args: list[str]) -> None:
    result = subprocess.run(
        [str(ROOT / "deployment" / "scripts" / script), *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "TICKSTEP": "/bin/false"},
        check=False,
    )

    assert result.returncode == 2
    assert "usage:" in result.stderr
