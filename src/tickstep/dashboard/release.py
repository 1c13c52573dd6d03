"""The page's releases: ``deploy-frontend.sh <env>`` and ``rollback-frontend.sh <env>``.

A release is a prefix of the private frontend bucket, ``releases/<id>/``, holding one build of
``frontend/dist`` and its ``config.json`` (how the page signs in: the user pool's hosted UI
and app client). Hashed assets (``assets/``) are cached for a year and immutable; ``index.html``
and ``config.json`` are never cached; every object has its content type. CloudFront serves
the release its S3 origin's ``OriginPath`` names, so a deploy uploads a new prefix, then
switches the origin path and invalidates the two uncached names; a rollback only switches
back (seconds, nothing rebuilt or uploaded). ``releases/history.json`` lists the releases
switched to, newest last; a rollback drops the newest and refuses when nothing is before it.

Every function takes its boto3 clients (moto-backed in tests); only :func:`connect` makes them.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FRONTEND_ORIGIN_ID = "frontend"
"""The S3 origin's id in the distribution (template.yaml, FrontendDistribution)."""
RELEASES = "releases"
HISTORY_KEY = f"{RELEASES}/history.json"
IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache, no-store, must-revalidate"
UNCACHED = ("index.html", "config.json")
OUTPUTS = {
    "bucket": "FrontendBucketName",
    "distribution_id": "FrontendDistributionId",
    "domain": "FrontendDomainName",
    "cognito_domain": "UserPoolHostedUiUrl",
    "client_id": "UserPoolClientId",
}
"""The stack outputs a release needs (template.yaml Outputs)."""


class ReleaseError(RuntimeError):
    """Cannot release or roll back; the message says why (exit code 1)."""


@dataclass(frozen=True)
class Target:
    bucket: str
    distribution_id: str
    domain: str
    cognito_domain: str
    client_id: str

    def page_config(self) -> dict[str, str]:
        return {
            "auth": "cognito",
            "cognitoDomain": self.cognito_domain,
            "clientId": self.client_id,
            "redirectUri": f"https://{self.domain}/",
        }


@dataclass(frozen=True)
class Clients:
    s3: Any
    cloudfront: Any


def release_id(dist: Path, now_s: float) -> str:
    """``20261127T133000Z-<first 8 hex of the build's SHA-256>``: when, and which build."""
    digest = hashlib.sha256()
    for path in sorted(p for p in dist.rglob("*") if p.is_file()):
        digest.update(path.relative_to(dist).as_posix().encode() + b"\0" + path.read_bytes())
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now_s))}-{digest.hexdigest()[:8]}"


CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
"""What a build holds, named here: mimetypes' answers differ by machine (/etc/mime.types)."""


def content_type(name: str) -> str:
    kind = CONTENT_TYPES.get(Path(name).suffix.lower())
    return kind or mimetypes.guess_type(name)[0] or "application/octet-stream"


def object_headers(name: str) -> dict[str, str]:
    """Content type and caching of one file of the build, by its name."""
    hashed = name.startswith("assets/")
    return {"ContentType": content_type(name), "CacheControl": IMMUTABLE if hashed else NO_CACHE}


def upload(clients: Clients, target: Target, dist: Path, release: str) -> list[str]:
    if not (dist / "index.html").is_file():
        raise ReleaseError(f"{dist}/index.html missing: build the page first (make frontend)")
    keys = []
    files = {p.relative_to(dist).as_posix(): p.read_bytes() for p in dist.rglob("*") if p.is_file()}
    files["config.json"] = json.dumps(target.page_config()).encode()
    # index.html last: a release prefix is complete before anything could point at it.
    for name in sorted(files, key=lambda n: (n == "index.html", n)):
        key = f"{RELEASES}/{release}/{name}"
        clients.s3.put_object(
            Bucket=target.bucket, Key=key, Body=files[name], **object_headers(name)
        )
        keys.append(key)
    return keys


def history(clients: Clients, target: Target) -> list[str]:
    try:
        body = clients.s3.get_object(Bucket=target.bucket, Key=HISTORY_KEY)["Body"].read()
    except clients.s3.exceptions.NoSuchKey:
        return []
    releases = json.loads(body)["releases"]
    return [str(r) for r in releases]


