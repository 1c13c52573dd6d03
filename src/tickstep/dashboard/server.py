"""``tickstep local --serve``: the dashboard page and the API function on 127.0.0.1, over the
offline stack while the candles replay, and after, until interrupted.

As Jupyter does, the server makes a token when it starts and prints the URL with it; a
request without it is refused (``/api/*``: 401 JSON; anything else: 403), whether it asks
for the page or the API. Opening the URL sets the token as an HttpOnly, SameSite=Strict
cookie and redirects to ``/``, so the token leaves the address bar; scripts may also send it
as ``Authorization: Bearer``. The Host header must name this server (no DNS rebinding).

``/api/*`` is the real API handler (``functions/api/app.py``), invoked through the local
stack with an HTTP API event whose JWT claims are those of a local operator: the page halts
the local pipeline exactly as it would the deployed one. The page is the built
``frontend/dist`` with the headers CloudFront adds on AWS (CSP, frame-ancestors).
"""

from __future__ import annotations

import hmac
import json
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import parse_qs, urlsplit

from tickstep.dashboard.release import content_type

if TYPE_CHECKING:
    from tickstep.local.cloud import LocalCloud

COOKIE = "tickstep_token"
LOCAL_USER = "local-operator"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
        "img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
        "object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
"""What the CloudFront response headers policy sends on AWS (template.yaml), but HSTS: this
server speaks plain HTTP on the loopback interface."""


def api_event(
    method: str, path: str, *, query: str, body: str | None, now_ms: int, groups: str
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event as API Gateway's JWT authorizer would pass it, from
    the local user in ``groups`` (Cognito's text form, ``[operators]``)."""
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"content-type": "application/json", "host": "127.0.0.1"},
        "queryStringParameters": {k: v[-1] for k, v in parse_qs(query).items()} or None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "authorizer": {
                "jwt": {
                    "claims": {
                        "sub": LOCAL_USER,
                        "cognito:username": LOCAL_USER,
                        "cognito:groups": groups,
                    },
                    "scopes": None,
                }
            },
            "domainName": "127.0.0.1",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "tickstep-local",
            },
            "requestId": secrets.token_hex(8),
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "timeEpoch": now_ms,
        },
        "body": body,
        "isBase64Encoded": False,
    }


class DashboardServer:
    """The server beside one offline run (``LocalRun.attach``)."""

    def __init__(
        self,
        dist: Path,
        *,
        port: int = 0,
        out: TextIO = sys.stdout,
        on_report: Callable[[dict[str, Any]], None] | None = None,
        groups: str = "[operators]",
    ) -> None:
        """``groups``: the local user's Cognito groups (tests serve a viewer too)."""
        if not (dist / "index.html").is_file():
            raise FileNotFoundError(f"{dist / 'index.html'}: build the page first (make frontend)")
        self.dist = dist.resolve()
        self.token = secrets.token_urlsafe(24)
        self.out = out
        self.on_report = on_report
        self.groups = groups
        self.cloud: LocalCloud | None = None
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    def start(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self._thread.start()
        print(f"dashboard: open {self.url}", file=self.out, flush=True)

    def finish(self, report: dict[str, Any]) -> None:
        """The replay is over: hand the report on, then serve until interrupted (Ctrl-C)."""
        if self.on_report is not None:
            self.on_report(report)
        print(
            f"replay finished; still serving {self.url} (Ctrl-C to stop)", file=self.out, flush=True
        )
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            print("dashboard: stopped", file=self.out, flush=True)
        finally:
            self.close()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def authorised(self, headers: Any, query: str) -> tuple[bool, bool]:
        """(token valid, came in the query): from the query, the cookie or a bearer header."""
        given = parse_qs(query).get("token", [""])[-1]
        if given:
            return hmac.compare_digest(given, self.token), True
        cookie = SimpleCookie(headers.get("Cookie", ""))
        if COOKIE in cookie:
            return hmac.compare_digest(cookie[COOKIE].value, self.token), False
        auth = headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return hmac.compare_digest(auth[7:], self.token), False
        return False, False

    def call_api(self, method: str, path: str, query: str, body: str | None) -> dict[str, Any]:
        assert self.cloud is not None
        now_ms = int(time.time() * 1000)
        event = api_event(method, path, query=query, body=body, now_ms=now_ms, groups=self.groups)
        result: dict[str, Any] = self.cloud.invoke("ApiFunction", event)
        return result

    def file_for(self, path: str) -> Path | None:
        name = "index.html" if path in ("", "/") else path.lstrip("/")
        candidate = (self.dist / name).resolve()
        if candidate.is_file() and candidate.is_relative_to(self.dist):
            return candidate
        return None


def _handler_for(server: DashboardServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "tickstep"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the run's own progress is what the terminal shows."""

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            is_api = url.path.startswith("/api/")
            if self.headers.get("Host", "") not in (
                f"127.0.0.1:{server.port}",
                f"localhost:{server.port}",
            ):
                self._send(HTTPStatus.FORBIDDEN, b"unknown host\n", "text/plain")
                return
            valid, in_query = server.authorised(self.headers, url.query)
            if not valid:
                if is_api:
                    body = b'{"error":"unauthorized","message":"the token is missing or wrong"}'
                    self._send(HTTPStatus.UNAUTHORIZED, body, "application/json")
                else:
                    text = b"forbidden: open the URL tickstep local --serve printed\n"
                    self._send(HTTPStatus.FORBIDDEN, text, "text/plain")
                return
            if in_query and not is_api:
                # Keep the token out of the address bar and the history: a cookie from now on.
                self.send_response(HTTPStatus.SEE_OTHER)
                self.send_header(
                    "Set-Cookie", f"{COOKIE}={server.token}; HttpOnly; SameSite=Strict; Path=/"
                )
                self.send_header("Location", url.path or "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if is_api:
                self._api(method, url.path, url.query)
            elif url.path == "/config.json" and method == "GET":
                self._send(HTTPStatus.OK, b'{"auth":"local"}', "application/json", cache=False)
            else:
                self._static(method, url.path)

        def _api(self, method: str, path: str, query: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = (
                self.rfile.read(min(length, 65536)).decode("utf-8", "replace") if length else None
            )
            try:
                result = server.call_api(method, path, query, body)
            except Exception as exc:  # the Lambda service would answer 502
                message = json.dumps({"message": f"Internal Server Error: {type(exc).__name__}"})
                self._send(HTTPStatus.BAD_GATEWAY, message.encode(), "application/json")
                return
            headers = result.get("headers") or {}
            self._send(
                HTTPStatus(int(result.get("statusCode", 502))),
                str(result.get("body") or "").encode(),
                headers.get("Content-Type", "application/json"),
                cache=False,
            )

        def _static(self, method: str, path: str) -> None:
            found = server.file_for(path) if method == "GET" else None
            if found is None:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
                return
            kind = content_type(found.name)
            self._send(HTTPStatus.OK, found.read_bytes(), kind, cache=found.name != "index.html")

        def _send(self, status: HTTPStatus, body: bytes, kind: str, cache: bool = False) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header(
                "Cache-Control", "public, max-age=31536000, immutable" if cache else "no-store"
            )
            for name, value in SECURITY_HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler
