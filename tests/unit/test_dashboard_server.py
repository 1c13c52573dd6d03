"""tickstep local --serve's server without a stack: who it refuses, before any API call."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from tickstep.dashboard.server import COOKIE, DashboardServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DashboardServer]:
    (tmp_path / "index.html").write_text("<h1>page</h1>")
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "index-1a2b.js").write_text("console.log(1)")
    (tmp_path.parent / "secret.txt").write_text("not the page's")
    served = DashboardServer(tmp_path, port=0)
    served.start(cast(Any, None))  # no stack: these requests never reach the API
    yield served
    served.close()


def get(server: DashboardServer, path: str, headers: dict[str, str] | None = None) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", path, headers={"Host": f"127.0.0.1:{server.port}", **(headers or {})})
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response


def test_the_token_in_the_url_becomes_an_http_only_cookie_and_leaves_the_address(
    server: DashboardServer,
) -> None:
    response = get(server, f"/?token={server.token}")

    assert response.status == 303
    assert response.getheader("Location") == "/"
    cookie = response.getheader("Set-Cookie")
    assert f"{COOKIE}={server.token}" in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = get(server, "/", {"Cookie": f"{COOKIE}={server.token}"})
    assert (page.status, page.body) == (200, b"<h1>page</h1>")
    assert page.getheader("Cache-Control") == "no-store"
    assert "frame-ancestors 'none'" in page.getheader("Content-Security-Policy")
    asset = get(server, "/assets/index-1a2b.js", {"Authorization": f"Bearer {server.token}"})
    assert asset.getheader("Content-Type") == "text/javascript; charset=utf-8"
    assert "immutable" in asset.getheader("Cache-Control")


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/", {}, 403),
        ("/api/dashboard", {}, 401),
        ("/", {"Cookie": f"{COOKIE}=wrong"}, 403),
        ("/api/orders", {"Authorization": "Bearer wrong"}, 401),
        ("/api/orders?token=", {}, 401),
    ],
)
def test_without_the_token_nothing_is_served(
    server: DashboardServer, path: str, headers: dict[str, str], status: int
) -> None:
    response = get(server, path, headers)

    assert response.status == status
    assert b"page" not in response.body


def test_another_host_name_is_refused_even_with_the_token(server: DashboardServer) -> None:
    """A page elsewhere that resolves its own name to 127.0.0.1 (DNS rebinding) gets nothing."""
    response = get(server, f"/?token={server.token}", {"Host": "evil.example:80"})

    assert response.status == 403


def test_paths_outside_the_built_page_are_not_served(server: DashboardServer) -> None:
    auth = {"Authorization": f"Bearer {server.token}"}

    assert get(server, "/../secret.txt", auth).status == 404
    assert get(server, "/%2e%2e/secret.txt", auth).status == 404