def _save_history(clients: Clients, target: Target, releases: list[str]) -> None:
    clients.s3.put_object(
        Bucket=target.bucket,
        Key=HISTORY_KEY,
        Body=json.dumps({"releases": releases}).encode(),
        **object_headers("history.json"),
    )


def live_release(clients: Clients, target: Target) -> str | None:
    """The release the distribution serves now (its S3 origin's path), if any."""
    config = clients.cloudfront.get_distribution_config(Id=target.distribution_id)
    path = _origin(config["DistributionConfig"])["OriginPath"]
    prefix = f"/{RELEASES}/"
    return path[len(prefix) :] if path.startswith(prefix) else None


def _origin(config: dict[str, Any]) -> dict[str, Any]:
    for origin in config["Origins"]["Items"]:
        if origin["Id"] == FRONTEND_ORIGIN_ID:
            return dict(origin)
    raise ReleaseError(f"the distribution has no origin {FRONTEND_ORIGIN_ID!r}")


def switch(clients: Clients, target: Target, release: str) -> str:
    """Point the distribution at ``release`` and invalidate the uncached names; the
    invalidation's id."""
    found = clients.cloudfront.get_distribution_config(Id=target.distribution_id)
    config = found["DistributionConfig"]
    for origin in config["Origins"]["Items"]:
        if origin["Id"] == FRONTEND_ORIGIN_ID:
            origin["OriginPath"] = f"/{RELEASES}/{release}"
    clients.cloudfront.update_distribution(
        Id=target.distribution_id, IfMatch=found["ETag"], DistributionConfig=config
    )
    paths = ["/", *(f"/{name}" for name in UNCACHED)]
    invalidation = clients.cloudfront.create_invalidation(
        DistributionId=target.distribution_id,
        InvalidationBatch={
            "Paths": {"Quantity": len(paths), "Items": paths},
            "CallerReference": f"{release}-{time.time_ns()}",
        },
    )
    return str(invalidation["Invalidation"]["Id"])


def deploy(clients: Clients, target: Target, dist: Path, *, now_s: float) -> str:
    """Upload ``dist`` as a new release, switch to it, record it; the release id."""
    release = release_id(dist, now_s)
    upload(clients, target, dist, release)
    switch(clients, target, release)
    releases = [r for r in history(clients, target) if r != release]
    _save_history(clients, target, [*releases, release])
    return release


def rollback(clients: Clients, target: Target) -> tuple[str, str]:
    """Switch back to the release before the live one; (from, to). Refuses with none."""
    releases = history(clients, target)
    live = live_release(clients, target)
    if live in releases:
        releases = releases[: releases.index(live) + 1]
    if len(releases) < 2:
        raise ReleaseError(f"no earlier frontend release to roll back to (live: {live or 'none'})")
    current, previous = releases[-1], releases[-2]
    switch(clients, target, previous)
    _save_history(clients, target, releases[:-1])
    return current, previous


def connect(environment: str) -> tuple[Clients, Target]:
    """The environment's stack (samconfig.toml) and its outputs; boto3's usual credentials."""
    import boto3

    from tickstep.local.runtime import project_root
    from tickstep.operations.environments import load_environment

    env = load_environment(project_root() / "samconfig.toml", environment)
    session = boto3.session.Session(region_name=env.region)
    stacks = session.client("cloudformation").describe_stacks(StackName=env.stack_name)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks["Stacks"][0].get("Outputs", [])}
    missing = [name for name in OUTPUTS.values() if name not in outputs]
    if missing:
        raise ReleaseError(f"{env.stack_name}: outputs missing: {', '.join(missing)}")
    target = Target(**{field: outputs[name] for field, name in OUTPUTS.items()})
    return Clients(session.client("s3"), session.client("cloudfront")), target


def deploy_command(environment: str, *, dist: str) -> int:
    try:
        clients, target = connect(environment)
        release = deploy(clients, target, Path(dist), now_s=time.time())
    except ReleaseError as exc:
        print(f"deploy-frontend: {exc}", file=sys.stderr)
        return 1
    print(f"deploy-frontend: {environment} serves release {release} (https://{target.domain}/)")
    return 0


def rollback_command(environment: str) -> int:
    try:
        clients, target = connect(environment)
        current, previous = rollback(clients, target)
    except ReleaseError as exc:
        print(f"rollback-frontend: {exc}", file=sys.stderr)
        return 1
    print(f"rollback-frontend: {environment} back from {current} to release {previous}")
    return 0
